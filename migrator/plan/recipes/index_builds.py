"""What the recipes that build an index without blocking writes share (create_index, add_unique):
the MySQL build statement from the author's text, and PostgreSQL's guard and notes for the INVALID
index a failed ``CREATE INDEX CONCURRENTLY`` leaves behind."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .applicability import refuse
from .mysql_online import mysql_online
from .names import quote_ident, quote_ident_table, taken_names
from .sqltext import ON_TABLE, alter_action, literal

if TYPE_CHECKING:
    from ...sql.changes import Change
    from .base import RecipeContext

_MY_INDEX_OPTION = re.compile(r"\s+(?:ALGORITHM|LOCK)\s*=?\s*\w+", re.I)
_MY_ADD_INDEX = re.compile(
    r"^ADD\s+(?:UNIQUE(?:\s+(?:INDEX|KEY))?|(?:FULLTEXT\s+|SPATIAL\s+)?(?:INDEX|KEY))\s*(?=\()", re.I
)


def mysql_index_statement(change: Change, ctx: RecipeContext, text: str) -> tuple[str, str, str]:
    """``(online SQL, table as SQL, index as SQL)`` for a MySQL index build, from the author's text."""
    if text.upper().startswith("ALTER"):
        found = alter_action(change, text, "mysql")
        if found is None:
            raise refuse("the ALTER TABLE action that adds the index could not be singled out")
        table, action = found
        index = change.get("index")
        if not index:
            cols = change.get("columns") or []
            if not cols:
                raise refuse("an unnamed index without plain columns: name the index")
            # MySQL names an unnamed index after its first column (col, col_2, col_3, ... when taken)
            taken = taken_names(ctx, change.table)
            index, n = cols[0], 1
            while index in taken:
                n += 1
                index = f"{cols[0]}_{n}"
            action = _MY_ADD_INDEX.sub(lambda m: m.group(0).rstrip() + f" {quote_ident(index, 'mysql')} ", action)
        return mysql_online(f"ALTER TABLE {table} {action}"), table, quote_ident(index, "mysql")
    body = _MY_INDEX_OPTION.sub("", text)
    m = ON_TABLE.search(body)
    table = m.group(1) if m else quote_ident_table(change.table or "", "mysql")
    return mysql_online(body, alter=False), table, quote_ident(change.get("index") or "", "mysql")


def invalid_index_guard(index: str) -> str:
    """A read-only statement that fails while ``index`` is INVALID (a failed CONCURRENTLY build).

    ``CREATE INDEX CONCURRENTLY IF NOT EXISTS`` run again over an INVALID leftover "succeeds" without
    building anything; this check turns that into an error whose message says what to do. It is a
    plain ``SELECT`` (no ``DO`` block), so it runs anywhere and takes no table lock. The cast
    depends on the row, so it only fails when an INVALID row is found.
    """
    message = (
        "bgmigrate: index ' || indexrelid::regclass::text || ' is INVALID (its CREATE INDEX CONCURRENTLY "
        "failed): DROP INDEX CONCURRENTLY IF EXISTS it, fix the cause, run the build again"
    )
    return (
        f"SELECT CAST('{message}' AS integer) FROM pg_index "
        f"WHERE indexrelid = {literal(index)}::regclass AND NOT indisvalid;"
    )


def retry_note(index: str, table: str, what: str) -> str:
    return (
        f"If the {what} fails (lock timeout, deadlock, cancel{', duplicate key' if 'unique' in what else ''}), "
        f"PostgreSQL leaves an INVALID index {index} behind: writes keep maintaining it, queries ignore it, and "
        "running the build again would skip it (IF NOT EXISTS). The guard step right after the build fails while "
        f"the index is INVALID. Detect: SELECT indexrelid::regclass FROM pg_index WHERE indrelid = "
        f"{literal(table)}::regclass AND NOT indisvalid; clean: DROP INDEX CONCURRENTLY IF EXISTS {index}; then "
        "fix the cause and run the build again."
    )
