"""NOT NULL without PostgreSQL's long ACCESS EXCLUSIVE scan: ``CHECK (c IS NOT NULL) NOT VALID``
(instant; checks new rows), ``VALIDATE`` (a scan under SHARE UPDATE EXCLUSIVE, writes go on), then
``SET NOT NULL``, which PostgreSQL 12+ proves with the validated check instead of scanning, and the
check dropped.

Two spellings of that path, each the one its recipes have always emitted:

- :func:`pg_add_not_null` (rename_column, change_column_type): a generated ``bgm_…_not_null`` check,
  three statements for the swap transaction and the two steps after it;
- :func:`not_null_contract` (set_not_null, add_required_column, add_unique's primary key): a
  ``<table>_<column>_not_null_check`` check, four contract parts with their reasons and notes.
"""

from __future__ import annotations

from .base import Part, RecipeContext
from .names import PG, bare, choose_name, quote, quote_ident, quote_table, taken_names
from .versions import at_least


def pg_add_not_null(table: str, column: str, constraint: str, dialect: str) -> tuple[str, str, str]:
    """SET NOT NULL without a long ACCESS EXCLUSIVE scan (PostgreSQL 12+): a ``CHECK (col IS NOT
    NULL) NOT VALID`` (instant; checks new rows), ``VALIDATE`` (a scan under SHARE UPDATE EXCLUSIVE,
    writes go on), then ``SET NOT NULL`` proven by the validated check, and the check dropped."""
    t, c, k = quote_table(table, dialect), quote(column, dialect), quote(constraint, dialect)
    return (
        f"ALTER TABLE {t} ADD CONSTRAINT {k} CHECK ({c} IS NOT NULL) NOT VALID",
        f"ALTER TABLE {t} VALIDATE CONSTRAINT {k}",
        f"ALTER TABLE {t} ALTER COLUMN {c} SET NOT NULL;\nALTER TABLE {t} DROP CONSTRAINT {k}",
    )


def not_null_check_name(ctx: RecipeContext, table: str, column: str) -> str:
    """``<table>_<column>_not_null_check``: not PostgreSQL 18's own ``<table>_<column>_not_null``,
    which SET NOT NULL would otherwise have to rename around."""
    return choose_name(bare(table), column, "not_null_check", taken_names(ctx, table))


def not_null_contract(ctx: RecipeContext, table: str, table_text: str, column: str) -> tuple[list[Part], list[str]]:
    """Contract parts (and notes) that make ``column`` NOT NULL without a long blocking scan (PostgreSQL)."""
    col = quote_ident(column, PG)
    scan_free = at_least(ctx, 12)
    set_reason = (
        "ACCESS EXCLUSIVE for an instant: PostgreSQL 12+ takes the validated check as proof and skips the scan"
        if scan_free
        else "ACCESS EXCLUSIVE and a full scan: PostgreSQL before 12 does not use the check as proof, so this "
        "blocks reads and writes for as long as the table takes to read"
    )
    set_nn = Part(f"ALTER TABLE {table_text} ALTER COLUMN {col} SET NOT NULL;", set_reason)
    t = ctx.schema.table(table)
    if t is not None and t.proves_not_null(column) and scan_free:
        return [set_nn], []
    name = quote_ident(not_null_check_name(ctx, table, column), PG)
    parts = [
        Part(
            f"ALTER TABLE {table_text} ADD CONSTRAINT {name} CHECK ({col} IS NOT NULL) NOT VALID;",
            "after blue is gone: NOT VALID skips existing rows, but every row written from now on is checked, "
            "and blue may still write NULL; a brief ACCESS EXCLUSIVE lock, no scan",
        ),
        Part(
            f"ALTER TABLE {table_text} VALIDATE CONSTRAINT {name};",
            "its own transaction: scans the table under SHARE UPDATE EXCLUSIVE, so green keeps reading and "
            "writing; fails (and changes nothing) if a NULL is left",
        ),
        set_nn,
        Part(
            f"ALTER TABLE {table_text} DROP CONSTRAINT IF EXISTS {name};",
            "the check has done its job: the column's NOT NULL now says the same",
        ),
    ]
    notes = [
        f"If VALIDATE fails, some {column} is still NULL: the NOT VALID check stays (new rows are checked); "
        f"fix the rows (UPDATE ... SET {column} = ... WHERE {column} IS NULL) and run VALIDATE again, or drop the "
        "check to give up.",
    ]
    if not scan_free:
        notes.append(
            "PostgreSQL before 12: SET NOT NULL still scans the table under ACCESS EXCLUSIVE even after the "
            "check is validated; the check only makes sure the scan will not fail. Schedule it for a quiet moment."
        )
    return parts, notes
