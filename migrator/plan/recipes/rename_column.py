"""Rename a column without breaking blue: a second column kept in sync by a trigger, then a swap.

``ALTER TABLE t RENAME COLUMN old TO new`` is instant, but from that moment every query of blue
that names ``old`` fails. The recipe serves both names while blue and green overlap:

- expand: add ``new`` (same type as ``old``, nullable, no default) and a trigger that copies every
  write of one column into the other, in both directions: blue writes ``old``, green writes ``new``;
- backfill: copy ``old`` into ``new`` for the rows that existed before the trigger, in key batches;
- contract (blue is gone): drop the trigger and ``old``; give ``new`` the default and the NOT NULL
  that ``old`` had.

This module also holds the SQL helpers the other column and table recipes share (identifier
quoting, generated object names, MySQL online-DDL clauses, refusal checks).
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING, ClassVar

from ...sql.changes import Op
from ...sql.types import parse_type
from ..model import Backfill, PlanError
from .base import Part, Recipe, RecipeContext, RecipeSteps

if TYPE_CHECKING:
    from ...schema.model import Table
    from ...sql.changes import Change

PG, MY = "postgres", "mysql"
BREAKING = "breaking"

# ---- identifiers -------------------------------------------------------------------------------------

_PG_PLAIN = re.compile(r"[a-z_][a-z0-9_$]*")
_MY_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_LIMIT = {PG: 63, MY: 64}  # PostgreSQL NAMEDATALEN - 1; MySQL identifier length


def _pg_keywords() -> frozenset[str]:
    from pglast import keywords

    # Unreserved keywords are valid column and table names; the other three classes are not everywhere.
    return frozenset(keywords.RESERVED_KEYWORDS | keywords.TYPE_FUNC_NAME_KEYWORDS | keywords.COL_NAME_KEYWORDS)


def _my_keywords() -> frozenset[str]:
    from sqlglot.dialects.mysql import MySQL

    return frozenset(k.lower() for k in MySQL.Generator.RESERVED_KEYWORDS)


_KEYWORDS: dict[str, frozenset[str]] = {}


def quote(name: str, dialect: str) -> str:
    """One identifier, quoted only when it has to be (case, characters, keywords)."""
    if dialect not in _KEYWORDS:
        _KEYWORDS[dialect] = _pg_keywords() if dialect == PG else _my_keywords()
    if dialect == PG:
        if _PG_PLAIN.fullmatch(name) and name not in _KEYWORDS[PG]:
            return name
        return '"' + name.replace('"', '""') + '"'
    if _MY_PLAIN.fullmatch(name) and name.lower() not in _KEYWORDS[MY]:
        return name
    return "`" + name.replace("`", "``") + "`"


def split_table(table: str) -> tuple[str | None, str]:
    """``schema.name`` (as the analyzer spells a non-default schema) into its two parts."""
    if "." in table:
        schema, name = table.split(".", 1)
        return schema, name
    return None, table


def quote_table(table: str, dialect: str) -> str:
    schema, name = split_table(table)
    return f"{quote(schema, dialect)}.{quote(name, dialect)}" if schema else quote(name, dialect)


def in_schema_of(table: str, name: str, dialect: str) -> str:
    """``name`` quoted and qualified with ``table``'s schema (functions, views next to the table)."""
    schema, _ = split_table(table)
    return f"{quote(schema, dialect)}.{quote(name, dialect)}" if schema else quote(name, dialect)


def object_name(dialect: str, *parts: str) -> str:
    """A generated name (``bgm_...``) that fits the server's identifier limit and stays unique."""
    full = "_".join(("bgm", *parts))
    limit = _LIMIT[dialect]
    if len(full.encode()) <= limit:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:8]
    head = full.encode()[: limit - 9].decode(errors="ignore")
    return f"{head}_{digest}"


# ---- types and values --------------------------------------------------------------------------------

_SERIALS = {"serial": "integer", "serial4": "integer", "bigserial": "bigint", "serial8": "bigint"}
_SERIALS |= {"smallserial": "smallint", "serial2": "smallint"}
# PostgreSQL types without a default equality operator: IS DISTINCT FROM fails on them ("could not
# identify an equality operator"), or means something else (box = compares areas).
_NO_EQUALITY = {"json", "xml", "point", "line", "lseg", "box", "path", "polygon", "circle"}


