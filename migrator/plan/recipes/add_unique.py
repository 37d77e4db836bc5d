"""``ADD CONSTRAINT … UNIQUE`` / ``ADD PRIMARY KEY`` on a table blue writes, without a blocking index build.

PostgreSQL builds the index of a plain ``ADD UNIQUE`` / ``ADD PRIMARY KEY`` under ACCESS EXCLUSIVE
(nothing reads or writes the table meanwhile). Split:

- expand: ``CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS`` (outside a transaction, blue keeps
  reading and writing), then a guard that fails if the build left an INVALID index;
- contract: ``ADD CONSTRAINT … USING INDEX`` (catalog only: the index becomes the constraint's).
  For a primary key the columns are made NOT NULL first, by the set_not_null path, or attaching
  the index would scan the table under ACCESS EXCLUSIVE to check them.

Where the tightening sits: uniqueness is enforced by the *index*, from the moment the concurrent
build makes it live — not by the later ``ADD CONSTRAINT``, which adds no restriction of its own.
So blue's duplicate writes fail from expand on (the same caveat as a NOT VALID constraint in
expand, written into the plan). The attach waits for contract anyway: until then the expand stage
stays abortable with one ``DROP INDEX CONCURRENTLY`` (a constraint's index can only go with the
constraint, under ACCESS EXCLUSIVE), and a primary key needs the NOT NULL that only contract may add.

MySQL: ``ADD UNIQUE`` is an in-place index build with concurrent writes (``ALGORITHM=INPLACE,
LOCK=NONE``) in expand; ``ADD PRIMARY KEY`` (which also makes its columns NOT NULL) is an in-place
rebuild, in contract.
"""

from __future__ import annotations

import re
from typing import ClassVar

from ...sql.changes import Change, Op
from ..inverse import READ_ONLY
from ..model import PlanError
from .applicability import new_in_release, refuse
from .base import Part, Recipe, RecipeContext, RecipeSteps
from .index_builds import invalid_index_guard, mysql_index_statement, retry_note
from .mysql_online import mysql_drop_index, mysql_online
from .names import bare, choose_name, index_sql_name, pg_unquote, quote_ident, quote_ident_table, taken_names
from .not_null import not_null_contract
from .sqltext import alter_action, no_text_reason, statement_text

_CONSTRAINT = re.compile(
    r'^ADD\s+(?:CONSTRAINT\s+(?P<name>"(?:[^"]|"")*"|[\w$]+)\s+)?(?P<kind>UNIQUE|PRIMARY\s+KEY)\s*'
    r"(?P<nulls>NULLS\s+(?:NOT\s+)?DISTINCT\s*)?\((?P<cols>[^()]*)\)\s*"
    r"(?:INCLUDE\s*\((?P<include>[^()]*)\)\s*)?(?P<rest>.*)$",
    re.I | re.S,
)
_DEFERRAL = re.compile(r"^(?:NOT\s+DEFERRABLE|DEFERRABLE|INITIALLY\s+(?:DEFERRED|IMMEDIATE))\b\s*", re.I)


class _Parsed:
    """A PostgreSQL ``ADD [CONSTRAINT n] UNIQUE | PRIMARY KEY (…)`` action, read back from its text."""

    def __init__(self, table: str, action: str) -> None:
        m = _CONSTRAINT.match(action)
        self.ok = m is not None
        self.table = table
        self.name = m.group("name") if m else None
        self.primary = bool(m and m.group("kind").upper().startswith("PRIMARY"))
        self.nulls = " ".join((m.group("nulls") or "").split()).upper() if m else ""
        self.columns = m.group("cols").strip() if m else ""
        self.include = m.group("include") if m else None
        rest = (m.group("rest") or "").strip() if m else ""
        deferral = []
        while rest:
            d = _DEFERRAL.match(rest)
            if d is None:
                break
            deferral.append(" ".join(d.group(0).split()).upper())
            rest = rest[d.end() :]
        self.deferral = " ".join(deferral)
        self.leftover = rest.strip()

    @property
    def column_names(self) -> list[str]:
        return [pg_unquote(c.strip()) for c in self.columns.split(",") if c.strip()]


