"""identifier-too-long: a name longer than 63 bytes, which PostgreSQL truncates silently."""

from migrator.lint.rule import Context, Example, Hit, Rule
from migrator.sql.changes import Op

MAX_BYTES = 63  # NAMEDATALEN - 1

RULE = Rule(
    id="identifier-too-long",
    name="Keep identifiers within 63 bytes",
    severity="warning",
    category="design",
    dialects=("postgres",),
    ops=(
        Op.CREATE_TABLE,
        Op.CREATE_TABLE_AS,
        Op.ADD_COLUMN,
        Op.CREATE_INDEX,
        Op.ADD_CONSTRAINT,
        Op.CREATE_VIEW,
        Op.CREATE_TYPE,
        Op.CREATE_SCHEMA,
        Op.CREATE_DOMAIN,
        Op.RENAME_TABLE,
        Op.RENAME_COLUMN,
        Op.RENAME_VIEW,
        Op.RENAME_SCHEMA,
    ),
    squawk=("identifier-too-long",),
    existing_tables_only=False,
    message="{kind} name {ident} is {size} bytes: PostgreSQL silently truncates it to {truncated}",
    why="""
PostgreSQL keeps at most 63 bytes of an identifier (NAMEDATALEN - 1) and cuts longer names with
only a NOTICE, which migration runners do not show. The object then exists under a name that
appears nowhere in the code: tools that compare schemas report drift, an ORM or a later migration
that spells the full name in a string (pg_indexes, information_schema, error handling on a
constraint name) finds nothing, and two long names that share their first 63 bytes collide.
Bytes, not characters, count: a name with accents or other non-ASCII letters is cut sooner.
bgmigrate checks the names a statement defines (tables, columns, indexes, constraints, views,
types, schemas and rename targets); squawk also reports long names where they are only referenced.
""",
    fix="""
Choose a name of at most 63 bytes, e.g. {truncated}, and use it everywhere.
""",
    bad=[
        Example(
            "CREATE TABLE customer_subscription_billing_period_adjustment_history_line_entries (id bigint PRIMARY KEY);"
        ),
        Example(
            "CREATE INDEX CONCURRENTLY customer_subscription_billing_period_adjustment_history_created_at_idx "
            "ON adjustments (created_at);"
        ),
        Example(
            "ALTER TABLE accounts ADD COLUMN "
            "last_successful_payment_reminder_notification_delivered_at_timestamp timestamptz;"
        ),
        Example(
            'CREATE TABLE "überweisungsbestätigungsbenachrichtigungsprotokolleinträge_alt" (id bigint);',
            note="62 characters, but 65 bytes in UTF-8",
        ),
    ],
    good=[
        Example("CREATE TABLE billing_adjustments (id bigint PRIMARY KEY);"),
        Example(
            "CREATE TABLE customer_subscription_billing_period_adjustment_history_entries (id bigint PRIMARY KEY);",
            note="exactly 63 bytes: kept whole",
        ),
        Example("CREATE INDEX CONCURRENTLY billing_adjustments_created_at_idx ON billing_adjustments (created_at);"),
    ],
)

_KINDS = {
    Op.CREATE_TABLE: "table",
    Op.CREATE_TABLE_AS: "table",
    Op.CREATE_VIEW: "view",
    Op.ADD_COLUMN: "column",
    Op.CREATE_INDEX: "index",
    Op.ADD_CONSTRAINT: "constraint",
    Op.CREATE_TYPE: "type",
    Op.CREATE_SCHEMA: "schema",
    Op.CREATE_DOMAIN: "domain",
}


def _defined_names(ch) -> list[tuple[str, str]]:
    """(kind, name) of every identifier the change defines."""
    op, a = ch.op, ch.attrs
    if op in (Op.CREATE_TABLE, Op.CREATE_TABLE_AS, Op.CREATE_VIEW):
        names = [(_KINDS[op], ch.table)]
        names += [("column", c) for c in (a.get("columns") or {})]
        names += [("constraint", c.get("constraint")) for c in a.get("constraints") or []]
        return names
    if op == Op.ADD_COLUMN:
        return [("column", ch.column)]
    if op == Op.CREATE_INDEX:
        return [("index", a.get("index"))]
    if op == Op.ADD_CONSTRAINT:
        return [("constraint", a.get("constraint"))]
    if op == Op.CREATE_TYPE:
        return [("type", a.get("type_name"))]
    if op == Op.CREATE_SCHEMA:
        return [("schema", a.get("schema"))]
    if op == Op.CREATE_DOMAIN:
        return [("domain", a.get("domain"))]
    return [("new", a.get("new_name"))]  # renames


@RULE.check
def check(ctx: Context):
    hits = []
    for kind, name in _defined_names(ctx.change):
        for part in (name or "").split("."):
            size = len(part.encode("utf-8"))
            if size > MAX_BYTES:
                truncated = part.encode("utf-8")[:MAX_BYTES].decode("utf-8", errors="ignore")
                fields = {"kind": kind.capitalize(), "ident": part, "size": size, "truncated": truncated}
                hits.append(Hit(fields=fields))
    return hits
