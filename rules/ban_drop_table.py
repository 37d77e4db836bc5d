"""ban-drop-table: DROP TABLE of a table blue still uses (contract phase only)."""

from migrator.lint.rule import Context, Example, Rule
from migrator.sql.changes import Op

RULE = Rule(
    id="ban-drop-table",
    name="Drop a table only after blue is decommissioned",
    severity="warning",
    category="compat",
    dialects=("postgres", "mysql"),
    ops=(Op.DROP_TABLE,),
    squawk=("ban-drop-table",),
    message=(
        "DROP TABLE {table}: blue still reads or writes {table}; run "
        "it only in the contract phase, after blue is decommissioned"
    ),
    why="""
Blue keeps serving traffic while green rolls out, and blue's code still queries this table: once it
is dropped every such request fails with "relation does not exist" / "Table doesn't exist". The data
is gone too, so a rollback to blue cannot bring it back. Dropping a table is a contract step: ship the
code that stops using it first, decommission blue, then drop it.
""",
    fix="""
-- release N: green stops using {table}; blue keeps working.
-- contract, after blue is decommissioned (and after a backup if the data may be needed again):
SET lock_timeout = '2s';   -- MySQL: SET SESSION lock_wait_timeout = 5;
DROP TABLE IF EXISTS {table};   -- no CASCADE: let a forgotten foreign key or view fail the migration loudly
""",
    bad=[
        Example("DROP TABLE legacy_invoices;"),
        Example("DROP TABLE IF EXISTS legacy_invoices;", dialect="mysql"),
        Example("DROP TABLE legacy_invoices;", setup="CREATE TABLE legacy_invoices (id bigint PRIMARY KEY);"),
    ],
    good=[
        Example(
            "CREATE TABLE import_batch (id bigint, payload text);\nDROP TABLE import_batch;",
            note="created earlier in the same file: blue never used it",
        ),
        Example(
            "CREATE TABLE import_batch (id bigint);\nDROP TABLE import_batch;",
            dialect="mysql",
        ),
    ],
)


@RULE.check
def check(ctx: Context) -> bool:
    return ctx.phase == "contract"
