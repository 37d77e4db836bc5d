"""unused-suppression: an ignore comment that silences nothing."""

from migrator.lint.rule import Example, Rule

RULE = Rule(
    id="unused-suppression",
    name="Suppression that silences nothing",
    severity="warning",
    category="suppression",
    dialects=("postgres", "mysql"),
    scope="engine",
    message="ignore[{rule}] silences nothing ({where})",
    why="""
An ignore that matches no finding is stale (the statement was fixed) or misplaced (it is not on
the line directly before the statement it was meant for). Either way it would silently swallow a
future finding.
""",
    fix="Delete the comment, or move it to the line directly before the statement.",
    bad=[
        Example(
            "-- bgmigrate: ignore[require-concurrent-index-creation] reviewed\n"
            "CREATE INDEX CONCURRENTLY i ON accounts (email);"
        ),
        Example(
            "-- bgmigrate: ignore[require-concurrent-index-creation] reviewed\n\n"
            "SELECT 1;\nCREATE INDEX i ON accounts (email);",
            note="not directly before the statement it targets",
        ),
    ],
    good=[
        Example(
            "SET lock_timeout = '2s';\n-- bgmigrate: ignore[require-concurrent-index-creation] accounts has 40 rows\n"
            "CREATE INDEX i ON accounts (email);"
        )
    ],
)
