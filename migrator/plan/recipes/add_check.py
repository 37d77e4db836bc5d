"""``ADD CONSTRAINT … CHECK`` on a table blue writes: ``NOT VALID`` in expand, ``VALIDATE`` in contract.

A plain ``ADD CHECK`` scans the whole table under ACCESS EXCLUSIVE. Split, the add is catalog
only (a brief ACCESS EXCLUSIVE lock) and the scan happens in ``VALIDATE CONSTRAINT`` under SHARE
UPDATE EXCLUSIVE, which lets reads and writes go on.

Placement (the issue's rule: NOT VALID in expand, VALIDATE after):

- The NOT VALID add is a tightening for new rows: from that moment every row inserted or
  updated — by blue too — is checked. It sits in expand only because the release asserts that the
  rule already holds for what the application writes; the plan says so in a note, with the way
  out (move it to contract) for when blue might write a violating row.
- VALIDATE only reads existing rows and blocks nobody, so it could run at once; it goes to contract
  so that a data fix the release itself makes (an ``UPDATE`` in the migrate stage) lands first.

MySQL has no NOT VALID: ``ADD CHECK`` always copies the table to check it, and
``NOT ENFORCED`` → ``ENFORCED`` copies too, so the recipe refuses with the alternatives.
"""

from __future__ import annotations

from typing import ClassVar

from ...sql.changes import Change, Op
from .applicability import new_in_release, refuse
from .base import Part, Recipe, RecipeContext, RecipeSteps
from .names import bare, choose_name, taken_names
from .not_valid import named_action, validate_part
from .sqltext import no_text_reason, statement_text

MYSQL_CHECK_REFUSAL = (
    "MySQL cannot add a CHECK constraint without checking every row in a table copy that blocks writes "
    "(there is no NOT VALID; CHECK ... NOT ENFORCED followed by ALTER CHECK ... ENFORCED copies the table "
    "too). Manual alternatives: enforce the rule in green and in BEFORE INSERT/UPDATE triggers that SIGNAL an "
    "error, fix existing rows with a batched UPDATE, and add the CHECK in a maintenance window; or add it "
    "NOT ENFORCED as documentation only"
)


def default_check_name(ctx: RecipeContext, table: str, expression: str | None) -> str:
    """PostgreSQL's name for an unnamed CHECK: ``<table>_<column>_check`` when it uses exactly one
    column, else ``<table>_check`` (a number appended while the name is taken)."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ParseError, TokenError

    column = None
    if expression:
        try:
            names = {c.name for c in sqlglot.parse_one(expression, read="postgres").find_all(exp.Column)}
        except (ParseError, TokenError):  # an expression sqlglot cannot read: the table-only name
            names = set()
        column = names.pop() if len(names) == 1 else None
    return choose_name(bare(table), column, "check", taken_names(ctx, table))


class AddCheck(Recipe):
    """``ALTER TABLE … ADD [CONSTRAINT n] CHECK (…)`` (validated) on a table blue uses."""

    name: ClassVar[str] = "add_check"
    ops: ClassVar[tuple[str, ...]] = (Op.ADD_CONSTRAINT,)
    dialects: ClassVar[tuple[str, ...]] = ("postgres", "mysql")
    summary: ClassVar[str] = "CHECK ... NOT VALID in expand, VALIDATE CONSTRAINT in contract"

    def applies(self, change: Change, phase: str, ctx: RecipeContext) -> bool:
        return (
            super().applies(change, phase, ctx)
            and change.get("kind") == "check"
            and not change.get("not_valid")
            and not change.get("not_enforced")
            and bool(change.table)
            and not new_in_release(ctx, change.table)
        )

    def refusal(self, change: Change, ctx: RecipeContext) -> str | None:
        if ctx.dialect == "mysql":
            return MYSQL_CHECK_REFUSAL
        if statement_text(change) is None:
            return no_text_reason("the CHECK as written (expression, NO INHERIT)")
        if named_action(change, ctx, "x") is None:
            return "the ADD CHECK action could not be read back from the statement"
        return None

    def build(self, change: Change, ctx: RecipeContext) -> RecipeSteps:
        reason = self.refusal(change, ctx)
        if reason is not None:
            raise refuse(reason)
        table = change.table or ""
        found = named_action(change, ctx, default_check_name(ctx, table, change.get("expression")))
        assert found is not None
        written, action, name = found
        return RecipeSteps(
            expand=[
                Part(
                    f"ALTER TABLE {written} {action} NOT VALID;",
                    "existing rows are not read (a brief ACCESS EXCLUSIVE lock, no scan); rows written from now "
                    "on — blue's included — must pass the check",
                    abort=f"ALTER TABLE {written} DROP CONSTRAINT IF EXISTS {name};",
                )
            ],
            contract=[validate_part(written, name, "check")],
            notes=[
                "Caveat of adding the check in expand: NOT VALID spares existing rows only. From expand on, "
                "blue's inserts and updates that break the rule fail — and so does any update of an existing "
                "row that already breaks it, even one that does not touch the checked columns. That is safe "
                "only if blue already writes valid rows; if it might not, move the NOT VALID step to contract "
                "(after decommission-blue), just before VALIDATE.",
                f"If VALIDATE fails, rows break the check: find them with SELECT * FROM {written} WHERE NOT "
                f"({change.get('expression') or '...'}); fix them and run VALIDATE again. The NOT VALID "
                "constraint keeps checking new rows meanwhile.",
            ],
        )
