"""unparsed-statement: a MySQL statement the parser rejects."""

from migrator.lint.rule import Example, Rule

RULE = Rule(
    id="unparsed-statement",
    name="MySQL statement that does not parse",
    severity="error",
    category="syntax",
    dialects=("mysql",),
    scope="engine",
    message="statement does not parse as MySQL: {message}",
    why="""
MySQL has no server parser on PyPI, so bgmigrate cannot prove a MySQL statement invalid the way
it can for PostgreSQL. A statement sqlglot rejects and the token classifier does not recognise is
reported here and treated as breaking (fail safe): it is either a real syntax error or a form
bgmigrate does not model yet.
""",
    fix="Check the statement against the MySQL manual; if it is valid, suppress with a reason and report it.",
    bad=[Example("ALTER TABLE t ADD COLUMN (a int,, b int);", dialect="mysql")],
    good=[Example("ALTER TABLE t ADD COLUMN a int;", dialect="mysql")],
)
