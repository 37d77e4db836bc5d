"""ban-truncate: TRUNCATE of a table blue is using (no deploy order makes it safe)."""

from migrator.lint.rule import Context, Example, Rule
from migrator.sql.changes import Op

RULE = Rule(
    id="ban-truncate",
    name="TRUNCATE deletes the rows blue is using",
    severity="error",
    category="compat",
    dialects=("postgres", "mysql"),
    ops=(Op.TRUNCATE,),
    message="TRUNCATE {table}: deletes every row blue (and green) is using; no deploy order makes that safe",
    why="""
TRUNCATE empties the table at once: blue, still serving traffic, suddenly finds no rows, and so does
green. It cannot be delayed to a later phase to make it compatible, since the data is what both versions
use, and it cannot be undone by rolling back the application. On PostgreSQL it also takes ACCESS
EXCLUSIVE and is not MVCC-safe for concurrent snapshots; on MySQL it is DDL (implicit commit, cannot be
rolled back). If the table is obsolete, drop it in the contract phase instead; if rows must go,
delete them in batches.
""",
    fix="""
-- the table is no longer used: contract phase, after blue is decommissioned
DROP TABLE {table};
-- rows must go while the table stays in use: delete in small batches (a migrate step), e.g.
DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE <condition> ORDER BY id LIMIT 10000);
-- a cache / staging table that really may be emptied: say so
-- bgmigrate: ignore[ban-truncate] <table> is a cache rebuilt on demand
""",
    bad=[
        Example("TRUNCATE accounts;"),
        Example("TRUNCATE TABLE sessions, carts;"),
        Example("TRUNCATE TABLE sessions;", dialect="mysql"),
    ],
    good=[
        Example(
            "CREATE TABLE import_rows (id bigint);\nINSERT INTO import_rows VALUES (1);\nTRUNCATE import_rows;",
            note="the table is created earlier in the same file: blue never used it",
        ),
        Example("DELETE FROM sessions WHERE expires_at < now() - interval '30 days';"),
    ],
)


@RULE.check
def check(ctx: Context) -> bool:
    return ctx.phase == "breaking"
