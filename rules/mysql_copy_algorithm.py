"""mysql-copy-algorithm: explicit ALGORITHM=COPY or LOCK=SHARED/EXCLUSIVE on an existing table."""

import re

from migrator.lint.rule import Context, Example, Hit, Rule

_ALGORITHM = re.compile(r"(\bALGORITHM\s*=?\s*)COPY\b", re.IGNORECASE)
_LOCK = re.compile(r"(\bLOCK\s*=?\s*)(?:SHARED|EXCLUSIVE|NONE|DEFAULT)\b", re.IGNORECASE)

RULE = Rule(
    id="mysql-copy-algorithm",
    name="Explicit table copy or blocking LOCK clause",
    severity="error",
    category="lock",
    dialects=("mysql",),
    scope="statement",
    message="{clause} on existing table {table}: {effect} for the whole operation",
    why="""
ALGORITHM=COPY rebuilds the table row by row into a copy, and concurrent writes are not allowed
while it runs: on a large table that is minutes to hours of failed or queued writes. LOCK=SHARED
blocks writes and LOCK=EXCLUSIVE blocks reads and writes for the whole operation, whatever the
algorithm. MySQL 8 performs most changes INSTANT or INPLACE with concurrent DML; asking for COPY or
a blocking LOCK throws that away. (strong_migrations calls these copy_algorithm and lock_option.)
""",
    fix="""
Ask for the online algorithm and no lock, so MySQL fails instead of blocking when it cannot comply:
{fixed_sql}
(ALGORITHM=INSTANT, with no LOCK clause, for metadata-only changes such as adding a column.)
If the change really needs a copy, run it with an online schema change tool (gh-ost,
pt-online-schema-change) instead of a plain ALTER TABLE.
""",
    bad=[
        Example("ALTER TABLE accounts ADD COLUMN note text, ALGORITHM=COPY;", dialect="mysql"),
        Example("ALTER TABLE accounts ADD INDEX accounts_email_idx (email), LOCK=SHARED;", dialect="mysql"),
        Example(
            "CREATE INDEX accounts_email_idx ON accounts (email) ALGORITHM=INPLACE LOCK=EXCLUSIVE;", dialect="mysql"
        ),
    ],
    good=[
        Example("ALTER TABLE accounts ADD COLUMN note text, ALGORITHM=INSTANT;", dialect="mysql", version="8.0.30"),
        Example(
            "ALTER TABLE accounts ADD INDEX accounts_email_idx (email), ALGORITHM=INPLACE, LOCK=NONE;", dialect="mysql"
        ),
        Example(
            "CREATE TABLE notes (id bigint PRIMARY KEY);\nALTER TABLE notes ADD COLUMN body text, ALGORITHM=COPY;",
            dialect="mysql",
            note="the table is created earlier in the same file: it is empty",
        ),
    ],
)


@RULE.check
def check(ctx: Context):
    for change, c in ctx.classified:
        if c.new_object or not change.table:
            continue
        algorithm = (change.get("algorithm") or "").upper()
        lock = (change.get("lock_clause") or "").upper()
        if algorithm == "COPY":
            effect = (
                "the table is copied and writes are blocked"
                if lock != "EXCLUSIVE"
                else "the table is copied and reads and writes are blocked"
            )
            clause = "ALGORITHM=COPY" + (f", LOCK={lock}" if lock else "")
        elif lock in ("SHARED", "EXCLUSIVE"):
            effect = "writes are blocked" if lock == "SHARED" else "reads and writes are blocked"
            clause = f"LOCK={lock}"
        else:
            continue
        fixed = _ALGORITHM.sub(r"\1INPLACE", " ".join(ctx.statement.sql.split()).rstrip(";"))
        fixed = _LOCK.sub(r"\1NONE", fixed)
        if not _LOCK.search(fixed):
            fixed += ", LOCK=NONE" if fixed.upper().startswith("ALTER") else " LOCK=NONE"
        return Hit(fields={"clause": clause, "effect": effect, "table": change.table, "fixed_sql": fixed + ";"})
    return None
