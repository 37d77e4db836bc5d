"""refresh-materialized-view-concurrently: REFRESH MATERIALIZED VIEW without CONCURRENTLY blocks readers."""

from migrator.lint.fixes import concurrently
from migrator.lint.rule import Context, Example, Hit, Rule
from migrator.sql.changes import Op

RULE = Rule(
    id="refresh-materialized-view-concurrently",
    name="Refresh materialized views concurrently",
    severity="error",
    category="lock",
    dialects=("postgres",),
    ops=(Op.REFRESH_MATVIEW,),
    message=(
        "REFRESH MATERIALIZED VIEW {table} holds ACCESS EXCLUSIVE while it recomputes the view: "
        "every read of {table} waits until it ends"
    ),
    why="""
A plain REFRESH MATERIALIZED VIEW runs the view's whole query and replaces its contents while
holding ACCESS EXCLUSIVE on the view, so every SELECT from it waits for the full recomputation.
REFRESH ... CONCURRENTLY computes the new contents next to the old ones and applies the difference
under an EXCLUSIVE lock, which lets reads continue (another refresh still waits). It needs a
UNIQUE index on the materialized view (on plain columns, without WHERE) and a view that is already
populated, and it does more work in total. A view created earlier in the same file is not
reported: nobody reads it yet.
""",
    fix="""
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS {table}_key ON {table} (<unique columns>);  -- once
{fixed_sql}
""",
    bad=[Example("REFRESH MATERIALIZED VIEW daily_revenue;")],
    good=[
        Example("REFRESH MATERIALIZED VIEW CONCURRENTLY daily_revenue;"),
        Example(
            "CREATE MATERIALIZED VIEW daily_revenue AS SELECT 1 AS day WITH NO DATA;\n"
            "REFRESH MATERIALIZED VIEW daily_revenue;",
            note="the view is new in this file: the first refresh blocks no reader",
        ),
    ],
)


@RULE.check
def check(ctx: Context):
    ch = ctx.change
    if ch.get("concurrently") or ctx.schema.views.get(ch.table or "") == ctx.unit:
        return None
    return Hit(fields={"fixed_sql": concurrently(ctx.statement.sql)})
