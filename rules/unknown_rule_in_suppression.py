"""unknown-rule-in-suppression: an ignore comment naming a rule that does not exist."""

from migrator.lint.rule import Example, Rule

RULE = Rule(
    id="unknown-rule-in-suppression",
    name="Suppression names an unknown rule",
    severity="warning",
    category="suppression",
    dialects=("postgres", "mysql"),
    scope="engine",
    message="ignore[{rule}]: there is no rule '{rule}'",
    why="A misspelt rule id silences nothing, while the author believes the finding is handled.",
    fix="Use an id from 'bgmigrate rules'.",
    bad=[
        Example("-- bgmigrate: ignore[require-concurent-index] typo\nCREATE INDEX CONCURRENTLY i ON accounts (email);")
    ],
    good=[
        Example("-- bgmigrate: ignore[require-concurrent-index-creation] 40 rows\nCREATE INDEX i ON accounts (email);")
    ],
)
