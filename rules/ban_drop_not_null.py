"""ban-drop-not-null: relaxing NOT NULL, safe for blue's writers but not for blue's readers."""

from migrator.lint.rule import Context, Example, Hit, Rule
from migrator.sql.changes import Op

RULE = Rule(
    id="ban-drop-not-null",
    name="Dropping NOT NULL exposes blue's readers to NULLs",
    severity="warning",
    category="compat",
    dialects=("postgres", "mysql"),
    ops=(Op.DROP_NOT_NULL, Op.ALTER_COLUMN_TYPE),
    squawk=("ban-drop-not-null",),
    message=(
        "DROP NOT NULL on {table}.{column}: blue's writes keep working, but blue's readers may meet NULLs "
        "that green writes; green must keep writing {column} until blue is decommissioned"
    ),
    why="""
Relaxing a column to nullable is an expand change for writers: every row blue writes is still
valid. The risk is on the reading side. Blue's code was written when the column could never be NULL
(non-optional fields in its models, arithmetic, string formatting), so once green starts writing
NULL there, blue's requests that read those rows can crash or misbehave. The schema change can ship
in the expand phase; what must wait for blue's decommissioning is green writing NULLs.
""",
    fix="""
-- expand (safe for blue's writers):
ALTER TABLE {table} ALTER COLUMN {column} DROP NOT NULL;   -- MySQL: MODIFY {column} <type> NULL
-- green keeps writing a value into {column} until blue is decommissioned; only then may it write NULL.
-- If blue's readers already handle NULL, say so:
-- bgmigrate: ignore[ban-drop-not-null] blue maps NULL to <...>
""",
    bad=[
        Example("ALTER TABLE accounts ALTER COLUMN phone DROP NOT NULL;"),
        Example(
            "ALTER TABLE accounts MODIFY phone varchar(20) NULL;",
            setup="CREATE TABLE accounts (id bigint PRIMARY KEY, phone varchar(20) NOT NULL);",
            dialect="mysql",
            version="8.0.30",
        ),
    ],
    good=[
        Example(
            "CREATE TABLE contacts (id bigint, phone text NOT NULL);\n"
            "ALTER TABLE contacts ALTER COLUMN phone DROP NOT NULL;",
            note="the table is created earlier in the same file",
        ),
        Example(
            "ALTER TABLE accounts ADD COLUMN tier int NOT NULL DEFAULT 0;\n"
            "ALTER TABLE accounts ALTER COLUMN tier DROP NOT NULL;",
            note="the column is added in this file: blue never reads it",
        ),
        Example(
            "ALTER TABLE accounts MODIFY phone varchar(40) NOT NULL;",
            setup="CREATE TABLE accounts (id bigint PRIMARY KEY, phone varchar(20) NOT NULL);",
            dialect="mysql",
            version="8.0.30",
        ),
    ],
)


@RULE.check
def check(ctx: Context):
    ch = ctx.change
    if ctx.column_is_new():
        return None
    table = ctx.table()
    col = table.column(ch.column) if table is not None else None
    if ch.op == Op.DROP_NOT_NULL:
        if col is not None and col.nullable and table is not None and table.known:
            return None  # already nullable per the history
        return True
    # MySQL MODIFY / CHANGE: the restated column is nullable, the old one was NOT NULL
    if ch.get("redefine") and col is not None and not col.nullable and ch.get("nullable") is not False:
        return Hit(
            "MODIFY {table}.{column} makes it nullable: blue's writes keep working, but blue's readers may "
            "meet NULLs that green writes; green must keep writing {column} until blue is decommissioned"
        )
    return None
