"""ban-uncommitted-transaction: BEGIN without COMMIT by the end of the file."""

from migrator.lint.rule import Context, Example, Hit, Rule
from migrator.sql.changes import Op

RULE = Rule(
    id="ban-uncommitted-transaction",
    name="Transaction left open at the end of the file",
    severity="error",
    category="transaction",
    dialects=("postgres", "mysql"),
    scope="file",
    squawk=("ban-uncommitted-transaction",),
    existing_tables_only=False,
    message="BEGIN at line {begin_line} has no COMMIT by the end of the file: its changes may be silently rolled back",
    why="""
A transaction still open when the file ends is committed or rolled back by whatever happens next:
psql rolls it back when the session ends, some runners commit, others run the next file inside it.
The usual outcome is the worst one: the migration reports success and nothing was applied. (Under
assume_in_transaction the runner owns the transaction and commits it, so this rule stays quiet there;
see transaction-nesting.)
""",
    fix="""
End the transaction explicitly:
COMMIT;
(or drop the BEGIN and let the migration runner manage the transaction)
""",
    bad=[
        Example("BEGIN;\nALTER TABLE accounts ADD COLUMN note text;"),
        Example(
            "COMMIT;\nBEGIN;\nALTER TABLE accounts ADD COLUMN note text;\n"
            "COMMIT;\nBEGIN;\nUPDATE accounts SET note = '';"
        ),
        Example("START TRANSACTION;\nUPDATE accounts SET note = '';", dialect="mysql"),
    ],
    good=[
        Example("BEGIN;\nALTER TABLE accounts ADD COLUMN note text;\nCOMMIT;"),
        Example("BEGIN;\nALTER TABLE accounts ADD COLUMN note text;\nROLLBACK;"),
        Example("ALTER TABLE accounts ADD COLUMN note text;"),
        Example(
            "START TRANSACTION;\nUPDATE accounts SET note = '';\nALTER TABLE accounts ADD COLUMN tag text;",
            dialect="mysql",
            note="MySQL DDL commits the open transaction implicitly (see mysql-implicit-commit)",
        ),
    ],
)


@RULE.check
def check(ctx: Context):
    tx = ctx.tx
    if tx is None or not (tx.active and tx.explicit):
        return []
    if ctx.settings is not None and ctx.settings.assume_in_transaction:
        return []
    begin = next(
        (
            st
            for st in reversed(ctx.statements)
            if st.line == tx.begin_line and any(ch.op == Op.BEGIN for ch in st.changes)
        ),
        None,
    )
    if begin is None:
        begin = next((st for st in reversed(ctx.statements) if any(ch.op == Op.BEGIN for ch in st.changes)), None)
    if begin is None:
        return []
    return [(begin, Hit(fields={"begin_line": begin.line}))]
