"""renaming-schema: ALTER SCHEMA ... RENAME TO breaks every blue query that qualifies names with it."""

from migrator.lint.rule import Context, Example, Rule
from migrator.sql.changes import Op

RULE = Rule(
    id="renaming-schema",
    name="Renaming a schema breaks blue",
    severity="error",
    category="compat",
    dialects=("postgres",),
    ops=(Op.RENAME_SCHEMA,),
    squawk=("renaming-object",),
    message=(
        "ALTER SCHEMA {schema} RENAME TO {new_name}: blue still names {schema} (and may have it on its search_path)"
    ),
    why="""
Every object in the schema changes its qualified name at once. Blue's queries that write
{schema}.table, and its search_path setting, stop finding them the moment the rename commits;
green's queries fail before it. No deploy order serves both, so the rename must be bridged.
""",
    fix="""
-- expand (before green), in one transaction: rename and leave the old name as a schema of views
BEGIN;
SET LOCAL lock_timeout = '2s';
ALTER SCHEMA {schema} RENAME TO {new_name};
CREATE SCHEMA {schema};
CREATE VIEW {schema}.<table> AS SELECT * FROM {new_name}.<table>;   -- one per table blue uses
COMMIT;
-- deploy green: uses {new_name}
-- contract, after blue is decommissioned:
DROP SCHEMA {schema} CASCADE;   -- only the compatibility views live there now
""",
    bad=[Example("ALTER SCHEMA billing RENAME TO payments;")],
    good=[
        Example("CREATE SCHEMA payments;"),
        Example(
            "CREATE SCHEMA imports_tmp;\nALTER SCHEMA imports_tmp RENAME TO imports;",
            note="the schema is created earlier in the same file: blue never used it",
        ),
    ],
)


@RULE.check
def check(ctx: Context) -> bool:
    return ctx.phase == "breaking"