def is_serial(type_text: str | None, default: str | None) -> bool:
    t = (type_text or "").strip().lower()
    return t in _SERIALS or "nextval(" in (default or "").lower() or "auto_increment" in t


def has_equality(type_text: str, dialect: str) -> bool:
    if dialect != PG:
        return True
    parsed = parse_type(type_text)
    return parsed is None or parsed.name not in _NO_EQUALITY


def distinct(a: str, b: str, type_text: str, dialect: str) -> str:
    """SQL that is true when ``a`` and ``b`` (both of ``type_text``) differ, NULLs included."""
    if dialect == MY:
        return f"NOT ({a} <=> {b})"
    if has_equality(type_text, dialect):
        return f"{a} IS DISTINCT FROM {b}"
    return f"{a}::text IS DISTINCT FROM {b}::text"


# ---- version-dependent syntax ------------------------------------------------------------------------


def is_mariadb(version: tuple[int, int, int]) -> bool:
    return version[0] >= 10  # MySQL went 5.7 -> 8.0 -> 8.4 -> 9.x; MariaDB 10.x and 11.x


def mysql_instant_add(version: tuple[int, int, int]) -> bool:
    """ADD COLUMN (last) with ALGORITHM=INSTANT: MySQL 8.0.12, MariaDB 10.3.2."""
    return version >= (10, 3, 2) if is_mariadb(version) else version >= (8, 0, 12)


def mysql_instant_drop(version: tuple[int, int, int]) -> bool:
    """DROP COLUMN with ALGORITHM=INSTANT: MySQL 8.0.29, MariaDB 10.4."""
    return version >= (10, 4, 0) if is_mariadb(version) else version >= (8, 0, 29)


def mysql_rename_column(version: tuple[int, int, int]) -> bool:
    """ALTER TABLE ... RENAME COLUMN: MySQL 8.0, MariaDB 10.5.2."""
    return version >= (10, 5, 2) if is_mariadb(version) else version >= (8, 0, 0)


def mysql_online(instant: bool) -> str:
    """The clause that makes MySQL refuse rather than block writes: INSTANT when the operation
    supports it on this version, else INPLACE without a lock (INSTANT accepts no LOCK clause)."""
    return "ALGORITHM=INSTANT" if instant else "ALGORITHM=INPLACE, LOCK=NONE"


def pg_execute_function(version: tuple[int, int, int]) -> str:
    return "EXECUTE FUNCTION" if version >= (11, 0, 0) else "EXECUTE PROCEDURE"


def pg_add_not_null(table: str, column: str, constraint: str, dialect: str) -> tuple[str, str, str]:
    """SET NOT NULL without a long ACCESS EXCLUSIVE scan (PostgreSQL 12+): a ``CHECK (col IS NOT
    NULL) NOT VALID`` (instant; checks new rows), ``VALIDATE`` (a scan under SHARE UPDATE EXCLUSIVE,
    writes go on), then ``SET NOT NULL`` proven by the validated check, and the check dropped."""
    t, c, k = quote_table(table, dialect), quote(column, dialect), quote(constraint, dialect)
    return (
        f"ALTER TABLE {t} ADD CONSTRAINT {k} CHECK ({c} IS NOT NULL) NOT VALID",
        f"ALTER TABLE {t} VALIDATE CONSTRAINT {k}",
        f"ALTER TABLE {t} ALTER COLUMN {c} SET NOT NULL;\nALTER TABLE {t} DROP CONSTRAINT {k}",
    )


# ---- refusals shared by the column recipes -----------------------------------------------------------


