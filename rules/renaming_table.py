"""renaming-table: ALTER TABLE ... RENAME TO / MySQL RENAME TABLE breaks blue."""

from migrator.lint.rule import Context, Example, Hit, Rule
from migrator.sql.changes import Op

_MYSQL_FIX = """
Keep the physical name and rename only in the application's mapping (ORM table name), or:
-- expand (before green), back to back:
RENAME TABLE {table} TO {new_name};
CREATE VIEW {table} AS SELECT * FROM {new_name};   -- single-table view: blue's INSERT/UPDATE/DELETE go through it
-- (each DDL commits on its own: blue errors for the instant between the two statements)
-- deploy green: uses {new_name}
-- contract, after blue is decommissioned:
DROP VIEW {table};
"""

RULE = Rule(
    id="renaming-table",
    name="Renaming a table breaks blue",
    severity="error",
    category="compat",
    dialects=("postgres", "mysql"),
    ops=(Op.RENAME_TABLE,),
    squawk=("renaming-table",),
    message="RENAME {table} TO {new_name}: blue still uses {table}; no single name serves blue and green",
    why="""
Every query blue runs names the old table; every query green runs names the new one. Whichever
order you deploy in, one of them fails with "relation does not exist" from the moment the rename
commits, so the rename is breaking. PostgreSQL can bridge it: rename the table and, in the same
transaction, create a view with the old name. A simple single-table view is automatically updatable,
so blue keeps reading and writing through it until it is decommissioned. A rename followed in the same
transaction by CREATE VIEW <old name> is therefore not reported.
""",
    fix="""
-- expand (before green), in one transaction so no query ever sees neither name:
BEGIN;
SET LOCAL lock_timeout = '2s';
ALTER TABLE {table} RENAME TO {new_name};
CREATE VIEW {table} AS SELECT * FROM {new_name};   -- auto-updatable: blue's INSERT/UPDATE/DELETE still work
COMMIT;
-- deploy green: uses {new_name}
-- contract, after blue is decommissioned:
DROP VIEW {table};
(Sequences, indexes and constraints keep their old names; rename those separately if you care.)
""",
    bad=[
        Example("ALTER TABLE accounts RENAME TO customers;"),
        Example("ALTER TABLE accounts RENAME TO customers;", setup="CREATE TABLE accounts (id bigint PRIMARY KEY);"),
        Example("RENAME TABLE accounts TO customers;", dialect="mysql"),
        Example("ALTER TABLE accounts RENAME TO customers;", dialect="mysql"),
        Example(
            "ALTER TABLE accounts RENAME TO customers;\nCREATE VIEW accounts AS SELECT * FROM customers;",
            note="outside a transaction blue sees neither name between the two statements",
        ),
    ],
    good=[
        Example(
            "CREATE TABLE acounts_import (id bigint);\nALTER TABLE acounts_import RENAME TO accounts_import;",
            note="the table is created earlier in the same file",
        ),
        Example(
            "BEGIN;\nALTER TABLE accounts RENAME TO customers;\n"
            "CREATE VIEW accounts AS SELECT * FROM customers;\nCOMMIT;",
            note="the updatable view keeps the old name working for blue (the expand half of the rename)",
        ),
        Example(
            "CREATE TABLE import_rows (id bigint);\nRENAME TABLE import_rows TO staged_rows;",
            dialect="mysql",
        ),
    ],
)

_TX_END = {Op.COMMIT, Op.ROLLBACK, Op.BEGIN}


def _compat_view_follows(ctx: Context, old: str) -> bool:
    """A CREATE VIEW with the old name later in the same transaction (PostgreSQL)."""
    if ctx.dialect != "postgres" or not ctx.in_transaction or ctx.statement is None:
        return False
    for st in ctx.statements[ctx.statement.index + 1 :]:
        ops = {ch.op for ch in st.changes}
        if ops & _TX_END:
            return False
        if any(ch.op == Op.CREATE_VIEW and ch.table == old for ch in st.changes):
            return True
    return False


@RULE.check
def check(ctx: Context):
    ch = ctx.change
    if ch.get("object") == "type":
        return None  # ALTER TYPE ... RENAME TO: renaming-type
    if ctx.phase != "breaking" or _compat_view_follows(ctx, ch.table or ""):
        return None
    if ctx.dialect == "mysql":
        return Hit(None, _MYSQL_FIX)
    return True
