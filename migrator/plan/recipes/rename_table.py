"""Rename a table without breaking blue: one name is the table, the other an updatable view of it.

PostgreSQL: expand renames the table and, in the same transaction, creates a view under the old
name (``SELECT *`` of one table: automatically updatable), so blue keeps reading and writing the
old name while green uses the new one; contract drops the view.

MySQL/MariaDB: DDL commits implicitly, so ``RENAME TABLE`` and ``CREATE VIEW`` cannot be one
transaction, and blue's queries of the old name would fail in between. The direction is reversed
instead: the table keeps its name while blue runs, green gets a view under the new name (a simple
single-table view is updatable and insertable in MySQL and MariaDB), and contract swaps the view
out and the table in with atomic ``RENAME TABLE`` statements ordered so that green's statements on
the view wait for the swap instead of failing (see the note on lock order in ``_mysql``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from ...lint.classify import BREAKING
from ...sql.changes import Op
from .applicability import ensure_buildable
from .base import Part, Recipe, RecipeContext, RecipeSteps
from .names import MY, NAME_LIMIT, PG, generated_name, quote_table, split_table

if TYPE_CHECKING:
    from ...sql.changes import Change


def _target(change: Change) -> str | None:
    """The new table name, in the old table's schema when the statement does not name one."""
    new = change.get("new_name")
    if not new or not change.table:
        return None
    schema, _ = split_table(change.table)
    return f"{schema}.{new}" if schema and "." not in new else new


