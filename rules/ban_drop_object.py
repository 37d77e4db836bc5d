"""ban-drop-object: DROP FUNCTION / PROCEDURE / TRIGGER / SEQUENCE / EXTENSION / DOMAIN / POLICY blue may rely on."""

from migrator.lint.rule import Context, Example, Hit, Rule
from migrator.sql.changes import Op

RULE = Rule(
    id="ban-drop-object",
    name="Drop functions, triggers and sequences only after blue is decommissioned",
    severity="warning",
    category="compat",
    dialects=("postgres", "mysql"),
    ops=(Op.DROP_OBJECT,),
    squawk=(
        "ban-drop-function",
        "ban-drop-trigger",
        "ban-drop-sequence",
        "ban-drop-extension",
        "ban-drop-domain",
        "ban-drop-policy",
    ),
    message="DROP {object}: blue may still rely on it; run it only in the contract phase, after blue is decommissioned",
    why="""
Blue calls functions and procedures, its INSERTs take ids from sequences (DEFAULT nextval(...)), and
triggers do work blue's code never does itself. In an expand/contract migration the trigger that
keeps an old and a new column in sync is exactly what keeps blue and green consistent: dropping it
before blue is gone lets the two versions' data drift apart. Dropping any of these is a contract step.
""",
    fix="""
-- release N: green stops calling / depending on it.
-- contract, after blue is decommissioned (sync triggers: only after the old column's last reader is gone):
DROP {object} IF EXISTS <name>;   -- no CASCADE: let a forgotten dependency fail the migration loudly
""",
    bad=[
        Example("DROP TRIGGER accounts_sync_email ON accounts;"),
        Example("DROP FUNCTION accounts_sync_email();"),
        Example("DROP SEQUENCE invoice_number_seq;"),
        Example("DROP TRIGGER accounts_sync_email;", dialect="mysql"),
    ],
    good=[
        Example(
            "CREATE TABLE import_rows (id bigint);\n"
            "CREATE TRIGGER import_rows_t BEFORE INSERT ON import_rows FOR EACH ROW EXECUTE FUNCTION noop();\n"
            "DROP TRIGGER import_rows_t ON import_rows;",
            note="the trigger's table is created earlier in the same file",
        ),
        Example("CREATE SEQUENCE invoice_number_seq;"),
    ],
)


@RULE.check
def check(ctx: Context):
    if ctx.phase != "contract":
        return None
    kind = (ctx.change.get("object") or "object").upper()
    name = ctx.change.get("name")
    return Hit(
        "DROP {target}{on}: blue may still rely on it; run it only in the contract phase, after blue is decommissioned",
        fields={
            "object": kind,
            "target": f"{kind} {name}" if name else kind,
            "on": f" on {ctx.change.table}" if ctx.change.table else "",
        },
    )
