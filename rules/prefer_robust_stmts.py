"""prefer-robust-stmts: outside a transaction, a statement that fails when the migration is re-run."""

from migrator.lint.fixes import guarded
from migrator.lint.rule import Context, Example, Hit, Rule
from migrator.sql.changes import Op

RULE = Rule(
    id="prefer-robust-stmts",
    name="Make statements outside a transaction safe to re-run",
    severity="warning",
    category="transaction",
    dialects=("postgres",),
    ops=(
        Op.CREATE_TABLE,
        Op.CREATE_TABLE_AS,
        Op.CREATE_INDEX,
        Op.CREATE_SCHEMA,
        Op.ADD_COLUMN,
        Op.ADD_CONSTRAINT,
        Op.ADD_ENUM_VALUE,
        Op.DROP_TABLE,
        Op.DROP_VIEW,
        Op.DROP_INDEX,
        Op.DROP_TYPE,
        Op.DROP_SCHEMA,
        Op.DROP_COLUMN,
        Op.DROP_CONSTRAINT,
        Op.RENAME_TABLE,
        Op.RENAME_COLUMN,
        Op.RENAME_VIEW,
        Op.RENAME_SCHEMA,
        Op.RENAME_ENUM_VALUE,
        Op.ATTACH_PARTITION,
        Op.DETACH_PARTITION,
    ),
    squawk=("prefer-robust-stmts",),
    existing_tables_only=False,
    message="{what} outside a transaction: if the migration fails after it and is run again, it fails here",
    why="""
Outside a transaction every statement commits on its own. If a later statement fails (a lock
timeout, a duplicate key in CREATE UNIQUE INDEX CONCURRENTLY, a lost connection), the migration
stops half applied, and running it again stops at the first statement that already took effect:
CREATE TABLE finds the table, ADD COLUMN finds the column, DROP INDEX finds no index. Guards make
each step re-runnable: IF NOT EXISTS / IF EXISTS, DROP CONSTRAINT IF EXISTS before ADD CONSTRAINT.
Statements that must run outside a transaction (CREATE / DROP INDEX CONCURRENTLY, DETACH ...
CONCURRENTLY, ALTER TYPE ... ADD VALUE before PostgreSQL 12) need them even in a file that
otherwise uses transactions. Inside a transaction a failure rolls everything back, so the rule
stays silent there.
Compared with squawk: bgmigrate does not report re-runnable statements (SET NOT NULL, SET DEFAULT,
ALTER COLUMN TYPE, VALIDATE CONSTRAINT succeed again), and it also reports CREATE SCHEMA,
DROP VIEW / SCHEMA, ALTER TYPE ... ADD VALUE without IF NOT EXISTS, renames of schemas, views and
enum values, and ATTACH / DETACH PARTITION.
""",
    fix="""
{fixed_sql}
(or run the file in a transaction, when nothing in it must run outside one)
""",
    bad=[
        Example("CREATE INDEX CONCURRENTLY accounts_email_idx ON accounts (email);"),
        Example("ALTER TABLE accounts ADD COLUMN note text;"),
        Example("CREATE TABLE notes (id bigint PRIMARY KEY);"),
        Example("DROP INDEX CONCURRENTLY accounts_email_idx;"),
        Example("ALTER TABLE accounts ADD CONSTRAINT accounts_email_key UNIQUE USING INDEX accounts_email_idx;"),
        Example(
            "CREATE INDEX CONCURRENTLY accounts_email_idx ON accounts (email);",
            settings={"assume_in_transaction": True},
            note="CONCURRENTLY never runs in a transaction, whatever the runner does",
        ),
        Example("ALTER TYPE order_status ADD VALUE 'refunded' AFTER 'paid';"),
        Example("ALTER TABLE accounts RENAME COLUMN plan TO tier;", note="no IF EXISTS form: run it in a transaction"),
    ],
    good=[
        Example("CREATE INDEX CONCURRENTLY IF NOT EXISTS accounts_email_idx ON accounts (email);"),
        Example("ALTER TABLE accounts ADD COLUMN IF NOT EXISTS note text;"),
        Example("DROP INDEX CONCURRENTLY IF EXISTS accounts_email_idx;"),
        Example(
            "ALTER TABLE accounts DROP CONSTRAINT IF EXISTS accounts_email_key;\n"
            "ALTER TABLE accounts ADD CONSTRAINT accounts_email_key UNIQUE USING INDEX accounts_email_idx;",
        ),
        Example(
            "BEGIN;\nCREATE TABLE notes (id bigint PRIMARY KEY);\n"
            "ALTER TABLE accounts ADD COLUMN note_id bigint;\nCOMMIT;",
            note="a transaction rolls back as a whole",
        ),
        Example("ALTER TABLE accounts ADD COLUMN note text;", settings={"assume_in_transaction": True}),
        Example("CREATE TEMP TABLE import_batch (id bigint);", note="a temporary table vanishes with the session"),
        Example("ALTER TABLE accounts ALTER COLUMN email SET NOT NULL;", note="re-running it succeeds"),
        Example("ALTER TYPE order_status ADD VALUE IF NOT EXISTS 'refunded' AFTER 'paid';"),
    ],
)

