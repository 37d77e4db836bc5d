"""Abort SQL for plain expand statements: what undoes them while blue is still the only version.

A step planned from a recipe carries the recipe's abort part; a plain expand statement gets its
inverse here when there is an obvious, safe one (the object it created is dropped, with IF EXISTS
where the dialect has it, so an abort that is run again is a no-op). Statements that only read
(a check that raises when something is wrong) need none. Anything else gets no abort SQL, and
``bgmigrate abort`` then refuses and names the step instead of guessing.
"""

from __future__ import annotations

from ..sql.changes import Change, Op
from .recipes.names import in_schema_of, quote, quote_table

READ_ONLY = "-- nothing to undo (the step only reads)"


def inverse_sql(changes: list[Change], dialect: str) -> str | None:
    """The statements that undo ``changes`` (in reverse order), or None when one has no safe inverse."""
    if changes and all(ch.op == Op.SELECT for ch in changes):
        return READ_ONLY
    parts: list[str] = []
    for ch in reversed(changes):
        undo = _undo(ch, dialect)
        if undo is None:
            return None
        parts.append(undo)
    return ";\n".join(parts) if parts else None


def _undo(ch: Change, dialect: str) -> str | None:
    pg = dialect == "postgres"
    table = quote_table(ch.table, dialect) if ch.table else None
    if ch.op == Op.CREATE_TABLE and table and not ch.get("if_not_exists"):
        return f"DROP TABLE IF EXISTS {table}"
    if ch.op == Op.ADD_COLUMN and table and ch.column and not ch.get("if_not_exists"):
        exists = " IF EXISTS" if pg else ""  # MySQL 8 has no DROP COLUMN IF EXISTS
        return f"ALTER TABLE {table} DROP COLUMN{exists} {quote(ch.column, dialect)}"
    if ch.op == Op.CREATE_INDEX and ch.get("index") and not ch.get("if_not_exists"):
        name = ch.get("index")
        if pg:
            concurrently = " CONCURRENTLY" if ch.get("concurrently") else ""
            where = in_schema_of(ch.table, name, dialect) if ch.table else quote(name, dialect)
            return f"DROP INDEX{concurrently} IF EXISTS {where}"
        if table:
            return f"DROP INDEX {quote(name, dialect)} ON {table}"
    if ch.op == Op.ADD_CONSTRAINT and table and ch.get("constraint"):
        name = quote(ch.get("constraint"), dialect)
        if pg:
            return f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {name}"
        kind = ch.get("kind")
        if kind == "foreign_key":
            return f"ALTER TABLE {table} DROP FOREIGN KEY {name}"
        if kind == "unique":
            return f"ALTER TABLE {table} DROP INDEX {name}"
        if kind == "check":
            return f"ALTER TABLE {table} DROP CONSTRAINT {name}"  # MySQL 8.0.19+ and MariaDB
    return None
