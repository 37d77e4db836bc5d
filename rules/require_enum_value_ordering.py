"""require-enum-value-ordering: ALTER TYPE ... ADD VALUE without BEFORE or AFTER."""

from migrator.lint.rule import Context, Example, Rule
from migrator.sql.changes import Op

RULE = Rule(
    id="require-enum-value-ordering",
    name="Say where a new enum value goes",
    severity="warning",
    category="design",
    dialects=("postgres",),
    ops=(Op.ADD_ENUM_VALUE,),
    squawk=("require-enum-value-ordering",),
    existing_tables_only=False,
    message="ALTER TYPE {type_name} ADD VALUE '{value}' without BEFORE or AFTER puts it last in the sort order",
    why="""
Enum values sort in the order they were declared, not alphabetically: comparisons (status <
'approved'), ORDER BY, min/max and range checks all use that order. ADD VALUE without BEFORE or
AFTER appends the new value at the end, which is right only when it really is the last stage. A
'pending_review' added after 'rejected' silently falls outside every existing "not yet approved"
query. Stating the position makes the intent explicit and reviewable.
""",
    fix="""
ALTER TYPE {type_name} ADD VALUE '{value}' BEFORE '<next value>';  -- or AFTER '<previous value>'
""",
    bad=[Example("ALTER TYPE order_status ADD VALUE 'pending_review';")],
    good=[
        Example("ALTER TYPE order_status ADD VALUE 'pending_review' BEFORE 'approved';"),
        Example("ALTER TYPE order_status ADD VALUE IF NOT EXISTS 'pending_review' AFTER 'submitted';"),
    ],
)


@RULE.check
def check(ctx: Context) -> bool:
    ch = ctx.change
    return not (ch.get("before") or ch.get("after"))