_CREATE = {Op.CREATE_TABLE: "CREATE TABLE", Op.CREATE_TABLE_AS: "CREATE TABLE AS", Op.CREATE_SCHEMA: "CREATE SCHEMA"}
_DROP = {
    Op.DROP_TABLE: "DROP TABLE",
    Op.DROP_VIEW: "DROP VIEW",
    Op.DROP_INDEX: "DROP INDEX",
    Op.DROP_TYPE: "DROP TYPE",
    Op.DROP_SCHEMA: "DROP SCHEMA",
    Op.DROP_COLUMN: "DROP COLUMN",
    Op.DROP_CONSTRAINT: "DROP CONSTRAINT",
}
_NO_GUARD = {
    Op.RENAME_TABLE: "RENAME TO",
    Op.RENAME_COLUMN: "RENAME COLUMN",
    Op.RENAME_VIEW: "ALTER VIEW ... RENAME TO",
    Op.RENAME_SCHEMA: "ALTER SCHEMA ... RENAME TO",
    Op.RENAME_ENUM_VALUE: "ALTER TYPE ... RENAME VALUE",
    Op.ATTACH_PARTITION: "ATTACH PARTITION",
    Op.DETACH_PARTITION: "DETACH PARTITION",
}
_NO_GUARD_FIX = """
PostgreSQL has no IF [NOT] EXISTS for {what}: run it inside a transaction, alone in its migration
(a single statement either applies or not), or put it last in the file.
"""


def _dropped_before(ctx: Context, table: str | None, name: str | None) -> bool:
    """``DROP CONSTRAINT IF EXISTS name`` earlier in the file makes ``ADD CONSTRAINT name`` re-runnable."""
    return bool(name) and any(
        ch.op == Op.DROP_CONSTRAINT and ch.table == table and ch.get("constraint") == name and ch.get("if_exists")
        for st in ctx.statements[: ctx.statement.index]
        for ch in st.changes
    )


@RULE.check
def check(ctx: Context):
    ch = ctx.change
    op = ch.op
    outside = not ctx.in_transaction or bool(ch.get("concurrently"))
    if not outside:
        return None
    if op in _CREATE or op == Op.ADD_COLUMN or op == Op.ADD_ENUM_VALUE:
        if ch.get("if_not_exists") or ch.get("temporary"):
            return None
        what = _CREATE.get(op) or ("ADD COLUMN" if op == Op.ADD_COLUMN else "ALTER TYPE ... ADD VALUE")
        return Hit(fields={"what": f"{what} without IF NOT EXISTS", "fixed_sql": guarded(ctx.statement.sql)})
    if op == Op.CREATE_INDEX:
        if ch.get("if_not_exists"):
            return None
        if not ch.get("index"):
            return Hit(
                "CREATE INDEX without a name outside a transaction: a re-run builds a second, duplicate index",
                fix="Name the index and add IF NOT EXISTS: CREATE INDEX CONCURRENTLY IF NOT EXISTS <name> ON ...;",
            )
        return Hit(fields={"what": "CREATE INDEX without IF NOT EXISTS", "fixed_sql": guarded(ctx.statement.sql)})
    if op in _DROP:
        if ch.get("if_exists"):
            return None
        return Hit(fields={"what": f"{_DROP[op]} without IF EXISTS", "fixed_sql": guarded(ctx.statement.sql)})
    if op == Op.ADD_CONSTRAINT:
        if _dropped_before(ctx, ch.table, ch.get("constraint")):
            return None
        name = ch.get("constraint") or "<name>"
        guard = f"ALTER TABLE {ch.table} DROP CONSTRAINT IF EXISTS {name};\n"
        return Hit(
            fields={
                "what": "ADD CONSTRAINT (which has no IF NOT EXISTS) not preceded by DROP CONSTRAINT IF EXISTS",
                "fixed_sql": guard + " ".join(ctx.statement.sql.split()) + ";",
            }
        )
    if op in _NO_GUARD:
        return Hit(fix=_NO_GUARD_FIX, fields={"what": _NO_GUARD[op]})
    return None
