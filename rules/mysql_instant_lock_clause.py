"""mysql-instant-lock-clause: ALGORITHM=INSTANT combined with a LOCK clause other than DEFAULT fails."""

import re

from migrator.lint.rule import Context, Example, Hit, Rule

RULE = Rule(
    id="mysql-instant-lock-clause",
    name="ALGORITHM=INSTANT with a LOCK clause",
    severity="error",
    category="syntax",
    dialects=("mysql",),
    scope="statement",
    existing_tables_only=False,
    message="ALGORITHM=INSTANT with LOCK={lock_clause}: MySQL rejects the combination and the migration fails",
    why="""
An INSTANT operation only changes metadata, so MySQL accepts no LOCK clause with it other than
LOCK=DEFAULT; ALGORITHM=INSTANT, LOCK=NONE (or SHARED / EXCLUSIVE) fails with "Incorrect usage of
ALGORITHM=INSTANT and LOCK=NONE/SHARED/EXCLUSIVE" before doing anything.
""",
    fix="""
Drop the LOCK clause for INSTANT changes, or ask for INPLACE with no lock:
{fixed_sql}
""",
    bad=[Example("ALTER TABLE accounts ADD COLUMN note text, ALGORITHM=INSTANT, LOCK=NONE;", dialect="mysql")],
    good=[
        Example("ALTER TABLE accounts ADD COLUMN note text, ALGORITHM=INSTANT;", dialect="mysql"),
        Example("ALTER TABLE accounts ADD COLUMN note text, ALGORITHM=INSTANT, LOCK=DEFAULT;", dialect="mysql"),
        Example(
            "ALTER TABLE accounts ADD INDEX accounts_email_idx (email), ALGORITHM=INPLACE, LOCK=NONE;", dialect="mysql"
        ),
    ],
)


@RULE.check
def check(ctx: Context):
    ch = ctx.change
    if ch is None or (ch.get("algorithm") or "").upper() != "INSTANT":
        return None
    lock = (ch.get("lock_clause") or "DEFAULT").upper()
    if lock == "DEFAULT":
        return None
    text = " ".join(ctx.statement.sql.split()).rstrip(";")
    fixed = re.sub(r",?\s*\bLOCK\s*=?\s*(?:NONE|SHARED|EXCLUSIVE)\b", "", text, flags=re.IGNORECASE) + ";"
    return Hit(fields={"fixed_sql": fixed, "lock_clause": lock})
