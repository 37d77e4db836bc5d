"""renaming-type: ALTER TYPE ... RENAME TO breaks blue's SQL that names the type."""

from migrator.lint.rule import Context, Example, Rule
from migrator.sql.changes import Op

RULE = Rule(
    id="renaming-type",
    name="Renaming a type breaks blue",
    severity="error",
    category="compat",
    dialects=("postgres",),
    ops=(Op.RENAME_TABLE,),
    squawk=("renaming-object",),
    message=(
        "ALTER TYPE {type_name} RENAME TO {new_name}: blue's SQL "
        "that names {type_name} (casts, functions) stops working"
    ),
    why="""
Columns follow a renamed type automatically, but SQL text does not: blue's casts
('active'::account_state), function signatures and any DDL it runs name the old type and fail with
"type does not exist" as soon as the rename commits, while green's SQL naming the new type fails
before it. No deploy order serves both.
""",
    fix="""
Keep the old name (types are rarely visible outside SQL), or make blue independent of it first:
-- release N: blue and green stop naming {type_name} in SQL (cast to text, or let the driver infer the type)
-- then, after the release that no longer names it is the only one running:
ALTER TYPE {type_name} RENAME TO {new_name};
""",
    bad=[Example("ALTER TYPE account_state RENAME TO customer_state;")],
    good=[
        Example(
            "ALTER TYPE account_state ADD VALUE 'frozen';",
            note="adding a value is not a rename (see require-enum-value-ordering for its own hazards)",
        ),
        Example(
            "CREATE TYPE import_stat AS ENUM ('new', 'done');\nALTER TYPE import_stat RENAME TO import_state;",
            note="the type is created earlier in the same file: blue never used it",
        ),
    ],
)


@RULE.check
def check(ctx: Context) -> bool:
    return ctx.change.get("object") == "type" and ctx.phase == "breaking"
