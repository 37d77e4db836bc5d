"""ban-alter-domain-with-add-constraint: ALTER DOMAIN ... ADD CONSTRAINT validated against every using column."""

from migrator.lint.rule import Context, Example, Rule
from migrator.sql.changes import Op

RULE = Rule(
    id="ban-alter-domain-with-add-constraint",
    name="Do not add validated constraints to domains in use",
    severity="error",
    category="lock",
    dialects=("postgres",),
    ops=(Op.ALTER_DOMAIN_ADD_CONSTRAINT,),
    squawk=("ban-alter-domain-with-add-constraint",),
    message=(
        "ALTER DOMAIN {domain} ADD CONSTRAINT checks every column of every table that uses {domain}, "
        "blocking writes to those tables while it reads them"
    ),
    why="""
Adding a constraint to a domain checks every existing value of every column declared with that
domain, in every table, and PostgreSQL locks each of those tables against writes while it reads
them. One statement can therefore stall writes to many tables at once, for as long as the scans
take. A CHECK can instead be added NOT VALID (only new values are checked) and validated later
with ALTER DOMAIN ... VALIDATE CONSTRAINT. Better still, put the constraint on the columns, where
each table can be validated separately (see ban-create-domain-with-constraint).
""",
    fix="""
ALTER DOMAIN {domain} ADD CONSTRAINT <name> CHECK (...) NOT VALID;
-- commit, then in a separate migration:
ALTER DOMAIN {domain} VALIDATE CONSTRAINT <name>;
or, preferably, add a CHECK ... NOT VALID to each column that uses the domain and validate it per table.
""",
    bad=[Example("ALTER DOMAIN positive_amount ADD CONSTRAINT positive_amount_check CHECK (VALUE > 0);")],
    good=[
        Example(
            "ALTER DOMAIN positive_amount ADD CONSTRAINT positive_amount_check CHECK (VALUE > 0) NOT VALID;",
            note="only new values are checked; VALIDATE CONSTRAINT later reads the old ones",
        ),
        Example(
            "CREATE DOMAIN positive_amount AS numeric;\n"
            "ALTER DOMAIN positive_amount ADD CONSTRAINT positive_amount_check CHECK (VALUE > 0);",
            note="the domain is new in this file: no table uses it yet",
        ),
    ],
)


def _created_here(ctx: Context, domain: str | None) -> bool:
    """The domain was created by an earlier statement of this file (no table of blue's uses it)."""
    if not domain or ctx.statement is None:
        return False
    return any(
        ch.op == Op.CREATE_DOMAIN and ch.get("domain") == domain
        for st in ctx.statements[: ctx.statement.index]
        for ch in st.changes
    )


@RULE.check
def check(ctx: Context) -> bool:
    ch = ctx.change
    return not ch.get("not_valid") and not _created_here(ctx, ch.get("domain"))
