"""From file text to statements with changes: split, validate, parse, normalize.

This is the expensive, file-local part of linting (it imports sqlglot and
pglast). Its result depends only on the text and the dialect, so it is what
the lint cache stores and what worker processes compute in parallel.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any

from .changes import Change, Op
from .fallback import classify_tokens
from .split import RawStatement, split_statements
from .statement import Problem, Statement

logging.getLogger("sqlglot").setLevel(logging.ERROR)

_SQLGLOT_DIALECT = {"postgres": "postgres", "mysql": "mysql"}


def _char_offset(sql: str, byte_pos: int) -> int:
    """libpg_query reports byte offsets; convert to a character offset."""
    if sql.isascii():
        return byte_pos
    return len(sql.encode("utf-8")[:byte_pos].decode("utf-8", errors="ignore"))


def _position_in(raw: RawStatement, offset: int) -> tuple[int, int]:
    """1-based (line, column) in the file of ``offset`` characters into the statement."""
    before = raw.sql[:offset]
    newlines = before.count("\n")
    if newlines == 0:
        return raw.line, raw.column + offset
    return raw.line + newlines, offset - before.rfind("\n")


def _postgres_syntax_errors(raws: list[RawStatement]) -> dict[int, Problem]:
    """Ask PostgreSQL's own parser (libpg_query via pglast) which statements are invalid."""
    from pglast import parser

    sqls = [r.sql for r in raws if not r.meta_command]
    if not sqls:
        return {}
    try:
        parser.parse_sql_json(";\n".join(sqls))
        return {}
    except parser.ParseError:
        pass
    errors: dict[int, Problem] = {}
    for i, raw in enumerate(raws):
        if raw.meta_command:
            continue
        try:
            parser.parse_sql_json(raw.sql)
        except parser.ParseError as err:
            message = str(err.args[0]) if err.args else str(err)
            pos = err.args[1] if len(err.args) > 1 and isinstance(err.args[1], int) else 0
            line, col = _position_in(raw, _char_offset(raw.sql, pos))
            errors[i] = Problem("syntax", message, line, col)
    return errors


_SET = re.compile(
    r"^SET\s+(?:(SESSION|LOCAL|GLOBAL)\s+)?(@@(?:session\.)?)?([A-Za-z_][\w.]*)\s*(?:=|\s+TO\s+)\s*"
    r"('(?:[^'\\]|'')*'|[\w.+-]+)\s*$",
    re.IGNORECASE,
)
_CONTROL = re.compile(r"^(BEGIN|COMMIT|END|ROLLBACK|START\s+TRANSACTION)\s*(?:TRANSACTION|WORK)?\s*$", re.IGNORECASE)
_COMMENT_ON = re.compile(r"^COMMENT\s+ON\s", re.IGNORECASE)


def _fast_path(sql: str) -> list[Change] | None:
    """Session settings, transaction control and comments, read without a parser: they are a third
    of a typical migration's statements and their shape is fixed."""
    head = sql[:8].upper()
    if head.startswith("SET "):
        m = _SET.match(sql)
        if m is None:
            return None  # SET NAMES, several assignments, expressions: the parser reads those
        scope, _, name, value = m.groups()
        if value.startswith("'"):
            value = value[1:-1].replace("''", "'")
        local = (scope or "").upper() == "LOCAL"
        return [
            Change(Op.SET, attrs={"setting": name.lower().removeprefix("session."), "value": value, "local": local})
        ]
    if _COMMENT_ON.match(sql):
        return [Change(Op.COMMENT)]
    m = _CONTROL.match(sql)
    if m is not None:
        word = m.group(1).split()[0].upper()
        op = {"BEGIN": Op.BEGIN, "START": Op.BEGIN, "COMMIT": Op.COMMIT, "END": Op.COMMIT, "ROLLBACK": Op.ROLLBACK}
        return [Change(op[word])]
    return None


_DIALECTS: dict[str, Any] = {}


def _parse_changes(sql: str, dialect: str) -> tuple[list[Change] | None, str, str | None]:
    """Return (changes or None, parser used, sqlglot error message)."""
    if not os.environ.get("BGMIGRATE_NO_FAST_PATH"):
        fast = _fast_path(sql)
        if fast is not None:
            return fast, "tokens", None
    from sqlglot import exp
    from sqlglot.dialects.dialect import Dialect
    from sqlglot.errors import ParseError, TokenError

    from .normalize import normalize

    error: str | None = None
    tokens: list = []
    try:
        d = _DIALECTS.get(dialect)
        if d is None:  # one instance per dialect: get_or_raise on a name builds a new one each time
            d = _DIALECTS[dialect] = Dialect.get_or_raise(_SQLGLOT_DIALECT[dialect])
        tokens = d.tokenize(sql)
        trees = d.parser().parse(tokens, sql)
    except (ParseError, TokenError) as err:
        trees = []
        error = str(err).splitlines()[0] if str(err) else type(err).__name__
    except Exception as err:  # sqlglot bug on odd input: never let it escape
        trees = []
        error = f"{type(err).__name__}: {err}"
    trees = [t for t in trees if t is not None]
    if len(trees) == 1 and not isinstance(trees[0], exp.Command):
        try:
            changes = normalize(trees[0], sql, dialect, tokens)
        except Exception:  # a tree shape the normalizer does not expect: fall back to tokens
            if os.environ.get("BGMIGRATE_DEBUG"):
                raise
            changes = None
        if changes is not None:
            return changes, "sqlglot", None
    changes = classify_tokens(sql, dialect)
    if changes is not None:
        return changes, "tokens", None
    return None, "none", error


def analyze_text(text: str, dialect: str) -> list[Statement]:
    raws = split_statements(text, dialect)
    syntax = _postgres_syntax_errors(raws) if dialect == "postgres" else {}
    out: list[Statement] = []
    for i, raw in enumerate(raws):
        st = Statement(i, raw.sql, raw.line, raw.column, raw.end_line, raw.end_column, raw.comments)
        out.append(st)
        if raw.meta_command:
            st.changes = [Change(Op.META_COMMAND)]
            st.parsed_by = "tokens"
            continue
        if i in syntax:
            st.problem = syntax[i]
            st.changes = [Change(Op.SYNTAX_ERROR)]
            st.parsed_by = "none"
            continue
        changes, parsed_by, error = _parse_changes(raw.sql, dialect)
        st.parsed_by = parsed_by
        if changes is None:
            if dialect != "postgres":
                message = error or "the MySQL parser does not recognise this statement"
                st.problem = Problem("unparsed", message, raw.line, raw.column)
            else:
                st.problem = Problem("unclassified", "bgmigrate has no model for this statement", raw.line, raw.column)
            st.changes = [Change(Op.UNKNOWN)]
            continue
        if dialect == "mysql":
            for change in changes:
                if change.op == Op.DROP_SCHEMA:  # MySQL: SCHEMA is a synonym for DATABASE
                    change.op = Op.DROP_DATABASE
        st.changes = changes
    return out
