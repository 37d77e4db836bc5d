"""add-enum-value-in-transaction: ALTER TYPE ... ADD VALUE where a transaction makes it fail."""

from migrator.lint.rule import Context, Example, Hit, Rule
from migrator.sql.changes import Op

RULE = Rule(
    id="add-enum-value-in-transaction",
    name="Add enum values outside the transaction that uses them",
    severity="error",
    category="transaction",
    dialects=("postgres",),
    ops=(Op.ADD_ENUM_VALUE,),
    existing_tables_only=False,
    message=(
        "ALTER TYPE {type_name} ADD VALUE cannot run inside a transaction block on PostgreSQL {version}: "
        "the migration fails"
    ),
    why="""
Before PostgreSQL 12, ALTER TYPE ... ADD VALUE is refused inside a transaction block (unless the
type was created in that same transaction), so a migration runner that wraps each file in a
transaction fails on it. From PostgreSQL 12 it may run in a transaction, but the new value cannot
be used until that transaction commits: an INSERT, UPDATE or comparison with it later in the same
transaction fails with "unsafe use of new value". Either way the migration stops halfway.
""",
    fix="""
Put the ADD VALUE in its own migration that runs outside a transaction (golang-migrate: a file of
its own; Alembic: op.get_context().autocommit_block(); Rails: disable_ddl_transaction!):
ALTER TYPE {type_name} ADD VALUE IF NOT EXISTS '{value}';
and use the value only in a later migration.
""",
    bad=[
        Example(
            "BEGIN;\nALTER TYPE order_status ADD VALUE 'refunded';\nCOMMIT;",
            version="11",
        ),
        Example(
            "ALTER TYPE order_status ADD VALUE 'refunded';",
            version="11",
            settings={"assume_in_transaction": True},
            note="the runner wraps the file in a transaction",
        ),
        Example(
            "BEGIN;\nALTER TYPE order_status ADD VALUE 'refunded';\n"
            "UPDATE orders SET status = 'refunded' WHERE refunded_at IS NOT NULL;\nCOMMIT;",
            note="PostgreSQL 12+: the value cannot be used before the transaction commits",
        ),
    ],
    good=[
        Example("ALTER TYPE order_status ADD VALUE IF NOT EXISTS 'refunded';", version="11"),
        Example("BEGIN;\nALTER TYPE order_status ADD VALUE 'refunded';\nCOMMIT;", note="PostgreSQL 12+, value unused"),
        Example(
            "BEGIN;\nALTER TYPE order_status ADD VALUE 'refunded';\nCOMMIT;\n"
            "UPDATE orders SET status = 'refunded' WHERE refunded_at IS NOT NULL;",
            note="used after the commit",
        ),
        Example(
            "BEGIN;\nCREATE TYPE order_status AS ENUM ('new', 'paid');\n"
            "ALTER TYPE order_status ADD VALUE 'refunded';\nCOMMIT;",
            version="11",
            note="a type created in the same transaction may get values there",
        ),
    ],
)

_END = {Op.COMMIT, Op.ROLLBACK}


def _transaction_statements(ctx: Context):
    """(before, after): this transaction's statements before and after the current one."""
    here = ctx.statement.index
    start = 0
    for st in ctx.statements[:here]:
        ops = {ch.op for ch in st.changes}
        if Op.BEGIN in ops:
            start = st.index
        elif ops & _END:
            start = st.index + 1
    end = len(ctx.statements)
    for st in ctx.statements[here + 1 :]:
        if {ch.op for ch in st.changes} & _END:
            end = st.index
            break
    return ctx.statements[start:here], ctx.statements[here + 1 : end]


@RULE.check
def check(ctx: Context):
    if not ctx.in_transaction:
        return None
    ch = ctx.change
    before, after = _transaction_statements(ctx)
    if any(c.op == Op.CREATE_TYPE and c.get("type_name") == ch.get("type_name") for st in before for c in st.changes):
        return None  # the type is new in this transaction: both restrictions are lifted
    if not ctx.version_at_least(12):
        return True
    literal = f"'{ch.get('value')}'"
    uses = (st for st in after if literal in st.sql and any(c.op != Op.ADD_ENUM_VALUE for c in st.changes))
    user = next(uses, None) if ch.get("value") else None
    if user is None:
        return None
    return Hit(
        "ALTER TYPE {type_name} ADD VALUE '{value}' and a use of it at line {use_line} are in the same transaction: "
        "PostgreSQL rejects the use (unsafe use of new value) until the ADD VALUE commits",
        fields={"use_line": user.line},
    )
