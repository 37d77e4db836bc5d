"""ban-drop-index: DROP INDEX that blue's queries or ON CONFLICT targets may rely on (contract phase only)."""

from migrator.lint.rule import Context, Example, Hit, Rule
from migrator.sql.changes import Op

_MYSQL_FIX = """
-- release N: green no longer needs {index} (sys.schema_unused_indexes while green alone serves traffic;
--   MySQL 8: ALTER TABLE {table} ALTER INDEX {index} INVISIBLE first, to test without dropping).
-- contract, after blue is decommissioned:
SET SESSION lock_wait_timeout = 5;
ALTER TABLE {table} DROP INDEX {index}, ALGORITHM=INPLACE, LOCK=NONE;
"""

RULE = Rule(
    id="ban-drop-index",
    name="Drop an index only after blue is decommissioned",
    severity="warning",
    category="compat",
    dialects=("postgres", "mysql"),
    ops=(Op.DROP_INDEX,),
    squawk=("ban-drop-index",),
    message=(
        "DROP INDEX {index}: blue's queries (or its ON CONFLICT / unique lookups) may rely on it; "
        "run it only in the contract phase, after blue is decommissioned"
    ),
    why="""
Blue's queries were written and tuned with this index in place. Without it, a query that used it
falls back to a sequential scan (a latency incident rather than an error), and for a unique index
blue's INSERT ... ON CONFLICT (cols) fails outright ("there is no unique or exclusion constraint
matching the ON CONFLICT specification") while duplicates it used to prevent become possible.
Removing an index is a contract step. This rule is about compatibility; how the drop locks the table
is require-concurrent-index-deletion's concern.
""",
    fix="""
-- release N: green no longer needs {index} (pg_stat_user_indexes.idx_scan stays flat while green
--   alone serves traffic).
-- contract, after blue is decommissioned, outside a transaction:
SET lock_timeout = '2s';
DROP INDEX CONCURRENTLY IF EXISTS {index};
""",
    bad=[
        Example("DROP INDEX CONCURRENTLY accounts_email_idx;"),
        Example(
            "DROP INDEX accounts_email_key;",
            setup=(
                "CREATE TABLE accounts (id bigint, email text);\n"
                "CREATE UNIQUE INDEX accounts_email_key ON accounts (email);"
            ),
            note="blue's INSERT ... ON CONFLICT (email) needs this index",
        ),
        Example("ALTER TABLE accounts DROP INDEX accounts_email_idx;", dialect="mysql"),
        Example("DROP INDEX accounts_email_idx ON accounts;", dialect="mysql"),
    ],
    good=[
        Example(
            "CREATE TABLE import_rows (id bigint, k text);\nCREATE INDEX import_rows_k ON import_rows (k);\n"
            "DROP INDEX import_rows_k;",
            note="the index is on a table created earlier in the same file",
        ),
        Example(
            "CREATE INDEX CONCURRENTLY accounts_tmp_idx ON accounts (email);\n"
            "DROP INDEX CONCURRENTLY accounts_tmp_idx;",
            note="the index itself is created in this file: blue never used it",
        ),
    ],
)


@RULE.check
def check(ctx: Context):
    if ctx.phase != "contract":
        return None
    index = ctx.change.get("index") or "(unnamed)"
    table = ctx.change.table or ctx.schema.table_of_index(index)
    return Hit(
        "DROP INDEX {index}{where}: blue's queries (or its ON CONFLICT / unique lookups) may rely on it; "
        "run it only in the contract phase, after blue is decommissioned",
        _MYSQL_FIX if ctx.dialect == "mysql" else None,
        fields={"index": index, "where": f" on {table}" if table else "", "table": table or "<table>"},
    )
