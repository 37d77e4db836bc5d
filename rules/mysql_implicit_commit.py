"""mysql-implicit-commit: DDL inside an explicit MySQL transaction commits it implicitly."""

from migrator.lint.rule import Context, Example, Hit, Rule
from migrator.sql.changes import Op

_DML = {Op.INSERT, Op.UPDATE, Op.DELETE, Op.SELECT, Op.SET, Op.BEGIN, Op.COMMIT, Op.ROLLBACK, Op.COMMENT}

RULE = Rule(
    id="mysql-implicit-commit",
    name="DDL inside a MySQL transaction commits it",
    severity="error",
    category="transaction",
    dialects=("mysql",),
    scope="statement",
    existing_tables_only=False,
    message=(
        "{op} inside the transaction opened at line {begin_line}: MySQL commits that transaction before running it, "
        "so the statements before it cannot be rolled back and the ones after it run outside the transaction"
    ),
    why="""
MySQL has no transactional DDL. CREATE, ALTER, DROP, RENAME and TRUNCATE end the current transaction
with an implicit COMMIT before they run (and commit again after). A migration written as
BEGIN; UPDATE ...; ALTER TABLE ...; ROLLBACK looks atomic but is not: the UPDATE is committed by the
ALTER, the ALTER cannot be undone, and the ROLLBACK only covers what came after. A failure half-way
leaves the schema and data half-migrated, and rerunning the file then fails on the part that was applied.
""",
    fix="""
Do not wrap DDL in BEGIN/COMMIT on MySQL. Make each DDL statement its own idempotent step
(IF [NOT] EXISTS where MySQL allows it), keep data changes in their own transactions, and let the
runner record progress per statement so a failed migration can resume.
""",
    bad=[
        Example(
            "START TRANSACTION;\nUPDATE accounts SET plan = 'free' WHERE plan IS NULL;\n"
            "ALTER TABLE accounts MODIFY plan varchar(20) NOT NULL;\nCOMMIT;",
            dialect="mysql",
        ),
        Example("BEGIN;\nCREATE TABLE notes (id bigint PRIMARY KEY);\nROLLBACK;", dialect="mysql"),
    ],
    good=[
        Example("START TRANSACTION;\nUPDATE accounts SET plan = 'free' WHERE plan IS NULL;\nCOMMIT;", dialect="mysql"),
        Example(
            "UPDATE accounts SET plan = 'free' WHERE plan IS NULL;\n"
            "ALTER TABLE accounts MODIFY plan varchar(20) NOT NULL;",
            dialect="mysql",
        ),
    ],
)


@RULE.check
def check(ctx: Context):
    tx = ctx.tx
    if tx is None or not (tx.active and tx.explicit):
        return None
    ddl = next((ch for ch in ctx.statement.changes if ch.op not in _DML), None)
    if ddl is None:
        return None
    return Hit(fields={"op": ddl.op.replace("_", " ").upper(), "begin_line": tx.begin_line or "?"})
