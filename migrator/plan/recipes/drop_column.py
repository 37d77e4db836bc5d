"""``DROP COLUMN`` of a ``NOT NULL`` column without a default: relax it in expand.

The drop itself is contract (blue still reads and writes the column). But green no longer knows
the column: its INSERTs leave it out, and between expand and contract the database still has it,
``NOT NULL`` with nothing to fill it, so every INSERT of green fails. Expand therefore makes the
column accept green's rows first:

- PostgreSQL: ``ALTER COLUMN c DROP NOT NULL`` (catalog only, a brief ACCESS EXCLUSIVE lock);
- MySQL: ``ALTER COLUMN c SET DEFAULT <zero value>`` (metadata only), for string and numeric
  columns; other types keep the plain drop and the lint finding.

Contract then drops the column as written. Abort puts the NOT NULL (or the missing default) back.
"""

from __future__ import annotations

from typing import ClassVar

from ...sql.changes import Change, Op
from ...sql.types import parse_type
from .applicability import new_in_release, refuse
from .base import Part, Recipe, RecipeContext, RecipeSteps
from .names import quote, table_sql
from .sqltext import no_text_reason, statement_text

_MYSQL_ZERO = {"integer": "0", "decimal": "0", "float": "0", "string": "''"}


class DropRequiredColumn(Recipe):
    name: ClassVar[str] = "drop_column"
    ops: ClassVar[tuple[str, ...]] = (Op.DROP_COLUMN,)
    dialects: ClassVar[tuple[str, ...]] = ("postgres", "mysql")
    summary: ClassVar[str] = (
        "expand: DROP NOT NULL (MySQL: a default) so green's INSERTs without the column succeed; contract: the drop"
    )

    def applies(self, change: Change, phase: str, ctx: RecipeContext) -> bool:
        if not super().applies(change, phase, ctx) or phase != "contract" or not change.table or not change.column:
            return False
        if new_in_release(ctx, change.table):
            return False
        t = ctx.schema.table(change.table)
        col = t.column(change.column) if t is not None else None
        if col is None or col.nullable or col.default is not None:
            return False
        in_key = any(c.kind == "primary_key" and change.column in c.columns for c in t.constraints) if t else False
        return not in_key

    def refusal(self, change: Change, ctx: RecipeContext) -> str | None:
        if statement_text(change) is None:
            return no_text_reason("the DROP COLUMN as written")
        if ctx.dialect == "mysql" and self._mysql_zero(change, ctx) is None:
            return f"no neutral default for a {ctx.column_type(change.table, change.column)} column on MySQL"
        return None

    def _mysql_zero(self, change: Change, ctx: RecipeContext) -> str | None:
        parsed = parse_type(ctx.column_type(change.table, change.column))
        return _MYSQL_ZERO.get(parsed.family or "") if parsed is not None else None

    def build(self, change: Change, ctx: RecipeContext) -> RecipeSteps:
        reason = self.refusal(change, ctx)
        if reason is not None:
            raise refuse(reason)
        table = table_sql(change, ctx)
        column = quote(change.column or "", ctx.dialect)
        text = statement_text(change) or ""
        if ctx.dialect == "postgres":
            relax = Part(
                f"ALTER TABLE {table} ALTER COLUMN {column} DROP NOT NULL;",
                "green's INSERTs leave the column out: it must accept them until contract drops it (catalog only)",
                abort=f"ALTER TABLE {table} ALTER COLUMN {column} SET NOT NULL",
            )
            drop = Part(text + ";", "blue is gone: nothing reads or writes the column any more")
            note = (
                f"{change.column} is NOT NULL without a default: expand drops the NOT NULL so that green, which "
                "no longer writes it, can insert rows; blue keeps writing it. An abort puts the NOT NULL back "
                "(a scan under ACCESS EXCLUSIVE; it fails if green already inserted rows)."
            )
        else:
            zero = self._mysql_zero(change, ctx) or "''"
            relax = Part(
                f"ALTER TABLE {table} ALTER COLUMN {column} SET DEFAULT {zero};",
                "green's INSERTs leave the column out: a neutral default fills it until contract (metadata only)",
                abort=f"ALTER TABLE {table} ALTER COLUMN {column} DROP DEFAULT",
                transactional=False,
            )
            drop = Part(text + ";", "blue is gone: nothing reads or writes the column any more", transactional=False)
            note = (
                f"{change.column} is NOT NULL without a default: expand gives it the default {zero} so that green, "
                "which no longer writes it, can insert rows; blue keeps writing real values."
            )
        return RecipeSteps(expand=[relax], contract=[drop], notes=[note])
