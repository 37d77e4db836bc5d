"""require-lock-timeout: a statement that waits for a table-blocking lock with no lock_timeout set."""

from migrator.facts.locks import BLOCKS_WRITES
from migrator.lint.classify import referenced_tables
from migrator.lint.rule import Context, Example, Hit, Rule
from migrator.sql.changes import Op

RULE = Rule(
    id="require-lock-timeout",
    name="Set lock_timeout before taking a blocking lock",
    severity="error",
    category="lock",
    dialects=("postgres", "mysql"),
    scope="statement",
    squawk=("require-timeout-settings", "require-lock-timeout"),
    message="{lock} on {what} with no lock_timeout: while it waits, {blocked} on it queue behind it",
    why="""
Lock requests queue in order. A statement that needs ACCESS EXCLUSIVE (most ALTER TABLE forms,
even the instant ones) and finds a long-running query on the table waits for it; while it waits,
every later SELECT, INSERT and UPDATE on the table waits behind *it*. A sub-millisecond ALTER can
stall all traffic for as long as the oldest transaction runs. lock_timeout bounds that wait: the
statement fails fast and can be retried, instead of taking the application down.
On MySQL the same happens with the metadata lock, whose wait (lock_wait_timeout) defaults to one year.
""",
    fix="""
SET lock_timeout = '2s';  -- before the statement (MySQL: SET SESSION lock_wait_timeout = 5;)
and retry the migration when it times out. If your runner or database role already sets it,
run with --lock-timeout-from-runner (or lock_timeout_from_runner = true in [tool.bgmigrate]).
""",
    bad=[
        Example("ALTER TABLE accounts ADD COLUMN note text;"),
        Example("DROP INDEX accounts_email_idx;", note="the index's table is not in view, but it is in use"),
        Example(
            "CREATE TABLE referrals (id bigint PRIMARY KEY, account_id bigint REFERENCES accounts (id));",
            note="the foreign key takes SHARE ROW EXCLUSIVE on accounts, which is in use",
        ),
        Example("ALTER TABLE accounts ADD COLUMN note text;", dialect="mysql"),
    ],
    good=[
        Example("SET lock_timeout = '2s';\nALTER TABLE accounts ADD COLUMN note text;"),
        Example("BEGIN;\nSET LOCAL lock_timeout = '2s';\nALTER TABLE accounts ADD COLUMN note text;\nCOMMIT;"),
        Example(
            "CREATE TABLE notes (id bigint PRIMARY KEY);\nALTER TABLE notes ADD COLUMN body text;",
            note="new table: no one else holds or waits for its locks",
        ),
        Example("ALTER TABLE accounts ADD COLUMN note text;", settings={"lock_timeout_from_runner": True}),
        Example("SET SESSION lock_wait_timeout = 5;\nALTER TABLE accounts ADD COLUMN note text;", dialect="mysql"),
    ],
)

_DATA = {Op.CREATE_TABLE_AS, Op.INSERT, Op.UPDATE, Op.DELETE, Op.SELECT}


@RULE.check
def check(ctx: Context):
    if ctx.lock_timeout:
        return None
    for change, c in ctx.classified:
        if change.op in _DATA or c.new_object:
            continue
        if c.lock is None:
            continue
        if ctx.dialect == "mysql":
            if change.table:
                return Hit(
                    "ALTER of existing table {table} waits for a metadata lock with no lock_wait_timeout: "
                    "every query on {table} queues behind it",
                    fields={"table": change.table},
                )
            continue
        target = change.table
        if change.op == Op.CREATE_TABLE:
            if c.lock.lock is None:
                continue
            target = next((r for r in referenced_tables(change) if not ctx.schema.is_new(r, ctx.unit)), None)
        elif target is None and change.get("index"):
            what = f"the table of index {change.get('index')}"  # DROP INDEX / REINDEX with no history
            return _hit(c.lock.lock, what, target_table="?") if c.lock.lock in BLOCKS_WRITES else None
        if c.lock.lock in BLOCKS_WRITES and target:
            return _hit(c.lock.lock, f"existing table {target}", target_table=target)
    return None


def _hit(lock: str, what: str, target_table: str) -> Hit:
    blocked = "all queries" if lock == "ACCESS EXCLUSIVE" else "all writes"
    return Hit(fields={"lock": lock, "what": what, "blocked": blocked, "table": target_table})
