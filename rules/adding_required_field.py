"""adding-required-field: ADD COLUMN ... NOT NULL without a default on a table blue writes to."""

from migrator.lint.rule import Context, Example, Hit, Rule
from migrator.sql.changes import Op

_MYSQL_FIX = """
-- expand (before green): nullable, or NOT NULL with a default blue's INSERTs fall back on
ALTER TABLE {table} ADD COLUMN {column} {type} NULL, ALGORITHM=INSTANT;
-- deploy green: always writes {column}
-- migrate, in batches: UPDATE {table} SET {column} = <value> WHERE {column} IS NULL AND id BETWEEN ? AND ?;
-- contract, after blue is decommissioned:
ALTER TABLE {table} MODIFY {column} {type} NOT NULL, ALGORITHM=INPLACE, LOCK=NONE;
"""

RULE = Rule(
    id="adding-required-field",
    name="Adding a NOT NULL column without a default breaks blue",
    severity="error",
    category="compat",
    dialects=("postgres", "mysql"),
    ops=(Op.ADD_COLUMN,),
    squawk=("adding-required-field",),
    message=(
        "ADD COLUMN {table}.{column} NOT NULL without a default: blue's INSERTs do not set {column} and fail "
        "(and the ALTER itself fails if {table} has rows)"
    ),
    why="""
Blue does not know the new column, so its INSERTs leave it out. With NOT NULL and no default there is
nothing to fill it with: every blue INSERT fails with a not-null violation (MySQL strict mode:
"Field doesn't have a default value"). On PostgreSQL the ALTER itself fails on a table that has rows.
Delaying it does not help either, because green needs the column from its first request: the change is
breaking and has to be split into an expand part (nullable, or with a default) and a contract part
(enforce NOT NULL once blue is gone).
""",
    fix="""
-- expand (before green): a default blue's INSERTs fall back on (PG 11+: no table rewrite) ...
ALTER TABLE {table} ADD COLUMN {column} {type} NOT NULL DEFAULT <value>;
-- ... or nullable now and NOT NULL later:
ALTER TABLE {table} ADD COLUMN {column} {type};
-- deploy green: always writes {column}
-- migrate, in batches: UPDATE {table} SET {column} = <value> WHERE {column} IS NULL AND id BETWEEN ? AND ?;
-- contract, after blue is decommissioned (each VALIDATE in its own transaction):
ALTER TABLE {table} ADD CONSTRAINT {column}_not_null CHECK ({column} IS NOT NULL) NOT VALID;
ALTER TABLE {table} VALIDATE CONSTRAINT {column}_not_null;
ALTER TABLE {table} ALTER COLUMN {column} SET NOT NULL;   -- PG 12+: proven by the CHECK, no scan
ALTER TABLE {table} DROP CONSTRAINT {column}_not_null;
""",
    bad=[
        Example("ALTER TABLE accounts ADD COLUMN region text NOT NULL;"),
        Example(
            "ALTER TABLE accounts ADD COLUMN region text NOT NULL;",
            setup="CREATE TABLE accounts (id bigint PRIMARY KEY, email text);",
        ),
        Example("ALTER TABLE accounts ADD COLUMN region varchar(8) NOT NULL;", dialect="mysql"),
    ],
    good=[
        Example("ALTER TABLE accounts ADD COLUMN region text NOT NULL DEFAULT 'eu';"),
        Example("ALTER TABLE accounts ADD COLUMN region text;"),
        Example(
            "CREATE TABLE regions (id bigint PRIMARY KEY);\nALTER TABLE regions ADD COLUMN code text NOT NULL;",
            note="the table is created earlier in the same file: nobody inserts into it yet",
        ),
        Example("ALTER TABLE accounts ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY;"),
        Example("ALTER TABLE accounts ADD COLUMN region varchar(8) NOT NULL DEFAULT 'eu';", dialect="mysql"),
    ],
)


@RULE.check
def check(ctx: Context):
    if ctx.phase != "breaking":
        return None
    if ctx.dialect == "mysql":
        return Hit(
            "ADD COLUMN {table}.{column} NOT NULL without a default: blue's INSERTs do not set {column} and fail "
            "in strict mode (or silently store the type's zero value)",
            _MYSQL_FIX,
        )
    return True
