"""suppression-without-reason: an ignore comment that does not say why."""

from migrator.lint.rule import Example, Rule

RULE = Rule(
    id="suppression-without-reason",
    name="Suppression without a reason",
    severity="warning",
    category="suppression",
    dialects=("postgres", "mysql"),
    scope="engine",
    message="ignore[{rules}] gives no reason",
    why="""
A suppression is a decision someone made in review; the reason is what lets the next reader trust
it. A bare ignore still silences the rule (so the build is not blocked twice) but is reported.
""",
    fix="Add the reason after the bracket: -- bgmigrate: ignore[{rules}] table is empty in production",
    bad=[
        Example("-- bgmigrate: ignore[require-concurrent-index-creation]\nCREATE INDEX i ON accounts (email);"),
    ],
    good=[
        Example(
            "-- bgmigrate: ignore[require-concurrent-index-creation] accounts has 40 rows\n"
            "CREATE INDEX i ON accounts (email);"
        ),
    ],
)