class AddUnique(Recipe):
    """``ADD [CONSTRAINT n] UNIQUE (…)`` or ``ADD PRIMARY KEY (…)`` (no ``USING INDEX``) on a table blue uses."""

    name: ClassVar[str] = "add_unique"
    ops: ClassVar[tuple[str, ...]] = (Op.ADD_CONSTRAINT, Op.CREATE_INDEX)
    dialects: ClassVar[tuple[str, ...]] = ("postgres", "mysql")
    summary: ClassVar[str] = (
        "unique index CONCURRENTLY in expand, ADD CONSTRAINT ... USING INDEX in contract (PostgreSQL); "
        "ADD UNIQUE / PRIMARY KEY in place (MySQL)"
    )

    def applies(self, change: Change, phase: str, ctx: RecipeContext) -> bool:
        if not super().applies(change, phase, ctx) or not change.table or new_in_release(ctx, change.table):
            return False
        if change.op == Op.CREATE_INDEX:  # MySQL reads ADD UNIQUE as a unique index
            explicit = (change.get("algorithm") or "").upper() == "INPLACE" and (
                change.get("lock_clause") or ""
            ).upper() == "NONE"
            return ctx.dialect == "mysql" and bool(change.get("unique")) and not explicit
        return change.get("kind") in ("unique", "primary_key") and not change.get("using_index")

    def refusal(self, change: Change, ctx: RecipeContext) -> str | None:
        text = statement_text(change)
        if text is None:
            return no_text_reason("the constraint as written (columns, NULLS NOT DISTINCT, INCLUDE, DEFERRABLE)")
        if ctx.dialect == "mysql":
            if change.op == Op.ADD_CONSTRAINT and alter_action(change, text, "mysql") is None:
                return "the ADD PRIMARY KEY action could not be read back from the statement"
            if change.op == Op.CREATE_INDEX:
                try:
                    mysql_index_statement(change, ctx, text)
                except PlanError as err:
                    return str(err)
            return None
        found = alter_action(change, text, "postgres")
        if found is None:
            return "the ADD UNIQUE / PRIMARY KEY action could not be read back from the statement"
        parsed = _Parsed(*found)
        if not parsed.ok:
            return "the ADD UNIQUE / PRIMARY KEY action could not be read back from the statement"
        if parsed.leftover:
            return (
                f"{parsed.leftover!r} (index storage or tablespace options) is not carried over to a concurrent "
                "index build: run CREATE UNIQUE INDEX CONCURRENTLY with those options by hand, then ALTER TABLE "
                "... ADD CONSTRAINT ... USING INDEX"
            )
        return None

    def build(self, change: Change, ctx: RecipeContext) -> RecipeSteps:
        reason = self.refusal(change, ctx)
        if reason is not None:
            raise refuse(reason)
        text = statement_text(change) or ""
        if ctx.dialect == "mysql":
            return self._mysql(change, ctx, text)
        found = alter_action(change, text, "postgres")
        assert found is not None
        p = _Parsed(*found)
        table = change.table or ""
        if p.name:
            name = pg_unquote(p.name)
        elif p.primary:
            name = choose_name(bare(table), None, "pkey", taken_names(ctx, table))
        else:
            name = choose_name(bare(table), "_".join(p.column_names), "key", taken_names(ctx, table))
        index = quote_ident(name, "postgres")
        qualified = index_sql_name(name, table, "postgres")
        build = f"CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS {index} ON {p.table} ({p.columns})"
        if p.include is not None:
            build += f" INCLUDE ({p.include.strip()})"
        if p.nulls:
            build += f" {p.nulls}"
        kind = "PRIMARY KEY" if p.primary else "UNIQUE"
        attach = f"ALTER TABLE {p.table} ADD CONSTRAINT {index} {kind} USING INDEX {index}"
        if p.deferral:
            attach += f" {p.deferral}"
        contract: list[Part] = []
        notes = [
            "Uniqueness starts with the index build in expand, not with the constraint in contract: from "
            "then on blue's inserts and updates that would duplicate a key fail. That is safe only if blue never "
            "writes duplicates; if it might, move the build to contract too, after decommission-blue (green then "
            "runs without the index until contract: no ON CONFLICT on these columns meanwhile).",
            retry_note(qualified, quote_ident_table(table, "postgres"), "unique index build"),
            f"A duplicate already there (or written by blue before the build catches up) makes the build fail: "
            f"find them with SELECT {p.columns}, count(*) FROM {p.table} GROUP BY {p.columns} HAVING count(*) > 1, "
            "fix them, drop the INVALID index, and build again.",
            "ADD CONSTRAINT ... USING INDEX waits for contract: it adds no restriction the index does not "
            "already impose, and until then the expand stage is undone by one DROP INDEX CONCURRENTLY "
            "(an index that belongs to a constraint can only be dropped with it, under ACCESS EXCLUSIVE).",
        ]
        if p.primary:
            t = ctx.schema.table(table)
            for column in p.column_names:
                col = t.column(column) if t is not None else None
                if col is not None and col.type is not None and not col.nullable:
                    continue
                parts, nn_notes = not_null_contract(ctx, table, p.table, column)
                contract.extend(parts)
                notes.extend(nn_notes)
            notes.append(
                "A primary key needs NOT NULL columns: they are made NOT NULL first (blue may still write NULL, "
                "hence contract), with the validated-check path, so attaching the index scans nothing."
            )
        contract.append(
            Part(
                attach + ";",
                "the valid unique index becomes the constraint's (catalog only, a brief ACCESS EXCLUSIVE lock); "
                "fails if the index is INVALID",
            )
        )
        return RecipeSteps(
            expand=[
                Part(
                    build + ";",
                    "builds the unique index without blocking blue's reads and writes (SHARE UPDATE EXCLUSIVE, two "
                    "scans); IF NOT EXISTS makes a re-run after success a no-op",
                    abort=f"DROP INDEX CONCURRENTLY IF EXISTS {qualified};",
                    transactional=False,
                ),
                Part(
                    invalid_index_guard(qualified),
                    "stop here if a duplicate (or a cancel) left the index INVALID: ADD CONSTRAINT ... USING INDEX "
                    "would refuse it, and a re-run with IF NOT EXISTS would skip it",
                    abort=READ_ONLY,
                ),
            ],
            contract=contract,
            notes=notes,
        )

    def _mysql(self, change: Change, ctx: RecipeContext, text: str) -> RecipeSteps:
        if change.op == Op.CREATE_INDEX:
            sql, table, index = mysql_index_statement(change, ctx, text)
            cols = ", ".join(change.get("columns") or [])
            return RecipeSteps(
                expand=[
                    Part(
                        sql,
                        "InnoDB builds the unique index in place while blue reads and writes; LOCK=NONE refuses "
                        "rather than fall back to a blocking table copy",
                        abort=mysql_drop_index(table, index),
                        transactional=False,
                    )
                ],
                notes=[
                    "Uniqueness starts with this build: from expand on blue's writes that would duplicate a key "
                    "fail. Safe only if blue never writes duplicates; otherwise move it to contract.",
                    f"A duplicate already there makes the build fail and roll back (nothing is left behind): find "
                    f"them with SELECT {cols}, COUNT(*) FROM {table} GROUP BY {cols} HAVING COUNT(*) > 1, fix "
                    "them, run the step again.",
                ],
            )
        found = alter_action(change, text, "mysql")
        assert found is not None
        table, action = found
        key = re.search(r"\bPRIMARY\s+KEY\s*\(([^()]*)\)", action, re.I)
        cols = key.group(1).strip() if key else "..."
        return RecipeSteps(
            contract=[
                Part(
                    mysql_online(f"ALTER TABLE {table} {action}"),
                    "after blue is gone: a primary key also makes its columns NOT NULL, which blue may still "
                    "break; InnoDB rebuilds the table in place while green reads and writes",
                    transactional=False,
                )
            ],
            notes=[
                "The in-place rebuild takes time proportional to the table and fails, changing nothing, on a "
                "duplicate or a NULL key (strict SQL mode is needed to make columns NOT NULL in place).",
                f"Find duplicates and NULLs first: SELECT {cols}, COUNT(*) FROM {table} GROUP BY {cols} HAVING "
                "COUNT(*) > 1.",
            ],
        )
