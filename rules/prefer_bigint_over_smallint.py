"""prefer-bigint-over-smallint: a 16-bit integer (smallint, int2, smallserial) column."""

from migrator.lint.rule import Context, Example, Hit, Rule
from migrator.sql.changes import Op
from migrator.sql.types import parse_type

RULE = Rule(
    id="prefer-bigint-over-smallint",
    name="Use bigint rather than smallint",
    severity="warning",
    category="design",
    dialects=("postgres",),
    ops=(Op.CREATE_TABLE, Op.ADD_COLUMN, Op.ALTER_COLUMN_TYPE),
    squawk=("prefer-bigint-over-smallint",),
    existing_tables_only=False,
    message="column {col} of {tbl} is {type_text}, a 16-bit integer: it overflows at 32,767",
    why="""
smallint holds at most 32,767. Identifiers and counters pass that quickly, and then every INSERT
or UPDATE that goes beyond fails. Widening the column afterwards rewrites the whole table and its
indexes under ACCESS EXCLUSIVE. The space saved (six bytes per row against bigint, often nothing
at all once alignment padding is counted) rarely pays for that.
""",
    fix="""
{col} bigint  -- or integer if the domain is truly bounded (e.g. a percentage)
""",
    bad=[
        Example("CREATE TABLE plans (id smallserial PRIMARY KEY, name text);"),
        Example("ALTER TABLE plans ADD COLUMN seats smallint;"),
    ],
    good=[
        Example("ALTER TABLE plans ADD COLUMN seats bigint;"),
    ],
)


@RULE.check
def check(ctx: Context):
    hits = []
    for column, type_text in ctx.defined_columns():
        t = parse_type(type_text)
        if t is not None and t.name == "smallint" and not t.array:
            hits.append(Hit(fields={"col": column, "tbl": ctx.change.table, "type_text": type_text}))
    return hits
