"""ban-drop-column: DROP COLUMN of a column blue still uses (contract phase only)."""

from migrator.lint.rule import Context, Example, Rule
from migrator.sql.changes import Op

RULE = Rule(
    id="ban-drop-column",
    name="Drop a column only after blue is decommissioned",
    severity="warning",
    category="compat",
    dialects=("postgres", "mysql"),
    ops=(Op.DROP_COLUMN,),
    squawk=("ban-drop-column",),
    message=(
        "DROP COLUMN {table}.{column}: blue still selects or writes {column}; run it only in the contract phase, "
        "after blue is decommissioned"
    ),
    why="""
While green rolls out, blue keeps running against the same database. Blue's queries name the column
(SELECT lists, INSERT column lists, ORMs that enumerate every mapped column), so the moment the
column is gone blue's requests fail with "column does not exist" / "Unknown column". The drop itself
is cheap (PostgreSQL only marks the column dropped; MySQL 8.0.29+ drops it instantly, older versions
rebuild the table), but it is a removal: it belongs in the contract phase, once no running version
references the column. Dropping a column also silently drops the indexes and constraints on it.
""",
    fix="""
-- release N (expand): green stops reading and writing {column} (ORM: mark it ignored/deferred).
-- If {column} is NOT NULL without a default, let green's INSERTs omit it:
ALTER TABLE {table} ALTER COLUMN {column} DROP NOT NULL;   -- MySQL: MODIFY {column} <type> NULL
-- contract, after blue is decommissioned, in its own migration:
SET lock_timeout = '2s';   -- MySQL: SET SESSION lock_wait_timeout = 5;
ALTER TABLE {table} DROP COLUMN IF EXISTS {column};   -- MySQL: DROP COLUMN {column}, ALGORITHM=INSTANT (8.0.29+)
""",
    bad=[
        Example("ALTER TABLE accounts DROP COLUMN legacy_plan;"),
        Example("ALTER TABLE accounts DROP COLUMN legacy_plan;", dialect="mysql"),
        Example(
            "ALTER TABLE accounts DROP COLUMN legacy_plan;",
            setup="CREATE TABLE accounts (id bigint PRIMARY KEY, legacy_plan text);",
            note="the column comes from an earlier migration: blue uses it",
        ),
    ],
    good=[
        Example(
            "CREATE TABLE accounts_import (id bigint, scratch text);\nALTER TABLE accounts_import DROP COLUMN scratch;",
            note="the table is created earlier in the same file: blue never saw it",
        ),
        Example(
            "ALTER TABLE accounts ADD COLUMN scratch text;\nALTER TABLE accounts DROP COLUMN scratch;",
            note="the column is added in this same file: blue never used it",
        ),
    ],
)


@RULE.check
def check(ctx: Context) -> bool:
    return ctx.phase == "contract"
