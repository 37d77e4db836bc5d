"""ban-drop-schema: DROP SCHEMA while blue may still use objects in it (contract phase only)."""

from migrator.lint.rule import Context, Example, Rule
from migrator.sql.changes import Op

RULE = Rule(
    id="ban-drop-schema",
    name="Drop a schema only after blue is decommissioned",
    severity="warning",
    category="compat",
    dialects=("postgres", "mysql"),
    ops=(Op.DROP_SCHEMA,),
    squawk=("ban-drop-schema",),
    message=(
        "DROP SCHEMA {schema}: blue may still use objects in {schema}; "
        "run it only in the contract phase, after blue is decommissioned"
    ),
    why="""
Every table, view, function and type in the schema goes with it (with CASCADE, silently; without it,
only an empty schema can be dropped). Blue is still running while green rolls out and may query any
of them. In MySQL a schema is a database: DROP SCHEMA drops all its tables. This is a contract step at
the earliest, and deserves a review of what the schema still contains.
""",
    fix="""
-- release N: green stops using everything in {schema}; list what is left:
--   SELECT table_name FROM information_schema.tables WHERE table_schema = '{schema}';
-- contract, after blue is decommissioned:
DROP SCHEMA IF EXISTS {schema};   -- without CASCADE: fails if an object you forgot is still in it
""",
    bad=[
        Example("DROP SCHEMA reporting;"),
        Example("DROP SCHEMA reporting CASCADE;"),
    ],
    good=[
        Example(
            "CREATE SCHEMA staging;\nDROP SCHEMA staging;",
            note="the schema is created earlier in the same file: blue never used it",
        ),
        Example("CREATE SCHEMA reporting;"),
    ],
)


@RULE.check
def check(ctx: Context) -> bool:
    return ctx.phase == "contract"
