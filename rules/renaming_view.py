"""renaming-view: ALTER [MATERIALIZED] VIEW ... RENAME TO breaks blue."""

from migrator.lint.rule import Context, Example, Rule
from migrator.sql.changes import Op

RULE = Rule(
    id="renaming-view",
    name="Renaming a view breaks blue",
    severity="error",
    category="compat",
    dialects=("postgres", "mysql"),
    ops=(Op.RENAME_VIEW,),
    squawk=("renaming-object",),
    message="RENAME VIEW {table} TO {new_name}: blue still queries {table}; no single name serves blue and green",
    why="""
Blue queries the view by its old name and green by its new one; the rename makes one of them fail
whichever order they are deployed in. A view holds no data, so the fix is cheap: create the new view
alongside the old one and drop the old one in the contract phase.
""",
    fix="""
-- expand (before green): the same query under the new name
CREATE VIEW {new_name} AS <the query of {table}>;
-- deploy green: queries {new_name}
-- contract, after blue is decommissioned:
DROP VIEW {table};
""",
    bad=[
        Example("ALTER VIEW active_accounts RENAME TO active_customers;"),
        Example("ALTER MATERIALIZED VIEW monthly_revenue RENAME TO revenue_by_month;"),
    ],
    good=[
        Example(
            "CREATE VIEW import_preview AS SELECT 1 AS n;\nALTER VIEW import_preview RENAME TO import_sample;",
            note="the view is created earlier in the same file",
        ),
        Example("CREATE VIEW active_customers AS SELECT id, email FROM accounts WHERE active;"),
    ],
)


@RULE.check
def check(ctx: Context) -> bool:
    return ctx.phase == "breaking"
