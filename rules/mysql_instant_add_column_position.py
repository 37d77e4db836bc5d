"""mysql-instant-add-column-position: ADD COLUMN ... FIRST/AFTER is not INSTANT before MySQL 8.0.29."""

from migrator.lint.rule import Context, Example, Hit, Rule
from migrator.sql.changes import Op

RULE = Rule(
    id="mysql-instant-add-column-position",
    name="ADD COLUMN with FIRST/AFTER rebuilds the table before MySQL 8.0.29",
    severity="warning",
    category="lock",
    dialects=("mysql",),
    versions={"mysql": "<8.0.29"},
    ops=(Op.ADD_COLUMN,),
    message=(
        "ADD COLUMN {column} {position} on {table}: before MySQL 8.0.29 only a column added last is INSTANT, "
        "so this rebuilds the whole table (MySQL {version})"
    ),
    why="""
MySQL 8.0.12 made ADD COLUMN instant, but only for a column appended as the last column; from 8.0.29
a column can be added instantly at any position. On earlier versions FIRST or AFTER col turns a
metadata-only change into an INPLACE table rebuild: DML continues, but the rebuild reads and writes
the whole table, takes disk space for a second copy, and replicas replay it afterwards, lagging for
as long. Column order rarely matters to an application: select columns by name.
""",
    fix="""
Add the column at the end, instantly:
ALTER TABLE {table} ADD COLUMN {column} <type>, ALGORITHM=INSTANT;
(or upgrade to MySQL 8.0.29+, where FIRST/AFTER is instant too)
""",
    bad=[
        Example("ALTER TABLE accounts ADD COLUMN note text AFTER email;", dialect="mysql", version="8.0.28"),
        Example("ALTER TABLE accounts ADD COLUMN note text FIRST;", dialect="mysql", version="8.0.20"),
        Example(
            "ALTER TABLE accounts ADD COLUMN note text AFTER email, ALGORITHM=INSTANT;",
            dialect="mysql",
            version="8.0.28",
            note="with ALGORITHM=INSTANT the statement fails instead",
        ),
    ],
    good=[
        Example("ALTER TABLE accounts ADD COLUMN note text AFTER email;", dialect="mysql", version="8.0.29"),
        Example("ALTER TABLE accounts ADD COLUMN note text;", dialect="mysql", version="8.0.28"),
        Example(
            "CREATE TABLE notes (id bigint PRIMARY KEY, body text);\nALTER TABLE notes ADD COLUMN title text AFTER id;",
            dialect="mysql",
            version="8.0.28",
            note="the table is created earlier in the same file",
        ),
    ],
)


@RULE.check
def check(ctx: Context):
    position = ctx.change.get("position")
    if not position:
        return None
    if (ctx.change.get("algorithm") or "").upper() == "INSTANT":
        return Hit(
            "ADD COLUMN {column} {position} on {table} with ALGORITHM=INSTANT fails before MySQL 8.0.29 "
            "(MySQL {version}): only a column added last is INSTANT"
        )
    return True
