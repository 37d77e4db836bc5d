"""``ADD CONSTRAINT … FOREIGN KEY`` on a table blue writes: ``NOT VALID`` in expand, validation in contract.

PostgreSQL: a plain ``ADD FOREIGN KEY`` holds SHARE ROW EXCLUSIVE on both tables (their writes wait)
while it checks every existing row. Split, the add is catalog only and ``VALIDATE CONSTRAINT`` does
the check under SHARE UPDATE EXCLUSIVE (the referenced table gets ROW SHARE): writes go on. The
placement follows the add_check recipe and the issue (NOT VALID in expand, VALIDATE after, in
contract), with the same caveat: the NOT VALID constraint already governs blue's writes.

MySQL: InnoDB adds a foreign key in place (``ALGORITHM=INPLACE, LOCK=NONE``) only with
``foreign_key_checks=0`` — and then never looks at existing rows; with checks on it copies the
table and blocks writes. There is no ``VALIDATE``. The recipe takes the in-place add (new rows are
checked from then on, like NOT VALID) and puts a verification query in contract, where
PostgreSQL's VALIDATE would be, that *fails* when an existing row has no parent — so the plan
does not silently accept orphans that an offline ``ADD FOREIGN KEY`` would have refused.
"""

from __future__ import annotations

import re
from typing import ClassVar

from ...sql.changes import Change, Op
from .applicability import new_in_release, refuse
from .base import Part, Recipe, RecipeContext, RecipeSteps
from .mysql_online import mysql_online
from .names import bare, choose_name, quote_ident, taken_names
from .not_valid import named_action, validate_part
from .sqltext import QNAME, no_text_reason, statement_text

_FK_COLUMNS = re.compile(r"\bFOREIGN\s+KEY\s*(?:[\w$`\"]+\s*)?\(([^)]*)\)", re.I)
_REFERENCES = re.compile(rf"\bREFERENCES\s+({QNAME})\s*(?:\(([^)]*)\))?", re.I)


def _columns(text: str) -> list[str]:
    return [c.strip() for c in text.split(",") if c.strip()]


def default_fk_name(ctx: RecipeContext, change: Change) -> str:
    """PostgreSQL's name for an unnamed foreign key: ``<table>_<col1>_<col2>_fkey``."""
    table = change.table or ""
    cols = "_".join(c for c in change.get("columns") or [] if c) or None
    return choose_name(bare(table), cols, "fkey", taken_names(ctx, table))


def orphan_check(table: str, fk_cols: list[str], parent: str, parent_cols: list[str], name: str) -> str:
    """A MySQL statement that fails ("Subquery returns more than 1 row") when an existing row has no parent.

    MySQL has no VALIDATE and no way to raise an error from a plain statement; a scalar subquery that
    returns a second row when an orphan exists is the portable way (MySQL 8 and MariaDB) to turn
    "found one" into an error. It reads at most up to the first orphan."""
    present = " AND ".join(f"c.{col} IS NOT NULL" for col in fk_cols)
    match = " AND ".join(f"p.{pc} = c.{fc}" for fc, pc in zip(fk_cols, parent_cols))
    label = bare(name).strip("`")
    alias = quote_ident(label + "_verified", "mysql")
    return (
        f"SELECT (SELECT 'no orphan rows' UNION ALL SELECT 'orphan rows: {label} does not hold' FROM {table} c "
        f"WHERE {present} AND NOT EXISTS (SELECT 1 FROM {parent} p WHERE {match}) LIMIT 2) AS {alias};"
    )


def _has_index_on(ctx: RecipeContext, table: str | None, columns: list[str]) -> bool:
    """The schema knows an index (or key) whose leading columns are ``columns``: MySQL will reuse it."""
    t = ctx.schema.table(table)
    if t is None or not columns:
        return False
    wanted = [c.strip("`").lower() for c in columns]
    for index in t.indexes:
        cols = ctx.schema.index_columns.get(index) or []
        if [c.lower() for c in cols[: len(wanted)]] == wanted:
            return True
    return any(
        c.kind in ("primary_key", "unique", "index") and [x.lower() for x in c.columns[: len(wanted)]] == wanted
        for c in t.constraints
    )


