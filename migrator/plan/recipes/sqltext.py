"""The author's statement text, as recipes read and reuse it.

Recipes reuse the author's own text for definitions (index method, ``WHERE``, ``INCLUDE``,
``REFERENCES … ON DELETE``, a column's ``COLLATE``) because the parsed
:class:`~migrator.sql.changes.Change` does not keep them. The text comes from
``change.attrs["statement"]`` (:data:`STATEMENT_ATTR`); a recipe that needs it and does not
get it refuses rather than drop part of the definition.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ...sql.changes import Change

STATEMENT_ATTR = "statement"
"""Key of the statement's SQL text in ``Change.attrs``: set by whoever hands the change to a recipe."""

_LEX = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<comment>--[^\n]*|/\*.*?\*/)
  | (?P<dollar>\$(?P<tag>[A-Za-z_]\w*)?\$.*?\$(?P=tag)\$)
  | (?P<string>[EeNnBbXx]?'(?:[^'\\]|''|\\.)*')
  | (?P<qident>"(?:[^"]|"")*"|`(?:[^`]|``)*`)
  | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)
NAME = r'(?:"(?:[^"]|"")*"|`(?:[^`]|``)*`|[\w$]+)'
"""One identifier as written: ``"…"`` (PostgreSQL), ```…``` (MySQL) or bare."""
QNAME = rf"{NAME}(?:\s*\.\s*{NAME})?"
"""A possibly schema-qualified name as written."""
ALTER_TABLE = re.compile(rf"^ALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?({QNAME})\s+(.*)$", re.I | re.S)
"""``ALTER TABLE``: group 1 is the table as written, group 2 the actions."""
ON_TABLE = re.compile(rf"\bON\s+({QNAME})", re.I)
"""``ON <table>`` of ``CREATE INDEX`` / MySQL ``DROP INDEX``: group 1 is the table as written."""
_MYSQL_OPTION = re.compile(r"^(?:ALGORITHM|LOCK)\s*=?\s*\w+$", re.I)
_COMPARED = ("constraint", "kind", "columns", "expression", "index", "references", "unique", "new_name")


def clean_sql(sql: str) -> str:
    """``sql`` without comments or a trailing ``;``, whitespace outside literals collapsed to one space."""
    out: list[str] = []
    for m in _LEX.finditer(sql):
        if m.lastgroup in ("ws", "comment"):
            if out and out[-1] != " ":
                out.append(" ")
        else:
            out.append(m.group(0))
    return "".join(out).strip().rstrip(";").strip()


def statement_text(change: Change) -> str | None:
    """The SQL of the statement ``change`` came from, cleaned, when the caller passed it."""
    text = change.get(STATEMENT_ATTR)
    return clean_sql(text) if isinstance(text, str) and text.strip() else None


def no_text_reason(what: str) -> str:
    return (
        f"the statement's text is needed to carry over {what} (the parsed change does not keep it); "
        f"pass it as change.attrs[{STATEMENT_ATTR!r}]"
    )


def literal(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def pyformat_safe(sql: str) -> str:
    """Backfill SQL is a pyformat template (``%(lo)s``): a literal ``%`` must be doubled."""
    return sql.replace("%", "%%")


def split_top_level(text: str, sep: str = ",") -> list[str]:
    """``text`` split on ``sep`` outside parentheses, strings and quoted identifiers."""
    parts: list[str] = []
    depth = 0
    start = 0
    for m in _LEX.finditer(text):
        ch = m.group(0)
        if m.lastgroup != "other":
            continue
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append(text[start : m.start()].strip())
            start = m.end()
    parts.append(text[start:].strip())
    return [p for p in parts if p]


def _same(a: Change, b: Change) -> bool:
    return a.op == b.op and a.table == b.table and a.column == b.column and all(a.get(k) == b.get(k) for k in _COMPARED)


def alter_action(change: Change, sql: str, dialect: str) -> tuple[str, str] | None:
    """``(table as written, action text)`` of the ``ALTER TABLE`` action ``change`` came from.

    MySQL ``ALGORITHM=`` / ``LOCK=`` options are left out (recipes state their own). With several
    actions, each is read on its own and compared with ``change``.
    """
    m = ALTER_TABLE.match(sql)
    if m is None:
        return None
    table_text, body = m.group(1), m.group(2)
    actions = [a for a in split_top_level(body) if not _MYSQL_OPTION.match(a)]
    if len(actions) == 1:
        return table_text, actions[0]
    from ...sql.analyze import analyze_text

    found = []
    for action in actions:
        statements = analyze_text(f"ALTER TABLE {table_text} {action}", dialect)
        changes = [c for st in statements for c in st.changes]
        if len(changes) == 1 and _same(changes[0], change):
            found.append(action)
    return (table_text, found[0]) if len(found) == 1 else None
