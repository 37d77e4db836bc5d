"""require-concurrent-index-creation: CREATE INDEX without CONCURRENTLY on an existing table."""

from migrator.lint.fixes import concurrently
from migrator.lint.rule import Context, Example, Hit, Rule
from migrator.sql.changes import Op

RULE = Rule(
    id="require-concurrent-index-creation",
    name="Create indexes concurrently",
    severity="error",
    category="lock",
    dialects=("postgres",),
    ops=(Op.CREATE_INDEX,),
    squawk=("require-concurrent-index-creation",),
    message="CREATE INDEX on existing table {table} takes a SHARE lock: writes are blocked for the whole build",
    why="""
Without CONCURRENTLY, PostgreSQL holds a SHARE lock on the table while it reads every row and
builds the index. Reads continue, but every INSERT, UPDATE and DELETE waits until the build ends:
minutes on a large table. CONCURRENTLY takes SHARE UPDATE EXCLUSIVE instead, which lets writes
continue, at the price of two table scans.
""",
    fix="""
{fixed_sql}  -- in its own migration, outside a transaction block
If it fails, drop the INVALID index it leaves (DROP INDEX CONCURRENTLY) before retrying.
""",
    bad=[Example("CREATE INDEX accounts_email_idx ON accounts (email);")],
    good=[
        Example("CREATE INDEX CONCURRENTLY accounts_email_idx ON accounts (email);"),
        Example(
            "CREATE TABLE accounts (id bigint PRIMARY KEY, email text);\n"
            "CREATE INDEX accounts_email_idx ON accounts (email);",
            note="the table is new in this file: nobody is writing to it yet",
        ),
    ],
)


@RULE.check
def check(ctx: Context):
    if ctx.change.get("concurrently"):
        return None
    return Hit(fields={"fixed_sql": concurrently(ctx.statement.sql)})
