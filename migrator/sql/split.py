"""Split a migration file into statements, keeping 1-based line/column spans.

The splitter is a small lexer, not a parser: it knows just enough of each
dialect's lexical rules to never split inside a string, a quoted identifier,
a dollar-quoted body (``$$`` or ``$tag$``), a comment (PostgreSQL comments
nest), or a SQL-standard ``BEGIN ATOMIC ... END`` function body. MySQL's
client-side ``DELIMITER`` directive and psql meta-commands (``\\set ...``)
are recognised too, so files written for those clients split as they would
there.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass, field

_PG_SPECIAL = re.compile(r"--|/\*|'|\"|\$|;")
_MY_SPECIAL_TMPL = r"--|/\*|'|\"|`|#|{delim}"
_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_\x80-\uffff][A-Za-z0-9_\x80-\uffff]*)?\$")
_DELIMITER = re.compile(r"DELIMITER[ \t]+(\S+)[ \t]*(?:\r?\n|$)", re.IGNORECASE)
_ATOMIC_START = re.compile(r"\bBEGIN\s+ATOMIC\b", re.IGNORECASE)
_BLOCK_WORDS = re.compile(r"\b(BEGIN\s+ATOMIC|CASE|END)\b", re.IGNORECASE)
_CODE_MASK = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|/\*.*?\*/", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Comment:
    """A comment seen between statements, with the lines it covers."""

    line: int
    end_line: int
    text: str


@dataclass(slots=True)
class RawStatement:
    """One statement as it stands in the file, without its terminating delimiter."""

    sql: str
    start: int  # offset of the first character
    end: int  # offset one past the last character (the delimiter included when present)
    line: int
    column: int
    end_line: int
    end_column: int
    comments: list[Comment] = field(default_factory=list)
    meta_command: bool = False  # psql backslash command, not SQL


class LineIndex:
    """Map character offsets to 1-based (line, column)."""

    __slots__ = ("_starts",)

    def __init__(self, text: str) -> None:
        starts = [0]
        find = text.find
        pos = find("\n")
        while pos != -1:
            starts.append(pos + 1)
            pos = find("\n", pos + 1)
        self._starts = starts

    def position(self, offset: int) -> tuple[int, int]:
        line = bisect_right(self._starts, offset)
        return line, offset - self._starts[line - 1] + 1


def _skip_block_comment(text: str, i: int, nested: bool) -> int:
    """Return the offset after the comment opening at ``i`` (``/*``)."""
    depth = 1
    j = i + 2
    n = len(text)
    while j < n and depth:
        k = text.find("*/", j)
        if k == -1:
            return n
        if nested:
            opened = text.count("/*", j, k)
            depth += opened - 1
        else:
            depth = 0
        j = k + 2
    return j


def _skip_quoted(text: str, i: int, quote: str, backslash: bool) -> int:
    """Return the offset after the quoted token opening at ``i``."""
    j = i + 1
    n = len(text)
    while j < n:
        c = text[j]
        if backslash and c == "\\":
            j += 2
            continue
        if c == quote:
            if j + 1 < n and text[j + 1] == quote:
                j += 2
                continue
            return j + 1
        j += 1
    return n


def _inside_atomic_body(sql: str) -> bool:
    """True when a ``;`` here would fall inside an unfinished ``BEGIN ATOMIC`` body."""
    if not _ATOMIC_START.search(sql):
        return False
    code = _CODE_MASK.sub(" ", sql)
    depth = 0
    for match in _BLOCK_WORDS.finditer(code):
        word = match.group(1).upper()
        depth += -1 if word == "END" else 1
    return depth > 0


def split_statements(text: str, dialect: str = "postgres") -> list[RawStatement]:
    """Split ``text`` into statements for ``dialect`` (``postgres`` or ``mysql``)."""
    mysql = dialect == "mysql"
    index = LineIndex(text)
    statements: list[RawStatement] = []
    comments: list[Comment] = []
    delim = ";"
    special = re.compile(_MY_SPECIAL_TMPL.format(delim=re.escape(delim))) if mysql else _PG_SPECIAL
    n = len(text)
    i = 0
    start = -1  # offset of the current statement's first significant character
    last = -1  # offset one past the last significant character of the current statement

    def close(end: int, stop: int) -> None:
        nonlocal start, last, comments
        line, col = index.position(start)
        end_line, end_col = index.position(stop - 1)
        statements.append(RawStatement(text[start:end], start, stop, line, col, end_line, end_col, comments))
        comments = []
        start = -1
        last = -1

    while i < n:
        if start == -1:
            # Between statements: skip whitespace, collect comments, look for directives.
            while i < n and text[i].isspace():
                i += 1
            if i >= n:
                break
            if text.startswith("--", i) or (mysql and text[i] == "#"):
                j = text.find("\n", i)
                j = n if j == -1 else j
                line, _ = index.position(i)
                comments.append(Comment(line, line, text[i:j]))
                i = j
                continue
            if text.startswith("/*", i):
                j = _skip_block_comment(text, i, nested=not mysql)
                line, _ = index.position(i)
                end_line, _ = index.position(max(i, j - 1))
                comments.append(Comment(line, end_line, text[i:j]))
                i = j
                continue
            if mysql and text[i] in "Dd" and (m := _DELIMITER.match(text, i)):
                delim = m.group(1)
                special = re.compile(_MY_SPECIAL_TMPL.format(delim=re.escape(delim)))
                i = m.end()
                continue
            if not mysql and text[i] == "\\":
                j = text.find("\n", i)
                j = n if j == -1 else j
                start = i
                stmt_end = j
                while stmt_end > i and text[stmt_end - 1].isspace():
                    stmt_end -= 1
                close(stmt_end, stmt_end)
                statements[-1].meta_command = True
                i = j
                continue
            if text.startswith(delim, i):  # empty statement
                i += len(delim)
                continue
            start = i
        m = special.search(text, i)
        if m is None:
            last = n
            i = n
            break
        j = m.start()
        tok = m.group(0)
        if j > i and not text[i:j].isspace():
            last = j
        if tok == delim:
            if not mysql and _inside_atomic_body(text[start:j]):
                i = j + 1
                last = i
                continue
            stop = j + len(delim)
            close(_rstrip_end(text, start, last if last > start else j), stop)
            i = stop
            continue
        if tok == "--" or tok == "#":
            k = text.find("\n", j)
            i = n if k == -1 else k
            continue
        if tok == "/*":
            i = _skip_block_comment(text, j, nested=not mysql)
            continue
        if tok == "$":
            dm = _DOLLAR_TAG.match(text, j)
            prev = text[j - 1] if j > 0 else " "
            if dm and not (prev.isalnum() or prev == "_"):
                tag = dm.group(0)
                k = text.find(tag, dm.end())
                i = n if k == -1 else k + len(tag)
            else:
                i = j + 1
            last = i
            continue
        # quotes
        backslash = mysql and tok != "`"
        if not mysql and tok == "'" and j > 0 and text[j - 1] in "eE" and (j < 2 or not _is_word(text[j - 2])):
            backslash = True
        i = _skip_quoted(text, j, tok, backslash)
        last = i
    if start != -1:
        end = _rstrip_end(text, start, last if last > start else n)
        if end > start:
            close(end, end)
    return statements


def _is_word(c: str) -> bool:
    return c.isalnum() or c == "_"


def _rstrip_end(text: str, start: int, end: int) -> int:
    while end > start and text[end - 1].isspace():
        end -= 1
    return end
