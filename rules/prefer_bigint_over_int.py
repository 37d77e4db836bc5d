"""prefer-bigint-over-int: a 32-bit integer (int, integer, int4, serial) column."""

from migrator.lint.rule import Context, Example, Hit, Rule
from migrator.sql.changes import Op
from migrator.sql.types import parse_type

RULE = Rule(
    id="prefer-bigint-over-int",
    name="Use bigint rather than int",
    severity="warning",
    category="design",
    dialects=("postgres",),
    ops=(Op.CREATE_TABLE, Op.ADD_COLUMN, Op.ALTER_COLUMN_TYPE),
    squawk=("prefer-bigint-over-int",),
    existing_tables_only=False,
    message="column {col} of {tbl} is {type_text}, a 32-bit integer: it overflows at 2,147,483,647",
    why="""
A 32-bit integer tops out at 2,147,483,647. Ids, counters and sums that grow with traffic reach it
sooner than expected, and then every INSERT fails. Widening the column afterwards (int to bigint)
rewrites the whole table and its indexes under ACCESS EXCLUSIVE, and every foreign key column that
points at it has to follow. bigint costs four more bytes per value and removes the problem.
""",
    fix="""
{col} bigint  -- keys: bigint GENERATED ALWAYS AS IDENTITY (or bigserial)
""",
    bad=[
        Example("CREATE TABLE orders (id integer PRIMARY KEY, total_cents bigint);"),
        Example("ALTER TABLE orders ADD COLUMN quantity int4;"),
        Example("CREATE TABLE orders (id serial PRIMARY KEY);", note="serial is a 32-bit integer too"),
    ],
    good=[
        Example("CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, quantity bigint);"),
        Example("ALTER TABLE orders ADD COLUMN tags int[];", note="an array of small values is not an id or counter"),
    ],
)


@RULE.check
def check(ctx: Context):
    hits = []
    for column, type_text in ctx.defined_columns():
        t = parse_type(type_text)
        if t is not None and t.name == "int" and not t.array:
            hits.append(Hit(fields={"col": column, "tbl": ctx.change.table, "type_text": type_text}))
    return hits
