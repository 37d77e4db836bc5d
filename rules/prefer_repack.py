"""prefer-repack: VACUUM FULL, CLUSTER and ALTER TABLE storage changes rewrite a table under ACCESS EXCLUSIVE."""

from migrator.lint.rule import Context, Example, Hit, Rule
from migrator.sql.changes import Op

RULE = Rule(
    id="prefer-repack",
    name="Rewrite tables online (pg_repack / REPACK CONCURRENTLY), not under ACCESS EXCLUSIVE",
    severity="error",
    category="lock",
    dialects=("postgres",),
    ops=(Op.VACUUM, Op.CLUSTER, Op.ALTER_TABLE_STORAGE, Op.ALTER_TABLE_OTHER),
    squawk=("prefer-repack",),
    message="{what} rewrites {target} under ACCESS EXCLUSIVE: no reads or writes until the copy is done",
    why="""
VACUUM FULL, CLUSTER and ALTER TABLE ... SET TABLESPACE / SET LOGGED / SET UNLOGGED /
SET ACCESS METHOD (and ALTER INDEX ... SET TABLESPACE for an index) copy the whole table or index
into new files while holding ACCESS EXCLUSIVE: every query on the table waits for the copy, which
takes as long as writing the table out again. Plain VACUUM does not need this. The pg_repack
extension does the same rewrites (compaction, reordering by an index, moving to another
tablespace) while reads and writes continue, holding ACCESS EXCLUSIVE only for a moment at the
start and the end; PostgreSQL 19 adds REPACK (CONCURRENTLY) for the same purpose. SET LOGGED /
UNLOGGED has no online form: create a new table with the wanted persistence and move the data.
(squawk reports VACUUM FULL and CLUSTER only, and only for PostgreSQL 19+, where REPACK exists;
pg_repack works on every supported version.)
""",
    fix="""
Run the rewrite online with pg_repack, outside the migration (pg_repack --table={table} <database>),
or on PostgreSQL 19+ with REPACK (CONCURRENTLY) {table};
""",
    bad=[
        Example("VACUUM FULL accounts;"),
        Example("VACUUM (FULL, ANALYZE) accounts;"),
        Example("CLUSTER accounts USING accounts_pkey;"),
        Example("ALTER TABLE accounts SET TABLESPACE fast_ssd;"),
        Example("ALTER TABLE accounts SET LOGGED;"),
        Example("VACUUM FULL;", note="every table of the database, one after the other"),
        Example("ALTER INDEX accounts_email_idx SET TABLESPACE fast_ssd;", note="rewrites the index"),
    ],
    good=[
        Example("VACUUM (ANALYZE) accounts;", note="plain VACUUM takes SHARE UPDATE EXCLUSIVE: reads and writes go on"),
        Example(
            "CREATE TABLE accounts (id bigint PRIMARY KEY);\nALTER TABLE accounts SET TABLESPACE fast_ssd;",
            note="accounts is new in this file: rewriting an empty table costs nothing",
        ),
        Example("ALTER TABLE accounts SET (fillfactor = 90);", note="a storage parameter: no rewrite"),
    ],
)

_FIXES = {
    "vacuum": "pg_repack --table={name} <database>  -- instead of VACUUM FULL, run outside the migration",
    "vacuum_all": "pg_repack <database>  -- every table, online; or name the tables that need it",
    "cluster": "pg_repack --table={name} --order-by=<the index's columns> <database>  -- instead of CLUSTER",
    "tablespace": "pg_repack --table={name} --tablespace=<tablespace> --moveidx <database>",
    "index": "pg_repack --index={name} --tablespace=<tablespace> <database>",
    "recreate": (
        "{storage} has no online form: create a new table with the wanted storage, copy the rows in\n"
        "batches while keeping it in sync (trigger or dual writes), then switch readers and writers to it."
    ),
}
_REPACK = "\nPostgreSQL 19+: REPACK (CONCURRENTLY) {name}; does it without pg_repack."


@RULE.check
def check(ctx: Context):
    if ctx.lock is None or ctx.lock.effect != "rewrite":
        return None
    ch = ctx.change
    storage = (ch.get("storage") or "").upper()
    if ch.op == Op.VACUUM:
        what, kind = "VACUUM FULL", "vacuum" if ch.table else "vacuum_all"
    elif ch.op == Op.CLUSTER:
        what, kind = "CLUSTER", "cluster" if ch.table else "vacuum_all"
    elif ch.op == Op.ALTER_TABLE_OTHER:
        what, kind = "ALTER INDEX ... SET TABLESPACE", "index"
    else:
        what, kind = f"ALTER TABLE ... {storage}", "tablespace" if storage == "SET TABLESPACE" else "recreate"
    if kind == "index":
        name, target = ch.get("index") or "<index>", f"index {ch.get('index')} (queries that use it wait)"
    elif ch.table:
        name, target = ch.table, f"table {ch.table}"
    else:
        name, target = "<table>", "every table, one at a time, each"
    fix = _FIXES[kind] + (_REPACK if ch.op in (Op.VACUUM, Op.CLUSTER) and ch.table else "")
    return Hit(fix=fix, fields={"what": what, "target": target, "name": name, "storage": storage})
