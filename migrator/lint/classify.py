"""Phase and lock classification of one change against the schema built so far.

Phases (see DESIGN.md): ``expand`` (blue keeps working), ``migrate`` (data
changes), ``contract`` (only green can live with it), ``breaking`` (neither
order is safe: must be rewritten), ``neutral`` (no schema effect). A change
to an object created in the unit under review is ``expand``: blue never saw
it. Anything not understood is ``breaking`` (fail safe).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..facts.locks import LockFact, Version, lookup
from ..schema.model import Schema
from ..sql.changes import Change, Op
from ..sql.types import TypeChange, compare_types

EXPAND, MIGRATE, CONTRACT, BREAKING, NEUTRAL = "expand", "migrate", "contract", "breaking", "neutral"
PHASES = (EXPAND, MIGRATE, CONTRACT, BREAKING, NEUTRAL)
_RANK = {NEUTRAL: 0, EXPAND: 1, MIGRATE: 2, CONTRACT: 3, BREAKING: 4}


@dataclass(slots=True)
class Classified:
    phase: str
    reason: str
    lock: LockFact | None
    variant: str
    new_object: bool
    type_change: TypeChange | None = None


_FIXED: dict[str, tuple[str, str]] = {
    Op.CREATE_TABLE: (EXPAND, "a new table is invisible to blue"),
    Op.CREATE_TABLE_AS: (EXPAND, "a new table is invisible to blue"),
    Op.CREATE_VIEW: (EXPAND, "a new view is invisible to blue"),
    Op.CREATE_SCHEMA: (EXPAND, "a new schema is invisible to blue"),
    Op.CREATE_TYPE: (EXPAND, "a new type is invisible to blue"),
    Op.CREATE_DOMAIN: (EXPAND, "a new domain is invisible to blue"),
    Op.CREATE_OBJECT: (EXPAND, "additive object"),
    Op.ADD_ENUM_VALUE: (EXPAND, "blue's writes stay valid; blue's readers may meet the new value"),
    Op.DROP_NOT_NULL: (EXPAND, "relaxing: blue's writes stay valid"),
    Op.SET_DEFAULT: (EXPAND, "blue's writes are unaffected"),
    Op.VALIDATE_CONSTRAINT: (EXPAND, "new rows are already checked; validation only reads old ones"),
    Op.ATTACH_PARTITION: (EXPAND, "adds rows to the parent"),
    Op.DROP_COLUMN: (CONTRACT, "blue still reads or writes the column"),
    Op.DROP_TABLE: (CONTRACT, "blue still uses the table"),
    Op.DROP_VIEW: (CONTRACT, "blue may still read the view"),
    Op.DROP_SCHEMA: (CONTRACT, "blue may still use objects in the schema"),
    Op.DROP_DATABASE: (CONTRACT, "blue still uses the database"),
    Op.DROP_TYPE: (CONTRACT, "blue may still use the type"),
    Op.DROP_OBJECT: (CONTRACT, "blue may still rely on the object"),
    Op.DROP_INDEX: (CONTRACT, "blue's queries (or ON CONFLICT targets) may rely on the index"),
    Op.DROP_CONSTRAINT: (CONTRACT, "blue may rely on the constraint (ON CONFLICT, cascades, integrity)"),
    Op.SET_NOT_NULL: (CONTRACT, "tightening: blue may still write NULL"),
    Op.DROP_DEFAULT: (CONTRACT, "blue's inserts that omit the column relied on the default"),
    Op.DETACH_PARTITION: (CONTRACT, "rows disappear from the parent blue reads"),
    Op.ALTER_DOMAIN_ADD_CONSTRAINT: (CONTRACT, "tightening every column of the domain"),
    Op.RENAME_COLUMN: (BREAKING, "no single name serves blue and green"),
    Op.RENAME_TABLE: (BREAKING, "no single name serves blue and green"),
    Op.RENAME_VIEW: (BREAKING, "no single name serves blue and green"),
    Op.RENAME_SCHEMA: (BREAKING, "no single name serves blue and green"),
    Op.RENAME_ENUM_VALUE: (BREAKING, "blue writes and reads the old value"),
    Op.TRUNCATE: (BREAKING, "deletes rows blue is using"),
    Op.INSERT: (MIGRATE, "data change"),
    Op.UPDATE: (MIGRATE, "data change"),
    Op.DELETE: (MIGRATE, "data change"),
    Op.REFRESH_MATVIEW: (MIGRATE, "data refresh"),
    Op.SYNTAX_ERROR: (BREAKING, "the statement does not parse"),
    Op.UNKNOWN: (BREAKING, "the statement could not be classified"),
}
_NEUTRAL_OPS = {
    Op.SET,
    Op.BEGIN,
    Op.COMMIT,
    Op.ROLLBACK,
    Op.COMMENT,
    Op.GRANT,
    Op.META_COMMAND,
    Op.SELECT,
    Op.VACUUM,
    Op.CLUSTER,
    Op.ANALYZE,
    Op.REINDEX,
    Op.OPTIMIZE_TABLE,
    Op.ALTER_TABLE_STORAGE,
    Op.ALTER_TABLE_OTHER,
    Op.LOCK_TABLE,
}
_NEW_OBJECT_FREE = {Op.INSERT, Op.UPDATE, Op.DELETE}


def combine(phases: list[str]) -> str:
    """Phase of a statement made of several changes."""
    if not phases:
        return NEUTRAL
    distinct = set(phases)
    if EXPAND in distinct and CONTRACT in distinct:
        return BREAKING  # one statement cannot run both before green and after blue
    return max(distinct, key=_RANK.__getitem__)


def _variant(
    change: Change, schema: Schema, dialect: str, type_change: TypeChange | None, session: dict[str, str]
) -> str:
    op = change.op
    a = change.attrs
    if op == Op.CREATE_TABLE:
        referenced = referenced_tables(change)
        return "references" if any(r != change.table for r in referenced) else "plain"
    if op == Op.ADD_COLUMN:
        if dialect == "mysql":
            if a.get("generated") == "stored":
                return "stored_generated"
            if a.get("auto_increment"):
                return "auto_increment"
            default = a.get("default")
            if default and "(" in default:
                return "expression_default"
            if a.get("position"):
                return "not_last"
            return "plain"
        if a.get("serial") or a.get("generated") == "identity":
            return "serial"
        if a.get("generated") == "stored":
            return "generated_stored"
        if a.get("volatile_default"):
            return "volatile_default"
        if a.get("references"):  # without a default the new column is all NULL: nothing to validate
            return "references_default" if a.get("default") is not None else "references"
        if a.get("default") is not None:
            return "default"
        if a.get("unique") or a.get("primary_key"):
            return "unique"
        return "plain"
    if op == Op.ALTER_COLUMN_TYPE and type_change is not None:
        using = a.get("using")
        if dialect == "postgres" and using and change.column:
            # A USING that is not the column itself (or its cast to the new type) computes new values.
            def squeeze(text: str) -> str:
                return "".join(text.split()).replace('"', "").lower()

            keeps = {squeeze(change.column), squeeze(f"CAST({change.column} AS {a.get('type') or ''})")}
            if squeeze(using) not in keeps:
                return "rewrite"
        if dialect == "mysql" and a.get("redefine") and type_change.compat == "same":
            col = schema.table(change.table).column(change.column) if schema.table(change.table) else None
            unchanged = col is not None and col.nullable == a.get("nullable", True) and col.default == a.get("default")
            if unchanged:
                return "instant"
            return "rebuild" if col is not None and col.nullable != a.get("nullable", True) else "inplace"
        return type_change.rewrite
    if op == Op.SET_NOT_NULL:
        t = schema.table(change.table)
        col = t.column(change.column) if t is not None else None
        if col is not None and not col.nullable and col.type is not None:
            return "already"  # the history made it NOT NULL already: PostgreSQL does nothing
        return "proven" if t is not None and change.column and t.proves_not_null(change.column) else "scan"
    if op == Op.ADD_CONSTRAINT:
        kind = a.get("kind", "other")
        if a.get("using_index"):
            if kind == "primary_key":
                t = schema.table(change.table)
                cols = a.get("columns") or schema.index_columns.get(a["using_index"]) or []
                if t is None or not cols or any((t.column(c) is None or t.column(c).nullable) for c in cols):  # type: ignore[union-attr]
                    return "using_index_scan"
            return "using_index"
        if dialect == "mysql":
            if kind == "foreign_key" and session.get("foreign_key_checks") in ("0", "off", "false"):
                return "foreign_key_unchecked"
            if a.get("not_enforced"):
                return "not_enforced"
            return kind
        if kind in ("foreign_key", "check", "not_null") and a.get("not_valid"):
            return f"{kind}_not_valid"
        return kind
    if op in (Op.CREATE_INDEX, Op.DROP_INDEX, Op.REINDEX, Op.DETACH_PARTITION, Op.REFRESH_MATVIEW):
        return "concurrently" if a.get("concurrently") else "plain"
    if op == Op.VACUUM:
        return "full" if a.get("full") else "plain"
    if op == Op.LOCK_TABLE:
        return (a.get("mode") or "ACCESS EXCLUSIVE").lower().replace(" ", "_")
    if op == Op.ALTER_TABLE_OTHER:
        if a.get("object") == "index" and a.get("rewrite"):
            return "index_set_tablespace"
        return a.get("action") or "plain"
    if op in (Op.CREATE_OBJECT, Op.DROP_OBJECT):
        return a.get("object") or "*"
    return "plain"


def referenced_tables(change: Change) -> list[str]:
    """Tables a CREATE TABLE's foreign keys point at."""
    out = [facts.get("references") for facts in (change.get("columns") or {}).values()]
    out += [c.get("references") for c in change.get("constraints") or []]
    return [r for r in out if r]


