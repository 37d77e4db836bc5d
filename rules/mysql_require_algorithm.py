"""mysql-require-algorithm: ALTER TABLE on an existing table without ALGORITHM=INSTANT|INPLACE, LOCK=NONE."""

import re

from migrator.lint.rule import Context, Example, Hit, Rule
from migrator.sql.changes import Op

_ALTERS = {
    Op.ADD_COLUMN,
    Op.DROP_COLUMN,
    Op.RENAME_COLUMN,
    Op.ALTER_COLUMN_TYPE,
    Op.SET_NOT_NULL,
    Op.DROP_NOT_NULL,
    Op.SET_DEFAULT,
    Op.DROP_DEFAULT,
    Op.ADD_CONSTRAINT,
    Op.DROP_CONSTRAINT,
    Op.CREATE_INDEX,
    Op.DROP_INDEX,
    Op.ALTER_TABLE_STORAGE,
}  # not ALTER_TABLE_OTHER (RENAME INDEX, COMMENT, ...): metadata only, nothing to fall back to

_CLAUSE = re.compile(
    r",?\s*\b(?:ALGORITHM\s*=?\s*(?:DEFAULT|INSTANT|INPLACE|COPY)|LOCK\s*=?\s*(?:DEFAULT|NONE|SHARED|EXCLUSIVE))\b",
    re.IGNORECASE,
)

RULE = Rule(
    id="mysql-require-algorithm",
    name="State ALGORITHM and LOCK so MySQL cannot silently copy the table",
    severity="warning",
    category="lock",
    dialects=("mysql",),
    scope="statement",
    message="{what} on existing table {table} states no {missing}: if it cannot run online, MySQL silently {fallback}",
    why="""
Without an ALGORITHM clause MySQL picks INSTANT if it can, else INPLACE, else COPY; without a LOCK
clause it picks the least restrictive lock the algorithm allows, which may be SHARED or EXCLUSIVE.
Nothing tells you which one it chose until production traffic is blocked. Stating the expectation
(ALGORITHM=INSTANT, or ALGORITHM=INPLACE, LOCK=NONE) turns a silent blocking copy into an immediate
error ("ALGORITHM=INPLACE is not supported for this operation"), which fails the migration in CI or
staging instead of in production. Note that ALGORITHM=INSTANT accepts no LOCK clause other than
DEFAULT.
""",
    fix="""
State what you expect, so MySQL refuses instead of blocking:
{fixed_sql}
ALGORITHM=INSTANT for metadata-only changes (it accepts no LOCK clause other than DEFAULT),
ALGORITHM=INPLACE, LOCK=NONE for the rest. If MySQL then refuses, the change needs a table copy:
run it with gh-ost / pt-online-schema-change, or split it into online expand/contract steps.
""",
    bad=[
        Example("ALTER TABLE accounts ADD COLUMN note text;", dialect="mysql", version="8.0.30"),
        Example("ALTER TABLE accounts ADD INDEX accounts_email_idx (email);", dialect="mysql"),
        Example(
            "ALTER TABLE accounts ADD INDEX accounts_email_idx (email), ALGORITHM=INPLACE;",
            dialect="mysql",
            note="INPLACE alone may still take a SHARED or EXCLUSIVE lock",
        ),
        Example("CREATE INDEX accounts_email_idx ON accounts (email);", dialect="mysql"),
    ],
    good=[
        Example("ALTER TABLE accounts ADD COLUMN note text, ALGORITHM=INSTANT;", dialect="mysql", version="8.0.30"),
        Example(
            "ALTER TABLE accounts ADD INDEX accounts_email_idx (email), ALGORITHM=INPLACE, LOCK=NONE;", dialect="mysql"
        ),
        Example("ALTER TABLE accounts ADD INDEX accounts_email_idx (email), LOCK=NONE;", dialect="mysql"),
        Example(
            "CREATE TABLE notes (id bigint PRIMARY KEY);\nALTER TABLE notes ADD COLUMN body text;",
            dialect="mysql",
            note="the table is created earlier in the same file",
        ),
        Example(
            "RENAME TABLE accounts TO customers;", dialect="mysql", note="no ALGORITHM clause exists for RENAME TABLE"
        ),
    ],
)


def _with_clause(sql: str, clause: str) -> str:
    """The statement with its ALGORITHM/LOCK clauses replaced by ``clause``."""
    text = " ".join(sql.split()).rstrip(";").rstrip()
    text = _CLAUSE.sub("", text).rstrip().rstrip(",")
    if text.upper().startswith("ALTER"):
        return f"{text}, {clause};"
    return f"{text} {clause.replace(',', '')};"  # CREATE/DROP INDEX: space-separated options


@RULE.check
def check(ctx: Context):
    changes = [(ch, c) for ch, c in ctx.classified if ch.op in _ALTERS and ch.table and not c.new_object]
    if not changes:
        return None
    first = changes[0][0]
    algorithm = (first.get("algorithm") or "DEFAULT").upper()
    lock = (first.get("lock_clause") or "DEFAULT").upper()
    algorithm = algorithm if algorithm in ("INSTANT", "INPLACE", "COPY") else "DEFAULT"
    lock = lock if lock in ("NONE", "SHARED", "EXCLUSIVE") else "DEFAULT"
    if algorithm == "INSTANT" or (lock == "NONE" and algorithm != "COPY"):
        return None
    if algorithm == "COPY" or lock in ("SHARED", "EXCLUSIVE"):
        return None  # an explicit blocking choice: mysql-copy-algorithm reports it
    algorithms = {c.lock.algorithm for _, c in changes if c.lock is not None}
    instant = algorithms == {"INSTANT"} and algorithm == "DEFAULT"
    clause = "ALGORITHM=INSTANT" if instant else "ALGORITHM=INPLACE, LOCK=NONE"
    sql = ctx.statement.sql.lstrip()
    return Hit(
        fields={
            "what": "ALTER TABLE" if sql[:5].upper() == "ALTER" else sql.split(None, 1)[0].upper() + " INDEX",
            "table": first.table,
            "missing": "LOCK=NONE" if algorithm == "INPLACE" else "ALGORITHM/LOCK clause",
            "fallback": "takes whatever lock the operation needs"
            if algorithm == "INPLACE"
            else "falls back to copying the table with writes blocked",
            "fixed_sql": _with_clause(sql, clause),
        }
    )
