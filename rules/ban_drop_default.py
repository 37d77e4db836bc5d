"""ban-drop-default: dropping a column default that blue's INSERTs rely on (contract phase only)."""

from migrator.lint.rule import Context, Example, Hit, Rule
from migrator.sql.changes import Op

RULE = Rule(
    id="ban-drop-default",
    name="Drop a column default only after blue is decommissioned",
    severity="warning",
    category="compat",
    dialects=("postgres", "mysql"),
    ops=(Op.DROP_DEFAULT, Op.SET_DEFAULT, Op.ALTER_COLUMN_TYPE),
    squawk=("ban-drop-default",),
    message=(
        "DROP DEFAULT on {table}.{column}: blue's INSERTs that omit {column} relied on the default; "
        "run it only in the contract phase, after blue is decommissioned"
    ),
    why="""
Blue's INSERT statements that leave the column out get the default from the database. After the
default is dropped the same INSERTs store NULL instead, or, on a NOT NULL column, fail with a
not-null violation ("Field doesn't have a default value" on MySQL). Blue keeps running while green
rolls out, so the default is part of blue's contract with the schema: drop it only when every
running writer sets the column itself. SET DEFAULT NULL and a MySQL MODIFY/CHANGE that no longer
states the DEFAULT drop it just the same.
""",
    fix="""
-- release N: green always sets {column} explicitly in its INSERTs.
-- contract, after blue is decommissioned:
SET lock_timeout = '2s';   -- MySQL: SET SESSION lock_wait_timeout = 5;
ALTER TABLE {table} ALTER COLUMN {column} DROP DEFAULT;
-- MySQL MODIFY/CHANGE restates the whole column: repeat the DEFAULT clause unless dropping it is the point.
""",
    bad=[
        Example("ALTER TABLE accounts ALTER COLUMN plan DROP DEFAULT;"),
        Example("ALTER TABLE accounts ALTER COLUMN plan SET DEFAULT NULL;"),
        Example("ALTER TABLE accounts ALTER COLUMN plan DROP DEFAULT;", dialect="mysql"),
        Example(
            "ALTER TABLE accounts MODIFY plan varchar(20) NOT NULL;",
            setup="CREATE TABLE accounts (id bigint PRIMARY KEY, plan varchar(20) NOT NULL DEFAULT 'free');",
            dialect="mysql",
            note="MODIFY restates the column without its DEFAULT: the default is dropped",
        ),
    ],
    good=[
        Example(
            "CREATE TABLE invites (id bigint, state text DEFAULT 'new');\n"
            "ALTER TABLE invites ALTER COLUMN state DROP DEFAULT;",
            note="the table is created earlier in the same file",
        ),
        Example(
            "ALTER TABLE accounts ADD COLUMN region text DEFAULT 'eu';\n"
            "ALTER TABLE accounts ALTER COLUMN region DROP DEFAULT;",
            note="the column is added in this file: blue never inserted into it",
        ),
        Example(
            "ALTER TABLE accounts ALTER COLUMN plan DROP DEFAULT;",
            setup="CREATE TABLE accounts (id bigint PRIMARY KEY, plan text);",
            note="the history shows plan has no default: nothing changes for blue",
        ),
        Example(
            "ALTER TABLE accounts MODIFY plan varchar(40) NOT NULL DEFAULT 'free';",
            setup="CREATE TABLE accounts (id bigint PRIMARY KEY, plan varchar(20) NOT NULL DEFAULT 'free');",
            dialect="mysql",
            version="8.0.30",
        ),
    ],
)


def _old_default(ctx: Context):
    """(known, default) of the column before this statement."""
    table = ctx.table()
    col = table.column(ctx.change.column) if table is not None else None
    if col is None:
        return False, None
    return True, col.default


@RULE.check
def check(ctx: Context):
    ch = ctx.change
    if ctx.column_is_new():
        return None
    known, old = _old_default(ctx)
    if ch.op == Op.DROP_DEFAULT:
        if ctx.phase != "contract":
            return None
        table = ctx.table()
        if known and old is None and table is not None and table.known:
            return None  # the history says there is no default to drop
        return True
    if ch.op == Op.SET_DEFAULT:
        if str(ch.get("default") or "").strip().upper() != "NULL":
            return None
        if known and old is None:
            return None
        return Hit(
            "SET DEFAULT NULL on {table}.{column} drops its default: blue's INSERTs that omit "
            "{column} relied on it; run it only in the contract phase, after blue is decommissioned"
        )
    # MySQL MODIFY / CHANGE restating the column without its DEFAULT
    if ch.get("redefine") and known and old is not None and ch.get("default") is None:
        return Hit(
            "MODIFY {table}.{column} no longer states DEFAULT {old_default}: the default is dropped and blue's "
            "INSERTs that omit {column} relied on it; run it only in the contract phase, after blue is decommissioned",
            fields={"old_default": old},
        )
    return None
