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


def _variant(change: Change, schema: Schema, dialect: str, type_change: TypeChange | None) -> str:
    op = change.op
    a = change.attrs
    if op == Op.ADD_COLUMN:
        if dialect == "mysql":
            if a.get("generated") == "stored" or a.get("auto_increment"):
                return "stored_or_auto_increment"
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
        if a.get("default") is not None:
            return "default"
        if a.get("references"):
            return "references"
        return "plain"
    if op == Op.ALTER_COLUMN_TYPE and type_change is not None:
        return type_change.rewrite
    if op == Op.SET_NOT_NULL:
        t = schema.table(change.table)
        return "proven" if t is not None and change.column and t.proves_not_null(change.column) else "scan"
    if op == Op.ADD_CONSTRAINT:
        kind = a.get("kind", "other")
        if a.get("using_index"):
            if kind == "primary_key":
                t = schema.table(change.table)
                cols = a.get("columns") or []
                if t is None or not cols or any((t.column(c) is None or t.column(c).nullable) for c in cols):  # type: ignore[union-attr]
                    return "using_index_scan"
            return "using_index"
        if dialect == "mysql":
            return kind
        if kind in ("foreign_key", "check", "not_null") and a.get("not_valid"):
            return f"{kind}_not_valid"
        return kind
    if op in (Op.CREATE_INDEX, Op.DROP_INDEX, Op.REINDEX, Op.DETACH_PARTITION, Op.REFRESH_MATVIEW):
        return "concurrently" if a.get("concurrently") else "plain"
    if op == Op.VACUUM:
        return "full" if a.get("full") else "plain"
    if op in (Op.CREATE_OBJECT, Op.DROP_OBJECT):
        return a.get("object") or "*"
    return "plain"


def _type_change(change: Change, schema: Schema, dialect: str) -> TypeChange | None:
    if change.op != Op.ALTER_COLUMN_TYPE:
        return None
    t = schema.table(change.table)
    col = t.column(change.column) if t is not None else None
    old = col.type if col is not None else None
    return compare_types(old, change.get("type"), dialect)


def _phase(change: Change, schema: Schema, type_change: TypeChange | None, dialect: str) -> tuple[str, str]:
    op = change.op
    a = change.attrs
    if op in _NEUTRAL_OPS:
        return NEUTRAL, "no schema effect blue can notice"
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
    if op == Op.ADD_CONSTRAINT:
        kind = a.get("kind")
        if a.get("not_valid") and kind in ("foreign_key", "check", "not_null"):
            return EXPAND, "NOT VALID: existing rows are not checked"
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


def classify(change: Change, schema: Schema, unit: str, dialect: str, version: Version) -> Classified:
    type_change = _type_change(change, schema, dialect)
    variant = _variant(change, schema, dialect, type_change)
    lock = lookup(change.op, variant, dialect, version)
    table = change.table
    if change.op == Op.DROP_INDEX and table is None:
        table = schema.table_of_index(change.get("index"))
    new = schema.is_new(table, unit) if table else False
    if change.op == Op.ADD_CONSTRAINT and change.get("kind") == "foreign_key" and not new:
        pass
    if new and change.op not in _NEW_OBJECT_FREE and change.op not in (Op.SYNTAX_ERROR, Op.UNKNOWN):
        phase = NEUTRAL if change.op in _NEUTRAL_OPS else EXPAND
        if change.op in (Op.CREATE_TABLE, Op.CREATE_TABLE_AS):
            return Classified(EXPAND, "a new table is invisible to blue", lock, variant, False, type_change)
        return Classified(
            phase, f"{table} is created in this release: blue never used it", lock, variant, True, type_change
        )
    if (change.op == Op.DROP_COLUMN and schema.column_is_new(table, change.column, unit)) or (
        change.op == Op.DROP_VIEW and schema.views.get(table or "") == unit
    ):
        return Classified(EXPAND, "created in this release: blue never used it", lock, variant, True, type_change)
    phase, reason = _phase(change, schema, type_change, dialect)
    if (
        phase in (CONTRACT, BREAKING)
        and change.column
        and change.op in (Op.SET_NOT_NULL, Op.DROP_DEFAULT, Op.ALTER_COLUMN_TYPE, Op.RENAME_COLUMN)
        and schema.column_is_new(table, change.column, unit)
        and change.op != Op.SET_NOT_NULL
    ):
        return Classified(EXPAND, f"column {change.column} is new in this release", lock, variant, True, type_change)
    return Classified(phase, reason, lock, variant, False, type_change)