def _type_change(change: Change, schema: Schema, dialect: str) -> TypeChange | None:
    if change.op != Op.ALTER_COLUMN_TYPE:
        return None
    t = schema.table(change.table)
    col = t.column(change.column) if t is not None else None
    old = col.type if col is not None else None
    return compare_types(old, change.get("type"), dialect)


def _phase(
    change: Change, schema: Schema, type_change: TypeChange | None, dialect: str, variant: str = ""
) -> tuple[str, str]:
    op = change.op
    a = change.attrs
    if op in _NEUTRAL_OPS:
        return NEUTRAL, "no schema effect blue can notice"
    if op == Op.ALTER_DOMAIN_ADD_CONSTRAINT and a.get("not_valid"):
        return EXPAND, "NOT VALID: existing values are not checked"
    if op == Op.DROP_DEFAULT:
        t = schema.table(change.table)
        col = t.column(change.column) if t is not None else None
        if col is not None and col.type is not None and col.default is None:
            return NEUTRAL, "the column has no default to drop"
    if op == Op.ADD_COLUMN:
        required = (
            a.get("nullable") is False
            and a.get("default") is None
            and not a.get("serial")
            and not a.get("generated")
            and not a.get("auto_increment")
        )
        if required:
            return (
                BREAKING,
                "blue's inserts do not set the new NOT NULL column and have no default to fall back on",
            )
        return EXPAND, "blue ignores a new column it does not select"
    if op == Op.ALTER_COLUMN_TYPE:
        assert type_change is not None
        phase, reason = {
            "same": (NEUTRAL, "same type"),
            "widening": (EXPAND, f"widening ({type_change.reason})"),
            "narrowing": (
                CONTRACT,
                f"narrowing ({type_change.reason}): blue may write values that no longer fit",
            ),
            "incompatible": (BREAKING, f"incompatible type change ({type_change.reason})"),
            "unknown": (BREAKING, f"type change with unknown old type ({type_change.reason})"),
        }[type_change.compat]
        if a.get("redefine"):  # MySQL MODIFY/CHANGE restates nullability and default too
            t = schema.table(change.table)
            col = t.column(change.column) if t is not None else None
            extra: list[tuple[str, str]] = []
            if col is not None:
                if col.nullable and a.get("nullable") is False:
                    extra.append((CONTRACT, "MODIFY adds NOT NULL: blue may still write NULL"))
                elif not col.nullable and a.get("nullable") is True:
                    extra.append((EXPAND, "MODIFY drops NOT NULL"))
                if col.default is not None and a.get("default") is None:
                    extra.append((CONTRACT, "MODIFY drops the column default blue's inserts rely on"))
            elif a.get("nullable") is False:
                extra.append((CONTRACT, "MODIFY states NOT NULL on a column whose nullability is unknown"))
            for p, r in extra:
                if _RANK[p] > _RANK[phase] or (phase == NEUTRAL and p == EXPAND):
                    phase, reason = p, r
        return phase, reason
    if op == Op.SET_NOT_NULL:
        t = schema.table(change.table)
        col = t.column(change.column) if t is not None else None
        if col is not None and not col.nullable and col.type is not None:
            return NEUTRAL, "the column is NOT NULL already"
    if op == Op.ADD_CONSTRAINT:
        kind = a.get("kind")
        if a.get("not_valid") and kind in ("foreign_key", "check", "not_null"):
            return EXPAND, "NOT VALID: existing rows are not checked"
        if a.get("not_enforced"):
            return EXPAND, "NOT ENFORCED: the constraint is declared but never checked"
        if a.get("using_index") and kind == "primary_key" and variant == "using_index":
            return EXPAND, "the unique index and NOT NULL columns already constrain blue's writes"
        if a.get("using_index") and kind == "unique":
            return EXPAND, "the unique index already constrains blue's writes"
        return CONTRACT, f"a validated {kind or 'constraint'} tightens what blue may write"
    if op == Op.CREATE_INDEX:
        if a.get("unique"):
            return CONTRACT, "a unique index rejects duplicates blue may still write"
        return EXPAND, "an index is invisible to blue's queries' results"
    fixed = _FIXED.get(op)
    if fixed is not None:
        return fixed
    return BREAKING, f"no phase is known for {op}"


