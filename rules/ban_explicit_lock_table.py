"""ban-explicit-lock-table: LOCK TABLE in a migration holds a blocking lock until the transaction ends."""

from migrator.lint.rule import Context, Example, Hit, Rule
from migrator.sql.changes import Op

RULE = Rule(
    id="ban-explicit-lock-table",
    name="Do not LOCK tables explicitly in migrations",
    severity="error",
    category="lock",
    dialects=("postgres",),
    ops=(Op.LOCK_TABLE,),
    message=(
        "LOCK TABLE {table} IN {mode} MODE {blocks} of {table} until the transaction ends, "
        "however long the rest of the migration takes"
    ),
    why="""
LOCK TABLE takes a table lock explicitly and keeps it until COMMIT or ROLLBACK. Everything else
the migration does in that transaction (index builds, backfills, other ALTERs) then runs while
the application is locked out of the table, and the statement itself queues behind every running
query like any other lock request. The DDL statements take exactly the locks they need on their
own; an explicit lock only widens and lengthens the blocking window. Without a mode the lock is
ACCESS EXCLUSIVE, which blocks even SELECT.
""",
    fix="""
Remove the LOCK TABLE and let each statement take its own lock, with a short lock_timeout:
SET lock_timeout = '2s';
If the lock serializes a data fix, do the fix in small batches outside the DDL transaction instead.
""",
    bad=[
        Example("BEGIN;\nLOCK TABLE accounts;\nALTER TABLE accounts ADD COLUMN note text;\nCOMMIT;"),
        Example("LOCK TABLE accounts IN SHARE MODE;", note="SHARE blocks every write"),
    ],
    good=[
        Example("BEGIN;\nSET LOCAL lock_timeout = '2s';\nALTER TABLE accounts ADD COLUMN note text;\nCOMMIT;"),
        Example("LOCK TABLE accounts IN ROW EXCLUSIVE MODE;", note="the lock an ordinary UPDATE takes"),
        Example(
            "CREATE TABLE imports (id bigint PRIMARY KEY);\nLOCK TABLE imports;",
            note="imports is new in this file: nobody else uses it",
        ),
    ],
)


@RULE.check
def check(ctx: Context):
    lock = ctx.lock
    if lock is None or not (lock.blocks_reads or lock.blocks_writes):
        return None  # ROW EXCLUSIVE and weaker: what ordinary DML takes anyway
    blocks = "blocks every read and write" if lock.blocks_reads else "blocks every write"
    return Hit(fields={"mode": lock.lock, "blocks": blocks})
