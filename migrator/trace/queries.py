"""The application's queries: from a file (one per statement) or from ``pg_stat_statements``.

Parameters may be written ``$1`` (PostgreSQL), ``%s`` / ``%(name)s`` (DB-API, psycopg) or ``:name``
(SQLAlchemy); all become ``$n`` (the same name, the same number; ``%%`` is a literal ``%``), outside
string literals, quoted identifiers, dollar-quoted bodies and comments. ``::type`` casts stay casts.
A ``%s`` that is really the modulo operator before a column named ``s`` cannot be told apart: write
``% s`` there.

Every query is parsed by PostgreSQL's own parser (pglast): a file with an unparseable query is an
input error (exit 2) naming the file and line. Statements PREPARE does not accept (``SET``, DDL,
transaction control) are kept, and reported as not checked.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..run.errors import InputError
from ..schema.live.errors import one_line

PREPARABLE = {
    "SelectStmt": "select",
    "InsertStmt": "insert",
    "UpdateStmt": "update",
    "DeleteStmt": "delete",
    "MergeStmt": "merge",
}
STAT_STATEMENTS_LIMIT = 1000

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$")
_NUMBERED = re.compile(r"\$([0-9]+)")
_PYFORMAT = re.compile(r"%\(([^)]+)\)s")


@dataclass
class Query:
    source: str  # "blue.sql:3" or "pg_stat_statements #2 (57 calls)"
    sql: str  # as given
    text: str  # with $n parameters
    kind: str  # select | insert | update | delete | merge | other
    params: int = 0

    @property
    def preparable(self) -> bool:
        return self.kind != "other"

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "sql": self.sql, "prepared_as": self.text, "kind": self.kind}


def convert_placeholders(sql: str) -> tuple[str, int]:
    """``sql`` with ``%s``, ``%(name)s`` and ``:name`` parameters as ``$n``; and the number of parameters."""
    native = [int(n) for n in _NUMBERED.findall(sql)]
    next_number = max(native, default=0)
    names: dict[str, int] = {}
    out: list[str] = []
    i, n = 0, len(sql)

    def number(name: str | None) -> int:
        nonlocal next_number
        if name is not None and name in names:
            return names[name]
        next_number += 1
        if name is not None:
            names[name] = next_number
        return next_number

    while i < n:
        ch = sql[i]
        if ch == "'" or ch == '"':
            j = i + 1
            backslash = ch == "'" and i > 0 and sql[i - 1] in "eE"
            while j < n:
                if backslash and sql[j] == "\\":
                    j += 2
                    continue
                if sql[j] == ch:
                    if j + 1 < n and sql[j + 1] == ch:
                        j += 2
                        continue
                    break
                j += 1
            out.append(sql[i : j + 1])
            i = j + 1
            continue
        if sql.startswith("--", i):
            j = sql.find("\n", i)
            j = n if j < 0 else j
            out.append(sql[i:j])
            i = j
            continue
        if sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(sql[i:j])
            i = j
            continue
        if ch == "$":
            m = _DOLLAR_TAG.match(sql, i)
            if m and not (i > 0 and (sql[i - 1].isalnum() or sql[i - 1] == "_")):
                end = sql.find(m.group(0), m.end())
                end = n if end < 0 else end + len(m.group(0))
                out.append(sql[i:end])
                i = end
                continue
            out.append(ch)
            i += 1
            continue
        if ch == "%":
            if sql.startswith("%%", i):
                out.append("%")
                i += 2
                continue
            if sql.startswith("%s", i) and not (i + 2 < n and (sql[i + 2].isalnum() or sql[i + 2] == "_")):
                out.append(f"${number(None)}")
                i += 2
                continue
            m = _PYFORMAT.match(sql, i)
            if m:
                out.append(f"${number(m.group(1))}")
                i = m.end()
                continue
        if ch == ":":
            if sql.startswith("::", i):
                out.append("::")
                i += 2
                continue
            prev = sql[i - 1] if i > 0 else " "
            m = _NAME.match(sql, i + 1)
            if m and not (prev.isalnum() or prev in "_]):"):
                out.append(f"${number(m.group(0))}")
                i = m.end()
                continue
        out.append(ch)
        i += 1
    return "".join(out), next_number


def parse_kind(text: str) -> str:
    """The kind of one statement (``other`` when PREPARE does not take it); pglast.ParseError when invalid."""
    from pglast import parser

    stmts = json.loads(parser.parse_sql_json(text)).get("stmts") or []
    if len(stmts) != 1:
        raise ValueError(f"{len(stmts)} statements where one query was expected")
    node = stmts[0].get("stmt") or {}
    return next((PREPARABLE[k] for k in node if k in PREPARABLE), "other")


def read_query_file(path: Path) -> list[Query]:
    """The queries in ``path``; InputError (exit 2) when it cannot be read or holds unparseable SQL."""
    from pglast import parser

    from ..sql.split import split_statements

    try:
        data = path.read_bytes()
    except OSError as err:
        raise InputError(f"cannot read the query file {path}: {err.strerror or err}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"the query file {path} is not UTF-8 text") from None
    queries: list[Query] = []
    for raw in split_statements(text, "postgres"):
        if not raw.sql.strip():
            continue
        where = f"{path}:{raw.line}"
        if raw.meta_command:
            raise InputError(f"{where}: a psql meta-command is not a query: {raw.sql.strip()[:60]}")
        converted, count = convert_placeholders(raw.sql)
        try:
            kind = parse_kind(converted)
        except parser.ParseError as err:
            message = str(err.args[0]) if err.args else str(err)
            raise InputError(f"{where}: unparseable SQL in the query file: {message}") from None
        except ValueError as err:
            raise InputError(f"{where}: {err}") from None
        queries.append(Query(where, raw.sql.strip(), converted, kind, count))
    if not queries:
        raise InputError(f"the query file {path} holds no queries")
    return queries


def queries_from_rows(rows: list[tuple[Any, ...]]) -> tuple[list[Query], int]:
    """Queries from ``pg_stat_statements`` rows (query text, calls), most called first; and how many
    were left out (text that does not parse, e.g. cut at ``track_activity_query_size``)."""
    from pglast import parser

    out: list[Query] = []
    left_out = 0
    for i, (text, calls) in enumerate(rows, 1):
        sql = (text or "").strip().rstrip(";").strip()
        if not sql:
            continue
        converted, count = convert_placeholders(sql)
        try:
            kind = parse_kind(converted)
        except (parser.ParseError, ValueError):
            left_out += 1
            continue
        out.append(Query(f"pg_stat_statements #{i} ({calls} calls)", sql, converted, kind, count))
    return out, left_out


def queries_from_pg_stat_statements(dsn_text: str, limit: int = STAT_STATEMENTS_LIMIT) -> tuple[list[Query], int]:
    """Blue's queries as ``pg_stat_statements`` recorded them in the DSN's database (read only)."""
    from ..run.db import connect

    db = connect(dsn_text, application_name="bgmigrate-compat")
    try:
        try:
            row = db.query_one(
                "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
                "WHERE e.extname = 'pg_stat_statements'"
            )
            if row is None:
                raise InputError(
                    f"{db.dsn.masked}: the pg_stat_statements extension is not installed in this database "
                    "(shared_preload_libraries = 'pg_stat_statements', then CREATE EXTENSION pg_stat_statements)"
                )
            schema = '"' + str(row[0]).replace('"', '""') + '"'
            rows = db.query(
                f"SELECT s.query, s.calls FROM {schema}.pg_stat_statements s "
                "WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                "ORDER BY s.calls DESC, s.query LIMIT %s",
                (limit,),
            )
        except InputError:
            raise
        except Exception as err:
            if not db.is_driver_error(err):
                raise
            raise InputError(
                f"reading pg_stat_statements of {db.dsn.masked} failed: {db.dsn.scrub(one_line(err))}"
            ) from None
    finally:
        db.close()
    queries, left_out = queries_from_rows(rows)
    if not queries:
        raise InputError(f"pg_stat_statements of {db.dsn.masked} holds no queries of this database")
    return queries, left_out
