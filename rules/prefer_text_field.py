"""prefer-text-field: a varchar(n) column: changing its limit later needs ACCESS EXCLUSIVE."""

from migrator.lint.rule import Context, Example, Hit, Rule
from migrator.sql.changes import Op
from migrator.sql.types import parse_type

RULE = Rule(
    id="prefer-text-field",
    name="Use text with a CHECK constraint rather than varchar(n)",
    severity="warning",
    category="design",
    dialects=("postgres",),
    ops=(Op.CREATE_TABLE, Op.ADD_COLUMN, Op.ALTER_COLUMN_TYPE),
    squawk=("prefer-text-field",),
    existing_tables_only=False,
    message="column {col} of {tbl} is {type_text}: changing that limit later takes ACCESS EXCLUSIVE on {tbl}",
    why="""
The length limit of varchar(n) is part of the column type. Raising it is an ALTER COLUMN TYPE that
needs ACCESS EXCLUSIVE (brief, but it queues behind every running query and everything queues
behind it); lowering it also checks every row under that lock. In PostgreSQL varchar(n) is stored
exactly like text, so the limit buys nothing but that constraint. Expressed as a CHECK on a text
column, the limit can be changed online: add the new CHECK NOT VALID, VALIDATE it (reads and writes
continue), drop the old one.
""",
    fix="""
{col} text CONSTRAINT {tbl}_{col}_length CHECK (char_length({col}) <= {n})
""",
    bad=[
        Example("CREATE TABLE users (id bigint PRIMARY KEY, email varchar(255));"),
        Example("ALTER TABLE users ADD COLUMN nickname character varying(40);"),
    ],
    good=[
        Example("ALTER TABLE users ADD COLUMN nickname text CHECK (char_length(nickname) <= 40);"),
        Example("ALTER TABLE users ADD COLUMN nickname varchar;", note="an unbounded varchar is text"),
    ],
)


@RULE.check
def check(ctx: Context):
    hits = []
    for column, type_text in ctx.defined_columns():
        t = parse_type(type_text)
        if t is not None and t.name == "varchar" and t.params:
            hits.append(Hit(fields={"col": column, "tbl": ctx.change.table, "type_text": type_text, "n": t.params[0]}))
    return hits
