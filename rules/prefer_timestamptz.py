"""prefer-timestamptz: a timestamp without time zone column."""

from migrator.lint.rule import Context, Example, Hit, Rule
from migrator.sql.changes import Op
from migrator.sql.types import parse_type

RULE = Rule(
    id="prefer-timestamptz",
    name="Use timestamptz rather than timestamp",
    severity="warning",
    category="design",
    dialects=("postgres",),
    ops=(Op.CREATE_TABLE, Op.ADD_COLUMN, Op.ALTER_COLUMN_TYPE),
    squawk=("prefer-timestamp-tz", "prefer-timestamptz"),
    existing_tables_only=False,
    message="column {col} of {tbl} is {type_text} (without time zone): which instant it means depends on the writer",
    why="""
timestamp without time zone stores a wall-clock reading and throws the offset away:
"2024-03-01 12:00+01" and "2024-03-01 12:00-06" are stored as the same value. Which instant a
value means then depends on the session time zone of whoever wrote it, and comparisons with now()
or across daylight-saving changes go wrong quietly. timestamptz stores an absolute instant (UTC)
and converts on input and output, at the same 8 bytes. Converting an existing column later is a
table rewrite (and an incompatible change for blue).
""",
    fix="""
{col} timestamptz
""",
    bad=[
        Example("CREATE TABLE events (id bigint PRIMARY KEY, happened_at timestamp);"),
        Example("ALTER TABLE events ADD COLUMN processed_at timestamp without time zone;"),
    ],
    good=[
        Example("ALTER TABLE events ADD COLUMN processed_at timestamptz;"),
        Example("ALTER TABLE events ADD COLUMN processed_at timestamp with time zone;"),
    ],
)


@RULE.check
def check(ctx: Context):
    hits = []
    for column, type_text in ctx.defined_columns():
        t = parse_type(type_text)
        if t is not None and t.name == "timestamp":
            hits.append(Hit(fields={"col": column, "tbl": ctx.change.table, "type_text": type_text}))
    return hits
