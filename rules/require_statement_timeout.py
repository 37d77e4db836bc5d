"""require-statement-timeout: a scan or rewrite under a blocking lock with no statement_timeout set."""

from migrator.facts.locks import BLOCKS_WRITES
from migrator.lint.rule import Context, Example, Hit, Rule

RULE = Rule(
    id="require-statement-timeout",
    name="Set statement_timeout before long work under a blocking lock",
    severity="warning",
    category="lock",
    dialects=("postgres",),
    scope="statement",
    squawk=("require-statement-timeout", "require-timeout-settings"),
    message=(
        "{what} holds {lock} on {name} for a full {effect} with no statement_timeout: if it runs long, "
        "{blocked} until it ends"
    ),
    why="""
lock_timeout bounds how long a statement waits for its lock; it says nothing about how long the
statement then runs while holding it. A table scan or rewrite under a lock that blocks writes
(SHARE and stronger) or reads (ACCESS EXCLUSIVE) keeps the application waiting for as long as it
takes, and on a table larger than in staging that can be minutes. statement_timeout cancels it
after a bound you chose, so a bad estimate costs a failed, retryable migration instead of an
outage. bgmigrate asks for it only where it matters: statements that scan or rewrite an existing
table under such a lock (squawk asks before any statement that takes a lock).
""",
    fix="""
SET statement_timeout = '5min';  -- before the statement: a bound you accept for the blocking window
(SET LOCAL inside a transaction). If your runner or database role already sets it, run with
--lock-timeout-from-runner (or lock_timeout_from_runner = true in [tool.bgmigrate]).
""",
    bad=[
        Example("ALTER TABLE accounts ALTER COLUMN email SET NOT NULL;"),
        Example("CREATE INDEX accounts_email_idx ON accounts (email);"),
        Example("SET lock_timeout = '2s';\nALTER TABLE accounts ADD COLUMN public_id uuid DEFAULT gen_random_uuid();"),
        Example("REINDEX INDEX accounts_email_idx;", note="the index's table is not known from history"),
    ],
    good=[
        Example("SET statement_timeout = '5min';\nALTER TABLE accounts ALTER COLUMN email SET NOT NULL;"),
        Example(
            "BEGIN;\nSET LOCAL statement_timeout = '5min';\n"
            "CREATE INDEX accounts_email_idx ON accounts (email);\nCOMMIT;"
        ),
        Example("ALTER TABLE accounts ADD COLUMN note text;", note="catalog-only: lock_timeout is what matters"),
        Example(
            "CREATE INDEX CONCURRENTLY accounts_email_idx ON accounts (email);",
            note="SHARE UPDATE EXCLUSIVE blocks neither reads nor writes",
        ),
        Example(
            "CREATE TABLE notes (id bigint PRIMARY KEY, body text);\nCREATE INDEX notes_body_idx ON notes (body);",
            note="new table: nothing to scan",
        ),
        Example(
            "ALTER TABLE accounts ALTER COLUMN email SET NOT NULL;",
            settings={"lock_timeout_from_runner": True},
        ),
    ],
)


@RULE.check
def check(ctx: Context):
    if ctx.statement_timeout:
        return None
    for change, c in ctx.classified:
        lock = c.lock
        if c.new_object or lock is None or lock.lock not in BLOCKS_WRITES or lock.effect not in ("scan", "rewrite"):
            continue
        if change.table:
            name, them = f"table {change.table}", "it"
        elif change.get("index"):
            name, them = f"the table of index {change.get('index')}", "it"
        else:
            name, them = "every table it covers", "them"
        blocked = f"every query on {them} waits" if lock.blocks_reads else f"every write to {them} waits"
        what = change.op.replace("_", " ").upper()
        return Hit(fields={"what": what, "name": name, "lock": lock.lock, "effect": lock.effect, "blocked": blocked})
    return None
