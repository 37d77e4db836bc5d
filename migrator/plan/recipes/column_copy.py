"""What the recipes that copy a column into a second one kept in sync by triggers share
(rename_column, change_column_type): the copy's type, value comparison, and the refusals and
notes about the column being copied."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ...sql.types import parse_type
from .names import MY, PG

if TYPE_CHECKING:
    from ...schema.model import Table
    from ...sql.changes import Change
    from .base import RecipeContext

# ---- types and values --------------------------------------------------------------------------------

_SERIALS = {"serial": "integer", "serial4": "integer", "bigserial": "bigint", "serial8": "bigint"}
_SERIALS |= {"smallserial": "smallint", "serial2": "smallint"}
# PostgreSQL types without a default equality operator: IS DISTINCT FROM fails on them ("could not
# identify an equality operator"), or means something else (box = compares areas).
_NO_EQUALITY = {"json", "xml", "point", "line", "lseg", "box", "path", "polygon", "circle"}


def is_serial(type_text: str | None, default: str | None) -> bool:
    t = (type_text or "").strip().lower()
    return t in _SERIALS or "nextval(" in (default or "").lower() or "auto_increment" in t


def has_equality(type_text: str, dialect: str) -> bool:
    if dialect != PG:
        return True
    parsed = parse_type(type_text)
    return parsed is None or parsed.name not in _NO_EQUALITY


def distinct(a: str, b: str, type_text: str, dialect: str) -> str:
    """SQL that is true when ``a`` and ``b`` (both of ``type_text``) differ, NULLs included."""
    if dialect == MY:
        return f"NOT ({a} <=> {b})"
    if has_equality(type_text, dialect):
        return f"{a} IS DISTINCT FROM {b}"
    return f"{a}::text IS DISTINCT FROM {b}::text"


def add_column_type(type_text: str) -> str:
    """The type to declare for the copy: a serial pseudo-type is its integer type."""
    return _SERIALS.get(type_text.strip().lower(), type_text)


# ---- refusals and notes --------------------------------------------------------------------------------


def column_refusal(change: Change, ctx: RecipeContext, what: str, extra_column: str | None) -> str | None:
    """Why a column-copying recipe cannot run on ``change.table.change.column``, or None.

    ``extra_column`` is the column the recipe adds (it must not exist yet). The reason ends with the
    manual alternative in parentheses and no full stop: the planner quotes it inside its message."""
    table_name, column = change.table, change.column
    where = f"{table_name}.{column}"
    manual = (
        f" (manual alternative: {what} in a maintenance window with blue stopped, or keep the old name/type "
        "and adapt the application)"
    )
    if not table_name or not column:
        return f"the statement does not name the table and column to {what}{manual}"
    table = ctx.schema.table(table_name)
    col = table.column(column) if table is not None else None
    if col is None or not col.type:
        return (
            f"the type of {where} is not known (the migration history does not create it; plan with --dsn "
            f"to read the live schema, or include the history that creates it){manual}"
        )
    assert table is not None
    key = ctx.primary_key(table_name)
    if key is None:
        return f"{table_name} has no single-column primary key or unique NOT NULL column to cut the backfill on{manual}"
    if key == column or _in_primary_key(table, column):
        return f"{where} is (part of) the primary key: a key column cannot be copied online{manual}"
    if is_serial(col.type, col.default):
        return f"{where} draws its values from a sequence or AUTO_INCREMENT it owns{manual}"
    if extra_column and table.column(extra_column) is not None:
        return f"{table_name} already has a column {extra_column}, the name the recipe needs{manual}"
    involved = _objects_on(table, column, ctx)
    if involved:
        return (
            f"{where} is used by {', '.join(involved)}, which dropping the old column in contract would drop, "
            "and bgmigrate does not know their full definitions (predicates, methods, actions) to recreate them "
            "(manual alternative: create the equivalent indexes/constraints on the new column yourself in expand, "
            "CREATE INDEX CONCURRENTLY or ADD CONSTRAINT ... NOT VALID then VALIDATE, or use a maintenance window)"
        )
    return None


def _in_primary_key(table: Table, column: str) -> bool:
    return any(c.kind == "primary_key" and column in c.columns for c in table.constraints)


def _mentions(expression: str | None, column: str) -> bool:
    """A CHECK expression that names the column (the replayed history records no column list for
    CHECKs; a false positive only makes the recipe refuse)."""
    if not expression:
        return False
    pattern = rf'(?<![\w$"]){re.escape(column)}(?![\w$"])|"{re.escape(column)}"'
    return re.search(pattern, expression, re.IGNORECASE) is not None


def _objects_on(table: Table, column: str, ctx: RecipeContext) -> list[str]:
    found = [
        f"{c.kind.replace('_', ' ')} {c.name}" if c.name else c.kind.replace("_", " ")
        for c in table.constraints
        if c.kind not in ("not_null", "primary_key")
        and (column in c.columns or (not c.columns and _mentions(c.expression, column)))
    ]
    for index in sorted(table.indexes):
        if column in (ctx.schema.index_columns.get(index) or []):
            found.append(f"index {index}")
    return found


def unseen_objects_note(ctx: RecipeContext, table: str, column: str) -> list[str]:
    """A warning when the schema comes from replayed history, which does not track every index."""
    if ctx.schema.source is not None:  # read from the live database: indexes and constraints are known
        return []
    return [
        f"The migration history shows no index or constraint on {table}.{column}, but it does not track "
        "everything (e.g. REFERENCES written inside a column definition, objects created outside the "
        "migrations): any that exists is dropped with the old column in contract. Check, or plan with --dsn."
    ]
