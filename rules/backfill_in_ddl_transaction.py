"""backfill-in-ddl-transaction: a data backfill in the transaction that holds a blocking DDL lock on the table."""

from migrator.lint.rule import Context, Example, Hit, Rule
from migrator.sql.changes import Op

RULE = Rule(
    id="backfill-in-ddl-transaction",
    name="Backfill inside the DDL transaction",
    severity="warning",
    category="transaction",
    dialects=("postgres",),
    ops=(Op.UPDATE, Op.DELETE, Op.INSERT),
    message=(
        "{verb} on {table} in the transaction that holds {held_lock} on it (line {held_line}): the table stays "
        "blocked until the backfill finishes"
    ),
    why="""
The DDL's lock (ACCESS EXCLUSIVE for most ALTER TABLE forms, SHARE for CREATE INDEX) is held until
COMMIT. A backfill that touches every row in the same transaction keeps that lock for the whole
backfill: blue's reads and writes of the table wait minutes instead of milliseconds. A single big
UPDATE also holds every row lock it takes to the end, bloats the table and lags replicas. Backfills
are a migrate step of their own: after the expand DDL has committed, in batches, each in its own
short transaction.
""",
    fix="""
Commit the DDL first, then backfill in batches outside it (bgmigrate's runner does this for migrate steps):
BEGIN; SET LOCAL lock_timeout = '2s'; ALTER TABLE {table} ...; COMMIT;
-- repeat until no rows are updated, each batch its own transaction:
UPDATE {table} SET ... WHERE id IN (SELECT id FROM {table} WHERE <not yet done> ORDER BY id LIMIT 5000);
""",
    bad=[
        Example("BEGIN;\nALTER TABLE accounts ADD COLUMN region text;\nUPDATE accounts SET region = 'eu';\nCOMMIT;"),
        Example(
            "ALTER TABLE accounts ADD COLUMN region text;\nUPDATE accounts SET region = 'eu' WHERE region IS NULL;",
            settings={"assume_in_transaction": True},
        ),
        Example(
            "BEGIN;\nALTER TABLE accounts_archive ADD COLUMN region text;\n"
            "INSERT INTO accounts_archive SELECT * FROM accounts WHERE closed;\nCOMMIT;",
            note="INSERT ... SELECT is a backfill too",
        ),
        Example(
            "BEGIN;\nCREATE INDEX accounts_region_idx ON accounts (region);\n"
            "DELETE FROM accounts WHERE closed;\nCOMMIT;"
        ),
    ],
    good=[
        Example("ALTER TABLE accounts ADD COLUMN region text;\nUPDATE accounts SET region = 'eu';", note="autocommit"),
        Example(
            "BEGIN;\nALTER TABLE accounts ADD COLUMN region text;\nCOMMIT;\n"
            "BEGIN;\nUPDATE accounts SET region = 'eu' WHERE id BETWEEN 1 AND 5000;\nCOMMIT;"
        ),
        Example(
            "BEGIN;\nALTER TABLE plans ADD COLUMN tier text;\n"
            "INSERT INTO plans (id, tier) VALUES (9, 'gold');\nCOMMIT;",
            note="a few literal rows are not a backfill",
        ),
        Example(
            "BEGIN;\nCREATE TABLE regions (code text PRIMARY KEY);\n"
            "INSERT INTO regions SELECT DISTINCT region FROM accounts;\nCOMMIT;",
            note="the table is created in this transaction: nobody else can be waiting on it",
        ),
        Example("BEGIN;\nALTER TABLE accounts ADD COLUMN region text;\nUPDATE orders SET note = '';\nCOMMIT;"),
    ],
)


@RULE.check
def check(ctx: Context):
    if not ctx.in_transaction or ctx.tx is None:
        return None
    ch = ctx.change
    if ch.op == Op.INSERT and not ch.get("from_select"):
        return None  # INSERT ... VALUES: a few rows, not a backfill
    held = next((h for h in ctx.tx.locks if h.table == ch.table), None)
    if held is None:
        return None
    verb = {"insert": "INSERT ... SELECT", "update": "UPDATE", "delete": "DELETE"}[ch.op]
    return Hit(fields={"verb": verb, "held_lock": held.mode, "held_line": held.line})
