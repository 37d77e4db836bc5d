"""mysql-table-copy: a change MySQL can only do by copying the table, with writes blocked."""

from migrator.lint.rule import Context, Example, Hit, Rule

RULE = Rule(
    id="mysql-table-copy",
    name="Change that copies the table and blocks writes",
    severity="error",
    category="lock",
    dialects=("mysql",),
    scope="change",
    message=(
        "{what} on existing table {table} needs ALGORITHM=COPY: MySQL rebuilds the table with concurrent writes "
        "blocked for the whole copy"
    ),
    why="""
MySQL 8 runs most ALTER TABLE operations INSTANT (metadata only) or INPLACE with concurrent DML. Some
cannot: changing a column's data type (except lengthening a VARCHAR within the same length-prefix
size), adding a STORED generated column, adding a column whose default is an expression, adding a
FOREIGN KEY while foreign_key_checks is on, adding a CHECK constraint. MySQL then silently falls back
to ALGORITHM=COPY: it copies every row into a new table while writes to the table are blocked, for
minutes or hours on a large table, and replicas replay the same blocking copy afterwards.
""",
    fix="""
Avoid the copy, or do it online:
- type change: a new column of the new type, kept in sync, backfilled in batches, then the old one
  dropped in the contract phase; or gh-ost / pt-online-schema-change.
- expression default: add the column without a default (INSTANT), SET DEFAULT (...), backfill in batches.
- stored generated column: a VIRTUAL generated column (INSTANT) plus an index on it.
- foreign key: check for orphans, then SET foreign_key_checks = 0; ADD ... FOREIGN KEY ..., ALGORITHM=INPLACE,
  LOCK=NONE; SET foreign_key_checks = 1.
Add ALGORITHM=INPLACE, LOCK=NONE (or ALGORITHM=INSTANT) so MySQL refuses instead of copying.
""",
    bad=[
        Example(
            "ALTER TABLE accounts MODIFY visits bigint;",
            setup="CREATE TABLE accounts (id bigint PRIMARY KEY, visits int);",
            dialect="mysql",
            note="a data type change copies the table",
        ),
        Example("ALTER TABLE accounts ADD COLUMN score int AS (visits * 2) STORED;", dialect="mysql"),
        Example("ALTER TABLE accounts ADD COLUMN created_at datetime DEFAULT (now());", dialect="mysql"),
        Example(
            "ALTER TABLE orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id);",
            dialect="mysql",
        ),
    ],
    good=[
        Example(
            "ALTER TABLE accounts CHANGE email email_address varchar(255) NOT NULL;",
            setup="CREATE TABLE accounts (id bigint PRIMARY KEY, email varchar(255) NOT NULL);",
            dialect="mysql",
            version="8.0.30",
            note="a pure rename via CHANGE is INSTANT (8.0.28+): no copy",
        ),
        Example(
            "ALTER TABLE accounts MODIFY name varchar(50);",
            setup="CREATE TABLE accounts (id bigint PRIMARY KEY, name varchar(20));",
            dialect="mysql",
            note="lengthening a VARCHAR within the same length prefix is INPLACE",
        ),
        Example(
            "ALTER TABLE accounts ADD COLUMN score int AS (visits * 2) VIRTUAL;", dialect="mysql", version="8.0.30"
        ),
        Example("ALTER TABLE accounts ADD COLUMN note text;", dialect="mysql", version="8.0.30"),
        Example(
            "ALTER TABLE accounts MODIFY visits bigint, ALGORITHM=INPLACE, LOCK=NONE;",
            setup="CREATE TABLE accounts (id bigint PRIMARY KEY, visits int);",
            dialect="mysql",
            note="MySQL refuses instead of copying: the migration fails fast, it does not block",
        ),
        Example(
            "SET foreign_key_checks = 0;\n"
            "ALTER TABLE orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id)\n"
            "  REFERENCES customers (id);\n"
            ""
            "SET foreign_key_checks = 1;",
            dialect="mysql",
            note="with foreign_key_checks off the foreign key is added INPLACE",
        ),
        Example(
            "CREATE TABLE counters (id bigint PRIMARY KEY, n int);\nALTER TABLE counters MODIFY n bigint;",
            dialect="mysql",
            note="the table is created earlier in the same file",
        ),
    ],
)