class AddForeignKey(Recipe):
    """``ALTER TABLE … ADD [CONSTRAINT n] FOREIGN KEY … REFERENCES …`` (validated) on a table blue uses."""

    name: ClassVar[str] = "add_foreign_key"
    ops: ClassVar[tuple[str, ...]] = (Op.ADD_CONSTRAINT,)
    dialects: ClassVar[tuple[str, ...]] = ("postgres", "mysql")
    summary: ClassVar[str] = (
        "FOREIGN KEY ... NOT VALID in expand, VALIDATE in contract (PostgreSQL); in-place add with "
        "foreign_key_checks=0 and an orphan check in contract (MySQL)"
    )

    def applies(self, change: Change, phase: str, ctx: RecipeContext) -> bool:
        return (
            super().applies(change, phase, ctx)
            and change.get("kind") == "foreign_key"
            and not change.get("not_valid")
            and bool(change.table)
            and not new_in_release(ctx, change.table)
        )

    def refusal(self, change: Change, ctx: RecipeContext) -> str | None:
        text = statement_text(change)
        if text is None:
            return no_text_reason("the foreign key as written (referenced columns, ON DELETE / ON UPDATE, MATCH)")
        found = named_action(change, ctx, "x")
        if found is None:
            return "the ADD FOREIGN KEY action could not be read back from the statement"
        if ctx.dialect == "mysql":
            action = found[1]
            fk = _FK_COLUMNS.search(action)
            ref = _REFERENCES.search(action)
            if fk is None or ref is None or not ref.group(2):
                return "the foreign key's columns and referenced columns could not be read from the statement"
            if len(_columns(fk.group(1))) != len(_columns(ref.group(2))):
                return "the foreign key lists a different number of columns than it references"
        return None

    def build(self, change: Change, ctx: RecipeContext) -> RecipeSteps:
        reason = self.refusal(change, ctx)
        if reason is not None:
            raise refuse(reason)
        found = named_action(change, ctx, default_fk_name(ctx, change))
        assert found is not None
        written, action, name = found
        if ctx.dialect == "mysql":
            return self._mysql(change, ctx, written, action, name)
        return RecipeSteps(
            expand=[
                Part(
                    f"ALTER TABLE {written} {action} NOT VALID;",
                    "existing rows are not checked: SHARE ROW EXCLUSIVE on both tables for an instant, no scan; "
                    "rows written from now on — blue's included — must reference an existing row",
                    abort=f"ALTER TABLE {written} DROP CONSTRAINT IF EXISTS {name};",
                )
            ],
            contract=[validate_part(written, name, "foreign key")],
            notes=[
                "Caveat of adding the foreign key in expand: from then on blue's inserts and updates must point "
                "at existing rows, and blue's deletes and key updates on the referenced table follow the "
                "constraint's ON DELETE / ON UPDATE action (NO ACTION / RESTRICT: they fail while referenced; "
                "CASCADE / SET NULL: they now change this table too). Safe only if blue already keeps the "
                "references consistent; otherwise move the NOT VALID step to contract, before VALIDATE.",
                "If VALIDATE fails, some rows reference nothing: the constraint stays NOT VALID (new rows are "
                "still checked); delete or fix them and run VALIDATE again.",
                "Index the referencing columns (CREATE INDEX CONCURRENTLY) if no index starts with them: every "
                "delete or key update on the referenced table looks them up.",
            ],
        )

    def _mysql(self, change: Change, ctx: RecipeContext, table: str, action: str, name: str) -> RecipeSteps:
        fk = _FK_COLUMNS.search(action)
        ref = _REFERENCES.search(action)
        assert fk is not None and ref is not None
        fk_cols = _columns(fk.group(1))
        parent, parent_cols = ref.group(1), _columns(ref.group(2) or "")
        reuses_index = _has_index_on(ctx, change.table, fk_cols)
        drop = f"ALTER TABLE {table} DROP FOREIGN KEY {name}" + ("" if reuses_index else f", DROP INDEX {name}")
        add = mysql_online(f"ALTER TABLE {table} {action}")
        notes = [
            "MySQL never validates existing rows of a foreign key added in place; the contract step that stands "
            "in for PostgreSQL's VALIDATE fails with 'Subquery returns more than 1 row' when an existing row "
            "references nothing: delete or fix those rows and run it again. It runs in contract so the "
            "release's own data fixes land first.",
            "Caveat of adding the foreign key in expand: from then on blue's inserts and updates must point at "
            "existing rows, and blue's deletes on the referenced table follow ON DELETE (they fail while "
            "referenced, or cascade). Safe only if blue already keeps the references consistent.",
            "The three statements of the expand step must run in one session: foreign_key_checks is a session "
            "setting, and it is what lets InnoDB add the key in place. It is set back to 1 right after.",
        ]
        if not reuses_index:
            notes.append(
                f"InnoDB creates an index {name} on the referencing columns for the foreign key (no index known to "
                "start with them); the build is in place, and the abort drops it with the key."
            )
        return RecipeSteps(
            expand=[
                Part(
                    f"SET foreign_key_checks = 0;\n{add}\nSET foreign_key_checks = 1;",
                    "in place with concurrent reads and writes (LOCK=NONE) because checks are off for this "
                    "statement: existing rows are not read; rows written from now on — blue's included — are "
                    "checked",
                    abort=mysql_online(drop),
                    transactional=False,
                )
            ],
            contract=[
                Part(
                    orphan_check(table, fk_cols, parent, parent_cols, name),
                    "stands in for VALIDATE: reads the existing rows, changes nothing, and fails if one has no "
                    "parent — what an offline ADD FOREIGN KEY would have refused",
                )
            ],
            notes=notes,
        )
