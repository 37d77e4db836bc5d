"""ban-truncate-cascade: TRUNCATE ... CASCADE empties every table that references the named ones."""

from migrator.lint.rule import Context, Example, Rule
from migrator.sql.changes import Op

RULE = Rule(
    id="ban-truncate-cascade",
    name="Do not TRUNCATE ... CASCADE",
    severity="error",
    category="compat",
    dialects=("postgres",),
    ops=(Op.TRUNCATE,),
    squawk=("ban-truncate-cascade",),
    message=(
        "TRUNCATE {table} CASCADE also empties every table with a foreign key to {table}, and every table "
        "referencing those, recursively"
    ),
    why="""
CASCADE makes TRUNCATE follow foreign keys: each table that references a truncated table is
truncated too, then each table referencing those, and so on. Which tables that is depends on
foreign keys that may have been added long after this migration was written, so the statement can
silently wipe data far from the table it names. Every one of those tables is also locked ACCESS
EXCLUSIVE for the rest of the transaction.
""",
    fix="""
Name every table to empty explicitly, without CASCADE; PostgreSQL then refuses instead of silently
emptying a table you did not list:
TRUNCATE {table}, <referencing_table>, ...;
""",
    bad=[Example("TRUNCATE accounts CASCADE;"), Example("TRUNCATE TABLE sessions, tokens CASCADE;")],
    good=[
        Example("TRUNCATE sessions, tokens;"),
        Example(
            "CREATE TABLE staging_accounts (id bigint PRIMARY KEY);\nTRUNCATE staging_accounts CASCADE;",
            note="a table created in this file can only be referenced by tables created after it here",
        ),
    ],
)


@RULE.check
def check(ctx: Context) -> bool:
    return bool(ctx.change.get("cascade"))
