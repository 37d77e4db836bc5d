"""ban-char-field: a char(n) / character column."""

from migrator.lint.rule import Context, Example, Hit, Rule
from migrator.sql.changes import Op
from migrator.sql.types import parse_type

RULE = Rule(
    id="ban-char-field",
    name="Do not use char(n)",
    severity="warning",
    category="design",
    dialects=("postgres",),
    ops=(Op.CREATE_TABLE, Op.ADD_COLUMN, Op.ALTER_COLUMN_TYPE),
    squawk=("ban-char-field",),
    existing_tables_only=False,
    message="column {col} of {tbl} is {type_text}: blank-padded, and no faster than text",
    why="""
char(n) pads every value with spaces to n characters, ignores trailing spaces when comparing, and
strips them when casting to text, which surprises applications (length, concatenation, LIKE, joins
with text columns). A value longer than n is an error, and changing n later is a type change under
ACCESS EXCLUSIVE. In PostgreSQL it is not faster or smaller than text or varchar: it is usually
larger because of the padding. (The single-byte internal type "char", in quotes, is a different
type and is not reported.)
""",
    fix="""
{col} text  -- add CHECK (char_length({col}) = {n}) if the length is fixed by the domain
""",
    bad=[
        Example("CREATE TABLE countries (code char(2) PRIMARY KEY, name text);"),
        Example("ALTER TABLE countries ADD COLUMN currency character(3);"),
    ],
    good=[
        Example("CREATE TABLE countries (code text PRIMARY KEY CHECK (char_length(code) = 2), name text);"),
        Example('ALTER TABLE countries ADD COLUMN flag "char";', note='"char" is the one-byte internal type'),
    ],
)


@RULE.check
def check(ctx: Context):
    hits = []
    for column, type_text in ctx.defined_columns():
        t = parse_type(type_text)
        if t is not None and t.name == "char":
            n = t.params[0] if t.params else 1
            hits.append(Hit(fields={"col": column, "tbl": ctx.change.table, "type_text": type_text, "n": n}))
    return hits
