"""set-not-null-tightening: SET NOT NULL (or MySQL MODIFY ... NOT NULL) while blue may still write NULL."""

from migrator.lint.rule import Context, Example, Hit, Rule
from migrator.sql.changes import Op

_MYSQL_FIX = """
-- release N (expand): green always writes {column}; nothing changes in the schema yet.
-- migrate, in batches: UPDATE {table} SET {column} = <value> WHERE {column} IS NULL AND id BETWEEN ? AND ?;
-- contract, after blue is decommissioned (in strict mode; otherwise NULLs are silently coerced):
SELECT count(*) FROM {table} WHERE {column} IS NULL;   -- must be 0
ALTER TABLE {table} MODIFY {column} <type> NOT NULL <same DEFAULT as before>, ALGORITHM=INPLACE, LOCK=NONE;
"""

RULE = Rule(
    id="set-not-null-tightening",
    name="Make a column NOT NULL only after blue is decommissioned",
    severity="warning",
    category="compat",
    dialects=("postgres", "mysql"),
    ops=(Op.SET_NOT_NULL, Op.ALTER_COLUMN_TYPE),
    squawk=("ban-new-write-restriction",),
    message=(
        "SET NOT NULL on {table}.{column}: blue may still write NULL there and its writes would fail; "
        "run it only in the contract phase, after blue is decommissioned"
    ),
    why="""
NOT NULL tightens what writers may store. Blue was written when the column was optional: it may
insert rows without it or update it to NULL, and from the moment the constraint exists those writes
fail. A column added in this same release counts too: blue does not know it, so its INSERTs leave it
NULL unless it has a default. The schema change belongs in the contract phase, after green always
writes a value, the NULLs are backfilled, and blue is gone. (How SET NOT NULL scans the table under
ACCESS EXCLUSIVE is adding-not-nullable-field's concern; the recipe below avoids both problems.)
""",
    fix="""
-- release N (expand): green always writes {column}.
-- migrate, in batches: UPDATE {table} SET {column} = <value> WHERE {column} IS NULL AND id BETWEEN ? AND ?;
-- contract, after blue is decommissioned (VALIDATE in its own transaction):
ALTER TABLE {table} ADD CONSTRAINT {column}_not_null CHECK ({column} IS NOT NULL) NOT VALID;
ALTER TABLE {table} VALIDATE CONSTRAINT {column}_not_null;
ALTER TABLE {table} ALTER COLUMN {column} SET NOT NULL;   -- PG 12+: proven by the CHECK, no scan
ALTER TABLE {table} DROP CONSTRAINT {column}_not_null;
""",
    bad=[
        Example("ALTER TABLE accounts ALTER COLUMN email SET NOT NULL;"),
        Example(
            "ALTER TABLE accounts ALTER COLUMN email SET NOT NULL;",
            setup="CREATE TABLE accounts (id bigint PRIMARY KEY, email text);",
        ),
        Example(
            "ALTER TABLE accounts ADD COLUMN region text;\nALTER TABLE accounts ALTER COLUMN region SET NOT NULL;",
            note="a column new in this release: blue's INSERTs leave it NULL",
        ),
        Example(
            "ALTER TABLE accounts MODIFY email varchar(255) NOT NULL;",
            setup="CREATE TABLE accounts (id bigint PRIMARY KEY, email varchar(255));",
            dialect="mysql",
            version="8.0.30",
        ),
    ],
    good=[
        Example(
            "ALTER TABLE accounts CHANGE email email_address varchar(255) NOT NULL;",
            setup="CREATE TABLE accounts (id bigint PRIMARY KEY, email varchar(255) NOT NULL);",
            dialect="mysql",
            version="8.0.30",
            note="CHANGE restates NOT NULL on a column that already was NOT NULL",
        ),
        Example(
            "CREATE TABLE invites (id bigint, email text);\nALTER TABLE invites ALTER COLUMN email SET NOT NULL;",
            note="the table is created earlier in the same file",
        ),
        Example(
            "ALTER TABLE accounts ADD COLUMN region text DEFAULT 'eu';\n"
            "ALTER TABLE accounts ALTER COLUMN region SET NOT NULL;",
            note="new column with a default: blue's INSERTs get the default, never NULL",
        ),
        Example(
            "ALTER TABLE accounts MODIFY email varchar(320) NOT NULL;",
            setup="CREATE TABLE accounts (id bigint PRIMARY KEY, email varchar(255) NOT NULL);",
            dialect="mysql",
            version="8.0.30",
            note="already NOT NULL: MODIFY restates it",
        ),
        Example(
            "ALTER TABLE accounts ALTER COLUMN email SET NOT NULL;",
            setup="CREATE TABLE accounts (id bigint PRIMARY KEY, email text NOT NULL);",
            note="already NOT NULL per the history: nothing tightens",
        ),
    ],
)


@RULE.check
def check(ctx: Context):
    ch = ctx.change
    table = ctx.table()
    col = table.column(ch.column) if table is not None else None
    if col is not None and not col.nullable:
        return None  # already NOT NULL
    if ctx.column_is_new() and col is not None and col.default is not None:
        return None  # blue does not write the new column; the default fills it
    if ch.op == Op.SET_NOT_NULL:
        return ctx.phase == "contract"
    if not ch.get("redefine") or ch.get("nullable") is not False or ctx.column_is_new():
        return None
    if col is None:
        return Hit(
            "MODIFY {table}.{column} ... NOT NULL, and the history does not say whether {column} was nullable: "
            "if it was, blue may still write NULL there; run it "
            "only in the contract phase, after blue is decommissioned",
            _MYSQL_FIX,
        )
    return Hit(
        "MODIFY {table}.{column} ... NOT NULL: blue may still write NULL there and its writes would fail; "
        "run it only in the contract phase, after blue is decommissioned",
        _MYSQL_FIX,
    )
