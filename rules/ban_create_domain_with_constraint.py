"""ban-create-domain-with-constraint: CREATE DOMAIN with a CHECK constraint."""

from migrator.lint.rule import Context, Example, Rule
from migrator.sql.changes import Op

RULE = Rule(
    id="ban-create-domain-with-constraint",
    name="Put constraints on columns, not on domains",
    severity="warning",
    category="design",
    dialects=("postgres",),
    ops=(Op.CREATE_DOMAIN,),
    squawk=("ban-create-domain-with-constraint",),
    existing_tables_only=False,
    message=(
        "domain {domain} carries a CHECK constraint: every later change to it locks and re-checks every table "
        "that uses the domain"
    ),
    why="""
A constraint on a domain applies to every column of that type in every table. That makes it hard
to change online: tightening it (ALTER DOMAIN ... ADD CONSTRAINT) checks all those columns while
locking their tables against writes, loosening or replacing it touches every table at once, and
moving a column off the domain is a type change that rewrites the table. Constraints declared on
the columns themselves can each be added NOT VALID and validated separately, table by table.
A domain without constraints (a plain alias for a type) has none of these problems.
""",
    fix="""
CREATE DOMAIN {domain} AS <type>;  -- no CHECK on the domain
ALTER TABLE <table> ADD CONSTRAINT <table>_<column>_check CHECK (...) NOT VALID;  -- per column
ALTER TABLE <table> VALIDATE CONSTRAINT <table>_<column>_check;  -- separate transaction
""",
    bad=[Example("CREATE DOMAIN positive_amount AS numeric CHECK (VALUE > 0);")],
    good=[
        Example("CREATE DOMAIN amount AS numeric(12, 2);"),
        Example(
            "CREATE TABLE payments (id bigint PRIMARY KEY, amount numeric(12, 2) CHECK (amount > 0));",
            note="the constraint lives on the column",
        ),
    ],
)


@RULE.check
def check(ctx: Context) -> bool:
    return bool(ctx.change.get("has_check"))
