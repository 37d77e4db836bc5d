"""narrowing-type-change: a type change that blue's writes may no longer fit (contract phase only)."""

from migrator.lint.rule import Context, Example, Rule
from migrator.sql.changes import Op

RULE = Rule(
    id="narrowing-type-change",
    name="Narrowing a column type only after blue is decommissioned",
    severity="warning",
    category="compat",
    dialects=("postgres", "mysql"),
    ops=(Op.ALTER_COLUMN_TYPE,),
    message=(
        "{table}.{column}: {old_type} to {type} narrows the column ({type_reason}); blue may still write values "
        "that no longer fit: run it only in the contract phase, after blue is decommissioned"
    ),
    why="""
A narrower type (shorter varchar, smaller integer, lower numeric precision, fewer enum members)
rejects values the old one accepted. Blue keeps writing whatever its code allows, so its writes can
start failing (PostgreSQL, MySQL strict mode) or be silently truncated (MySQL without strict mode).
The existing rows must also fit or the ALTER fails. Narrowing is a contract step: make green write
only values that fit, decommission blue, check the data, then narrow.
""",
    fix="""
-- release N: green writes only values that fit {type}.
-- contract, after blue is decommissioned: check the existing rows first (must return 0) ...
SELECT count(*) FROM {table} WHERE <{column} does not fit {type}>;
-- ... then narrow (PG: rewrites the table under ACCESS EXCLUSIVE; see changing-column-type):
ALTER TABLE {table} ALTER COLUMN {column} TYPE {type};   -- MySQL: MODIFY {column} {type} ...
-- PostgreSQL alternative that keeps the type: a CHECK (length({column}) <= n) NOT VALID + VALIDATE.
""",
    bad=[
        Example(
            "ALTER TABLE accounts ALTER COLUMN name TYPE varchar(20);",
            setup="CREATE TABLE accounts (id bigint PRIMARY KEY, name varchar(100));",
        ),
        Example(
            "ALTER TABLE accounts ALTER COLUMN visits TYPE int USING visits::int;",
            setup="CREATE TABLE accounts (id bigint PRIMARY KEY, visits bigint);",
        ),
        Example(
            "ALTER TABLE accounts MODIFY name varchar(20);",
            setup="CREATE TABLE accounts (id bigint PRIMARY KEY, name varchar(100));",
            dialect="mysql",
        ),
        Example(
            "ALTER TABLE accounts MODIFY state enum('active', 'closed');",
            setup="CREATE TABLE accounts (id bigint PRIMARY KEY, state enum('active', 'frozen', 'closed'));",
            dialect="mysql",
            note="removing an ENUM member",
        ),
    ],
    good=[
        Example(
            "ALTER TABLE accounts MODIFY role enum('member', 'moderator', 'admin') NOT NULL DEFAULT 'member';",
            setup=(
                "CREATE TABLE accounts (id bigint PRIMARY KEY, role enum('member', 'admin') NOT NULL DEFAULT 'member');"
            ),
            dialect="mysql",
            note="a member inserted in the middle: every old value still fits (the copy is mysql-table-copy's concern)",
        ),
        Example(
            "ALTER TABLE accounts ALTER COLUMN region TYPE text;",
            setup="CREATE TABLE accounts (id bigint PRIMARY KEY, region char(2));",
            note="char(n) to text keeps every value",
        ),
        Example(
            "ALTER TABLE accounts ALTER COLUMN name TYPE varchar(50);",
            setup="CREATE TABLE accounts (id bigint PRIMARY KEY, name varchar(10));",
            note="widening varchar(10) to varchar(50)",
        ),
        Example(
            "ALTER TABLE accounts ALTER COLUMN visits TYPE bigint;",
            setup="CREATE TABLE accounts (id bigint PRIMARY KEY, visits int);",
        ),
        Example(
            "ALTER TABLE accounts MODIFY name varchar(50);",
            setup="CREATE TABLE accounts (id bigint PRIMARY KEY, name varchar(10));",
            dialect="mysql",
        ),
        Example(
            "ALTER TABLE accounts MODIFY state enum('active', 'closed', 'frozen');",
            setup="CREATE TABLE accounts (id bigint PRIMARY KEY, state enum('active', 'closed'));",
            dialect="mysql",
            note="appending an ENUM member widens",
        ),
        Example(
            "CREATE TABLE imports (id bigint, name varchar(100));\n"
            "ALTER TABLE imports ALTER COLUMN name TYPE varchar(20);",
            note="the table is created earlier in the same file",
        ),
    ],
)


@RULE.check
def check(ctx: Context) -> bool:
    return ctx.type_change is not None and ctx.type_change.compat == "narrowing"
