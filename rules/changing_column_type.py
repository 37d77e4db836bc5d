"""changing-column-type: ALTER COLUMN TYPE that rewrites or scans an existing table."""

from migrator.lint.rule import Context, Example, Hit, Rule
from migrator.sql.changes import Op

RULE = Rule(
    id="changing-column-type",
    name="Change column types only when no rewrite is needed",
    severity="error",
    category="lock",
    dialects=("postgres",),
    ops=(Op.ALTER_COLUMN_TYPE,),
    squawk=("changing-column-type",),
    existing_tables_only=False,  # a column new in this file still lives in an existing table: checked below
    message=(
        "ALTER COLUMN {column} TYPE {type} on existing table {table} ({old_type} to {type}) rewrites the table "
        "and its indexes under ACCESS EXCLUSIVE: {type_reason}"
    ),
    why="""
ALTER COLUMN ... TYPE holds ACCESS EXCLUSIVE (no reads, no writes) and, unless the old type is
binary coercible to the new one, copies every row and rebuilds every index of the table. Only a few
changes are free: varchar(n) to a longer varchar or to text, text to unbounded varchar, numeric to a
larger precision at the same scale or to unconstrained numeric, cidr to inet, a larger varbit, a
larger time/timestamp/interval precision. Widening int to bigint, json to jsonb or timestamp to
timestamptz all rewrite. When the column's current type is not in the migration history, bgmigrate
assumes the worst.
(Whether blue can still read and write the new type is a separate question: see
incompatible-type-change and narrowing-type-change.)
""",
    fix="""
Do not change the type in place. Add a column of the new type, keep both in sync, backfill, switch:
  ALTER TABLE {table} ADD COLUMN {column}_new {type};
  -- a trigger (or the application) writes both columns; backfill {column}_new in batches
  -- switch readers to {column}_new, then in the contract phase drop {column}
If a binary-coercible change would do (varchar(n) to text), use it instead.
""",
    bad=[
        Example(
            "ALTER TABLE accounts ALTER COLUMN balance TYPE bigint;",
            setup="CREATE TABLE accounts (id bigint PRIMARY KEY, balance integer);",
            note="int to bigint widens, but every row is rewritten",
        ),
        Example(
            "ALTER TABLE accounts ALTER COLUMN balance TYPE bigint USING balance::bigint;",
            setup="CREATE TABLE accounts (id bigint PRIMARY KEY, balance integer);",
        ),
        Example(
            "ALTER TABLE accounts ALTER COLUMN settings TYPE jsonb USING settings::jsonb;",
            setup="CREATE TABLE accounts (id bigint PRIMARY KEY, settings json);",
        ),
        Example(
            "ALTER TABLE accounts ALTER COLUMN nickname TYPE varchar(20);",
            setup="CREATE TABLE accounts (id bigint PRIMARY KEY, nickname text);",
            note="a bounded varchar from text checks and rewrites every row",
        ),
        Example(
            "ALTER TABLE accounts ADD COLUMN IF NOT EXISTS source text;\n"
            "ALTER TABLE accounts ALTER COLUMN source TYPE bigint USING source::bigint;",
            setup="CREATE TABLE accounts (id bigint PRIMARY KEY);",
            note="the column is new (blue never used it), but accounts is rewritten all the same",
        ),
    ],
    good=[
        Example(
            "ALTER TABLE accounts ALTER COLUMN nickname TYPE varchar(40);",
            setup="CREATE TABLE accounts (id bigint PRIMARY KEY, nickname varchar(20));",
            note="a longer varchar is binary coercible: catalog-only change",
        ),
        Example(
            "ALTER TABLE accounts ALTER COLUMN nickname TYPE text;",
            setup="CREATE TABLE accounts (id bigint PRIMARY KEY, nickname varchar(20));",
        ),
        Example(
            "ALTER TABLE accounts ALTER COLUMN amount TYPE numeric(14, 2);",
            setup="CREATE TABLE accounts (id bigint PRIMARY KEY, amount numeric(10, 2));",
        ),
        Example(
            "CREATE TABLE accounts (id bigint PRIMARY KEY, balance integer);\n"
            "ALTER TABLE accounts ALTER COLUMN balance TYPE bigint;",
            note="accounts is new in this file: rewriting an empty table costs nothing",
        ),
    ],
)


@RULE.check
def check(ctx: Context):
    if ctx.lock is None or ctx.lock.effect not in ("rewrite", "scan") or ctx.table_is_new():
        return None
    tc = ctx.type_change
    if tc is not None and tc.compat == "unknown":
        return Hit(
            "ALTER COLUMN {column} TYPE {type} on existing table {table}: the current type is not in the migration "
            "history, so assume the table and its indexes are rewritten under ACCESS EXCLUSIVE"
        )
    if ctx.lock.effect == "scan":
        return Hit(
            "ALTER COLUMN {column} TYPE {type} on existing table {table} ({old_type} to {type}) checks every row "
            "under ACCESS EXCLUSIVE: {type_reason}"
        )
    return True
