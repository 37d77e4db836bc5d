"""ban-concurrent-index-creation-in-transaction: a CONCURRENTLY operation inside a transaction block fails."""

from migrator.lint.rule import Context, Example, Hit, Rule
from migrator.sql.changes import Op

_WHAT = {
    Op.CREATE_INDEX: "CREATE INDEX CONCURRENTLY",
    Op.DROP_INDEX: "DROP INDEX CONCURRENTLY",
    Op.REINDEX: "REINDEX CONCURRENTLY",
    Op.DETACH_PARTITION: "DETACH PARTITION CONCURRENTLY",
}

RULE = Rule(
    id="ban-concurrent-index-creation-in-transaction",
    name="CONCURRENTLY cannot run inside a transaction",
    severity="error",
    category="transaction",
    dialects=("postgres",),
    ops=tuple(_WHAT),
    scope="change",
    squawk=("ban-concurrent-index-creation-in-transaction",),
    existing_tables_only=False,
    message="{what} inside a transaction block ({where}): PostgreSQL rejects it and the migration fails",
    why="""
CREATE INDEX CONCURRENTLY, DROP INDEX CONCURRENTLY, REINDEX CONCURRENTLY and DETACH PARTITION
CONCURRENTLY commit internally between their phases, so PostgreSQL refuses to run them inside a
transaction block ("cannot run inside a transaction block"). That includes the transaction a
migration runner opens around each file (Flyway, Alembic, Django, Rails, sqlx...) and several
statements sent as one query string. A file whose only statement is the concurrent operation is
allowed under assume_in_transaction: runners such as golang-migrate send it on its own, outside a
transaction.
""",
    fix="""
Put the statement in its own migration file, run outside a transaction:
  Alembic: with op.get_context().autocommit_block(): ...   Rails: disable_ddl_transaction!
  Django: atomic = False   Flyway: executeInTransaction=false (script config)   Atlas: -- atlas:txmode none
  golang-migrate: one statement per file.
Remove any BEGIN/COMMIT around it.
""",
    bad=[
        Example("BEGIN;\nCREATE INDEX CONCURRENTLY accounts_email_idx ON accounts (email);\nCOMMIT;"),
        Example(
            "SET lock_timeout = '2s';\nCREATE INDEX CONCURRENTLY accounts_email_idx ON accounts (email);",
            settings={"assume_in_transaction": True},
            note="the runner wraps the file in a transaction",
        ),
        Example("BEGIN;\nDROP INDEX CONCURRENTLY accounts_email_idx;\nCOMMIT;"),
        Example(
            "BEGIN;\nCREATE TABLE notes (id bigint, body text);\n"
            "CREATE INDEX CONCURRENTLY notes_body_idx ON notes (body);\nCOMMIT;",
            note="fails on a new table too: PostgreSQL rejects it whatever the table",
        ),
        Example("BEGIN;\nREINDEX INDEX CONCURRENTLY accounts_email_idx;\nCOMMIT;"),
        Example("BEGIN;\nALTER TABLE events DETACH PARTITION events_2019 CONCURRENTLY;\nCOMMIT;"),
        Example(
            "BEGIN;\nCREATE INDEX CONCURRENTLY accounts_email_idx ON accounts (email);\nCOMMIT;",
            settings={"assume_in_transaction": True},
            note="a lone statement is only exempt when no explicit BEGIN wraps it",
        ),
    ],
    good=[
        Example("CREATE INDEX CONCURRENTLY accounts_email_idx ON accounts (email);"),
        Example(
            "CREATE INDEX CONCURRENTLY accounts_email_idx ON accounts (email);",
            settings={"assume_in_transaction": True},
            note="a file whose only statement is the concurrent index (golang-migrate runs it alone)",
        ),
        Example(
            "BEGIN;\nALTER TABLE accounts ADD COLUMN note text;\nCOMMIT;\n"
            "CREATE INDEX CONCURRENTLY accounts_note_idx ON accounts (note);"
        ),
        Example("BEGIN;\nCREATE INDEX accounts_email_idx ON accounts (email);\nCOMMIT;", note="not concurrent"),
    ],
)


@RULE.check
def check(ctx: Context):
    if not ctx.change.get("concurrently") or not ctx.in_transaction:
        return None
    tx = ctx.tx
    runner = bool(ctx.settings and ctx.settings.assume_in_transaction)
    if runner and not tx.explicit and len(ctx.statements) == 1:
        return None  # a lone statement: golang-migrate-style runners send it outside a transaction
    if tx.explicit and tx.begin_line is not None:
        where = f"opened by BEGIN at line {tx.begin_line}"
    else:
        where = "the runner wraps the file in one (assume_in_transaction)"
    return Hit(fields={"what": _WHAT.get(ctx.change.op, "CONCURRENTLY"), "where": where})
