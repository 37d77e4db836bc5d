"""suppression-without-rule: an ignore comment that names no rule."""

from migrator.lint.rule import Example, Rule

RULE = Rule(
    id="suppression-without-rule",
    name="Suppression that names no rule",
    severity="warning",
    category="suppression",
    dialects=("postgres", "mysql"),
    scope="engine",
    message="'{directive}' names no rule, so it silences nothing",
    why="""
Blanket ignores hide every future finding on the statement, including ones nobody reviewed, so
bgmigrate only accepts ignores that name the rules they silence.
""",
    fix="Name the rules: -- bgmigrate: ignore[rule-id, other-rule] reason",
    bad=[Example("-- bgmigrate: ignore all of it\nCREATE INDEX i ON accounts (email);")],
    good=[
        Example(
            "-- bgmigrate: ignore[require-concurrent-index-creation] accounts has 40 rows\n"
            "CREATE INDEX i ON accounts (email);"
        )
    ],
)
