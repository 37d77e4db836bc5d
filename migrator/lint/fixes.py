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


def not_valid(sql: str) -> str:
    """``ADD CONSTRAINT ...`` with ``NOT VALID`` appended (FOREIGN KEY and CHECK only)."""
    text = _one_line(sql)
    if re.search(r"\bNOT\s+VALID\s*$", text, re.IGNORECASE):
        return text + ";"
    return text + " NOT VALID;"
