"""mixed-phase-statement: one statement with both an expand and a contract change."""

from migrator.lint.rule import Context, Example, Hit, Rule

RULE = Rule(
    id="mixed-phase-statement",
    name="One statement mixes expand and contract changes",
    severity="error",
    category="compat",
    dialects=("postgres", "mysql"),
    scope="statement",
    message=(
        "{expand_part} is expand but {contract_part} is contract: one statement cannot run both before green "
        "and after blue; split it"
    ),
    why="""
Expand changes must run before green is deployed (blue keeps working with them); contract changes
must run after blue is decommissioned (only green can live with them). A single statement that does
both, such as ALTER TABLE t ADD COLUMN new ..., DROP COLUMN old, has no correct moment: run early it
breaks blue, run late it breaks green. bgmigrate classifies such a statement as breaking.
""",
    fix="""
Split it into one statement per phase:
-- expand (before green):
ALTER TABLE {table} {expand_sql};
-- contract (after blue is decommissioned), in a later migration:
ALTER TABLE {table} {contract_sql};
""",
    bad=[
        Example("ALTER TABLE accounts ADD COLUMN email_address text, DROP COLUMN email;"),
        Example(
            "ALTER TABLE accounts ADD COLUMN region text DEFAULT 'eu', ALTER COLUMN plan SET NOT NULL;",
            setup="CREATE TABLE accounts (id bigint PRIMARY KEY, plan text);",
        ),
        Example("ALTER TABLE accounts ADD COLUMN email_address varchar(255), DROP COLUMN email;", dialect="mysql"),
    ],
    good=[
        Example("ALTER TABLE accounts ADD COLUMN email_address text, ADD COLUMN phone text;"),
        Example("ALTER TABLE accounts DROP COLUMN email, DROP COLUMN phone;"),
        Example(
            "CREATE TABLE invites (id bigint, mail text);\n"
            "ALTER TABLE invites ADD COLUMN email text, DROP COLUMN mail;",
            note="the table is created earlier in the same file: everything about it is expand",
        ),
    ],
)

_VERB = {
    "add_column": "ADD COLUMN",
    "drop_column": "DROP COLUMN",
    "set_not_null": "SET NOT NULL",
    "drop_not_null": "DROP NOT NULL",
    "set_default": "SET DEFAULT",
    "drop_default": "DROP DEFAULT",
    "add_constraint": "ADD CONSTRAINT",
    "drop_constraint": "DROP CONSTRAINT",
    "alter_column_type": "ALTER COLUMN TYPE",
    "create_index": "ADD INDEX",
    "drop_index": "DROP INDEX",
}


def _describe(change) -> str:
    verb = _VERB.get(change.op, change.op.replace("_", " ").upper())
    name = change.column or change.get("constraint") or change.get("index")
    return f"{verb} {name}" if name else verb


@RULE.check
def check(ctx: Context):
    expand = [ch for ch, c in ctx.classified if c.phase == "expand" and not c.new_object]
    contract = [ch for ch, c in ctx.classified if c.phase == "contract"]
    if not expand or not contract:
        return None
    table = next((ch.table for ch in expand + contract if ch.table), None) or "<table>"
    return Hit(
        fields={
            "table": table,
            "expand_part": ", ".join(_describe(ch) for ch in expand),
            "contract_part": ", ".join(_describe(ch) for ch in contract),
            "expand_sql": ", ".join(_describe(ch) + " ..." for ch in expand),
            "contract_sql": ", ".join(_describe(ch) + " ..." for ch in contract),
        }
    )
