"""Index builds and drops without blocking writes: ``CONCURRENTLY`` (PostgreSQL), ``ALGORITHM=INPLACE,
LOCK=NONE`` (MySQL)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, ClassVar

from ...sql.changes import Change, Op
from ..inverse import READ_ONLY
from ..model import PlanError
from .applicability import PLAN_UNIT, new_in_release, refuse
from .base import Part, Recipe, RecipeContext, RecipeSteps
from .index_builds import invalid_index_guard, mysql_index_statement, retry_note
from .mysql_online import mysql_drop_index
from .names import (
    bare,
    choose_name,
    index_column_names,
    index_sql_name,
    pg_object_name,
    quote_ident,
    quote_ident_table,
    taken_names,
)
from .names import pg_object_name as object_name
from .sqltext import ALTER_TABLE, ON_TABLE, alter_action, clean_sql, no_text_reason, pyformat_safe, statement_text

if TYPE_CHECKING:
    from ...schema.model import Table

# The recipes, and helpers that lived here before the helper modules (still importable from here).
__all__ = [
    "CreateIndex",
    "DropIndex",
    "alter_action",
    "choose_name",
    "clean_sql",
    "index_column_names",
    "object_name",
    "pyformat_safe",
    "quote_ident",
]

# ---- CREATE INDEX --------------------------------------------------------------------------------

_CREATE_INDEX = re.compile(r"^(CREATE\s+(?:UNIQUE\s+)?INDEX)(?:\s+CONCURRENTLY)?(?:\s+IF\s+NOT\s+EXISTS)?\b", re.I)
_CREATE_INDEX_HEAD = re.compile(r"^CREATE\s+(?:UNIQUE\s+)?INDEX\s+CONCURRENTLY\s+IF\s+NOT\s+EXISTS\s+(?=ON\b)", re.I)
_ON_ONLY = re.compile(r"\bON\s+ONLY\b", re.I)


class CreateIndex(Recipe):
    """``CREATE INDEX`` on a table blue uses, built without blocking blue's writes."""

    name: ClassVar[str] = "create_index"
    ops: ClassVar[tuple[str, ...]] = (Op.CREATE_INDEX,)
    dialects: ClassVar[tuple[str, ...]] = ("postgres", "mysql")
    summary: ClassVar[str] = (
        "build the index CONCURRENTLY (PostgreSQL) or ALGORITHM=INPLACE, LOCK=NONE (MySQL) so blue keeps writing"
    )

    def applies(self, change: Change, phase: str, ctx: RecipeContext) -> bool:
        if not super().applies(change, phase, ctx) or not change.table or new_in_release(ctx, change.table):
            return False
        if ctx.dialect == "mysql":
            # unique indexes are the add_unique recipe's; an explicit online clause needs nothing
            explicit = (change.get("algorithm") or "").upper() in ("INPLACE", "INSTANT") and (
                change.get("lock_clause") or ""
            ).upper() == "NONE"
            return not change.get("unique") and not explicit
        return not change.get("concurrently")

    def refusal(self, change: Change, ctx: RecipeContext) -> str | None:
        text = statement_text(change)
        if text is None:
            return no_text_reason("the index definition (method, WHERE, INCLUDE, operator classes)")
        if ctx.dialect == "mysql":
            try:
                mysql_index_statement(change, ctx, text)
            except PlanError as err:
                return str(err)
        if ctx.dialect == "postgres":
            if (14, 0, 0) <= ctx.version < (14, 4, 0):
                return (
                    "PostgreSQL 14.0-14.3 can silently corrupt indexes built CONCURRENTLY (fixed in 14.4): "
                    "upgrade first, or build the index without CONCURRENTLY in a maintenance window"
                )
            if _ON_ONLY.search(text):
                return (
                    "CREATE INDEX ... ON ONLY (a partitioned table's parent) cannot be built CONCURRENTLY: "
                    "build the index CONCURRENTLY on each partition, then ALTER INDEX ... ATTACH PARTITION"
                )
            if _CREATE_INDEX.match(text) is None:
                return "not a CREATE INDEX statement"
        return None

    def build(self, change: Change, ctx: RecipeContext) -> RecipeSteps:
        reason = self.refusal(change, ctx)
        if reason is not None:
            raise refuse(reason)
        text = statement_text(change) or ""
        if ctx.dialect == "mysql":
            sql, table, index = mysql_index_statement(change, ctx, text)
            return RecipeSteps(
                expand=[
                    Part(
                        sql,
                        "InnoDB builds a secondary index in place while blue reads and writes; LOCK=NONE makes "
                        "the server refuse instead of silently falling back to a blocking table copy",
                        abort=mysql_drop_index(table, index),
                        transactional=False,
                    )
                ],
                notes=[
                    "The build holds an exclusive metadata lock briefly at its start and end: it queues behind "
                    "long transactions on the table (set lock_wait_timeout to seconds).",
                    "FULLTEXT and SPATIAL indexes cannot be built with LOCK=NONE: the statement fails rather "
                    "than block writes; build those in a maintenance window.",
                ],
            )
        return self._postgres(change, ctx, text)

    def _postgres(self, change: Change, ctx: RecipeContext, text: str) -> RecipeSteps:
        table = change.table or ""
        index = change.get("index")
        head = _CREATE_INDEX.match(text)
        if head is None:
            raise refuse("not a CREATE INDEX statement")
        # like lint.fixes.concurrently(), but string literals (a partial index's WHERE) are left as written
        sql = f"{head.group(1)} CONCURRENTLY IF NOT EXISTS{text[head.end() :]};"
        if not index:
            index = choose_name(
                bare(table),
                "_".join(index_column_names(change.get("columns") or [])) or None,
                "idx",
                taken_names(ctx, table),
            )
            sql = _CREATE_INDEX_HEAD.sub(lambda m: m.group(0) + quote_ident(index, "postgres") + " ", sql)
        qualified = index_sql_name(index, table, "postgres")
        unique = bool(change.get("unique"))
        what = "unique index build" if unique else "index build"
        notes = [
            "CREATE INDEX CONCURRENTLY takes SHARE UPDATE EXCLUSIVE (blue's reads and writes go on), scans the "
            "table twice and waits for every transaction older than it: a long-running transaction delays it.",
            retry_note(qualified, quote_ident_table(table, "postgres"), what),
        ]
        if unique:
            notes.append(
                "A unique index rejects duplicates from the moment it is built: blue's inserts or updates that "
                "would duplicate a key fail from the expand stage on. Build it in expand only if blue never "
                "writes duplicates (green may need it, e.g. for ON CONFLICT); otherwise move both steps after "
                "decommission-blue."
            )
        return RecipeSteps(
            expand=[
                Part(
                    sql,
                    f"{what} CONCURRENTLY: blue keeps reading and writing the table; IF NOT EXISTS makes a "
                    "re-run after success a no-op",
                    abort=f"DROP INDEX CONCURRENTLY IF EXISTS {qualified};",
                    transactional=False,
                ),
                Part(
                    invalid_index_guard(qualified),
                    "stop here if the concurrent build left an INVALID index (a re-run with IF NOT EXISTS "
                    "would skip it silently)",
                    abort=READ_ONLY,
                ),
            ],
            notes=notes,
        )