def _column_default(schema: Schema, table: str | None, column: str | None) -> str | None:
    t = schema.table(table)
    col = t.column(column) if t is not None else None
    return col.default if col is not None else None


def _created_here(change: Change, schema: Schema, unit: str, table: str | None) -> str | None:
    """The object the change removes or renames, when it was created in ``unit``: blue never saw it."""
    op = change.op
    a = change.attrs
    if op == Op.DROP_COLUMN and schema.column_is_new(table, change.column, unit):
        return f"column {change.column}"
    if op in (Op.DROP_VIEW, Op.RENAME_VIEW) and table and schema.views.get(table) == unit:
        return f"view {table}"
    if op == Op.DROP_INDEX and schema.object_is_new("index", a.get("index"), unit):
        return f"index {a.get('index')}"
    if op in (Op.DROP_CONSTRAINT, Op.VALIDATE_CONSTRAINT) and schema.constraint_is_new(
        table, a.get("constraint"), unit
    ):
        return f"constraint {a.get('constraint')}"
    if op in (Op.DROP_SCHEMA, Op.RENAME_SCHEMA, Op.DROP_DATABASE) and schema.object_is_new(
        "schema", a.get("schema"), unit
    ):
        return f"schema {a.get('schema')}"
    if op in (Op.DROP_TYPE, Op.RENAME_ENUM_VALUE, Op.ADD_ENUM_VALUE) and schema.object_is_new(
        "type", a.get("type_name"), unit
    ):
        return f"type {a.get('type_name')}"
    if op == Op.RENAME_TABLE and a.get("object") == "type" and schema.object_is_new("type", a.get("type_name"), unit):
        return f"type {a.get('type_name')}"
    if op == Op.ALTER_DOMAIN_ADD_CONSTRAINT and schema.object_is_new("type", a.get("domain"), unit):
        return f"domain {a.get('domain')}"
    if op == Op.DROP_OBJECT and schema.object_is_new(a.get("object") or "object", a.get("name"), unit):
        return f"{a.get('object')} {a.get('name')}"
    return None


