"""require-concurrent-index-deletion: DROP INDEX without CONCURRENTLY on an existing table."""

from migrator.lint.fixes import concurrently
from migrator.lint.rule import Context, Example, Hit, Rule
from migrator.sql.changes import Op

RULE = Rule(
    id="require-concurrent-index-deletion",
    name="Drop indexes concurrently",
    severity="error",
    category="lock",
    dialects=("postgres",),
    ops=(Op.DROP_INDEX,),
    squawk=("require-concurrent-index-deletion",),
    message="DROP INDEX {index} takes ACCESS EXCLUSIVE on {on_table}: every read and write of it waits",
    why="""
A plain DROP INDEX takes ACCESS EXCLUSIVE on the index's table. The drop itself is quick, but the
lock request queues behind every running query on the table, and every later query queues behind
the request: a long report or an idle transaction turns a millisecond drop into an outage.
DROP INDEX CONCURRENTLY takes only SHARE UPDATE EXCLUSIVE and waits for conflicting transactions
without blocking anyone. It cannot run inside a transaction block, drops one index at a time and
cannot drop an index that backs a constraint (drop the constraint instead). An index created
earlier in the same file is no concern for blue, but dropping it still locks its (existing) table.
""",
    fix="""
{fixed_sql}  -- in its own migration, outside a transaction block
""",
    bad=[
        Example("DROP INDEX accounts_email_idx;"),
        Example(
            "DROP INDEX IF EXISTS accounts_email_idx;",
            setup="CREATE TABLE accounts (id bigint PRIMARY KEY, email text);\n"
            "CREATE INDEX CONCURRENTLY accounts_email_idx ON accounts (email);",
            note="the index's table is known from history",
        ),
        Example(
            "CREATE INDEX CONCURRENTLY accounts_email_lower_idx ON accounts (lower(email));\n"
            "DROP INDEX accounts_email_lower_idx;",
            setup="CREATE TABLE accounts (id bigint PRIMARY KEY, email text);",
            note="the index is new in this file (expand), but the drop still locks accounts, an existing table",
        ),
    ],
    good=[
        Example("DROP INDEX CONCURRENTLY IF EXISTS accounts_email_idx;"),
        Example(
            "CREATE TABLE accounts (id bigint PRIMARY KEY, email text);\n"
            "CREATE INDEX accounts_email_idx ON accounts (email);\n"
            "DROP INDEX accounts_email_idx;",
            note="the index's table is new in this file",
        ),
    ],
)


@RULE.check
def check(ctx: Context):
    ch = ctx.change
    if ch.get("concurrently"):
        return None
    table = ch.table or ctx.schema.table_of_index(ch.get("index"))
    on_table = f"table {table}" if table else "its table"
    return Hit(fields={"fixed_sql": concurrently(ctx.statement.sql), "on_table": on_table})
