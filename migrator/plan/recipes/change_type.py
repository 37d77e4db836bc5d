"""Change a column's type without a long lock and without breaking blue: a shadow column and a swap.

``ALTER TABLE t ALTER COLUMN c TYPE x`` rewrites the table under ACCESS EXCLUSIVE (MySQL: copies
it with writes blocked), and a narrowing or incompatible type breaks what blue writes or reads.
The recipe (for the changes whose phase is breaking or contract, not pure widenings):

- expand: add ``c_new`` of the new type and a trigger that sets ``c_new`` from ``c`` on every
  INSERT and UPDATE, converted the way the offline ALTER would convert it;
- backfill: ``c_new = <conversion of c>`` for the rows that existed before the trigger;
- contract (blue is gone): drop the trigger, drop ``c``, rename ``c_new`` to ``c`` with the
  column's default (PostgreSQL: one transaction; MySQL: one ALTER that also leaves a placeholder
  ``c_new`` so the triggers stay valid until they are dropped), then NOT NULL if ``c`` had it.

Blue *and green* read and write ``c`` during the overlap; ``c_new`` is internal. Why: ``c_new``
is renamed in contract, so a green that used it would break at the swap. Giving green the new type
under the old name while blue still sees the old type needs a view per version (pgroll's
``search_path`` schemas), which bgmigrate does not use. So the sync is one way, old to new, and the
plan's notes tell the team that green must write values valid in both types until contract.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from ...lint.classify import BREAKING, CONTRACT
from ...sql.changes import Op
from ...sql.types import compare_types
from ..model import Backfill
from .applicability import ensure_buildable
from .base import Part, Recipe, RecipeContext, RecipeSteps
from .column_copy import add_column_type, column_refusal, has_equality, unseen_objects_note
from .mysql_online import mysql_online_clause
from .names import MY, PG, generated_name, in_schema_of, quote, quote_table, split_table
from .not_null import pg_add_not_null
from .versions import mysql_instant_add, mysql_instant_drop, mysql_rename_column, pg_execute_function

if TYPE_CHECKING:
    from ...sql.changes import Change

_OURS = ("narrowing", "incompatible", "unknown")  # same / widening are not breaking: no recipe needed


@dataclass(frozen=True)
class _Conversion:
    """How a value of the old column becomes one of the new type, in each place it is needed."""

    in_trigger: str  # over the row being written (NEW.<col>)
    in_backfill: str  # the assignment's right-hand side in the backfill UPDATE
    typed: str  # the same value, of the new type, for comparisons
    how: str  # the sentence for the notes


def _squeeze(text: str) -> str:
    return "".join(text.split()).replace('"', "").lower()


class ChangeColumnType(Recipe):
    """``ALTER TABLE t ALTER COLUMN c TYPE x [USING e]`` (MySQL ``MODIFY c x``) that narrows or changes
    the kind of value."""

    name: ClassVar[str] = "change_column_type"
    ops: ClassVar[tuple[str, ...]] = (Op.ALTER_COLUMN_TYPE,)
    dialects: ClassVar[tuple[str, ...]] = (PG, MY)
    replaces_column: ClassVar[bool] = True
    summary: ClassVar[str] = (
        "add <col>_new of the new type, convert every write into it with a trigger, backfill, then swap it in "
        "for the old column"
    )

    def applies(self, change: Change, phase: str, ctx: RecipeContext) -> bool:
        if not super().applies(change, phase, ctx) or phase not in (BREAKING, CONTRACT):
            return False
        old = ctx.column_type(change.table, change.column)
        return compare_types(old, change.get("type"), ctx.dialect).compat in _OURS

    def refusal(self, change: Change, ctx: RecipeContext) -> str | None:
        if not change.get("type"):
            return "the statement's new type could not be read"
        if change.get("generated") or change.get("auto_increment"):
            return (
                "the redefinition makes the column generated or AUTO_INCREMENT, which a copied column cannot take "
                "over online (manual alternative: run it in a maintenance window)"
            )
        shadow = f"{change.column}_new" if change.column else None
        return column_refusal(change, ctx, "change the column type", shadow)

    def build(self, change: Change, ctx: RecipeContext) -> RecipeSteps:
        ensure_buildable(self, change, ctx)
        assert change.table and change.column
        table = ctx.schema.table(change.table)
        col = table.column(change.column) if table is not None else None
        key = ctx.primary_key(change.table)
        assert col is not None and col.type and key is not None
        new_type: str = change.get("type")
        if change.get("redefine"):  # MySQL MODIFY restates nullability and default
            nullable, default = bool(change.get("nullable", True)), change.get("default")
        else:
            nullable, default = col.nullable, col.default
        spec = _Retype(
            change.table,
            change.column,
            add_column_type(col.type),
            new_type,
            change.get("using"),
            compare_types(col.type, new_type, ctx.dialect).compat,
            nullable,
            default,
            key,
        )
        return spec.mysql(ctx) if ctx.dialect == MY else spec.postgres(ctx)


class _Retype:
    def __init__(
        self,
        table: str,
        column: str,
        old_type: str,
        new_type: str,
        using: str | None,
        compat: str,
        nullable: bool,
        default: str | None,
        key: str,
    ) -> None:
        self.table, self.column, self.old_type, self.new_type = table, column, old_type, new_type
        self.using, self.compat, self.nullable, self.default, self.key = using, compat, nullable, default, key
        self.shadow = f"{column}_new"

    # -- how a value of the old column becomes a value of the new one -------------------------------
    def _conversion(self, d: str) -> _Conversion:
        c = quote(self.column, d)
        if d == MY:
            how = "converted on assignment, as MODIFY does (strict mode rejects values that do not fit)"
            return _Conversion(f"NEW.{c}", c, c, how)
        cast = f"CAST({c} AS {self.new_type})"
        using = self.using
        if using is not None and _squeeze(using) == _squeeze(self.column):
            using = None
        if using is not None and _squeeze(using) == _squeeze(f"CAST({self.column} AS {self.new_type})"):
            how = f"converted with the statement's USING clause, {using}"
            return _Conversion(f"CAST(NEW.{c} AS {self.new_type})", cast, cast, how)
        if using is not None:
            _, bare = split_table(self.table)
            # The USING expression names the table's columns: evaluate it over the row being written.
            how = f"converted with the statement's USING expression, {using}, evaluated on the written row"
            return _Conversion(
                f"(SELECT {using} FROM (SELECT NEW.*) AS {quote(bare, d)})",
                f"({using})",
                f"CAST(({using}) AS {self.new_type})",
                how,
            )
        if self.compat == "narrowing":
            # An assignment cast, exactly what ALTER TABLE ... TYPE without USING applies: a value that
            # does not fit fails instead of being cut (an explicit CAST to varchar(n) would truncate).
            how = (
                "converted by assignment, as ALTER TABLE ... TYPE without USING does (a value that does not fit "
                "fails rather than being truncated)"
            )
            return _Conversion(f"NEW.{c}", c, cast, how)
        how = (
            f"converted with CAST(... AS {self.new_type}): the statement gives no USING, and the offline ALTER "
            "accepts only an assignment cast, so it may even refuse this change"
        )
        return _Conversion(f"CAST(NEW.{c} AS {self.new_type})", cast, cast, how)

    def _backfill(self, d: str, conversion: _Conversion) -> Backfill:
        t, s = quote_table(self.table, d), quote(self.shadow, d)
        if d == PG and has_equality(self.new_type, d):
            condition = f"{s} IS DISTINCT FROM {conversion.typed}"
        else:
            # Every write since expand converted its row already: only rows never written are NULL here.
            # (MySQL compares values of two types by coercing both, so a NULL test is the exact one.)
            condition = f"{s} IS NULL"
        return Backfill(t, quote(self.key, d), f"{s} = {conversion.in_backfill}", condition)

    def _notes(self, d: str, how: str) -> list[str]:
        c, s, old, new = self.column, self.shadow, self.old_type, self.new_type
        notes = [
            f"Deploy requirement: blue and green both read and write {c}; nothing reads or writes {s} (internal, "
            f"renamed to {c} in contract). Until contract {c} keeps its old type ({old}): green must write only "
            f"values valid in both {old} and {new}, and read {old} values until contract, {new} values after.",
            f"Why green does not use {s}: contract renames it, which would break a green that reads it; serving "
            f"{new} under the old name while blue still sees {old} needs one view per version (pgroll's "
            f"search_path schemas). So the sync is one way: every INSERT and UPDATE sets {s} from {c}.",
            f"Values are {how}. From expand on, a write of a value that does not convert fails for the writer, "
            f"blue included (the offline ALTER would have failed on it too): make sure no such value is stored or "
            f"written before expand (e.g. a CHECK ... NOT VALID in an earlier release); the backfill stops on the "
            f"first such row.",
            f"After contract {c} is the table's last column; until then {s} doubles the column's storage.",
        ]
        if self.default is not None:
            notes.append(f"The default ({self.default}) is set again on the new column in contract, under {new}.")
        if not self.nullable:
            notes.append(f"{c} is NOT NULL: the new column becomes NOT NULL in contract, after the swap.")
        return notes

    # -- PostgreSQL ---------------------------------------------------------------------------------
    def postgres(self, ctx: RecipeContext) -> RecipeSteps:
        d = PG
        t, c, s = quote_table(self.table, d), quote(self.column, d), quote(self.shadow, d)
        _, bare = split_table(self.table)
        fn_name = generated_name(d, "retype", bare, self.column)
        fn, trg = in_schema_of(self.table, fn_name, d), quote(fn_name, d)
        conversion = self._conversion(d)
        function = (
            f"CREATE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
            "BEGIN\n"
            f"  NEW.{s} := {conversion.in_trigger};\n"
            "  RETURN NEW;\n"
            "END\n"
            "$$"
        )
        execute = pg_execute_function(ctx.version)
        trigger = f"CREATE TRIGGER {trg} BEFORE INSERT OR UPDATE ON {t} FOR EACH ROW {execute} {fn}()"
        drop_sync = f"DROP TRIGGER IF EXISTS {trg} ON {t};\nDROP FUNCTION IF EXISTS {fn}()"
        expand = [
            Part(
                f"ALTER TABLE {t} ADD COLUMN {s} {self.new_type}",
                "a shadow column of the new type (nullable, no default: catalog only); no application uses it",
                abort=f"ALTER TABLE {t} DROP COLUMN IF EXISTS {s}",
            ),
            Part(
                f"{function};\n{trigger}",
                f"converts {self.column} into {self.shadow} on every INSERT and UPDATE",
                abort=drop_sync,
            ),
        ]
        swap = [drop_sync, f"ALTER TABLE {t} DROP COLUMN {c}", f"ALTER TABLE {t} RENAME COLUMN {s} TO {c}"]
        if self.default is not None:
            swap.append(f"ALTER TABLE {t} ALTER COLUMN {c} SET DEFAULT {self.default}")
        reason = (
            f"blue is gone: the converted column takes the name {self.column} in one transaction (catalog only, "
            "a brief ACCESS EXCLUSIVE lock, no rewrite)"
        )
        contract: list[Part] = []
        if not self.nullable:
            check = generated_name(d, bare, self.column, "not_null")
            add_check, validate, set_not_null = pg_add_not_null(self.table, self.column, check, d)
            contract.append(Part(";\n".join([*swap, add_check]), reason))
            contract.append(Part(validate, f"proves {self.column} has no NULL (a scan; writes go on)"))
            contract.append(Part(set_not_null, f"{self.column} NOT NULL again, without a scan (the check proves it)"))
        else:
            contract.append(Part(";\n".join(swap), reason))
        notes = self._notes(d, conversion.how) + unseen_objects_note(ctx, self.table, self.column)
        notes.append(
            "Server-side prepared statements that return the column (e.g. psycopg after prepare_threshold, JDBC "
            "prepareThreshold) fail once after the swap with 'cached plan must not change result type': let the "
            "driver re-prepare or recycle green's pool after contract. Views that select the column make the "
            "swap fail (as they would the offline ALTER): the transaction rolls back and nothing changes."
        )
        if not self.nullable and ctx.version < (12, 0, 0):
            notes.append("Before PostgreSQL 12, SET NOT NULL scans the table under ACCESS EXCLUSIVE despite the check.")
        return RecipeSteps(expand=expand, backfill=[self._backfill(d, conversion)], contract=contract, notes=notes)

    # -- MySQL / MariaDB ----------------------------------------------------------------------------
    def mysql(self, ctx: RecipeContext) -> RecipeSteps:
        d = MY
        t, c, s = quote_table(self.table, d), quote(self.column, d), quote(self.shadow, d)
        _, bare = split_table(self.table)
        ins = quote(generated_name(d, "retype", bare, self.column, "ins"), d)
        upd = quote(generated_name(d, "retype", bare, self.column, "upd"), d)
        add = mysql_online_clause(mysql_instant_add(ctx.version))
        drop = mysql_online_clause(mysql_instant_drop(ctx.version))
        both = mysql_online_clause(mysql_instant_add(ctx.version) and mysql_instant_drop(ctx.version))
        conversion = self._conversion(d)
        expand = [
            Part(
                f"ALTER TABLE {t} ADD COLUMN {s} {self.new_type}, {add}",
                "a shadow column of the new type; no application uses it",
                abort=f"ALTER TABLE {t} DROP COLUMN {s}, {drop}",
                transactional=False,
            ),
            Part(
                f"CREATE TRIGGER {ins} BEFORE INSERT ON {t} FOR EACH ROW SET NEW.{s} = {conversion.in_trigger}",
                f"converts {self.column} into {self.shadow} on INSERT",
                abort=f"DROP TRIGGER IF EXISTS {ins}",
                transactional=False,
            ),
            Part(
                f"CREATE TRIGGER {upd} BEFORE UPDATE ON {t} FOR EACH ROW SET NEW.{s} = {conversion.in_trigger}",
                f"converts {self.column} into {self.shadow} on UPDATE",
                abort=f"DROP TRIGGER IF EXISTS {upd}",
                transactional=False,
            ),
        ]
        default = f" DEFAULT {self.default}" if self.default is not None else ""
        contract: list[Part] = []
        if self.default is not None:
            contract.append(
                Part(
                    f"ALTER TABLE {t} ALTER COLUMN {s} SET DEFAULT {self.default}, {add}",
                    f"the converted column takes the default before the swap (inserts still get {self.column}'s "
                    "default converted by the trigger until then)",
                    transactional=False,
                )
            )
        if mysql_rename_column(ctx.version):
            rename = f"RENAME COLUMN {s} TO {c}"
        else:  # MySQL 5.7 / MariaDB before 10.5.2: CHANGE restates the definition
            rename = f"CHANGE COLUMN {s} {c} {self.new_type}{default}"
        contract.append(
            Part(
                f"ALTER TABLE {t} DROP COLUMN {c}, {rename}, ADD COLUMN {s} {self.new_type}, {both}",
                f"blue is gone: the converted column takes the name {self.column} in one ALTER; a placeholder "
                f"{self.shadow} keeps the triggers valid until they are dropped (MySQL DDL is not transactional)",
                transactional=False,
            )
        )
        contract += [
            Part(
                f"DROP TRIGGER IF EXISTS {ins};\nDROP TRIGGER IF EXISTS {upd}",
                "the conversion is done",
                transactional=False,
            ),
            Part(f"ALTER TABLE {t} DROP COLUMN {s}, {drop}", "the placeholder goes", transactional=False),
        ]
        if not self.nullable:
            contract.append(
                Part(
                    f"ALTER TABLE {t} MODIFY COLUMN {c} {self.new_type} NOT NULL{default}, ALGORITHM=INPLACE, "
                    "LOCK=NONE",
                    f"{self.column} NOT NULL again (an online rebuild; fails if a NULL slipped in)",
                    transactional=False,
                )
            )
        notes = self._notes(d, conversion.how) + unseen_objects_note(ctx, self.table, self.column)
        notes.append(
            f"MySQL cannot drop triggers and columns in one transaction: the swap ALTER drops {self.column}, renames "
            f"{self.shadow} to {self.column} and adds a throw-away {self.shadow} in one statement, so the triggers "
            "(which name both columns) stay valid until the next step drops them."
        )
        notes.append(
            "MySQL: creating triggers needs the TRIGGER privilege (and, with binary logging on, SUPER or "
            "log_bin_trust_function_creators); the new column's character set and collation are the table's "
            "defaults unless the type says otherwise."
        )
        return RecipeSteps(expand=expand, backfill=[self._backfill(d, conversion)], contract=contract, notes=notes)
