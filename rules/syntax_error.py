"""syntax-error: the statement does not parse."""

from migrator.lint.rule import Example, Rule

RULE = Rule(
    id="syntax-error",
    name="Statement does not parse",
    severity="error",
    category="syntax",
    dialects=("postgres", "mysql"),
    scope="engine",
    message="syntax error: {message}",
    why="""
PostgreSQL's own parser (libpg_query, through pglast) rejects this statement, so the migration
would fail when it reaches it, possibly half-applied. bgmigrate reports the position PostgreSQL
reports and goes on linting the other statements and files.
""",
    fix="Correct the statement; the position points at the token PostgreSQL stopped at.",
    bad=[
        Example("ALTER TABLE accounts ADD COLUM balance int;", note="typo: COLUM"),
        Example("CREATE TABLE t (id int,);"),
    ],
    good=[
        Example("ALTER TABLE accounts ADD COLUMN balance int;"),
        Example(
            "ALTER TABLE accounts VALIDATE CONSTRAINT accounts_balance_check;",
            note="valid PostgreSQL that sqlglot only models as a generic command",
        ),
        Example("CLUSTER accounts USING accounts_pkey;", note="valid; sqlglot cannot parse it"),
    ],
)
