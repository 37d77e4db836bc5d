"""Column type changes: is the new type compatible with blue, and does the change rewrite the table?

PostgreSQL rewrites the table and its indexes on ``ALTER COLUMN TYPE`` unless
the old type is binary coercible to the new one (``varchar(n)`` to a larger
``varchar`` or ``text``, ``numeric(p,s)`` to a larger precision at the same
scale or to unconstrained ``numeric``, ``cidr`` to ``inet``, a larger
``varbit``, a larger time/timestamp/interval precision).
Sources: https://www.postgresql.org/docs/current/sql-altertable.html (Notes),
ankane/strong_migrations lib/strong_migrations/adapters/postgresql_adapter.rb ``change_type_safe?``.

MySQL: extending ``VARCHAR`` is in place while the length prefix stays one byte
(at most 255 bytes) or was already two; every other data type change copies
the table and blocks writes.
Source: https://dev.mysql.com/doc/refman/8.0/en/innodb-online-ddl-operations.html#online-ddl-column-operations
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

_ALIASES = {
    "integer": "int",
    "int4": "int",
    "int8": "bigint",
    "int2": "smallint",
    "serial": "int",
    "serial4": "int",
    "bigserial": "bigint",
    "serial8": "bigint",
    "smallserial": "smallint",
    "character varying": "varchar",
    "char varying": "varchar",
    "character": "char",
    "bpchar": "char",
    "bool": "boolean",
    "decimal": "numeric",
    "float8": "double",
    "double precision": "double",
    "float4": "real",
    "float": "double",
    "timestamp without time zone": "timestamp",
    "timestamp with time zone": "timestamptz",
    "time without time zone": "time",
    "time with time zone": "timetz",
    "bit varying": "varbit",
    "string": "text",
}

# Families: values of a member read back the same way in an application (same driver type family).
_INTEGERS = ["tinyint", "smallint", "mediumint", "int", "bigint"]
_FAMILY = {
    **{t: "integer" for t in _INTEGERS},
    "numeric": "decimal",
    "real": "float",
    "double": "float",
    "varchar": "string",
    "text": "string",
    "char": "string",
    "tinytext": "string",
    "mediumtext": "string",
    "longtext": "string",
    "citext": "string",
    "timestamp": "timestamp",
    "timestamptz": "timestamp",
    "datetime": "timestamp",
    "json": "json",
    "jsonb": "json",
    "varbit": "bits",
    "bit": "bits",
    "cidr": "net",
    "inet": "net",
    "time": "time",
    "interval": "interval",
}
_TEXT_ORDER = ["tinytext", "text", "mediumtext", "longtext"]

_TYPE = re.compile(r"^\s*([a-z_][a-z0-9_ ]*?)\s*(?:\((.*)\))?\s*((?:with|without) time zone)?\s*(\[\])?\s*$")


@dataclass(frozen=True, slots=True)
class SqlType:
    name: str
    params: tuple[int, ...] = ()
    array: bool = False
    unsigned: bool = False
    raw: str = ""

    @property
    def family(self) -> str | None:
        return _FAMILY.get(self.name)


@lru_cache(maxsize=4096)
def parse_type(text: str | None) -> SqlType | None:
    if not text:
        return None
    t = text.strip().lower()
    unsigned = " unsigned" in t
    t = t.replace(" unsigned", "").replace(" zerofill", "")
    m = _TYPE.match(t)
    if not m:
        return SqlType(t, raw=text)
    name, params, tz, array = m.groups()
    name = name.strip()
    if tz:
        name = f"{name} {tz}"
    name = _ALIASES.get(name, name)
    nums: list[int] = []
    if params and not name.startswith("enum") and not name.startswith("set"):
        for p in params.split(","):
            p = p.strip()
            if p.isdigit():
                nums.append(int(p))
            elif p.lower() == "max":
                nums.append(1 << 30)
    if name == "enum" or name == "set":
        values = tuple(v.strip().strip("'") for v in (params or "").split(","))
        return SqlType(name, tuple(range(len(values))), array=bool(array), raw=(params or ""))
    return SqlType(name, tuple(nums), bool(array), unsigned, raw=text)


@dataclass(frozen=True, slots=True)
class TypeChange:
    """Verdict on ``old`` -> ``new``.

    ``compat``: ``same`` | ``widening`` (every old value fits, blue reads it the same way) |
    ``narrowing`` (values may not fit: tightening) | ``incompatible`` (blue reads a different kind of
    value) | ``unknown`` (old type not known).
    ``rewrite``: ``none`` | ``scan`` | ``rewrite`` (PostgreSQL),
    or ``copy`` / ``inplace`` / ``instant`` (MySQL).
    """

    compat: str
    rewrite: str
    reason: str


def _enum_values(raw: str) -> list[str]:
    return [v.strip().strip("'") for v in raw.split(",") if v.strip()]


def compare_types(old_text: str | None, new_text: str | None, dialect: str) -> TypeChange:
    old = parse_type(old_text)
    new = parse_type(new_text)
    if new is None:
        return TypeChange("unknown", "rewrite", "the new type could not be read")
    if old is None:
        return TypeChange(
            "unknown",
            "rewrite",
            "the column's current type is not known from the migration history",
        )
    if dialect == "mysql":
        return _compare_mysql(old, new)
    return _compare_postgres(old, new)


def _length(t: SqlType) -> int | None:
    return t.params[0] if t.params else None


def _compare_postgres(old: SqlType, new: SqlType) -> TypeChange:
    if old.array != new.array:
        return TypeChange("incompatible", "rewrite", "array-ness changes")
    if old.name == new.name and old.params == new.params:
        return TypeChange("same", "none", "same type")
    if old.name == "varchar" and new.name in ("varchar", "text", "citext"):
        if new.name == "text" or _length(new) is None:
            return TypeChange("widening", "none", "varchar to text/unbounded varchar is binary coercible")
        if _length(old) is not None and _length(new) >= _length(old):  # type: ignore[operator]
            return TypeChange("widening", "none", "longer varchar is binary coercible")
        if _length(old) is None:
            return TypeChange("narrowing", "scan", "bounded varchar from unbounded: existing values are checked")
        return TypeChange("narrowing", "rewrite", "shorter varchar: existing values may not fit")
    if (
        old.name == "char"
        and new.name in ("text", "varchar", "citext")
        and (new.name != "varchar" or _length(new) is None or _length(new) >= (_length(old) or 1))  # type: ignore[operator]
    ):
        return TypeChange("widening", "rewrite", "char(n) to a text type keeps every value but rewrites the table")
    if old.name == "text" and new.name == "varchar":
        if _length(new) is None:
            return TypeChange("same", "none", "text and unbounded varchar are binary coercible")
        return TypeChange("narrowing", "rewrite", "text to bounded varchar: existing values may not fit")
    if old.name == "numeric" and new.name == "numeric":
        if not new.params:
            return TypeChange("widening", "none", "unconstrained numeric accepts every value")
        if old.params and len(new.params) >= 1:
            old_scale = old.params[1] if len(old.params) > 1 else 0
            new_scale = new.params[1] if len(new.params) > 1 else 0
            if new.params[0] >= old.params[0] and new_scale == old_scale:
                return TypeChange("widening", "none", "larger precision at the same scale is binary coercible")
        return TypeChange("narrowing", "rewrite", "numeric precision or scale changes")
    if (
        old.name in ("varbit", "bit")
        and new.name == "varbit"
        and (_length(new) is None or (_length(old) is not None and _length(new) >= _length(old)))  # type: ignore[operator]
    ):
        return TypeChange("widening", "none", "larger varbit is binary coercible")
    if old.name == "cidr" and new.name == "inet":
        return TypeChange("widening", "none", "cidr to inet is binary coercible")
    if old.name == new.name and old.name in ("timestamp", "timestamptz", "time", "timetz", "interval"):
        if not new.params or (old.params and new.params[0] >= old.params[0]):
            return TypeChange("widening", "none", "larger fractional-second precision")
        return TypeChange("narrowing", "rewrite", "smaller fractional-second precision rounds values")
    if {old.name, new.name} == {"timestamp", "timestamptz"}:
        return TypeChange(
            "incompatible",
            "rewrite",
            "timestamp and timestamptz are read differently by applications (no rewrite only on PG 12+ when "
            "the session time zone is UTC)",
        )
    if old.family == "integer" and new.family == "integer":
        if _INTEGERS.index(new.name) > _INTEGERS.index(old.name):
            return TypeChange("widening", "rewrite", f"{old.name} to {new.name} widens but rewrites the table")
        return TypeChange("narrowing", "rewrite", f"{old.name} to {new.name} may overflow")
    if old.family == "integer" and new.name == "numeric":
        return TypeChange("widening", "rewrite", "integer to numeric widens but rewrites the table")
    if old.name == "real" and new.name == "double":
        return TypeChange("widening", "rewrite", "real to double precision widens but rewrites the table")
    if old.name == "json" and new.name == "jsonb":
        return TypeChange("widening", "rewrite", "json to jsonb rewrites every value")
    if old.family is not None and old.family == new.family:
        return TypeChange("narrowing", "rewrite", f"{old.name} to {new.name} may not keep every value")
    return TypeChange("incompatible", "rewrite", f"{old.name} to {new.name} changes what applications read")


def _varchar_prefix_bytes(length: int | None) -> int:
    # utf8mb4: up to 4 bytes a character; a one-byte length prefix holds up to 255 bytes.
    if length is None:
        return 2
    return 1 if length * 4 <= 255 else 2


def _compare_members(old: SqlType, new: SqlType) -> TypeChange:
    """MySQL ENUM/SET: appending at the end is INSTANT (while the storage size stays the same);
    inserting or reordering keeps every value but copies the table; removing a member narrows."""
    old_vals, new_vals = _enum_values(old.raw), _enum_values(new.raw)
    if new_vals[: len(old_vals)] == old_vals:
        limit = 255 if old.name == "enum" else 8
        if (len(old_vals) <= limit) == (len(new_vals) <= limit):
            return TypeChange("widening", "instant", "members appended at the end of the list")
        return TypeChange("widening", "copy", "members appended, but the storage size grows")
    if set(old_vals) <= set(new_vals):
        return TypeChange("widening", "copy", "members inserted or reordered: every value is kept, the table is copied")
    return TypeChange("narrowing", "copy", "members removed: existing rows may hold them")


def _compare_mysql(old: SqlType, new: SqlType) -> TypeChange:
    if old.family == "integer" and new.family == "integer" and old.name == new.name and old.unsigned == new.unsigned:
        return TypeChange("same", "inplace", "same integer type (display widths do not change storage)")
    if old.name == new.name and old.params == new.params and old.unsigned == new.unsigned:
        if old.name in ("enum", "set") and _enum_values(old.raw) == _enum_values(new.raw):
            return TypeChange("same", "inplace", "same members")
        if old.name in ("enum", "set") and old.raw != new.raw:
            return _compare_members(old, new)
        return TypeChange("same", "inplace", "same type")
    if old.name in ("enum", "set") and new.name == old.name:
        return _compare_members(old, new)
    if old.name == "varchar" and new.name == "varchar":
        lo, ln = _length(old), _length(new)
        if lo is not None and ln is not None and ln >= lo:
            if _varchar_prefix_bytes(lo) == _varchar_prefix_bytes(ln):
                return TypeChange("widening", "inplace", "longer VARCHAR with the same length-prefix size")
            return TypeChange("widening", "copy", "longer VARCHAR crossing 255 bytes changes the length prefix")
        return TypeChange("narrowing", "copy", "shorter VARCHAR: values may be truncated or rejected")
    if old.family == "integer" and new.family == "integer":
        if _INTEGERS.index(new.name) > _INTEGERS.index(old.name) and old.unsigned == new.unsigned:
            return TypeChange("widening", "copy", f"{old.name} to {new.name} widens but copies the table")
        return TypeChange("narrowing", "copy", f"{old.name} to {new.name} may overflow")
    if old.name in _TEXT_ORDER and new.name in _TEXT_ORDER:
        if _TEXT_ORDER.index(new.name) >= _TEXT_ORDER.index(old.name):
            return TypeChange("widening", "copy", "larger TEXT type copies the table")
        return TypeChange("narrowing", "copy", "smaller TEXT type may truncate")
    if old.name == "varchar" and new.name in _TEXT_ORDER:
        return TypeChange("widening", "copy", "VARCHAR to TEXT copies the table")
    if old.family is not None and old.family == new.family:
        return TypeChange("narrowing", "copy", f"{old.name} to {new.name} may not keep every value")
    return TypeChange("incompatible", "copy", f"{old.name} to {new.name} changes what applications read")
