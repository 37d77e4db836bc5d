"""adding-field-with-default: ADD COLUMN whose default or generation expression rewrites the table."""

from migrator.lint.rule import Context, Example, Hit, Rule
from migrator.sql.changes import Op

RULE = Rule(
    id="adding-field-with-default",
    name="Add columns without a table-rewriting default",
    severity="error",
    category="lock",
    dialects=("postgres",),
    ops=(Op.ADD_COLUMN,),
    squawk=("adding-field-with-default",),
    message="ADD COLUMN {column} on existing table {table} rewrites the whole table under ACCESS EXCLUSIVE",
    why="""
Since PostgreSQL 11 a new column with a constant or STABLE default (0, 'x', now()) is free: the
value is stored once in the catalog and nothing is rewritten. Three cases still copy every row of
the table and rebuild its indexes while ACCESS EXCLUSIVE is held, so every read and write of the
table waits for the whole copy:
- a VOLATILE default (random(), gen_random_uuid(), clock_timestamp(), nextval(), or a function
  bgmigrate does not know), because it must be evaluated separately for each existing row;
- a GENERATED ALWAYS AS (...) STORED column, because its value is computed and stored per row;
- any non-null default on PostgreSQL 10 and older, which had no catalog-only defaults.
(serial and identity columns also fill every row: see adding-serial-primary-key-field.)
""",
    fix="""
Add the column without the default, attach the default for new rows, then backfill old rows in
batches outside the DDL transaction:
  ALTER TABLE {table} ADD COLUMN {column} <type>;
  ALTER TABLE {table} ALTER COLUMN {column} SET DEFAULT <expression>;
  UPDATE {table} SET {column} = <expression> WHERE <key> BETWEEN ... AND {column} IS NULL;  -- per batch
For a stored generated column, add a plain column filled by a trigger and backfilled the same way.
""",
    bad=[
        Example(
            "ALTER TABLE accounts ADD COLUMN plan_id bigint DEFAULT 1 REFERENCES plans (id);",
            version="10",
            note="before PostgreSQL 11 the default rewrites the table (and the foreign key is validated)",
        ),
        Example("ALTER TABLE accounts ADD COLUMN ab_group double precision DEFAULT random();"),
        Example("ALTER TABLE accounts ADD COLUMN public_id uuid DEFAULT gen_random_uuid();"),
        Example(
            "ALTER TABLE accounts ADD COLUMN balance_cents bigint GENERATED ALWAYS AS (balance * 100) STORED;",
            note="a stored generated column is computed for every row",
        ),
        Example(
            "ALTER TABLE accounts ADD COLUMN retries integer DEFAULT 0;",
            version="10",
            note="before PostgreSQL 11 even a constant default rewrites the table",
        ),
    ],
    good=[
        Example("ALTER TABLE accounts ADD COLUMN retries integer DEFAULT 0;", note="constant default, PG 11+"),
        Example("ALTER TABLE accounts ADD COLUMN created_at timestamptz DEFAULT now();", note="now() is STABLE"),
        Example(
            "ALTER TABLE accounts ADD COLUMN public_id uuid;\n"
            "ALTER TABLE accounts ALTER COLUMN public_id SET DEFAULT gen_random_uuid();",
            note="the default only applies to new rows; old rows are backfilled in batches",
        ),
        Example(
            "CREATE TABLE accounts (id bigint PRIMARY KEY);\n"
            "ALTER TABLE accounts ADD COLUMN public_id uuid DEFAULT gen_random_uuid();",
            note="the table is new in this file: rewriting an empty table costs nothing",
        ),
    ],
)

_MESSAGES = {
    "volatile_default": (
        "ADD COLUMN {column} on existing table {table} with volatile default {default}: PostgreSQL evaluates it "
        "for every row and rewrites the table under ACCESS EXCLUSIVE, blocking reads and writes"
    ),
    "generated_stored": (
        "ADD COLUMN {column} GENERATED ... STORED on existing table {table}: every row is computed and the table "
        "rewritten under ACCESS EXCLUSIVE, blocking reads and writes"
    ),
    "default": (
        "ADD COLUMN {column} with default {default} on existing table {table}: before PostgreSQL 11 any non-null "
        "default rewrites the table under ACCESS EXCLUSIVE (target version {version})"
    ),
}


@RULE.check
def check(ctx: Context):
    if ctx.lock is None or ctx.lock.effect != "rewrite":
        return None
    variant = "default" if ctx.lock.variant == "references_default" else ctx.lock.variant
    message = _MESSAGES.get(variant)
    return Hit(message) if message else None
