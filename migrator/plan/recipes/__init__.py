"""The recipe catalog: every :class:`~migrator.plan.recipes.base.Recipe` subclass in this package."""

from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache

from .base import Part, Recipe, RecipeContext, RecipeSteps

__all__ = ["Part", "Recipe", "RecipeContext", "RecipeSteps", "all_recipes", "find_recipe"]


@lru_cache(maxsize=1)
def all_recipes() -> tuple[Recipe, ...]:
    for info in pkgutil.iter_modules(__path__):
        if info.name != "base":
            importlib.import_module(f"{__name__}.{info.name}")
    found: list[Recipe] = []
    seen: set[type] = set()
    stack = list(Recipe.__subclasses__())
    while stack:
        cls = stack.pop(0)
        if cls in seen:
            continue
        seen.add(cls)
        stack.extend(cls.__subclasses__())
        if cls.name:
            found.append(cls())
    return tuple(sorted(found, key=lambda r: r.name))


def find_recipe(change, phase: str, ctx: RecipeContext) -> Recipe | None:
    for recipe in all_recipes():
        if recipe.applies(change, phase, ctx):
            return recipe
    return None
