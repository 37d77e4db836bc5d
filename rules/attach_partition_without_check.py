"""attach-partition-without-check: ATTACH PARTITION of an existing table no CHECK constraint proves."""

from migrator.lint.rule import Context, Example, Hit, Rule
from migrator.sql.changes import Op

RULE = Rule(
    id="attach-partition-without-check",
    name="Prove a partition's bound before attaching it",
    severity="warning",
    category="lock",
    dialects=("postgres",),
    ops=(Op.ATTACH_PARTITION,),
    message=(
        "ATTACH PARTITION {partition} reads every row of {partition} under ACCESS EXCLUSIVE to check the "
        "bound (and the default partition of {table}, if there is one), while {table} is held in SHARE UPDATE "
        "EXCLUSIVE: no validated CHECK constraint on {partition} proves the bound"
    ),
    why="""
Attaching a partition takes SHARE UPDATE EXCLUSIVE on the partitioned table, which lets queries
run, but ACCESS EXCLUSIVE on the table being attached, and then reads all of it to check that every
row fits the partition bound. If the partitioned table has a DEFAULT partition, that one is locked
ACCESS EXCLUSIVE and read in full too, to check it holds no row of the new bound: every query that
touches the default partition (reads of the whole table, inserts routed there) waits for the
scan. PostgreSQL skips both scans when a validated CHECK constraint on the table (and on the
default partition) already implies the bound. The constraint can be added without blocking:
NOT VALID takes a brief lock, VALIDATE CONSTRAINT reads the rows under SHARE UPDATE EXCLUSIVE,
which lets reads and writes go on.
Compared with squawk: squawk has no rule for ATTACH PARTITION; the PostgreSQL documentation
recommends this CHECK ("Partition Maintenance").
""",
    fix="""
Prove the bound first, then attach, then drop the CHECK (the partition's own bound replaces it):
  ALTER TABLE {partition} ADD CONSTRAINT {partition}_bound CHECK (<key> >= <from> AND <key> < <to>) NOT VALID;
  ALTER TABLE {partition} VALIDATE CONSTRAINT {partition}_bound;
  {attach_sql};
  ALTER TABLE {partition} DROP CONSTRAINT {partition}_bound;
With a default partition, give it a validated CHECK that excludes the new bound as well.
""",
    bad=[
        Example(
            "ALTER TABLE events ATTACH PARTITION events_2024 FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');",
            setup="CREATE TABLE events (id bigint, at date) PARTITION BY RANGE (at);\n"
            "CREATE TABLE events_2024 (id bigint, at date);",
        ),
    ],
    good=[
        Example(
            "ALTER TABLE events_2024 ADD CONSTRAINT events_2024_bound "
            "CHECK (at >= '2024-01-01' AND at < '2025-01-01') NOT VALID;\n"
            "ALTER TABLE events_2024 VALIDATE CONSTRAINT events_2024_bound;\n"
            "ALTER TABLE events ATTACH PARTITION events_2024 FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');",
            setup="CREATE TABLE events (id bigint, at date) PARTITION BY RANGE (at);\n"
            "CREATE TABLE events_2024 (id bigint, at date);",
            note="the validated CHECK proves the bound: no scan",
        ),
        Example(
            "CREATE TABLE events_2025 (id bigint, at date);\n"
            "ALTER TABLE events ATTACH PARTITION events_2025 FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');",
            setup="CREATE TABLE events (id bigint, at date) PARTITION BY RANGE (at);",
            note="events_2025 is new in this file: nothing uses it and the scan reads an empty table",
        ),
    ],
)


@RULE.check
def check(ctx: Context) -> Hit | None:
    partition = ctx.change.get("partition")
    if not partition or ctx.table_is_new(partition):
        return None
    table = ctx.table(partition)
    if table is not None and any(c.kind == "check" and c.validated for c in table.constraints):
        return None
    return Hit(fields={"attach_sql": " ".join(ctx.statement.sql.split()).rstrip(";")})