# ---- DROP INDEX ----------------------------------------------------------------------------------


def _backing_constraint(t: Table | None, index: str) -> str | None:
    """The kind of constraint whose index ``index`` is (PostgreSQL's default names for unnamed ones)."""
    if t is None:
        return None
    for c in t.constraints:
        if c.kind not in ("unique", "primary_key", "exclude"):
            continue
        name = c.name
        if name is None and c.kind == "primary_key":
            name = pg_object_name(bare(t.name), None, "pkey")
        elif name is None and c.kind == "unique":
            name = pg_object_name(bare(t.name), "_".join(c.columns) or None, "key")
        if name == index:
            return c.kind.replace("_", " ")
    return None


class DropIndex(Recipe):
    """``DROP INDEX`` of an index blue may use, without blocking blue's reads and writes."""

    name: ClassVar[str] = "drop_index"
    ops: ClassVar[tuple[str, ...]] = (Op.DROP_INDEX,)
    dialects: ClassVar[tuple[str, ...]] = ("postgres", "mysql")
    summary: ClassVar[str] = "drop the index CONCURRENTLY (PostgreSQL) or in place (MySQL), after blue is gone"

    def applies(self, change: Change, phase: str, ctx: RecipeContext) -> bool:
        if not super().applies(change, phase, ctx) or not change.get("index"):
            return False
        table = change.table or ctx.schema.table_of_index(change.get("index"))
        if new_in_release(ctx, table) or ctx.schema.object_is_new("index", change.get("index"), PLAN_UNIT):
            return False
        if ctx.dialect == "mysql":
            explicit = (change.get("algorithm") or "").upper() in ("INPLACE", "INSTANT") and (
                change.get("lock_clause") or ""
            ).upper() == "NONE"
            return not explicit
        return not change.get("concurrently")

    def refusal(self, change: Change, ctx: RecipeContext) -> str | None:
        index = change.get("index") or ""
        table = change.table or ctx.schema.table_of_index(index)
        if ctx.dialect == "mysql":
            if not table:
                return "the index's table is not known: write ALTER TABLE <table> DROP INDEX <index>"
            return None
        if change.get("cascade"):
            return (
                "DROP INDEX CONCURRENTLY cannot CASCADE: drop the objects that depend on the index first, "
                "then drop the index"
            )
        tables = [ctx.schema.table(table)] if table else list(ctx.schema.tables.values())
        kind = next((k for t in tables if (k := _backing_constraint(t, bare(index))) is not None), None)
        if kind is not None:
            return (
                f"the index backs the {kind} constraint {bare(index)} and cannot be dropped on its own (let alone "
                f"CONCURRENTLY): ALTER TABLE ... DROP CONSTRAINT {bare(index)} in contract (a brief ACCESS "
                "EXCLUSIVE lock)"
            )
        return None

    def build(self, change: Change, ctx: RecipeContext) -> RecipeSteps:
        reason = self.refusal(change, ctx)
        if reason is not None:
            raise refuse(reason)
        index = change.get("index") or ""
        table = change.table or ctx.schema.table_of_index(index)
        if ctx.dialect == "mysql":
            text = statement_text(change)
            written = None
            if text:
                m = ALTER_TABLE.match(text) or ON_TABLE.search(text)
                written = m.group(1) if m else None
            sql = mysql_drop_index(written or quote_ident_table(table or "", "mysql"), quote_ident(index, "mysql"))
            return RecipeSteps(
                contract=[
                    Part(
                        sql,
                        "after blue is gone (its queries may rely on the index); dropping a secondary index is "
                        "in place and metadata-only",
                        transactional=False,
                    )
                ],
                notes=["MySQL refuses to drop an index a foreign key needs: drop or re-index the foreign key first."],
            )
        qualified = index_sql_name(index, table, "postgres")
        return RecipeSteps(
            contract=[
                Part(
                    f"DROP INDEX CONCURRENTLY IF EXISTS {qualified};",
                    "after blue is gone (its queries or ON CONFLICT targets may rely on the index); CONCURRENTLY "
                    "waits for transactions using the index instead of taking ACCESS EXCLUSIVE on the table",
                    transactional=False,
                )
            ],
            notes=[
                "DROP INDEX CONCURRENTLY runs outside a transaction block, one index at a time; if it is "
                "interrupted the index stays INVALID: run the step again (IF EXISTS makes that safe)."
            ],
        )
