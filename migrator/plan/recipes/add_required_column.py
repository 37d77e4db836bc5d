"""``ADD COLUMN … NOT NULL`` on a table blue writes: nullable column + default, backfill, NOT NULL in contract.

Without a default the statement breaks blue at once: blue's inserts do not name the new column, so
they would write NULL into a NOT NULL column. With a default that forces a table rewrite (a
volatile default; any default before PostgreSQL 11; an expression default in MySQL) it blocks
blue for the whole rewrite. Either way the change is split:

- expand: the column, nullable and without default (catalog only); then ``SET DEFAULT`` so every
  row inserted from now on — blue's too — gets the value;
- migrate: a batched backfill of the existing rows with the same value;
- contract: NOT NULL, proven by a validated ``CHECK (c IS NOT NULL)`` (see set_not_null).

Where the NOT VALID check goes is the one real decision, see :data:`_CHECK_PLACEMENT`.
"""

from __future__ import annotations

from typing import ClassVar

from ...sql.changes import Change, Op
from ..model import Backfill
from .applicability import new_in_release, refuse
from .base import Part, Recipe, RecipeContext, RecipeSteps
from .mysql_online import mysql_online, mysql_online_clause
from .names import quote_ident, table_sql
from .not_null import not_null_contract
from .sqltext import alter_action, no_text_reason, pyformat_safe, statement_text
from .versions import at_least, mysql_instant_add_at

NO_VALUE = (
    "a NOT NULL column without a default needs a value for existing rows: add DEFAULT … or a backfill UPDATE in "
    "the release. Manual alternatives: ADD COLUMN … NOT NULL DEFAULT <value> (a constant default is catalog-only "
    "on PostgreSQL 11+ and instant on MySQL 8.0.12+); or add the column nullable now, let green fill it, and SET "
    "NOT NULL in a later release"
)

_CHECK_PLACEMENT = (
    "Why the CHECK (c IS NOT NULL) NOT VALID waits for contract: NOT VALID only spares the rows already there; "
    "every row inserted or updated after the check exists is checked. Added in expand, it would break blue at "
    "once: blue's UPDATEs of rows the backfill has not reached yet (c still NULL) would fail, and so would "
    "blue's INSERTs were there no default. The DEFAULT set in expand is what keeps blue's inserts (which never "
    "name c) valid and non-NULL; the backfill covers the rows that existed before; so by contract no NULL can "
    "be left, and the check — validated without blocking writes — lets SET NOT NULL skip its scan."
)

_UNSUPPORTED = (
    ("primary_key", "PRIMARY KEY"),
    ("unique", "UNIQUE"),
    ("references", "REFERENCES"),
    ("checks", "CHECK"),
    ("generated", "GENERATED"),
    ("serial", "a serial type"),
    ("auto_increment", "AUTO_INCREMENT"),
)


