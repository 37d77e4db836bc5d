"""disallowed-unique-constraint: UNIQUE / PRIMARY KEY added to an existing table without a prebuilt index."""

from migrator.lint.rule import Context, Example, Hit, Rule
from migrator.sql.changes import Op

RULE = Rule(
    id="disallowed-unique-constraint",
    name="Build unique indexes concurrently, then attach them as constraints",
    severity="error",
    category="lock",
    dialects=("postgres",),
    ops=(Op.ADD_CONSTRAINT, Op.ADD_COLUMN),
    squawk=("disallowed-unique-constraint", "adding-serial-primary-key-field"),
    message=(
        "{kind} constraint on existing table {table} builds its unique index under ACCESS EXCLUSIVE: "
        "reads and writes wait for the whole build"
    ),
    why="""
ADD CONSTRAINT ... UNIQUE (...) or PRIMARY KEY (...) builds a new unique index while holding
ACCESS EXCLUSIVE on the table, so every query on it, reads included, waits for the full scan and
sort. CREATE UNIQUE INDEX CONCURRENTLY builds the same index while reads and writes continue;
ADD CONSTRAINT ... USING INDEX then adopts it in a catalog-only step. A PRIMARY KEY also makes its
columns NOT NULL: if they are still nullable, USING INDEX has to scan the table for NULLs under the
same lock, so make them NOT NULL first (see adding-not-nullable-field).
""",
    fix="""
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS <index> ON {table} (...);  -- outside a transaction
ALTER TABLE {table} ADD CONSTRAINT <name> UNIQUE USING INDEX <index>;  -- or PRIMARY KEY USING INDEX
""",
    bad=[
        Example("ALTER TABLE accounts ADD CONSTRAINT accounts_email_key UNIQUE (email);"),
        Example("ALTER TABLE accounts ADD PRIMARY KEY (id);"),
        Example("ALTER TABLE accounts ADD COLUMN handle text UNIQUE;"),
        Example(
            "ALTER TABLE accounts ADD CONSTRAINT accounts_pkey PRIMARY KEY USING INDEX accounts_id_key;",
            setup="CREATE TABLE accounts (id bigint, email text);\n"
            "CREATE UNIQUE INDEX CONCURRENTLY accounts_id_key ON accounts (id);",
            note="id is nullable: the primary key must first scan the table for NULLs",
        ),
    ],
    good=[
        Example(
            "ALTER TABLE accounts ADD CONSTRAINT accounts_email_key UNIQUE USING INDEX accounts_email_idx;",
            setup="CREATE TABLE accounts (id bigint NOT NULL, email text);\n"
            "CREATE UNIQUE INDEX CONCURRENTLY accounts_email_idx ON accounts (email);",
        ),
        Example(
            "ALTER TABLE accounts ADD CONSTRAINT accounts_pkey PRIMARY KEY USING INDEX accounts_id_key;",
            setup="CREATE TABLE accounts (id bigint NOT NULL, email text);\n"
            "CREATE UNIQUE INDEX CONCURRENTLY accounts_id_key ON accounts (id);",
            note="id is already NOT NULL: adopting the index is catalog-only",
        ),
        Example(
            "CREATE TABLE accounts (id bigint, email text);\n"
            "ALTER TABLE accounts ADD CONSTRAINT accounts_email_key UNIQUE (email);",
            note="accounts is new in this file: the index is built on an empty table",
        ),
    ],
)

_KIND = {"unique": "UNIQUE", "primary_key": "PRIMARY KEY"}


@RULE.check
def check(ctx: Context):
    ch = ctx.change
    if ch.op == Op.ADD_COLUMN:
        if not ch.get("unique") or ch.get("primary_key"):  # inline PRIMARY KEY: adding-serial-primary-key-field
            return None
        return Hit(
            "ADD COLUMN {column} ... UNIQUE on existing table {table} builds a unique index under ACCESS EXCLUSIVE: "
            "reads and writes wait for the whole build",
            fix="""
ALTER TABLE {table} ADD COLUMN {column} <type>;
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS {table}_{column}_key ON {table} ({column});
ALTER TABLE {table} ADD CONSTRAINT {table}_{column}_key UNIQUE USING INDEX {table}_{column}_key;
""",
        )
    kind = _KIND.get(ch.get("kind"))
    if kind is None:
        return None
    if not ch.get("using_index"):
        return Hit(fields={"kind": kind})
    if ctx.lock is not None and ctx.lock.effect == "scan":
        return Hit(
            "PRIMARY KEY USING INDEX {using_index} on existing table {table}: its columns are not known to be "
            "NOT NULL, so PostgreSQL scans the table for NULLs under ACCESS EXCLUSIVE",
            fix="""
Make the key columns NOT NULL first without a long lock (see adding-not-nullable-field):
ALTER TABLE {table} ADD CONSTRAINT <c> CHECK (<column> IS NOT NULL) NOT VALID;
ALTER TABLE {table} VALIDATE CONSTRAINT <c>;  -- separate transaction
ALTER TABLE {table} ALTER COLUMN <column> SET NOT NULL;  -- PostgreSQL 12+: no scan
then ADD CONSTRAINT ... PRIMARY KEY USING INDEX {using_index}.
""",
        )
    return None
