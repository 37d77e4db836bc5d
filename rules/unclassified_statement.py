"""unclassified-statement: valid SQL that bgmigrate has no model for."""

from migrator.lint.rule import Example, Rule

RULE = Rule(
    id="unclassified-statement",
    name="Statement bgmigrate cannot classify",
    severity="error",
    category="syntax",
    dialects=("postgres", "mysql"),
    scope="engine",
    message="bgmigrate cannot tell what this statement changes, so it is treated as breaking",
    why="""
Fail safe: a statement whose effect is unknown could lock, rewrite or break anything. bgmigrate
never guesses "expand" for it. Anonymous code blocks (DO $$ ... $$) and procedure calls are the
usual cause: their effect depends on code bgmigrate does not execute.
""",
    fix="""
Write the change as plain DDL bgmigrate can read, or, after reviewing it by hand, suppress with
-- bgmigrate: ignore[unclassified-statement] <why it is safe>
""",
    bad=[Example("DO $$ BEGIN EXECUTE 'ALTER TABLE accounts DROP COLUMN legacy'; END $$;")],
    good=[Example("ALTER TABLE accounts ADD COLUMN note text;")],
)
