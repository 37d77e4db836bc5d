"""adding-serial-primary-key-field: ADD COLUMN serial / identity / PRIMARY KEY on an existing table."""

from migrator.lint.rule import Context, Example, Hit, Rule
from migrator.sql.changes import Op

RULE = Rule(
    id="adding-serial-primary-key-field",
    name="Do not add serial, identity or primary-key columns to existing tables",
    severity="error",
    category="lock",
    dialects=("postgres",),
    ops=(Op.ADD_COLUMN,),
    squawk=("adding-serial-primary-key-field", "adding-field-with-default"),
    message="ADD COLUMN {column} on existing table {table} rewrites it or builds an index under ACCESS EXCLUSIVE",
    why="""
A serial or GENERATED ... AS IDENTITY column draws a sequence value for every existing row, so
PostgreSQL rewrites the whole table (and its indexes) while holding ACCESS EXCLUSIVE: no reads, no
writes until it is done. A PRIMARY KEY (or UNIQUE) declared on the new column additionally builds
its unique index under the same lock. On anything but a small table this is an outage.
""",
    fix="""
Add a plain nullable bigint column, fill it in batches, then build the key without blocking:
  ALTER TABLE {table} ADD COLUMN {column} bigint;
  CREATE SEQUENCE {table}_{column}_seq OWNED BY {table}.{column};
  ALTER TABLE {table} ALTER COLUMN {column} SET DEFAULT nextval('{table}_{column}_seq');  -- new rows
  UPDATE {table} SET {column} = nextval('{table}_{column}_seq') WHERE ... AND {column} IS NULL;  -- batches
  -- make {column} NOT NULL safely (see adding-not-nullable-field), then:
  CREATE UNIQUE INDEX CONCURRENTLY {table}_{column}_key ON {table} ({column});
  ALTER TABLE {table} ADD CONSTRAINT {table}_pkey PRIMARY KEY USING INDEX {table}_{column}_key;
""",
    bad=[
        Example("ALTER TABLE events ADD COLUMN id bigserial PRIMARY KEY;"),
        Example("ALTER TABLE events ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY;"),
        Example("ALTER TABLE events ADD COLUMN seq bigserial;", note="serial fills every row even without a key"),
        Example(
            "ALTER TABLE events ADD COLUMN id uuid PRIMARY KEY DEFAULT gen_random_uuid();",
            note="the primary key index is built under ACCESS EXCLUSIVE (the volatile default also rewrites)",
        ),
    ],
    good=[
        Example("ALTER TABLE events ADD COLUMN seq bigint;"),
        Example(
            "ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY USING INDEX events_seq_key;",
            setup="CREATE TABLE events (seq bigint NOT NULL, payload jsonb);\n"
            "CREATE UNIQUE INDEX CONCURRENTLY events_seq_key ON events (seq);",
        ),
        Example(
            "CREATE TABLE events (payload jsonb);\nALTER TABLE events ADD COLUMN id bigserial PRIMARY KEY;",
            note="events is new in this file: it has no rows to fill",
        ),
    ],
)


@RULE.check
def check(ctx: Context):
    ch = ctx.change
    fills = ctx.lock is not None and ctx.lock.variant == "serial" and ctx.lock.effect == "rewrite"
    if fills and ch.get("primary_key"):
        return Hit(
            "ADD COLUMN {column} ... PRIMARY KEY on existing table {table}: every row gets a sequence value "
            "(table rewritten) and the primary key index is built, all under ACCESS EXCLUSIVE"
        )
    if fills:
        return Hit(
            "ADD COLUMN {column} (serial / identity) on existing table {table}: every row gets a sequence value, "
            "rewriting the table under ACCESS EXCLUSIVE"
        )
    if ch.get("primary_key"):
        return Hit(
            "ADD COLUMN {column} ... PRIMARY KEY on existing table {table}: the primary key index is built "
            "under ACCESS EXCLUSIVE, blocking reads and writes"
        )
    return None
