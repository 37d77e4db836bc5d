"""Is a column default volatile (evaluated per row, so ``ADD COLUMN`` must rewrite the table)?

PostgreSQL 11+ stores a non-volatile default in the catalog and rewrites
nothing; a volatile one (``random()``, ``gen_random_uuid()``,
``clock_timestamp()``, ``nextval()``) is evaluated for every existing row under
ACCESS EXCLUSIVE. ``now()`` / ``current_timestamp`` are STABLE: no rewrite.
Source: https://www.postgresql.org/docs/current/sql-altertable.html (Notes),
https://www.postgresql.org/docs/current/xfunc-volatility.html.

A function we do not know is treated as volatile: the fail-safe answer.
"""

from __future__ import annotations

import re

from sqlglot import exp

# Functions (lower-case) known to be IMMUTABLE or STABLE in PostgreSQL, and the MySQL equivalents.
NON_VOLATILE = frozenset(
    {
        "now",
        "current_timestamp",
        "current_date",
        "current_time",
        "localtimestamp",
        "localtime",
        "transaction_timestamp",
        "statement_timestamp",
        "current_user",
        "session_user",
        "current_schema",
        "lower",
        "upper",
        "coalesce",
        "nullif",
        "greatest",
        "least",
        "concat",
        "length",
        "abs",
        "round",
        "trim",
        "to_char",
        "to_date",
        "to_timestamp",
        "to_json",
        "to_jsonb",
        "jsonb_build_object",
        "json_build_object",
        "jsonb_build_array",
        "array",
        "cast",
        "try_cast",
        "date_trunc",
        "timezone",
        "make_interval",
        "interval",
        "utc_timestamp",
        "curdate",
        "curtime",
        "sysdate",
        "json_object",
        "json_array",
        "currenttimestamp",
        "currentdate",
        "currenttime",
        "currentuser",
        "timestamptrunc",
        "datetrunc",
        "jsonobject",
        "jsonarray",
        "arrayconstructcompact",
    }
)

VOLATILE = frozenset(
    {
        "random",
        "gen_random_uuid",
        "uuid_generate_v1",
        "uuid_generate_v1mc",
        "uuid_generate_v4",
        "uuidv4",
        "uuidv7",
        "uuid",
        "uuid_short",
        "rand",
        "clock_timestamp",
        "timeofday",
        "nextval",
        "txid_current",
        "setseed",
        "gen_random_bytes",
    }
)

_FUNC = re.compile(r"([A-Za-z_][A-Za-z0-9_.]*)\s*\(")


def default_is_volatile(node: exp.Expression | None, dialect: str) -> bool:
    """True when the default expression must be evaluated per row."""
    if node is None:
        return False
    if isinstance(node, exp.Uuid) or node.find(exp.Uuid, exp.Rand) is not None:
        return True
    for func in node.find_all(exp.Func):
        name = (func.sql_name() if not isinstance(func, exp.Anonymous) else func.name).lower()
        if isinstance(func, (exp.Cast, exp.TryCast)):
            continue
        if name in VOLATILE:
            return True
        if name not in NON_VOLATILE and name.replace("_", "") not in NON_VOLATILE:
            return True
    return False


def sql_default_is_volatile(default_sql: str) -> bool:
    """Token-level variant, for defaults only known as text."""
    for name in _FUNC.findall(default_sql):
        name = name.lower().rsplit(".", 1)[-1]
        if name in VOLATILE or name not in NON_VOLATILE:
            return True
    return False
