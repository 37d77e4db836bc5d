"""require-concurrent-partition-detach: DETACH PARTITION without CONCURRENTLY (PostgreSQL 14+)."""

from migrator.lint.fixes import concurrently
from migrator.lint.rule import Context, Example, Hit, Rule
from migrator.sql.changes import Op

RULE = Rule(
    id="require-concurrent-partition-detach",
    name="Detach partitions concurrently",
    severity="error",
    category="lock",
    dialects=("postgres",),
    versions={"postgres": ">=14"},
    ops=(Op.DETACH_PARTITION,),
    squawk=("require-concurrent-partition-detach",),
    message=(
        "DETACH PARTITION {partition} takes ACCESS EXCLUSIVE on the partitioned table {table}: "
        "every query on {table} and all its partitions waits"
    ),
    why="""
ALTER TABLE ... DETACH PARTITION takes ACCESS EXCLUSIVE on the partitioned (parent) table, so
every read and write of the whole partitioned table, not only of the detached partition, queues
behind it and behind any long query it waits for. Since PostgreSQL 14, DETACH PARTITION ...
CONCURRENTLY takes only SHARE UPDATE EXCLUSIVE on the parent and runs in two transactions, letting
queries continue. It cannot run inside a transaction block, nor when the table has a default
partition; if it is interrupted, finish it with DETACH PARTITION ... FINALIZE.
""",
    fix="""
{fixed_sql}  -- in its own migration, outside a transaction block
""",
    bad=[Example("ALTER TABLE events DETACH PARTITION events_2023;")],
    good=[
        Example("ALTER TABLE events DETACH PARTITION events_2023 CONCURRENTLY;"),
        Example("ALTER TABLE events DETACH PARTITION events_2023;", version="13", note="no CONCURRENTLY before 14"),
        Example(
            "CREATE TABLE events (id bigint, at timestamptz) PARTITION BY RANGE (at);\n"
            "CREATE TABLE events_2023 PARTITION OF events FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');\n"
            "ALTER TABLE events DETACH PARTITION events_2023;",
            note="events is new in this file",
        ),
    ],
)


@RULE.check
def check(ctx: Context):
    if ctx.change.get("concurrently"):
        return None
    return Hit(fields={"fixed_sql": concurrently(ctx.statement.sql)})
