"""``SET NOT NULL`` on a column blue writes, without a long ACCESS EXCLUSIVE scan.

``ALTER COLUMN … SET NOT NULL`` scans the whole table under ACCESS EXCLUSIVE (reads and writes
wait). PostgreSQL 12+ skips that scan when a validated ``CHECK (c IS NOT NULL)`` already proves
there is no NULL, and such a check can be validated under SHARE UPDATE EXCLUSIVE (writes go on).

All of it is contract: a NOT NULL — and the NOT VALID check, which checks every row inserted or
updated after it is added — rejects the NULLs blue may still write.

The contract path is :func:`~migrator.plan.recipes.not_null.not_null_contract`; the
add_required_column and add_unique (primary key) recipes end with it too.
"""

from __future__ import annotations

from typing import ClassVar

from ...sql.changes import Change, Op
from ...sql.types import compare_types
from .applicability import new_in_release, refuse
from .base import Part, Recipe, RecipeContext, RecipeSteps
from .mysql_online import mysql_online
from .names import table_sql
from .not_null import not_null_contract
from .sqltext import alter_action, no_text_reason, statement_text
from .versions import at_least


class SetNotNull(Recipe):
    """``ALTER COLUMN … SET NOT NULL`` (PostgreSQL) / ``MODIFY … NOT NULL`` (MySQL) on a column blue writes."""

    name: ClassVar[str] = "set_not_null"
    ops: ClassVar[tuple[str, ...]] = (Op.SET_NOT_NULL, Op.ALTER_COLUMN_TYPE)
    dialects: ClassVar[tuple[str, ...]] = ("postgres", "mysql")
    summary: ClassVar[str] = (
        "in contract: CHECK (c IS NOT NULL) NOT VALID, VALIDATE, SET NOT NULL, drop the check (PostgreSQL); "
        "MODIFY ... NOT NULL in place (MySQL)"
    )

    def applies(self, change: Change, phase: str, ctx: RecipeContext) -> bool:
        if not super().applies(change, phase, ctx) or not change.table or not change.column:
            return False
        if new_in_release(ctx, change.table):
            return False
        t = ctx.schema.table(change.table)
        col = t.column(change.column) if t is not None else None
        if ctx.dialect == "postgres":
            if change.op != Op.SET_NOT_NULL:
                return False
            if col is not None and col.type is not None and not col.nullable:
                return False  # NOT NULL already: PostgreSQL does nothing
            return not (t is not None and t.proves_not_null(change.column) and at_least(ctx, 12))
        # MySQL: MODIFY/CHANGE that only adds NOT NULL (same type, same default)
        if change.op != Op.ALTER_COLUMN_TYPE or not change.get("redefine") or change.get("nullable") is not False:
            return False
        if col is None or col.type is None or not col.nullable:
            return False
        if col.default != change.get("default"):
            return False
        return compare_types(col.type, change.get("type"), "mysql").compat == "same"

    def refusal(self, change: Change, ctx: RecipeContext) -> str | None:
        if ctx.dialect == "mysql":
            text = statement_text(change)
            if text is None:
                return no_text_reason("the column definition MODIFY restates (type, charset, default, comment)")
            if alter_action(change, text, "mysql") is None:
                return "the MODIFY / CHANGE action could not be singled out of the ALTER TABLE"
        return None

    def build(self, change: Change, ctx: RecipeContext) -> RecipeSteps:
        reason = self.refusal(change, ctx)
        if reason is not None:
            raise refuse(reason)
        column = change.column or ""
        table = change.table or ""
        if ctx.dialect == "mysql":
            found = alter_action(change, statement_text(change) or "", "mysql")
            assert found is not None
            written, action = found
            return RecipeSteps(
                contract=[
                    Part(
                        mysql_online(f"ALTER TABLE {written} {action}"),
                        "after blue is gone (blue may still write NULL); InnoDB rebuilds the table in place "
                        "while green reads and writes; LOCK=NONE refuses rather than fall back to a blocking copy",
                        transactional=False,
                    )
                ],
                notes=[
                    f"No NULL may be left in {column} when contract runs (blue's last writes included): the "
                    "statement fails, changing nothing, if one is.",
                    "In-place NOT NULL needs strict SQL mode (STRICT_TRANS_TABLES); without it the server "
                    "refuses ALGORITHM=INPLACE instead of silently turning NULLs into empty values.",
                    "The rebuild takes time proportional to the table's size and holds an exclusive metadata lock "
                    "briefly at its start and end (set lock_wait_timeout to seconds).",
                ],
            )
        parts, notes = not_null_contract(ctx, table, table_sql(change, ctx), column)
        notes.insert(
            0,
            f"Nothing runs before contract: blue may still write NULL into {column}, and a NOT NULL or a NOT VALID "
            "check would make those writes fail. No backfill either: the release gives no value for existing "
            f"NULLs, so they must be gone (fixed by the release's own UPDATE, or never there) before contract, "
            "as they would have to be for a plain SET NOT NULL.",
        )
        return RecipeSteps(contract=parts, notes=notes)
