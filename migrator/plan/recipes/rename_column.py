"""Rename a column without breaking blue: a second column kept in sync by a trigger, then a swap.

``ALTER TABLE t RENAME COLUMN old TO new`` is instant, but from that moment every query of blue
that names ``old`` fails. The recipe serves both names while blue and green overlap:

- expand: add ``new`` (same type as ``old``, nullable, no default) and a trigger that copies every
  write of one column into the other, in both directions: blue writes ``old``, green writes ``new``;
- backfill: copy ``old`` into ``new`` for the rows that existed before the trigger, in key batches;
- contract (blue is gone): drop the trigger and ``old``; give ``new`` the default and the NOT NULL
  that ``old`` had.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from ...lint.classify import BREAKING
from ...sql.changes import Op
from ..model import Backfill
from .applicability import ensure_buildable
from .base import Part, Recipe, RecipeContext, RecipeSteps
from .column_copy import add_column_type, column_refusal, distinct, unseen_objects_note
from .mysql_online import mysql_online_clause
from .names import MY, PG, generated_name, in_schema_of, quote, quote_table, split_table
from .names import generated_name as object_name
from .not_null import pg_add_not_null
from .versions import mysql_instant_add, mysql_instant_drop, pg_execute_function

if TYPE_CHECKING:
    from ...sql.changes import Change

# The recipe, and helpers that lived here before the helper modules (still importable from here).
__all__ = ["RenameColumn", "object_name", "quote"]


class RenameColumn(Recipe):
    """``ALTER TABLE t RENAME [COLUMN] old TO new`` (MySQL also ``CHANGE old new <same type>``)."""

    name: ClassVar[str] = "rename_column"
    ops: ClassVar[tuple[str, ...]] = (Op.RENAME_COLUMN,)
    dialects: ClassVar[tuple[str, ...]] = (PG, MY)
    summary: ClassVar[str] = (
        "add the new column, sync old and new both ways with a trigger, backfill, then drop the trigger and the "
        "old column"
    )

    def applies(self, change: Change, phase: str, ctx: RecipeContext) -> bool:
        return super().applies(change, phase, ctx) and phase == BREAKING

    def refusal(self, change: Change, ctx: RecipeContext) -> str | None:
        new = change.get("new_name")
        if not new:
            return "the statement does not name the new column"
        if new == change.column:
            return "the statement renames the column to its own name: nothing to plan"
        return column_refusal(change, ctx, "rename the column", new)

    def build(self, change: Change, ctx: RecipeContext) -> RecipeSteps:
        ensure_buildable(self, change, ctx)
        assert change.table and change.column
        table = ctx.schema.table(change.table)
        assert table is not None
        col = table.column(change.column)
        assert col is not None and col.type
        key = ctx.primary_key(change.table)
        assert key is not None
        spec = _Rename(change.table, change.column, change.get("new_name"), col.type, col.nullable, col.default, key)
        steps = spec.mysql(ctx) if ctx.dialect == MY else spec.postgres(ctx)
        if change.get("via") == "change":
            steps.notes.append(
                f"CHANGE {change.column} {spec.new} restates the whole column: this recipe copies {change.column} "
                f"as it is ({col.type}, {'NULL' if col.nullable else 'NOT NULL'}, default {col.default}). A "
                "different type, nullability or default in the statement is a change of its own, planned separately."
            )
        return steps


class _Rename:
    def __init__(
        self, table: str, old: str, new: str, type_text: str, nullable: bool, default: str | None, key: str
    ) -> None:
        self.table, self.old, self.new, self.type = table, old, new, add_column_type(type_text)
        self.nullable, self.default, self.key = nullable, default, key

    def _common_notes(self, d: str) -> list[str]:
        old, new = self.old, self.new
        notes = [
            f"Deploy requirement: blue reads and writes {old}; green must read and write only {new}, and must be "
            f"deployed after the backfill (the migrate stage). Until contract a trigger copies every write of "
            f"one column into the other, so each version sees the other's writes; an INSERT that sets both "
            f"keeps {new}.",
            f"Between expand and contract the table has one more column: SELECT * returns both names. After "
            f"contract {new} is the table's last column (an offline RENAME keeps the position).",
            f"{new} is created from the type bgmigrate knows ({self.type}): a column collation, comment, "
            f"statistics target or column-level privileges of {old} are not copied.",
        ]
        if self.default is not None:
            notes.append(
                f"{old}'s default ({self.default}) moves to {new} in contract. During the overlap green's inserts "
                f"that omit {new} still get it: the trigger copies {old}'s default across."
            )
            if self.nullable:
                notes.append(
                    f"Limit while the trigger runs: an INSERT by green that sets {new} to NULL explicitly stores "
                    f"{old}'s default instead (the trigger cannot tell it from an insert by blue, which never names "
                    f"{new}). Setting NULL with an UPDATE works."
                )
        if not self.nullable:
            how = (
                "CHECK (... IS NOT NULL) NOT VALID in the swap, VALIDATE, then SET NOT NULL proven by the check "
                "(no long ACCESS EXCLUSIVE scan on PostgreSQL 12+)"
                if d == PG
                else "MODIFY ... NOT NULL, ALGORITHM=INPLACE, LOCK=NONE (an online rebuild)"
            )
            notes.append(f"{old} is NOT NULL, so {new} becomes NOT NULL in contract: {how}.")
        return notes

    # -- PostgreSQL ---------------------------------------------------------------------------------
    def postgres(self, ctx: RecipeContext) -> RecipeSteps:
        d = PG
        t = quote_table(self.table, d)
        o, n = quote(self.old, d), quote(self.new, d)
        _, bare = split_table(self.table)
        fn_name = generated_name(d, "sync", bare, self.old, self.new)
        fn, trg = in_schema_of(self.table, fn_name, d), quote(fn_name, d)
        changed_new = distinct(f"NEW.{n}", f"OLD.{n}", self.type, d)
        changed_old = distinct(f"NEW.{o}", f"OLD.{o}", self.type, d)
        function = (
            f"CREATE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
            "BEGIN\n"
            "  IF TG_OP = 'INSERT' THEN\n"
            f"    IF NEW.{n} IS NULL THEN\n"
            f"      NEW.{n} := NEW.{o};\n"
            "    ELSE\n"
            f"      NEW.{o} := NEW.{n};\n"
            "    END IF;\n"
            f"  ELSIF {changed_new} THEN\n"
            f"    NEW.{o} := NEW.{n};\n"
            f"  ELSIF {changed_old} THEN\n"
            f"    NEW.{n} := NEW.{o};\n"
            "  END IF;\n"
            "  RETURN NEW;\n"
            "END\n"
            "$$"
        )
        execute = pg_execute_function(ctx.version)
        trigger = f"CREATE TRIGGER {trg} BEFORE INSERT OR UPDATE ON {t} FOR EACH ROW {execute} {fn}()"
        drop_sync = f"DROP TRIGGER IF EXISTS {trg} ON {t};\nDROP FUNCTION IF EXISTS {fn}()"
        expand = [
            Part(
                f"ALTER TABLE {t} ADD COLUMN {n} {self.type}",
                "the new name as a second, nullable column without default (catalog only); blue ignores it",
                abort=f"ALTER TABLE {t} DROP COLUMN IF EXISTS {n}",
            ),
            Part(
                f"{function};\n{trigger}",
                f"keeps {self.old} and {self.new} equal on every INSERT and UPDATE while blue and green both write",
                abort=drop_sync,
            ),
        ]
        backfill = [Backfill(t, quote(self.key, d), f"{n} = {o}", distinct(n, o, self.type, d))]
        swap = [drop_sync, f"ALTER TABLE {t} DROP COLUMN {o}"]
        if self.default is not None:
            swap.append(f"ALTER TABLE {t} ALTER COLUMN {n} SET DEFAULT {self.default}")
        contract: list[Part] = []
        if not self.nullable:
            check = generated_name(d, bare, self.new, "not_null")
            add_check, validate, set_not_null = pg_add_not_null(self.table, self.new, check, d)
            swap.append(add_check)
            contract.append(Part(";\n".join(swap), self._swap_reason(), transactional=True))
            contract.append(Part(validate, f"proves {self.new} has no NULL (a scan; writes go on)"))
            contract.append(
                Part(set_not_null, f"{self.new} NOT NULL as {self.old} was, without a scan (the check proves it)")
            )
        else:
            contract.append(Part(";\n".join(swap), self._swap_reason()))
        notes = self._common_notes(d) + unseen_objects_note(ctx, self.table, self.old)
        if not self.nullable and ctx.version < (12, 0, 0):
            notes.append("Before PostgreSQL 12, SET NOT NULL scans the table under ACCESS EXCLUSIVE despite the check.")
        return RecipeSteps(expand=expand, backfill=backfill, contract=contract, notes=notes)

    def _swap_reason(self) -> str:
        return (
            f"blue is gone: nothing reads {self.old} any more; the trigger and the old column go in one "
            "transaction so green's writes never meet a half-dropped sync"
        )

    # -- MySQL / MariaDB ----------------------------------------------------------------------------
    def mysql(self, ctx: RecipeContext) -> RecipeSteps:
        d = MY
        t = quote_table(self.table, d)
        o, n = quote(self.old, d), quote(self.new, d)
        _, bare = split_table(self.table)
        ins = quote(generated_name(d, "sync", bare, self.old, "ins"), d)
        upd = quote(generated_name(d, "sync", bare, self.old, "upd"), d)
        add = mysql_online_clause(mysql_instant_add(ctx.version))
        drop = mysql_online_clause(mysql_instant_drop(ctx.version))
        insert_trigger = (
            f"CREATE TRIGGER {ins} BEFORE INSERT ON {t} FOR EACH ROW "
            f"SET NEW.{n} = COALESCE(NEW.{n}, NEW.{o}), NEW.{o} = NEW.{n}"
        )
        update_trigger = (
            f"CREATE TRIGGER {upd} BEFORE UPDATE ON {t} FOR EACH ROW "
            f"SET NEW.{o} = IF(NEW.{n} <=> OLD.{n}, NEW.{o}, NEW.{n}), "
            f"NEW.{n} = IF(NEW.{o} <=> OLD.{o}, NEW.{n}, NEW.{o})"
        )
        drop_triggers = f"DROP TRIGGER IF EXISTS {ins};\nDROP TRIGGER IF EXISTS {upd}"
        expand = [
            Part(
                f"ALTER TABLE {t} ADD COLUMN {n} {self.type}, {add}",
                "the new name as a second, nullable column without default; blue ignores it",
                abort=f"ALTER TABLE {t} DROP COLUMN {n}, {drop}",
                transactional=False,
            ),
            Part(
                insert_trigger,
                f"on INSERT, fills whichever of {self.old} / {self.new} the writer left out",
                abort=f"DROP TRIGGER IF EXISTS {ins}",
                transactional=False,
            ),
            Part(
                update_trigger,
                "on UPDATE, copies the column the writer changed into the other",
                abort=f"DROP TRIGGER IF EXISTS {upd}",
                transactional=False,
            ),
        ]
        backfill = [Backfill(t, quote(self.key, d), f"{n} = {o}", distinct(n, o, self.type, d))]
        contract: list[Part] = []
        notes = self._common_notes(d) + unseen_objects_note(ctx, self.table, self.old)
        if not self.nullable and self.default is None:
            # MySQL DDL is not transactional: between dropping the triggers and dropping the column, green's
            # inserts (which never name the old column) would fail on a NOT NULL column without default.
            # Swap the old column for a nullable placeholder first; the triggers stay valid on it.
            contract.append(
                Part(
                    f"ALTER TABLE {t} DROP COLUMN {o}, ADD COLUMN {o} {self.type}, {drop}",
                    f"blue is gone: {self.old} becomes a nullable placeholder so green's inserts need no trigger to "
                    "fill it (MySQL cannot drop the triggers and the column in one transaction)",
                    transactional=False,
                )
            )
            notes.append(
                f"{self.old} is NOT NULL without default and MySQL DDL is not transactional: contract first swaps it "
                "for a nullable placeholder of the same name (one ALTER), then drops the triggers, then the "
                "placeholder, so green's inserts never fail in between."
            )
        elif self.default is not None:
            contract.append(
                Part(
                    f"ALTER TABLE {t} ALTER COLUMN {n} SET DEFAULT {self.default}, {add}",
                    f"{self.new} takes {self.old}'s default before the triggers stop filling it",
                    transactional=False,
                )
            )
        contract.append(
            Part(drop_triggers, "blue is gone: no writer uses the old column any more", transactional=False)
        )
        contract.append(Part(f"ALTER TABLE {t} DROP COLUMN {o}, {drop}", "the old name goes", transactional=False))
        if not self.nullable:
            default = f" DEFAULT {self.default}" if self.default is not None else ""
            contract.append(
                Part(
                    f"ALTER TABLE {t} MODIFY COLUMN {n} {self.type} NOT NULL{default}, ALGORITHM=INPLACE, LOCK=NONE",
                    f"{self.new} NOT NULL as {self.old} was (an online rebuild; fails if a NULL slipped in)",
                    transactional=False,
                )
            )
        notes.append(
            "MySQL: creating triggers needs the TRIGGER privilege (and, with binary logging on, SUPER or "
            "log_bin_trust_function_creators); the column copy is declared with the type text only, so its "
            "character set and collation are the table's defaults."
        )
        return RecipeSteps(expand=expand, backfill=backfill, contract=contract, notes=notes)
