"""ban-drop-type: DROP TYPE of a type blue may still use (contract phase only)."""

from migrator.lint.rule import Context, Example, Rule
from migrator.sql.changes import Op

RULE = Rule(
    id="ban-drop-type",
    name="Drop a type only after blue is decommissioned",
    severity="warning",
    category="compat",
    dialects=("postgres",),
    ops=(Op.DROP_TYPE,),
    squawk=("ban-drop-type",),
    message=(
        "DROP TYPE {type_name}: blue may still use {type_name} (casts, function signatures, "
        "columns); run it only in the contract phase, after blue is decommissioned"
    ),
    why="""
Blue's SQL may name the type directly ('active'::account_state, function arguments, temporary
tables), and a column of that type cannot even exist without it (the drop fails, or with CASCADE
silently drops the columns). Removing a type is a contract step.
""",
    fix="""
-- release N: green stops using {type_name}; columns of that type were migrated in an earlier
-- expand/contract cycle.
-- contract, after blue is decommissioned:
DROP TYPE IF EXISTS {type_name};   -- no CASCADE: it would drop every column of this type
""",
    bad=[
        Example("DROP TYPE account_state;"),
        Example("DROP TYPE account_state CASCADE;", setup="CREATE TYPE account_state AS ENUM ('active', 'closed');"),
    ],
    good=[
        Example(
            "CREATE TYPE import_state AS ENUM ('new', 'done');\nDROP TYPE import_state;",
            note="the type is created earlier in the same file: blue never used it",
        ),
    ],
)


@RULE.check
def check(ctx: Context) -> bool:
    return ctx.phase == "contract"
