"""require-concurrent-reindex: REINDEX without CONCURRENTLY (PostgreSQL 12+)."""

from migrator.lint.fixes import concurrently
from migrator.lint.rule import Context, Example, Hit, Rule
from migrator.sql.changes import Op

RULE = Rule(
    id="require-concurrent-reindex",
    name="Reindex concurrently",
    severity="error",
    category="lock",
    dialects=("postgres",),
    versions={"postgres": ">=12"},
    ops=(Op.REINDEX,),
    squawk=("require-concurrent-reindex",),
    message="REINDEX {what} blocks writes to {target_table} and reads that use the rebuilt indexes until it ends",
    why="""
A plain REINDEX holds a SHARE lock on the table (INSERT, UPDATE and DELETE wait) and ACCESS
EXCLUSIVE on each index it rebuilds (any query planned to use that index waits), for as long as
the rebuild takes. REINDEX ... CONCURRENTLY, available since PostgreSQL 12, builds a new copy of
each index next to the old one and swaps them, with only SHARE UPDATE EXCLUSIVE held: reads and
writes continue. It cannot run inside a transaction block, and REINDEX SYSTEM has no concurrent
form (do not run it from a migration). If a concurrent rebuild fails it leaves an INVALID
"_ccnew" index behind: drop it before retrying.
""",
    fix="""
{fixed_sql}  -- in its own migration, outside a transaction block
""",
    bad=[
        Example("REINDEX INDEX accounts_email_idx;"),
        Example("REINDEX TABLE accounts;"),
        Example("REINDEX SCHEMA public;", note="every table of the schema, one after the other"),
    ],
    good=[
        Example("REINDEX INDEX CONCURRENTLY accounts_email_idx;"),
        Example("REINDEX (VERBOSE) TABLE CONCURRENTLY accounts;"),
        Example("REINDEX TABLE accounts;", version="11", note="no CONCURRENTLY before PostgreSQL 12"),
        Example(
            "CREATE TABLE accounts (id bigint PRIMARY KEY, email text);\n"
            "CREATE INDEX accounts_email_idx ON accounts (email);\n"
            "REINDEX INDEX accounts_email_idx;",
            note="the index's table is new in this file",
        ),
    ],
)


@RULE.check
def check(ctx: Context):
    ch = ctx.change
    if ch.get("concurrently"):
        return None
    target = ch.get("target") or "index"
    table = ch.table
    if table is None and target == "index":
        table = ctx.schema.table_of_index(ch.get("index"))
        if table is not None and ctx.table_is_new(table):
            return None  # REINDEX INDEX names no table: resolve it to see that it is new
    name = ch.get("index") if target == "index" else (ch.table or ch.get("schema") or "")
    what = f"{target.upper()} {name}".strip()
    if table:
        target_table = f"table {table}"
    elif target == "index":
        target_table = "the index's table"
    else:
        target_table = f"every table of the {target}"
    return Hit(fields={"fixed_sql": concurrently(ctx.statement.sql), "what": what, "target_table": target_table})