def _column_parts(action: str, column: str, dialect: str) -> tuple[str, str, str] | None:
    """``(definition without NOT NULL/DEFAULT, default SQL, definition as written minus position)``."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ParseError, TokenError

    try:
        tree = sqlglot.parse_one(f"ALTER TABLE t {action}", read=dialect)
    except (ParseError, TokenError):
        return None
    found = [c for c in tree.find_all(exp.ColumnDef) if c.name.lower() == column.lower() or c.name == column]
    if len(found) != 1:
        return None
    original = found[0].copy()
    original.set("exists", None)  # ADD COLUMN IF NOT EXISTS: the recipe states its own guard
    default: str | None = None
    relaxed = original.copy()
    for constraint in list(relaxed.args.get("constraints") or []):
        kind = constraint.args.get("kind")
        if isinstance(kind, exp.DefaultColumnConstraint) and kind.this is not None:
            default = kind.this.sql(dialect=dialect)
            constraint.pop()
        elif isinstance(kind, exp.NotNullColumnConstraint) and not kind.args.get("allow_null"):
            constraint.pop()
    if default is None:
        return None
    restated = original.copy()
    restated.set("position", None)
    return relaxed.sql(dialect=dialect), default, restated.sql(dialect=dialect)


class AddRequiredColumn(Recipe):
    """``ADD COLUMN c … NOT NULL`` on a table blue uses, without a default or with one that rewrites."""

    name: ClassVar[str] = "add_required_column"
    ops: ClassVar[tuple[str, ...]] = (Op.ADD_COLUMN,)
    dialects: ClassVar[tuple[str, ...]] = ("postgres", "mysql")
    summary: ClassVar[str] = (
        "add the column nullable with its default for new rows, backfill existing rows in batches, "
        "make it NOT NULL in contract"
    )

    def applies(self, change: Change, phase: str, ctx: RecipeContext) -> bool:
        if not super().applies(change, phase, ctx) or not change.table or not change.column:
            return False
        if new_in_release(ctx, change.table) or change.get("nullable") is not False:
            return False
        if change.get("serial") or change.get("generated") or change.get("auto_increment"):
            return False
        default = change.get("default")
        if default is None:
            return True  # the breaking case: refusal() says what is missing
        if ctx.dialect == "postgres":  # a default that rewrites the table under ACCESS EXCLUSIVE
            return bool(change.get("volatile_default")) or not at_least(ctx, 11)
        return "(" in default  # MySQL: an expression default copies the table

    def refusal(self, change: Change, ctx: RecipeContext) -> str | None:
        if change.get("default") is None:
            return NO_VALUE
        for attr, what in _UNSUPPORTED:
            if change.get(attr):
                return (
                    f"the new column also declares {what}, which this recipe does not carry over: add the column "
                    f"in its own statement and {what} in another"
                )
        if ctx.primary_key(change.table) is None:
            return (
                f"{change.table} has no single-column primary key (or unique NOT NULL column) to cut backfill "
                "batches on: add one first, or run the backfill UPDATE by hand"
            )
        text = statement_text(change)
        if text is None:
            return no_text_reason("the column definition (type modifiers, COLLATE, COMMENT)")
        found = alter_action(change, text, ctx.dialect)
        if found is None or _column_parts(found[1], change.column or "", ctx.dialect) is None:
            return "the ADD COLUMN action could not be read back from the statement"
        return None

    def build(self, change: Change, ctx: RecipeContext) -> RecipeSteps:
        reason = self.refusal(change, ctx)
        if reason is not None:
            raise refuse(reason)
        found = alter_action(change, statement_text(change) or "", ctx.dialect)
        assert found is not None
        written, action = found
        parsed = _column_parts(action, change.column or "", ctx.dialect)
        assert parsed is not None
        relaxed, default, restated = parsed
        table = table_sql(change, ctx, written)
        column = change.column or ""
        col = quote_ident(column, ctx.dialect)
        key = ctx.primary_key(change.table)
        assert key is not None
        backfill = Backfill(
            table=table,
            key=quote_ident(key, ctx.dialect),
            assignments=pyformat_safe(f"{col} = {default}"),
            condition=f"{col} IS NULL",
        )
        notes = [
            f"The value for existing rows is the statement's default, {default}: the backfill writes it, batch by "
            "batch; a default that is evaluated per call (random, clock) gets each row's value at backfill time, "
            "not at the time of an ALTER TABLE.",
        ]
        if ctx.dialect == "mysql":
            set_default = default if default.startswith("(") else f"({default})"
            algorithm = mysql_online_clause(mysql_instant_add_at(ctx.version, bool(change.get("position"))))
            expand = [
                Part(
                    f"ALTER TABLE {table} ADD COLUMN {relaxed}, {algorithm};",
                    "nullable and without default: blue's inserts, which do not name the column, stay valid; no "
                    "table copy",
                    abort=f"ALTER TABLE {table} DROP COLUMN {col};",
                    transactional=False,
                ),
                Part(
                    f"ALTER TABLE {table} ALTER COLUMN {col} SET DEFAULT {set_default}, ALGORITHM=INSTANT;",
                    "rows inserted from now on (blue's too) get the value; existing rows are the backfill's",
                    abort=f"ALTER TABLE {table} ALTER COLUMN {col} DROP DEFAULT;",
                    transactional=False,
                ),
            ]
            contract = [
                Part(
                    mysql_online(f"ALTER TABLE {table} MODIFY COLUMN {restated}"),
                    "after blue is gone: the column as the release defines it, NOT NULL; InnoDB rebuilds the table "
                    "in place while green reads and writes",
                    transactional=False,
                )
            ]
            notes += [
                "MySQL has no NOT VALID check: NOT NULL is made in contract by an in-place rebuild (time "
                "proportional to the table, concurrent writes allowed, a brief exclusive metadata lock at start "
                "and end). It needs strict SQL mode and fails, changing nothing, if a NULL is left.",
                "SET DEFAULT with ALGORITHM=INSTANT: a server that cannot change this default instantly refuses "
                "instead of copying the table; then run the step in a quiet moment without the clause.",
            ]
            return RecipeSteps(expand=expand, backfill=[backfill], contract=contract, notes=notes)
        expand = [
            Part(
                f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {relaxed};",
                "nullable and without default: catalog only (a brief ACCESS EXCLUSIVE lock, no rewrite); blue's "
                "inserts, which do not name the column, stay valid",
                abort=f"ALTER TABLE {table} DROP COLUMN IF EXISTS {col};",
            ),
            Part(
                f"ALTER TABLE {table} ALTER COLUMN {col} SET DEFAULT {default};",
                "rows inserted from now on (blue's too) get the value; existing rows are not touched (no rewrite, "
                "even for a volatile default), the backfill does them",
                abort=f"ALTER TABLE {table} ALTER COLUMN {col} DROP DEFAULT;",
            ),
        ]
        contract, nn_notes = not_null_contract(ctx, change.table or "", table, column)
        notes = [_CHECK_PLACEMENT, *notes, *nn_notes]
        return RecipeSteps(expand=expand, backfill=[backfill], contract=contract, notes=notes)
