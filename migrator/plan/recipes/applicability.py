"""When a recipe has nothing to do, and how it says it cannot run."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..model import PlanError

if TYPE_CHECKING:
    from ...sql.changes import Change
    from .base import Recipe, RecipeContext

PLAN_UNIT = "plan"
"""The unit the planner replays the release under: a table created there is new to blue."""


def new_in_release(ctx: RecipeContext, table: str | None) -> bool:
    """The table was created earlier in the release being planned: blue never saw it."""
    t = ctx.schema.table(table)
    return t is not None and t.created_in == PLAN_UNIT


def refuse(reason: str) -> PlanError:
    """The error a recipe raises from ``build`` with the reason its ``refusal`` gives."""
    return PlanError(reason)


def ensure_buildable(recipe: Recipe, change: Change, ctx: RecipeContext) -> None:
    """Raise the recipe's refusal, prefixed with its name, if it has one."""
    reason = recipe.refusal(change, ctx)
    if reason is not None:
        raise PlanError(f"{recipe.name}: {reason}")
