"""transaction-nesting: BEGIN inside a transaction, or COMMIT/ROLLBACK of a transaction the file does not own."""

from migrator.lint.rule import Context, Example, Hit, Rule
from migrator.sql.changes import Op

RULE = Rule(
    id="transaction-nesting",
    name="Nested or unmatched transaction control",
    severity="warning",
    category="transaction",
    dialects=("postgres",),
    ops=(Op.BEGIN, Op.COMMIT, Op.ROLLBACK),
    squawk=("transaction-nesting",),
    existing_tables_only=False,
    message="{problem}",
    why="""
PostgreSQL has one transaction per session and no nesting. A BEGIN inside a transaction is ignored
with a warning, so the COMMIT meant for the inner block commits the outer one early; a COMMIT or
ROLLBACK with no transaction open does nothing. When the migration runner wraps each file in a
transaction (assume_in_transaction), an explicit COMMIT ends the runner's transaction half-way: the
statements after it run outside any transaction, and the runner's own COMMIT or ROLLBACK no longer
covers them (a failure leaves the file half-applied).
""",
    fix="""
Without a wrapping runner: one BEGIN ... COMMIT pair per transaction, never nested
(use SAVEPOINT name / RELEASE SAVEPOINT name for nested units).
With a runner that wraps each file: remove BEGIN/COMMIT and split the file where you wanted the
transaction to end (one transaction per file).
""",
    bad=[
        Example("BEGIN;\nALTER TABLE accounts ADD COLUMN note text;\nBEGIN;\nUPDATE accounts SET note = '';\nCOMMIT;"),
        Example(
            "BEGIN;\nALTER TABLE accounts ADD COLUMN note text;\nCOMMIT;",
            settings={"assume_in_transaction": True},
            note="the runner already opened a transaction",
        ),
        Example(
            "ALTER TABLE accounts ADD COLUMN note text;\nCOMMIT;\nALTER TABLE accounts ADD COLUMN tag text;",
            settings={"assume_in_transaction": True},
            note="COMMIT ends the runner's transaction half-way",
        ),
        Example("ALTER TABLE accounts ADD COLUMN note text;\nCOMMIT;", note="no transaction is open"),
    ],
    good=[
        Example(
            "BEGIN;\nALTER TABLE accounts ADD COLUMN note text;\n"
            "COMMIT;\nBEGIN;\nUPDATE accounts SET note = '';\nCOMMIT;"
        ),
        Example("ALTER TABLE accounts ADD COLUMN note text;", settings={"assume_in_transaction": True}),
        Example(
            "BEGIN;\nSAVEPOINT before_backfill;\nUPDATE accounts SET note = '';\n"
            "RELEASE SAVEPOINT before_backfill;\nCOMMIT;"
        ),
    ],
)


@RULE.check
def check(ctx: Context):
    tx = ctx.tx
    runner = bool(ctx.settings and ctx.settings.assume_in_transaction)
    op = ctx.change.op
    if op == Op.BEGIN:
        if not ctx.in_transaction:
            return None
        if tx.explicit and tx.begin_line is not None:
            problem = (
                f"BEGIN inside the transaction opened at line {tx.begin_line}: PostgreSQL ignores it, "
                "so the next COMMIT ends the outer transaction"
            )
        else:
            problem = (
                "BEGIN inside the runner's transaction (assume_in_transaction): PostgreSQL ignores it, "
                "so its COMMIT ends the runner's transaction early"
            )
        return Hit(fields={"problem": problem})
    word = "COMMIT" if op == Op.COMMIT else "ROLLBACK"
    if ctx.in_transaction and not tx.explicit and runner:
        return Hit(
            fields={
                "problem": f"{word} ends the runner's transaction (assume_in_transaction): the statements after it "
                "run outside it, and the runner's own COMMIT/ROLLBACK no longer covers them"
            }
        )
    if not ctx.in_transaction:
        return Hit(fields={"problem": f"{word} with no transaction open: it does nothing (PostgreSQL only warns)"})
    return None
