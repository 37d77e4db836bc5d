"""constraint-missing-not-valid: a validated CHECK constraint added to an existing table."""

from migrator.lint.fixes import not_valid
from migrator.lint.rule import Context, Example, Hit, Rule
from migrator.sql.changes import Op

RULE = Rule(
    id="constraint-missing-not-valid",
    name="Add CHECK constraints NOT VALID, then validate",
    severity="error",
    category="lock",
    dialects=("postgres",),
    ops=(Op.ADD_CONSTRAINT,),
    squawk=("constraint-missing-not-valid",),
    message=(
        "CHECK constraint on existing table {table} is verified against every row under ACCESS EXCLUSIVE: "
        "reads and writes wait for the full scan"
    ),
    why="""
ALTER TABLE ... ADD CONSTRAINT ... CHECK takes ACCESS EXCLUSIVE on the table and then reads every
row to prove the condition holds. Every query on the table, reads included, waits until the scan
ends. Adding the constraint NOT VALID skips the scan (new and updated rows are checked from then
on) and holds the lock only for a moment; VALIDATE CONSTRAINT later checks the existing rows under
SHARE UPDATE EXCLUSIVE, which lets reads and writes continue. Run the VALIDATE in its own
transaction: in the same one it would scan while the ACCESS EXCLUSIVE lock is still held.
(Foreign keys: adding-foreign-key-constraint; UNIQUE / PRIMARY KEY: disallowed-unique-constraint;
EXCLUDE: adding-exclusion-constraint.)
""",
    fix="""
{fixed_sql}
-- commit, then in a separate transaction (reads and writes continue):
ALTER TABLE {table} VALIDATE CONSTRAINT {constraint_name};
""",
    bad=[
        Example("ALTER TABLE accounts ADD CONSTRAINT accounts_balance_positive CHECK (balance >= 0);"),
        Example(
            "ALTER TABLE accounts ADD CHECK (balance >= 0);",
            note="an unnamed CHECK: PostgreSQL names it accounts_balance_check",
        ),
    ],
    good=[
        Example("ALTER TABLE accounts ADD CONSTRAINT accounts_balance_positive CHECK (balance >= 0) NOT VALID;"),
        Example(
            "ALTER TABLE accounts VALIDATE CONSTRAINT accounts_balance_positive;",
            setup="CREATE TABLE accounts (id bigint PRIMARY KEY, balance bigint);\n"
            "ALTER TABLE accounts ADD CONSTRAINT accounts_balance_positive CHECK (balance >= 0) NOT VALID;",
            note="the second step, in a later migration: validation lets reads and writes continue",
        ),
        Example(
            "CREATE TABLE accounts (id bigint PRIMARY KEY, balance bigint);\n"
            "ALTER TABLE accounts ADD CONSTRAINT accounts_balance_positive CHECK (balance >= 0);",
            note="accounts is new in this file: there are no rows to scan",
        ),
    ],
)


@RULE.check
def check(ctx: Context):
    ch = ctx.change
    if ch.get("kind") != "check" or ch.get("not_valid"):
        return None
    name = ch.get("constraint") or "<the generated name, see \\d " + (ch.table or "") + ">"
    return Hit(fields={"fixed_sql": not_valid(ctx.statement.sql), "constraint_name": name})
