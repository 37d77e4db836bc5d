"""migration-not-rendered: part of an Alembic revision could not be rendered to SQL offline."""

from migrator.lint.rule import Example, Rule

RULE = Rule(
    id="migration-not-rendered",
    name="Migration code that cannot be rendered to SQL offline",
    severity="error",
    category="syntax",
    dialects=("postgres", "mysql"),
    scope="engine",
    message="{message}",
    why="""
bgmigrate renders Alembic revisions to SQL without a database. Code that needs a live connection
(op.get_bind(), reflection, reading rows to decide what to do) produces no SQL offline, so what it
would change cannot be checked: it is reported, and treated as breaking, instead of being
silently skipped.
""",
    fix="""
Express the change with op.* calls or op.execute("..."), or, after review, suppress with
# bgmigrate: ignore[migration-not-rendered] <why it is safe> on the line above the call.
""",
    bad=[],
    notes="Needs an Alembic revision: tested by tests/unit/test_alembic.py.",
    good=[Example("ALTER TABLE accounts ADD COLUMN note text;")],
)