def classify(
    change: Change,
    schema: Schema,
    unit: str,
    dialect: str,
    version: Version,
    session: dict[str, str] | None = None,
) -> Classified:
    """Phase, lock and rewrite of ``change`` given the schema before it.

    ``session`` holds session settings seen earlier in the file that change how the server
    executes DDL (MySQL ``foreign_key_checks``).
    """
    type_change = _type_change(change, schema, dialect)
    variant = _variant(change, schema, dialect, type_change, session or {})
    # The foreign keys lock the referenced tables (SHARE ROW EXCLUSIVE); harmless when those are new too.
    if (
        variant == "references"
        and change.op == Op.CREATE_TABLE
        and all(schema.is_new(r, unit) or r == change.table for r in referenced_tables(change))
    ):
        variant = "plain"
    lock = lookup(change.op, variant, dialect, version)
    table = change.table
    if change.op in (Op.DROP_INDEX, Op.REINDEX) and table is None:
        table = schema.table_of_index(change.get("index"))
        if table is not None:
            change.table = table
    new_table = bool(table) and (schema.is_new(table, unit) or schema.views.get(table or "") == unit)
    if new_table and change.op not in _NEW_OBJECT_FREE and change.op not in (Op.SYNTAX_ERROR, Op.UNKNOWN):
        if change.op in (Op.CREATE_TABLE, Op.CREATE_TABLE_AS):
            return Classified(EXPAND, "a new table is invisible to blue", lock, variant, False, type_change)
        phase = NEUTRAL if change.op in _NEUTRAL_OPS else EXPAND
        reason = f"{table} is created in this release: blue never used it"
        return Classified(phase, reason, lock, variant, True, type_change)
    created = _created_here(change, schema, unit, table)
    if created is not None:
        # Blue never used the object, but the table it belongs to is in use: lock hazards remain.
        reason = f"{created} is created in this release: blue never used it"
        return Classified(EXPAND, reason, lock, variant, False, type_change)
    phase, reason = _phase(change, schema, type_change, dialect, variant)
    if (
        phase in (CONTRACT, BREAKING)
        and change.op == Op.SET_NOT_NULL
        and schema.column_is_new(table, change.column, unit)
        and _column_default(schema, table, change.column) is not None
    ):
        # Blue does not know the column; its inserts get the default, never NULL.
        reason = f"column {change.column} is new in this release and has a default: blue never writes NULL"
        return Classified(EXPAND, reason, lock, variant, False, type_change)
    if (
        phase in (CONTRACT, BREAKING)
        and change.op in (Op.DROP_DEFAULT, Op.ALTER_COLUMN_TYPE, Op.RENAME_COLUMN)
        and schema.column_is_new(table, change.column, unit)
    ):
        # Blue does not know the column. (SET NOT NULL stays contract: blue's inserts leave it NULL.)
        # The table is in use, so lock hazards remain.
        return Classified(EXPAND, f"column {change.column} is new in this release", lock, variant, False, type_change)
    return Classified(phase, reason, lock, variant, False, type_change)
