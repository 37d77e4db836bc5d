"""ban-drop-database: DROP DATABASE in a migration."""

from migrator.lint.rule import Context, Example, Rule
from migrator.sql.changes import Op

RULE = Rule(
    id="ban-drop-database",
    name="Never drop a database from a migration",
    severity="error",
    category="compat",
    dialects=("postgres", "mysql"),
    ops=(Op.DROP_DATABASE,),
    squawk=("ban-drop-database",),
    message="DROP DATABASE {schema} destroys every table, and all the data, that blue and green use",
    why="""
A migration runs against a live database shared by blue and green. Dropping a database removes
everything in it at once, cannot be undone without a restore, and cannot be split into an expand
and a contract step. It also cannot run inside a transaction block and fails while anyone is
connected, so at best it breaks the migration run, at worst it succeeds.
""",
    fix="""
Remove the statement. Decommission a database as an operational task (backup, revoke connect,
drop) outside the migration history.
""",
    bad=[
        Example("DROP DATABASE legacy_reporting;"),
        Example("DROP DATABASE IF EXISTS legacy_reporting;"),
        Example("DROP SCHEMA legacy_reporting;", dialect="mysql", note="in MySQL, SCHEMA means DATABASE"),
    ],
    good=[Example("DROP TABLE IF EXISTS legacy_reports;", note="a table, in the contract phase: other rules apply")],
)


@RULE.check
def check(ctx: Context) -> bool:
    return True