def column_refusal(change: Change, ctx: RecipeContext, what: str, extra_column: str | None) -> str | None:
    """Why a column-copying recipe cannot run on ``change.table.change.column``, or None.

    ``extra_column`` is the column the recipe adds (it must not exist yet). The reason ends with the
    manual alternative in parentheses and no full stop: the planner quotes it inside its message."""
    table_name, column = change.table, change.column
    where = f"{table_name}.{column}"
    manual = (
        f" (manual alternative: {what} in a maintenance window with blue stopped, or keep the old name/type "
        "and adapt the application)"
    )
    if not table_name or not column:
        return f"the statement does not name the table and column to {what}{manual}"
    table = ctx.schema.table(table_name)
    col = table.column(column) if table is not None else None
    if col is None or not col.type:
        return (
            f"the type of {where} is not known (the migration history does not create it; plan with --dsn "
            f"to read the live schema, or include the history that creates it){manual}"
        )
    assert table is not None
    key = ctx.primary_key(table_name)
    if key is None:
        return f"{table_name} has no single-column primary key or unique NOT NULL column to cut the backfill on{manual}"
    if key == column or _in_primary_key(table, column):
        return f"{where} is (part of) the primary key: a key column cannot be copied online{manual}"
    if is_serial(col.type, col.default):
        return f"{where} draws its values from a sequence or AUTO_INCREMENT it owns{manual}"
    if extra_column and table.column(extra_column) is not None:
        return f"{table_name} already has a column {extra_column}, the name the recipe needs{manual}"
    involved = _objects_on(table, column, ctx)
    if involved:
        return (
            f"{where} is used by {', '.join(involved)}, which dropping the old column in contract would drop, "
            "and bgmigrate does not know their full definitions (predicates, methods, actions) to recreate them "
            "(manual alternative: create the equivalent indexes/constraints on the new column yourself in expand, "
            "CREATE INDEX CONCURRENTLY or ADD CONSTRAINT ... NOT VALID then VALIDATE, or use a maintenance window)"
        )
    return None


def _in_primary_key(table: Table, column: str) -> bool:
    return any(c.kind == "primary_key" and column in c.columns for c in table.constraints)


def _mentions(expression: str | None, column: str) -> bool:
    """A CHECK expression that names the column (the replayed history records no column list for
    CHECKs; a false positive only makes the recipe refuse)."""
    if not expression:
        return False
    pattern = rf'(?<![\w$"]){re.escape(column)}(?![\w$"])|"{re.escape(column)}"'
    return re.search(pattern, expression, re.IGNORECASE) is not None


def _objects_on(table: Table, column: str, ctx: RecipeContext) -> list[str]:
    found = [
        f"{c.kind.replace('_', ' ')} {c.name}" if c.name else c.kind.replace("_", " ")
        for c in table.constraints
        if c.kind not in ("not_null", "primary_key")
        and (column in c.columns or (not c.columns and _mentions(c.expression, column)))
    ]
    for index in sorted(table.indexes):
        if column in (ctx.schema.index_columns.get(index) or []):
            found.append(f"index {index}")
    return found


def unseen_objects_note(ctx: RecipeContext, table: str, column: str) -> list[str]:
    """A warning when the schema comes from replayed history, which does not track every index."""
    if ctx.schema.source is not None:  # read from the live database: indexes and constraints are known
        return []
    return [
        f"The migration history shows no index or constraint on {table}.{column}, but it does not track "
        "everything (e.g. REFERENCES written inside a column definition, objects created outside the "
        "migrations): any that exists is dropped with the old column in contract. Check, or plan with --dsn."
    ]


def ensure_buildable(recipe: Recipe, change: Change, ctx: RecipeContext) -> None:
    reason = recipe.refusal(change, ctx)
    if reason is not None:
        raise PlanError(f"{recipe.name}: {reason}")


def add_column_type(type_text: str) -> str:
    """The type to declare for the copy: a serial pseudo-type is its integer type."""
    return _SERIALS.get(type_text.strip().lower(), type_text)


# ---- the recipe --------------------------------------------------------------------------------------


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
        fn_name = object_name(d, "sync", bare, self.old, self.new)
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
            check = object_name(d, bare, self.new, "not_null")
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
        ins = quote(object_name(d, "sync", bare, self.old, "ins"), d)
        upd = quote(object_name(d, "sync", bare, self.old, "upd"), d)
        add = mysql_online(mysql_instant_add(ctx.version))
        drop = mysql_online(mysql_instant_drop(ctx.version))
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
