"""multiple-locks-in-transaction: a second blocking lock taken while the transaction holds another."""

from migrator.facts.locks import LOCK_STRENGTH
from migrator.lint.rule import Context, Example, Hit, Rule

RULE = Rule(
    id="multiple-locks-in-transaction",
    name="Blocking locks on several tables in one transaction",
    severity="warning",
    category="transaction",
    dialects=("postgres",),
    scope="statement",
    message=(
        "{lock} on {table} while this transaction still holds {held_lock} on {held_table} (line {held_line}): "
        "while it waits, every query on {held_table} waits too"
    ),
    why="""
Locks are held until the transaction ends. A statement that needs a blocking lock on a second table
may have to wait for that table's long-running queries, and all the while the lock already taken
on the first table stays held: every read or write of the first table queues behind the migration for
as long as the second lock takes to get, and the two tables' traffic can deadlock against it.
lock_timeout bounds each wait but not the sum, and a retry repeats the whole transaction. One
blocking lock per transaction keeps the blast radius to one table and one short wait.
""",
    fix="""
Split the migration so each transaction takes its blocking lock on one table only:
BEGIN; SET LOCAL lock_timeout = '2s'; ALTER TABLE {held_table} ...; COMMIT;
BEGIN; SET LOCAL lock_timeout = '2s'; ALTER TABLE {table} ...; COMMIT;
(With a runner that wraps each file in a transaction: one file per table.)
""",
    bad=[
        Example(
            "BEGIN;\nSET LOCAL lock_timeout = '2s';\nALTER TABLE accounts ADD COLUMN note text;\n"
            "ALTER TABLE orders ADD COLUMN note text;\nCOMMIT;"
        ),
        Example(
            "ALTER TABLE accounts ADD COLUMN note text;\nCREATE INDEX orders_note_idx ON orders (note);",
            settings={"assume_in_transaction": True},
            note="the runner's transaction holds ACCESS EXCLUSIVE on accounts while CREATE INDEX waits for orders",
        ),
    ],
    good=[
        Example(
            "BEGIN;\nALTER TABLE accounts ADD COLUMN note text;\nCOMMIT;\n"
            "BEGIN;\nALTER TABLE orders ADD COLUMN note text;\nCOMMIT;"
        ),
        Example(
            "BEGIN;\nALTER TABLE accounts ADD COLUMN note text;\nALTER TABLE accounts ADD COLUMN tag text;\nCOMMIT;",
            note="same table: the lock is already held, nothing new to wait for",
        ),
        Example(
            "ALTER TABLE accounts ADD COLUMN note text;\nALTER TABLE orders ADD COLUMN note text;",
            note="autocommit: each statement is its own transaction",
        ),
        Example(
            "BEGIN;\nALTER TABLE accounts ADD COLUMN note text;\n"
            "CREATE TABLE notes (id bigint PRIMARY KEY, body text);\nALTER TABLE notes ADD COLUMN tag text;\nCOMMIT;",
            note="notes is created earlier in the same transaction: nobody else can be waiting on it",
        ),
    ],
)


@RULE.check
def check(ctx: Context):
    tx = ctx.tx
    if not ctx.in_transaction or tx is None or not tx.locks:
        return None
    for change, c in ctx.classified:
        lock = c.lock
        if lock is None or lock.lock is None or c.new_object or not (lock.blocks_writes or lock.blocks_reads):
            continue
        table = change.table or ctx.schema.table_of_index(change.get("index"))
        if table is None:
            continue
        if any(h.table == table and LOCK_STRENGTH.get(h.mode, 0) >= LOCK_STRENGTH.get(lock.lock, 0) for h in tx.locks):
            continue  # this transaction already holds at least this lock on the table: nothing new to wait for
        held = next((h for h in tx.locks if h.table != table), None)
        if held is None:
            continue
        return Hit(
            fields={
                "lock": lock.lock,
                "table": table,
                "held_lock": held.mode,
                "held_table": held.table or "an index's table",
                "held_line": held.line,
            }
        )
    return None
