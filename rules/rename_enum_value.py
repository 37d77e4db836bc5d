"""rename-enum-value: ALTER TYPE ... RENAME VALUE breaks blue's reads and writes of the old label."""

from migrator.lint.rule import Context, Example, Rule
from migrator.sql.changes import Op

RULE = Rule(
    id="rename-enum-value",
    name="Renaming an enum value breaks blue",
    severity="error",
    category="compat",
    dialects=("postgres",),
    ops=(Op.RENAME_ENUM_VALUE,),
    squawk=("renaming-object",),
    message="ALTER TYPE {type_name} RENAME VALUE '{value}' TO '{new_name}': blue still writes and compares '{value}'",
    why="""
Renaming an enum label rewrites every stored value at once. Blue keeps writing the old label (its
INSERTs fail with "invalid input value for enum") and comparing against it (its WHERE state = 'old'
finds nothing), while green, deployed before the rename, would fail on the new label. No deploy
order serves both: add the new label first, move the data, and retire the old label last.
""",
    fix="""
-- expand (before green), outside a transaction on PG < 12:
ALTER TYPE {type_name} ADD VALUE IF NOT EXISTS '{new_name}' AFTER '{value}';
-- deploy green: writes '{new_name}', reads both '{value}' and '{new_name}'
-- migrate, in batches: UPDATE <table> SET <column> = '{new_name}' WHERE <column> = '{value}' AND id BETWEEN ? AND ?;
-- contract, after blue is decommissioned: '{value}' stays in the type unused (PostgreSQL cannot
-- drop an enum value); add a CHECK (<column> <> '{value}') NOT VALID + VALIDATE if it must never come back.
""",
    bad=[Example("ALTER TYPE account_state RENAME VALUE 'disabled' TO 'suspended';")],
    good=[
        Example("ALTER TYPE account_state ADD VALUE 'suspended' AFTER 'disabled';"),
        Example(
            "CREATE TYPE import_state AS ENUM ('new', 'don');\nALTER TYPE import_state RENAME VALUE 'don' TO 'done';",
            note="the type is created earlier in the same file: blue never used it",
        ),
    ],
)


@RULE.check
def check(ctx: Context) -> bool:
    return ctx.phase == "breaking"
