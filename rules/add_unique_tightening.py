"""add-unique-tightening: a unique index or validated constraint that blue's writes may violate (contract only)."""

from migrator.lint.rule import Context, Example, Hit, Rule
from migrator.sql.changes import Op

_KIND = {
    "unique": "UNIQUE constraint",
    "primary_key": "PRIMARY KEY",
    "foreign_key": "FOREIGN KEY",
    "check": "CHECK constraint",
    "exclude": "EXCLUDE constraint",
    "not_null": "NOT NULL constraint",
}

RULE = Rule(
    id="add-unique-tightening",
    name="Add unique indexes and validated constraints only after blue is decommissioned",
    severity="warning",
    category="compat",
    dialects=("postgres", "mysql"),
    ops=(Op.CREATE_INDEX, Op.ADD_CONSTRAINT),
    squawk=("ban-new-write-restriction",),
    message=(
        "{what} on {table}: blue may still write rows that violate it and its writes would fail; "
        "run it only in the contract phase, after blue is decommissioned"
    ),
    why="""
A unique index, a primary key, or a validated CHECK / FOREIGN KEY constraint tightens what writers may
store. Blue was written without it: it may insert a duplicate, an orphan or an out-of-range value, and
from the moment the constraint exists those writes fail. The existing rows must satisfy it as well, or
the statement fails half-way through the release. Add it in the contract phase, once green never writes
violating rows, the data is clean, and blue is gone. Expand-safe forms are not reported: a constraint
added NOT VALID (only new rows are checked) and a UNIQUE / PRIMARY KEY constraint adopting an existing
unique index (USING INDEX), whose index build was the tightening step. How these statements lock the
table is the concern of disallowed-unique-constraint, adding-foreign-key-constraint and
constraint-missing-not-valid.
""",
    fix="""
-- release N (expand): green never writes violating rows; clean up the existing ones (in batches).
-- contract, after blue is decommissioned: check the data (must return no rows), e.g. for uniqueness
SELECT <columns>, count(*) FROM {table} GROUP BY <columns> HAVING count(*) > 1;
-- PostgreSQL, unique: build the index without blocking writes, then adopt it
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS <name> ON {table} (<columns>);
ALTER TABLE {table} ADD CONSTRAINT <name> UNIQUE USING INDEX <name>;
-- PostgreSQL, CHECK / FOREIGN KEY: add NOT VALID, then VALIDATE in a separate transaction
ALTER TABLE {table} ADD CONSTRAINT <name> CHECK (...) NOT VALID;
ALTER TABLE {table} VALIDATE CONSTRAINT <name>;
""",
    bad=[
        Example("CREATE UNIQUE INDEX CONCURRENTLY accounts_email_key ON accounts (email);"),
        Example("ALTER TABLE accounts ADD CONSTRAINT accounts_email_key UNIQUE (email);"),
        Example("ALTER TABLE orders ADD CONSTRAINT orders_total_check CHECK (total >= 0);"),
        Example(
            "ALTER TABLE orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id);",
            setup=(
                "CREATE TABLE customers (id bigint PRIMARY KEY);\nCREATE TABLE orders (id bigint, customer_id bigint);"
            ),
        ),
        Example(
            "ALTER TABLE accounts ADD UNIQUE INDEX accounts_email_key (email), ALGORITHM=INPLACE, LOCK=NONE;",
            dialect="mysql",
        ),
        Example("CREATE UNIQUE INDEX accounts_email_key ON accounts (email);", dialect="mysql"),
    ],
    good=[
        Example("ALTER TABLE orders ADD CONSTRAINT orders_total_check CHECK (total >= 0) NOT VALID;"),
        Example(
            "ALTER TABLE orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) "
            "REFERENCES customers (id) NOT VALID;"
        ),
        Example("ALTER TABLE accounts ADD CONSTRAINT accounts_email_key UNIQUE USING INDEX accounts_email_key;"),
        Example("CREATE INDEX CONCURRENTLY accounts_email_idx ON accounts (email);"),
        Example(
            "ALTER TABLE audit_log ADD CONSTRAINT audit_log_pkey PRIMARY KEY USING INDEX audit_log_id_key;",
            setup="CREATE TABLE audit_log (id bigint NOT NULL, body text);\n"
            "CREATE UNIQUE INDEX audit_log_id_key ON audit_log (id);",
            note="adopting a unique index on NOT NULL columns: nothing new for blue's writes",
        ),
        Example(
            "CREATE TABLE invites (id bigint, email text);\n"
            "CREATE UNIQUE INDEX invites_email_key ON invites (email);\n"
            "ALTER TABLE invites ADD CONSTRAINT invites_id_positive CHECK (id > 0);",
            note="the table is created earlier in the same file",
        ),
        Example(
            "ALTER TABLE accounts ADD INDEX accounts_email_idx (email), ALGORITHM=INPLACE, LOCK=NONE;", dialect="mysql"
        ),
    ],
)


@RULE.check
def check(ctx: Context):
    if ctx.phase != "contract":
        return None
    ch = ctx.change
    if ch.op == Op.CREATE_INDEX:
        name = ch.get("index")
        what = f"UNIQUE INDEX {name}" if name else "UNIQUE INDEX"
    else:
        name = ch.get("constraint")
        kind = _KIND.get(ch.get("kind"), "constraint")
        what = f"{kind} {name}" if name else kind
    return Hit(fields={"what": what})
