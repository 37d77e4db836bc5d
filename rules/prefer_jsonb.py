"""prefer-jsonb: a json column instead of jsonb."""

from migrator.lint.rule import Context, Example, Hit, Rule
from migrator.sql.changes import Op
from migrator.sql.types import parse_type

RULE = Rule(
    id="prefer-jsonb",
    name="Use jsonb rather than json",
    severity="warning",
    category="design",
    dialects=("postgres",),
    ops=(Op.CREATE_TABLE, Op.ADD_COLUMN, Op.ALTER_COLUMN_TYPE),
    squawk=(),
    existing_tables_only=False,
    message="column {col} of {tbl} is json: use jsonb",
    why="""
json stores the document as text and re-parses it on every access. It has no equality operator, so
SELECT DISTINCT, GROUP BY, UNION and many ORM comparisons on the column fail, and it cannot be
indexed with GIN. jsonb stores a parsed binary form: faster to query, indexable, comparable.
Converting a json column to jsonb later rewrites every row under ACCESS EXCLUSIVE, so choose
jsonb up front. (Keep json only when the exact text, key order and duplicate keys must be kept.)
""",
    fix="""
{col} jsonb
""",
    bad=[
        Example("CREATE TABLE webhooks (id bigint PRIMARY KEY, payload json);"),
        Example("ALTER TABLE webhooks ADD COLUMN headers json;"),
    ],
    good=[
        Example("ALTER TABLE webhooks ADD COLUMN headers jsonb;"),
    ],
)


@RULE.check
def check(ctx: Context):
    hits = []
    for column, type_text in ctx.defined_columns():
        t = parse_type(type_text)
        if t is not None and t.name == "json":
            hits.append(Hit(fields={"col": column, "tbl": ctx.change.table, "type_text": type_text}))
    return hits
