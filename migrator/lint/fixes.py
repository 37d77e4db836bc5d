"""Rewrite a statement's text into its safe form, for the ``fix`` shown with a finding.

Text edits on the statement as written (keeping the author's names, spacing and case) rather
than SQL generated from a parse tree, so the suggestion reads like the original.
"""

from __future__ import annotations

import re

_CREATE_INDEX = re.compile(r"^(\s*CREATE\s+(?:UNIQUE\s+)?INDEX)(?!\s+CONCURRENTLY\b)", re.IGNORECASE)
_DROP_INDEX = re.compile(r"^(\s*DROP\s+INDEX)(?!\s+CONCURRENTLY\b)", re.IGNORECASE)
_REINDEX = re.compile(
    r"^(\s*REINDEX\s+(?:\([^)]*\)\s*)?(?:INDEX|TABLE|SCHEMA|DATABASE|SYSTEM))(?!\s+CONCURRENTLY\b)",
    re.IGNORECASE,
)
_IF_NOT_EXISTS = re.compile(
    r"^(\s*CREATE\s+(?:UNIQUE\s+)?INDEX\s+CONCURRENTLY)(?!\s+IF\s+NOT\s+EXISTS\b)", re.IGNORECASE
)
_DETACH = re.compile(r"(\bDETACH\s+PARTITION\s+[\w.\"]+)(?!\s+CONCURRENTLY\b)", re.IGNORECASE)
_REFRESH = re.compile(r"^(\s*REFRESH\s+MATERIALIZED\s+VIEW)(?!\s+CONCURRENTLY\b)", re.IGNORECASE)


def _one_line(sql: str) -> str:
    return " ".join(sql.split())


def concurrently(sql: str) -> str:
    """``CREATE INDEX`` / ``DROP INDEX`` / ``REINDEX`` / ``DETACH PARTITION`` / ``REFRESH`` made concurrent."""
    for pattern in (_CREATE_INDEX, _DROP_INDEX, _REINDEX, _REFRESH):
        if pattern.search(sql):
            sql = pattern.sub(r"\1 CONCURRENTLY", sql, count=1)
            break
    else:
        sql = _DETACH.sub(r"\1 CONCURRENTLY", sql, count=1)
    if _IF_NOT_EXISTS.search(sql):
        sql = _IF_NOT_EXISTS.sub(r"\1 IF NOT EXISTS", sql, count=1)
    return _one_line(sql) + ";"


_ALTER_HEAD = re.compile(r"^(ALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?\S+)\s+(.*)$", re.IGNORECASE | re.DOTALL)
_TABLE_CONSTRAINT = re.compile(r"^ADD\s+(?:CONSTRAINT\s+\S+\s+)?(?:CHECK|FOREIGN\s+KEY)\b", re.IGNORECASE)
_HAS_NOT_VALID = re.compile(r"\bNOT\s+VALID\s*$", re.IGNORECASE)


def _split_top_level(text: str) -> list[str]:
    """Split on commas outside parentheses and quotes."""
    parts, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return parts


def not_valid(sql: str) -> str:
    """The ``ALTER TABLE`` with ``NOT VALID`` on each added CHECK / FOREIGN KEY table constraint."""
    text = _one_line(sql)
    m = _ALTER_HEAD.match(text)
    if m is None:
        return text if _HAS_NOT_VALID.search(text) else text + " NOT VALID;"
    head, body = m.groups()
    actions = []
    for action in _split_top_level(body):
        if _TABLE_CONSTRAINT.match(action) and not _HAS_NOT_VALID.search(action):
            action += " NOT VALID"
        actions.append(action)
    return f"{head} {', '.join(actions)};"


_GUARDS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^(\s*CREATE\s+(?:UNLOGGED\s+)?TABLE)(?!\s+IF\s+NOT\s+EXISTS\b)", re.IGNORECASE), r"\1 IF NOT EXISTS"),
    (
        re.compile(r"^(\s*CREATE\s+(?:UNIQUE\s+)?INDEX(?:\s+CONCURRENTLY)?)(?!\s+IF\s+NOT\s+EXISTS\b)", re.IGNORECASE),
        r"\1 IF NOT EXISTS",
    ),
    (re.compile(r"^(\s*CREATE\s+SCHEMA)(?!\s+IF\s+NOT\s+EXISTS\b)", re.IGNORECASE), r"\1 IF NOT EXISTS"),
    (
        re.compile(
            r"^(\s*DROP\s+(?:TABLE|(?:MATERIALIZED\s+)?VIEW|INDEX(?:\s+CONCURRENTLY)?|TYPE|SCHEMA))(?!\s+IF\s+EXISTS\b)",
            re.IGNORECASE,
        ),
        r"\1 IF EXISTS",
    ),
    (re.compile(r"(\bADD\s+VALUE)(?!\s+IF\s+NOT\s+EXISTS\b)", re.IGNORECASE), r"\1 IF NOT EXISTS"),
    (re.compile(r"(\bADD\s+COLUMN)(?!\s+IF\s+NOT\s+EXISTS\b)", re.IGNORECASE), r"\1 IF NOT EXISTS"),
    (
        re.compile(
            r"(\bADD)(?!\s+(?:COLUMN|CONSTRAINT|CHECK|UNIQUE|PRIMARY|FOREIGN|EXCLUDE|VALUE)\b)(\s+)", re.IGNORECASE
        ),
        r"\1 COLUMN IF NOT EXISTS\2",
    ),
    (re.compile(r"(\bDROP\s+(?:COLUMN|CONSTRAINT))(?!\s+IF\s+EXISTS\b)", re.IGNORECASE), r"\1 IF EXISTS"),
)


def guarded(sql: str) -> str:
    """The statement with IF [NOT] EXISTS added where PostgreSQL accepts it, so a re-run is a no-op."""
    text = _one_line(sql)
    for pattern, replacement in _GUARDS:
        if pattern.search(text):
            text = pattern.sub(replacement, text, count=1)
            break
    return text + ";"
