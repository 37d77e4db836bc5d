"""ban-drop-view: DROP [MATERIALIZED] VIEW of a view blue may still read (contract phase only)."""

from migrator.lint.rule import Context, Example, Rule
from migrator.sql.changes import Op

RULE = Rule(
    id="ban-drop-view",
    name="Drop a view only after blue is decommissioned",
    severity="warning",
    category="compat",
    dialects=("postgres", "mysql"),
    ops=(Op.DROP_VIEW,),
    squawk=("ban-drop-view",),
    message=(
        "DROP VIEW {table}: blue may still query {table}; run it "
        "only in the contract phase, after blue is decommissioned"
    ),
    why="""
A view is part of the schema blue was built against: reports, read models or the compatibility view
left behind by a table rename. Blue keeps running until green has fully taken over, so dropping the
view fails every blue query on it. It is a contract step.
""",
    fix="""
-- release N: green stops querying {table}.
-- contract, after blue is decommissioned:
SET lock_timeout = '2s';   -- MySQL: SET SESSION lock_wait_timeout = 5;
DROP VIEW IF EXISTS {table};   -- DROP MATERIALIZED VIEW for a materialized view
If you are replacing the view's definition, use CREATE OR REPLACE VIEW with the same columns
(new columns only at the end) instead of drop + create.
""",
    bad=[
        Example("DROP VIEW active_accounts;"),
        Example("DROP MATERIALIZED VIEW monthly_revenue;"),
        Example("DROP VIEW active_accounts;", dialect="mysql"),
    ],
    good=[
        Example(
            "CREATE VIEW import_preview AS SELECT 1 AS n;\nDROP VIEW import_preview;",
            note="the view is created earlier in the same file: blue never used it",
        ),
        Example("CREATE OR REPLACE VIEW active_accounts AS SELECT id, email FROM accounts;"),
    ],
)


@RULE.check
def check(ctx: Context) -> bool:
    return ctx.phase == "contract"
