"""validate-in-same-transaction: VALIDATE CONSTRAINT in the transaction that added it NOT VALID."""

from migrator.lint.rule import Context, Example, Hit, Rule
from migrator.sql.changes import Op

_TX_CONTROL = {Op.BEGIN, Op.COMMIT, Op.ROLLBACK}

RULE = Rule(
    id="validate-in-same-transaction",
    name="VALIDATE CONSTRAINT in the same transaction as its NOT VALID",
    severity="error",
    category="transaction",
    dialects=("postgres",),
    ops=(Op.VALIDATE_CONSTRAINT,),
    squawk=("constraint-missing-not-valid",),
    message=(
        "VALIDATE CONSTRAINT {constraint} on {table} runs in the same transaction as {cause} (line {line_held}): "
        "the full scan happens while {lock_held} is still held"
    ),
    why="""
Adding a constraint NOT VALID and validating it later is meant to split one long blocking operation
into a short blocking one (the ADD, under ACCESS EXCLUSIVE for a CHECK or SHARE ROW EXCLUSIVE for a
FOREIGN KEY) and a long non-blocking one (VALIDATE, under SHARE UPDATE EXCLUSIVE, which lets reads
and writes continue). Locks are held until the transaction ends, so a VALIDATE in the same
transaction scans the whole table while the ADD's strong lock is still held: exactly the outage
NOT VALID was supposed to avoid.
""",
    fix="""
Commit between the two steps (with a wrapping runner: put VALIDATE in the next migration file):
BEGIN; SET LOCAL lock_timeout = '2s';
ALTER TABLE {table} ADD CONSTRAINT {constraint} ... NOT VALID;
COMMIT;
ALTER TABLE {table} VALIDATE CONSTRAINT {constraint};   -- its own transaction
""",
    bad=[
        Example(
            "BEGIN;\nALTER TABLE orders ADD CONSTRAINT orders_total_check CHECK (total >= 0) NOT VALID;\n"
            "ALTER TABLE orders VALIDATE CONSTRAINT orders_total_check;\nCOMMIT;"
        ),
        Example(
            "ALTER TABLE orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id)\n"
            "  REFERENCES customers (id) NOT VALID;\n"
            ""
            "ALTER TABLE orders VALIDATE CONSTRAINT orders_customer_fk;",
            settings={"assume_in_transaction": True},
            note="the runner wraps the file in one transaction",
        ),
        Example(
            "BEGIN;\nALTER TABLE orders ADD COLUMN note text;\n"
            "ALTER TABLE orders VALIDATE CONSTRAINT orders_total_check;\nCOMMIT;",
            note="any blocking lock on the table held by the transaction has the same effect",
        ),
    ],
    good=[
        Example(
            "ALTER TABLE orders ADD CONSTRAINT orders_total_check CHECK (total >= 0) NOT VALID;\n"
            "ALTER TABLE orders VALIDATE CONSTRAINT orders_total_check;",
            note="autocommit: the ADD is committed before VALIDATE starts",
        ),
        Example(
            "BEGIN;\nALTER TABLE orders ADD CONSTRAINT orders_total_check CHECK (total >= 0) NOT VALID;\nCOMMIT;\n"
            "BEGIN;\nALTER TABLE orders VALIDATE CONSTRAINT orders_total_check;\nCOMMIT;"
        ),
        Example(
            "CREATE TABLE refunds (id bigint, amount int);\n"
            "ALTER TABLE refunds ADD CONSTRAINT refunds_amount_check CHECK (amount > 0) NOT VALID;\n"
            "ALTER TABLE refunds VALIDATE CONSTRAINT refunds_amount_check;",
            settings={"assume_in_transaction": True},
            note="the table is created earlier in the same file: it is empty and nobody else uses it",
        ),
    ],
)


def _added_in_this_transaction(ctx: Context):
    """The statement (in the current transaction) that added the constraint NOT VALID."""
    name = ctx.change.get("constraint")
    for st in reversed(ctx.statements[: ctx.statement.index]):
        if any(ch.op in _TX_CONTROL for ch in st.changes):
            return None
        for ch in st.changes:
            if (
                ch.op == Op.ADD_CONSTRAINT
                and ch.table == ctx.change.table
                and ch.get("constraint") == name
                and ch.get("not_valid")
            ):
                return st
    return None


@RULE.check
def check(ctx: Context):
    if not ctx.in_transaction or ctx.statement is None:
        return None
    table = ctx.change.table
    held = [h for h in (ctx.tx.locks if ctx.tx else []) if h.table == table]
    added = _added_in_this_transaction(ctx)
    if added is not None:
        mode = next((h.mode for h in held if h.line == added.line), held[0].mode if held else "its lock")
        return Hit(fields={"cause": "its ADD ... NOT VALID", "line_held": added.line, "lock_held": mode})
    if held:
        return Hit(
            fields={
                "cause": f"an earlier {held[0].mode} on {table}",
                "line_held": held[0].line,
                "lock_held": held[0].mode,
            }
        )
    return None