_FIX_TYPE = """
Do not change the type in place on a large table. Either
- expand/contract: ADD COLUMN {column}_new <new type> (INSTANT), keep it in sync (triggers or the
  application), backfill in batches, switch readers and writers, DROP COLUMN {column} in the contract; or
- run the ALTER online with gh-ost or pt-online-schema-change.
Add ALGORITHM=INPLACE, LOCK=NONE to plain ALTERs so MySQL refuses instead of copying.
"""
_FIX_DEFAULT = """
Add the column without the expression default (INSTANT), then set the default and backfill:
ALTER TABLE {table} ADD COLUMN {column} <type> NULL, ALGORITHM=INSTANT;
ALTER TABLE {table} ALTER COLUMN {column} SET DEFAULT (<expression>), ALGORITHM=INSTANT;
-- migrate, in batches: UPDATE {table} SET {column} = <expression> WHERE {column} IS NULL AND id BETWEEN ? AND ?;
"""
_FIX_GENERATED = """
Use a VIRTUAL generated column (INSTANT/INPLACE, no copy) and index it if you need it materialized:
ALTER TABLE {table} ADD COLUMN {column} <type> AS (<expression>) VIRTUAL, ALGORITHM=INSTANT;
ALTER TABLE {table} ADD INDEX {table}_{column}_idx ({column}), ALGORITHM=INPLACE, LOCK=NONE;
For AUTO_INCREMENT or a stored column on a large table: gh-ost / pt-online-schema-change.
"""
_FIX_FK = """
Check for orphans yourself, then add the key without the copy:
SELECT count(*) FROM {table} c LEFT JOIN <parent> p ON p.id = c.<column> WHERE c.<column> IS NOT NULL AND p.id IS NULL;
SET foreign_key_checks = 0;
ALTER TABLE {table} ADD CONSTRAINT <name> FOREIGN KEY (<column>) REFERENCES <parent> (id), ALGORITHM=INPLACE, LOCK=NONE;
SET foreign_key_checks = 1;
"""
_FIX_OTHER = """
Run it online with gh-ost or pt-online-schema-change, or split it into online expand/contract steps.
Add ALGORITHM=INPLACE, LOCK=NONE to plain ALTERs so MySQL refuses instead of copying.
"""


def _what(ctx: Context) -> tuple[str, str]:
    ch = ctx.change
    if ch.op == "alter_column_type":
        return "changing the type of {column}", _FIX_TYPE
    if ch.op == "add_column":
        if ch.get("generated") == "stored":
            return "ADD COLUMN {column} ... STORED", _FIX_GENERATED
        if ch.get("auto_increment"):
            return "ADD COLUMN {column} AUTO_INCREMENT", _FIX_GENERATED
        if ch.get("default"):
            return "ADD COLUMN {column} with the expression default {default}", _FIX_DEFAULT
        return "ADD COLUMN {column}", _FIX_OTHER
    if ch.op == "add_constraint":
        kind = ch.get("kind")
        if kind == "foreign_key":
            return "ADD FOREIGN KEY (foreign_key_checks on)", _FIX_FK
        if kind == "check":
            return "ADD CHECK constraint", _FIX_OTHER
        return "ADD CONSTRAINT", _FIX_OTHER
    return ch.op.replace("_", " ").upper(), _FIX_OTHER


@RULE.check
def check(ctx: Context):
    fact = ctx.lock
    if fact is None or not ctx.change.table:
        return None
    if fact.algorithm != "COPY" and fact.concurrent_dml:
        return None
    algorithm = (ctx.change.get("algorithm") or "DEFAULT").upper()
    lock = (ctx.change.get("lock_clause") or "DEFAULT").upper()
    if algorithm in ("INSTANT", "INPLACE", "COPY") or lock in ("NONE", "SHARED", "EXCLUSIVE"):
        return None  # an explicit clause: MySQL refuses (INPLACE/INSTANT/NONE) or mysql-copy-algorithm reports it
    what, fix = _what(ctx)
    ch = ctx.change
    return Hit(None, fix, fields={"what": what.format(column=ch.column, default=ch.get("default"))})
