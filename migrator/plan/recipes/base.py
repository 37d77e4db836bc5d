"""What a recipe is: the safe decomposition of one breaking (or hazardous) change.

A recipe is one class with four parts, like a pgroll operation:

- ``expand``: DDL that blue survives (new column, sync trigger, NOT VALID constraint, index built
  CONCURRENTLY), run before green is deployed;
- ``backfill``: batched data changes that bring existing rows along (run after expand);
- ``contract``: DDL that removes what only blue needed (old column, sync trigger), run after blue
  is decommissioned;
- ``abort``: for each expand part, the SQL that undoes it while blue is still live.

Recipes emit SQL only. The planner analyzes that SQL with the same engine as ``bgmigrate lint``
to attach lock modes, rewrite/scan and transactionality, so facts live in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from ...schema.model import Schema
    from ...sql.changes import Change
    from ..model import Backfill


@dataclass
class Part:
    sql: str
    reason: str
    abort: str | None = None  # undoes this part while blue is live (expand parts)
    transactional: bool = True


@dataclass
class RecipeSteps:
    expand: list[Part] = field(default_factory=list)
    backfill: list[Backfill] = field(default_factory=list)
    contract: list[Part] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # trade-offs the reviewer must read


@dataclass
class RecipeContext:
    """What a recipe knows: the schema before the statement, the dialect, the target version."""

    schema: Schema
    dialect: str
    version: tuple[int, int, int]

    def column_type(self, table: str | None, column: str | None) -> str | None:
        t = self.schema.table(table)
        col = t.column(column) if t is not None else None
        return col.type if col is not None else None

    def primary_key(self, table: str | None) -> str | None:
        """A single-column primary key (or unique NOT NULL column) to cut backfill batches on."""
        t = self.schema.table(table)
        if t is None:
            return None
        for c in t.constraints:
            if c.kind == "primary_key" and len(c.columns) == 1:
                return c.columns[0]
        for name, unique in t.indexes.items():
            cols = self.schema.index_columns.get(name) or []
            if unique and len(cols) == 1 and (col := t.column(cols[0])) is not None and not col.nullable:
                return cols[0]
        return None


class Recipe:
    """One breaking-change decomposition. Subclasses set ``name``/``ops``/``dialects`` and implement
    :meth:`applies` and :meth:`build`."""

    name: ClassVar[str] = ""
    ops: ClassVar[tuple[str, ...]] = ()
    dialects: ClassVar[tuple[str, ...]] = ("postgres",)
    summary: ClassVar[str] = ""
    # contract puts a new column in the changed column's place (drop the old one, rename the new one): an
    # index or constraint built on the column in expand would be built on the old one and dropped with it
    replaces_column: ClassVar[bool] = False

    def applies(self, change: Change, phase: str, ctx: RecipeContext) -> bool:
        return change.op in self.ops and ctx.dialect in self.dialects

    def build(self, change: Change, ctx: RecipeContext) -> RecipeSteps:
        raise NotImplementedError

    def refusal(self, change: Change, ctx: RecipeContext) -> str | None:
        """Why this recipe cannot be used here (missing key, unknown type, dialect...), or None."""
        return None