class RenameTable(Recipe):
    """``ALTER TABLE old RENAME TO new`` / MySQL ``RENAME TABLE old TO new``."""

    name: ClassVar[str] = "rename_table"
    ops: ClassVar[tuple[str, ...]] = (Op.RENAME_TABLE,)
    dialects: ClassVar[tuple[str, ...]] = (PG, MY)
    summary: ClassVar[str] = "serve the old and the new name at once: one is the table, the other an updatable view"

    def applies(self, change: Change, phase: str, ctx: RecipeContext) -> bool:
        # ALTER TYPE ... RENAME TO is analyzed as a rename_table of object "type": not a table.
        return super().applies(change, phase, ctx) and phase == BREAKING and change.get("object") in (None, "table")

    def refusal(self, change: Change, ctx: RecipeContext) -> str | None:
        new = _target(change)
        manual = " (manual alternative: rename in a maintenance window with blue stopped)"
        if new is None:
            return f"the statement does not name the table and its new name{manual}"
        old = change.table
        assert old is not None
        if new == old:
            return "the statement renames the table to its own name: nothing to plan"
        if ctx.schema.table(new) is not None or new in ctx.schema.views:
            return f"a table or view named {new} exists already{manual}"
        if split_table(new)[0] != split_table(old)[0]:
            return f"{old} moves to another schema or database ({new}), which a view cannot bridge{manual}"
        if old in ctx.schema.views:
            return (
                f"{old} is a view (manual alternative: create the view under the new name in expand and drop the "
                "old one in contract)"
            )
        return None

    def build(self, change: Change, ctx: RecipeContext) -> RecipeSteps:
        ensure_buildable(self, change, ctx)
        old, new = change.table, _target(change)
        assert old is not None and new is not None
        return self._mysql(old, new) if ctx.dialect == MY else self._postgres(old, new, ctx)

    # -- PostgreSQL ---------------------------------------------------------------------------------
    def _postgres(self, old: str, new: str, ctx: RecipeContext) -> RecipeSteps:
        d = PG
        o, n = quote_table(old, d), quote_table(new, d)
        o_bare, n_bare = quote_table(split_table(old)[1], d), quote_table(split_table(new)[1], d)
        invoker = " WITH (security_invoker = true)" if ctx.version >= (15, 0, 0) else ""
        expand = [
            Part(
                f"ALTER TABLE {o} RENAME TO {n_bare};\nCREATE VIEW {o}{invoker} AS SELECT * FROM {n}",
                f"green gets the table under {new}; blue keeps {old} as an updatable view of it. One transaction: "
                f"no moment without the name {old}",
                abort=f"DROP VIEW IF EXISTS {o};\nALTER TABLE {n} RENAME TO {o_bare}",
            )
        ]
        contract = [Part(f"DROP VIEW IF EXISTS {o}", f"blue is gone: nothing uses the name {old} any more")]
        notes = [
            f"Deploy requirement: blue keeps using {old}, which becomes a view of the renamed table; green must use "
            f"only {new}. Abort (while blue is live) drops the view and renames the table back in one transaction.",
            "What works through the view: SELECT, INSERT, UPDATE, DELETE, RETURNING, INSERT ... ON CONFLICT, the "
            "table's defaults, constraints and triggers (a single-table SELECT * view is automatically "
            "updatable).",
            f"What does not: TRUNCATE, COPY ... FROM, LOCK TABLE, ALTER TABLE or CREATE INDEX naming {old}, "
            f"pg_get_serial_sequence('{old}', ...) and '{old}'::regclass lookups; columns added to {new} after the "
            f"expand are not seen through the view (SELECT * was expanded when it was created), and dropping or "
            f"retyping a column of {new} is blocked by the view until contract. If blue does any of these, use the "
            f"copy alternative or a maintenance window.",
            f"Privileges: the view is a new object. The roles blue connects as need grants on it (e.g. GRANT SELECT, "
            f"INSERT, UPDATE, DELETE ON {old} TO <blue's role>) unless they own it or default privileges cover it; "
            f"the plan cannot know the roles. Add the GRANT to the release, after this step.",
            "The trade-off: the alternative is a new table filled by a full copy and kept in sync by triggers both "
            "ways until contract; it has none of the view's limits but costs a full copy of the table (time, disk, "
            "WAL and replica lag) and a backfill. bgmigrate generates the view form.",
        ]
        if invoker:
            notes.append(
                "The view is security_invoker (PostgreSQL 15+): blue's privileges and row-level security "
                f"policies on {new} apply exactly as they did on {old}."
            )
        else:
            notes.append(
                "Before PostgreSQL 15 a view checks privileges and row-level security as its owner: if the table "
                "has RLS policies and the view's owner owns the table, blue would bypass them through the view."
            )
        return RecipeSteps(expand=expand, contract=contract, notes=notes)

    # -- MySQL / MariaDB ----------------------------------------------------------------------------
    def _mysql(self, old: str, new: str) -> RecipeSteps:
        d = MY
        o, n = quote_table(old, d), quote_table(new, d)
        expand = [
            Part(
                f"CREATE ALGORITHM=MERGE SQL SECURITY INVOKER VIEW {n} AS SELECT * FROM {o}",
                f"green gets {new} as an updatable view of the table; blue keeps the table {old} untouched",
                abort=f"DROP VIEW IF EXISTS {n}",
                transactional=False,
            )
        ]
        swap, link, void, parked = (_sorted_after(new, label) for label in ("swap", "link", "void", "parked"))
        if swap is None or link is None or void is None or parked is None:
            contract, race = self._mysql_direct_swap(old, new), True
        else:
            s, lk, v, p = (quote_table(x, d) for x in (swap, link, void, parked))
            contract = [
                Part(
                    f"CREATE TABLE IF NOT EXISTS {s} LIKE {o};\n"
                    f"CREATE OR REPLACE ALGORITHM=MERGE SQL SECURITY INVOKER VIEW {lk} AS SELECT * FROM {s}",
                    f"an empty placeholder table {swap} and a view of it, {link}: the next step swaps them in",
                    transactional=False,
                ),
                Part(
                    f"RENAME TABLE {s} TO {v}, {o} TO {s}, {lk} TO {o}",
                    f"one atomic rename: the table becomes {swap} (a name that sorts after {new}) and {old} a view "
                    f"of it, so green's view {new} keeps working through {old}",
                    transactional=False,
                ),
                Part(
                    f"RENAME TABLE {n} TO {p}, {s} TO {n}",
                    f"one atomic rename moves the view aside and the table into {new}; green's statements wait on "
                    "the metadata lock for that instant",
                    transactional=False,
                ),
                Part(
                    f"DROP VIEW IF EXISTS {p}, {o};\nDROP TABLE IF EXISTS {v}",
                    f"the parked view, the view {old} and the empty placeholder go",
                    transactional=False,
                ),
            ]
            race = False
        notes = [
            f"MySQL DDL commits implicitly, so renaming the table and creating a view under its old name cannot be "
            f"one transaction: blue's queries of {old} would fail in between. The recipe is reversed: the table "
            f"keeps the name {old} while blue runs, green uses {new}, a view, until contract renames the table.",
            f"Deploy requirement: green must use only {new}. Through the view (single-table, ALGORITHM=MERGE, "
            f"updatable and insertable): SELECT, INSERT, UPDATE, DELETE, REPLACE, INSERT ... ON DUPLICATE KEY "
            f"UPDATE, LAST_INSERT_ID() and the table's triggers work. TRUNCATE, LOAD DATA, DDL or LOCK TABLES "
            f"naming {new} do not, and columns added to {old} after the view was created are not seen through it.",
            f"SQL SECURITY INVOKER: green's account needs privileges on the view {new} and on the table {old} "
            "(database-level grants cover both).",
            f"Views, routines and triggers of other tables that name {old} bind to the name: they break at contract, "
            "as they would with an offline RENAME TABLE.",
            "The trade-off: the alternative is a new table filled by a full copy and kept in sync by triggers both "
            "ways; it has none of the view's limits but costs a full copy of the table. bgmigrate generates the view "
            "form.",
        ]
        if race:
            notes.append(
                f"{new} is too long for the staging names that make contract's swap safe (they must begin with "
                f"{new}): contract swaps the view and the table in one RENAME TABLE, and on MariaDB a statement on "
                f"the view {new} that meets that rename can fail once with error 1356 when {old} sorts before "
                f"{new}. Run contract at low traffic or have green retry that error."
            )
        else:
            notes.append(
                f"Why contract takes two renames: a server locks a RENAME TABLE's names in sorted order. Swapping the "
                f"view {new} and the table {old} in one rename would, when {old} sorts before {new}, hold {old} "
                f"while waiting for green's statements on the view, which in turn wait for {old}: MariaDB resolves "
                f"that by failing green's statement (error 1356). The table first moves to {swap}, which sorts after "
                f"{new}, with a view keeping {old} valid; then the swap waits for green's statements instead."
            )
        return RecipeSteps(expand=expand, contract=contract, notes=notes)

    def _mysql_direct_swap(self, old: str, new: str) -> list[Part]:
        d = MY
        o, n = quote_table(old, d), quote_table(new, d)
        schema, bare = split_table(new)
        parked_name = generated_name(d, bare, "view")
        parked = quote_table(f"{schema}.{parked_name}" if schema else parked_name, d)
        return [
            Part(
                f"RENAME TABLE {n} TO {parked}, {o} TO {n}",
                f"blue is gone: one atomic rename moves the view aside and the table into {new}",
                transactional=False,
            ),
            Part(f"DROP VIEW IF EXISTS {parked}", "the parked view goes", transactional=False),
        ]


def _sorted_after(table: str, label: str) -> str | None:
    """``<table>_bgm_<label>`` in the table's schema: a name that sorts after ``table`` (it begins with it),
    or None when it would exceed MySQL's identifier limit."""
    schema, bare = split_table(table)
    name = f"{bare}_bgm_{label}"
    if len(name) > NAME_LIMIT[MY]:
        return None
    return f"{schema}.{name}" if schema else name
