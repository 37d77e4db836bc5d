"""ban-drop-constraint: DROP CONSTRAINT that blue may rely on (contract phase only)."""

from migrator.lint.rule import Context, Example, Hit, Rule
from migrator.sql.changes import Op

RULE = Rule(
    id="ban-drop-constraint",
    name="Drop a constraint only after blue is decommissioned",
    severity="warning",
    category="compat",
    dialects=("postgres", "mysql"),
    ops=(Op.DROP_CONSTRAINT,),
    squawk=("ban-drop-constraint",),
    message=(
        "DROP CONSTRAINT {constraint} on {table}: blue may rely on it; "
        "run it only in the contract phase, after blue is decommissioned"
    ),
    why="""
Dropping a constraint relaxes what writers may store, so blue's writes keep working, but blue may
depend on the constraint in ways that are not writes: INSERT ... ON CONFLICT needs the unique
constraint it names, ON DELETE CASCADE / SET NULL foreign keys do cleanup blue's code does not do
itself, and blue's readers assume the invariant holds (no duplicates, no orphans, no values outside
the CHECK). Once green may write rows that violate it, blue can read data it was never meant to see.
It is a contract step.
""",
    fix="""
-- release N: green stops relying on the constraint (and keeps writing rows that satisfy it).
-- contract, after blue is decommissioned:
SET lock_timeout = '2s';   -- MySQL: SET SESSION lock_wait_timeout = 5;
ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {constraint};   -- MySQL: DROP FOREIGN KEY / DROP CHECK / DROP INDEX
-- replacing a constraint instead: add the new one (NOT VALID, then VALIDATE) in the expand phase,
-- drop the old one here.
""",
    bad=[
        Example("ALTER TABLE orders DROP CONSTRAINT orders_customer_id_fkey;"),
        Example(
            "ALTER TABLE accounts DROP CONSTRAINT accounts_email_key;",
            setup=(
                "CREATE TABLE accounts (id bigint PRIMARY KEY, email "
                "text, CONSTRAINT accounts_email_key UNIQUE (email));"
            ),
        ),
        Example("ALTER TABLE orders DROP FOREIGN KEY orders_customer_id_fkey;", dialect="mysql"),
        Example("ALTER TABLE orders DROP CHECK orders_total_positive;", dialect="mysql"),
    ],
    good=[
        Example(
            "CREATE TABLE refunds (id bigint, amount int, CONSTRAINT refunds_amount_positive CHECK (amount > 0));\n"
            "ALTER TABLE refunds DROP CONSTRAINT refunds_amount_positive;",
            note="the table is created earlier in the same file",
        ),
        Example(
            "ALTER TABLE orders ADD CONSTRAINT orders_total_check CHECK (total >= 0) NOT VALID;\n"
            "ALTER TABLE orders DROP CONSTRAINT orders_total_check;",
            note="the constraint is added in this same file: blue never relied on it",
        ),
    ],
)


@RULE.check
def check(ctx: Context):
    if ctx.phase != "contract":
        return None
    name = ctx.change.get("constraint")
    kind = (ctx.change.get("kind") or "constraint").replace("_", " ").upper()
    return Hit(
        "{what} on {table}: blue may rely on it (ON CONFLICT, cascades, integrity); "
        "run it only in the contract phase, after blue is decommissioned",
        fields={"what": f"DROP CONSTRAINT {name}" if name else f"DROP {kind}", "constraint": name or "<name>"},
    )
