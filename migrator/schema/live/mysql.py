"""The live schema of a MySQL or MariaDB database: its ``information_schema`` read through PyMySQL."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from ...dsn import Dsn
from ..model import Column, Constraint, Schema, Table
from .errors import LiveSchemaError, import_driver, masked_error, one_line
from .rendering import canonical_type, finish_schema, qualify

_MYSQL_PARAMS: dict[str, Callable[[str], Any]] = {  # DSN query parameters passed to PyMySQL
    "charset": str,
    "unix_socket": str,
    "ssl_ca": str,
    "ssl_cert": str,
    "ssl_key": str,
    "ssl_disabled": lambda v: v.lower() in ("1", "true", "yes", "on"),
    "ssl_verify_cert": lambda v: v.lower() in ("1", "true", "yes", "on"),
    "ssl_verify_identity": lambda v: v.lower() in ("1", "true", "yes", "on"),
}
_MYSQL_KINDS = {"PRIMARY KEY": "primary_key", "UNIQUE": "unique", "FOREIGN KEY": "foreign_key", "CHECK": "check"}
_MYSQL_NUMERIC = {
    "tinyint",
    "smallint",
    "mediumint",
    "int",
    "integer",
    "bigint",
    "decimal",
    "numeric",
    "float",
    "double",
    "real",
    "bit",
    "year",
}
_MYSQL_EXPRESSION_DEFAULT = re.compile(r"(?i)^(current_timestamp|now|localtime|localtimestamp)\b")


class MySqlLoader:
    def __init__(self, dsn: Dsn, schemas: list[str] | None, timeout_s: float) -> None:
        self.dsn = dsn
        self.timeout_s = timeout_s
        databases = list(schemas) if schemas else ([dsn.database] if dsn.database else [])
        if not databases:
            raise masked_error(
                dsn, "database", f"{dsn.masked} names no database: add /dbname to the connection string", None
            )
        self.databases = databases
        self.default = dsn.database or databases[0]  # its tables go unqualified, as in migrations

    def _connect_kwargs(self) -> dict[str, Any]:
        d = self.dsn
        kwargs: dict[str, Any] = {
            "host": d.host or "localhost",
            "port": d.port or 3306,
            "user": d.user or "root",
            "password": d.password or "",
            "connect_timeout": self.timeout_s,
            "read_timeout": self.timeout_s,
            "write_timeout": self.timeout_s,
            "autocommit": True,
        }
        if d.database:
            kwargs["database"] = d.database
        for key, value in d.params.items():
            convert = _MYSQL_PARAMS.get(key)
            if convert is None:
                raise masked_error(
                    d,
                    "dsn",
                    f"unsupported MySQL connection parameter {key!r} in {d.masked} "
                    f"(supported: {', '.join(sorted(_MYSQL_PARAMS))})",
                )
            kwargs[key] = convert(value)
        return kwargs

    def load(self) -> Schema:
        pymysql = import_driver(self.dsn, "pymysql", "PyMySQL", "MySQL/MariaDB")
        kwargs = self._connect_kwargs()
        failure: LiveSchemaError | None = None
        conn: Any = None
        try:
            conn = pymysql.connect(**kwargs)
        except pymysql.Error as err:
            failure = self._failure(err, connecting=True)
        except Exception as err:
            failure = masked_error(self.dsn, "connect", f"cannot connect to {self.dsn.masked}: {one_line(err)}", err)
        if failure is not None:
            raise failure
        try:
            try:
                schema = self._read(conn)
            except pymysql.Error as err:
                failure = self._failure(err, connecting=False)
        finally:
            conn.close()
        if failure is not None:
            raise failure
        return schema

    def _failure(self, err: BaseException, *, connecting: bool) -> LiveSchemaError:
        args: tuple[Any, ...] = tuple(getattr(err, "args", ()))
        code = args[0] if args and isinstance(args[0], int) else None
        text = str(args[1]) if len(args) > 1 else one_line(err)
        text = " ".join(text.split())
        if code is not None:
            text = f"{text} (error {code})"
        low = text.lower()
        if code in (1045, 1698, 2059) or (connecting and "access denied" in low):
            kind = "auth"
        elif code in (1049, 1044):
            kind = "database"
        elif "timed out" in low or "timeout" in low or code in (1969, 3024):
            kind = "timeout"
        else:
            kind = "connect" if connecting else "query"
        if connecting:
            return masked_error(self.dsn, kind, f"cannot connect to {self.dsn.masked}: {text}", err)
        if kind == "timeout":
            return masked_error(
                self.dsn,
                kind,
                f"reading the schema of {self.dsn.masked} timed out after {self.timeout_s:g} s: {text}",
                err,
            )
        return masked_error(self.dsn, kind, f"reading the schema of {self.dsn.masked} failed: {text}", err)

    # -- information_schema ------------------------------------------------------------------------
    def _rows(self, cur: Any, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        cur.execute(sql, args)
        out = []
        for row in cur.fetchall():
            out.append({str(k).upper(): v for k, v in row.items()})
        return out

    def _read(self, conn: Any) -> Schema:
        import pymysql.cursors

        with conn.cursor(pymysql.cursors.DictCursor) as cur:
            version = str(self._rows(cur, "SELECT VERSION() AS V")[0]["V"])
            mariadb = "mariadb" in version.lower()
            self._session(cur, version, mariadb)
            marks = ", ".join(["%s"] * len(self.databases))
            dbs = tuple(self.databases)
            found = {
                r["SCHEMA_NAME"]
                for r in self._rows(
                    cur, f"SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME IN ({marks})", dbs
                )
            }
            missing = [d for d in self.databases if d not in found]
            if missing:
                raise masked_error(
                    self.dsn, "database", f"database {', '.join(map(repr, missing))} not found in {self.dsn.masked}"
                )
            schema = Schema()
            schema.source = {
                "kind": "live",
                "dialect": "mysql",
                "server": "MariaDB" if mariadb else "MySQL",
                "server_version": version.split("-")[0],
                "dsn": self.dsn.masked,
            }
            tables: dict[tuple[str, str], Table] = {}
            for r in self._rows(
                cur,
                "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE, TABLE_ROWS, DATA_LENGTH, INDEX_LENGTH "
                f"FROM information_schema.TABLES WHERE TABLE_SCHEMA IN ({marks}) ORDER BY TABLE_SCHEMA, TABLE_NAME",
                dbs,
            ):
                name = qualify(r["TABLE_SCHEMA"], r["TABLE_NAME"], self.default)
                if r["TABLE_TYPE"] == "VIEW":
                    schema.views[name] = None
                    continue
                if r["TABLE_TYPE"] not in ("BASE TABLE", "SYSTEM VERSIONED"):
                    continue
                table = Table(name)
                table.rows_estimate = int(r["TABLE_ROWS"]) if r["TABLE_ROWS"] is not None else None
                if r["DATA_LENGTH"] is not None or r["INDEX_LENGTH"] is not None:
                    table.size_bytes = int(r["DATA_LENGTH"] or 0) + int(r["INDEX_LENGTH"] or 0)
                schema.tables[name] = table
                tables[(r["TABLE_SCHEMA"], r["TABLE_NAME"])] = table
            quoted_defaults = mariadb and _version_tuple(version) >= (10, 2, 7)
            for r in self._rows(
                cur,
                f"SELECT * FROM information_schema.COLUMNS WHERE TABLE_SCHEMA IN ({marks}) "
                "ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION",
                dbs,
            ):
                owner = tables.get((r["TABLE_SCHEMA"], r["TABLE_NAME"]))
                if owner is None:
                    continue
                name = r["COLUMN_NAME"]
                owner.columns[name] = Column(
                    name,
                    canonical_type(str(r["COLUMN_TYPE"]), "mysql"),
                    r["IS_NULLABLE"] == "YES",
                    _mysql_default(r, quoted_defaults),
                )
            self._constraints(cur, tables, marks, dbs)
            self._indexes(cur, schema, tables, marks, dbs)
        if mariadb:
            _mariadb_json(schema)
        return finish_schema(schema)

    def _session(self, cur: Any, version: str, mariadb: bool) -> None:
        """A read-only transaction under a statement timeout (best effort: older servers lack some)."""
        import pymysql

        if mariadb:
            limit = f"SET SESSION max_statement_time = {self.timeout_s:g}"  # seconds, MariaDB 10.1+
        else:
            limit = f"SET SESSION max_execution_time = {max(1, int(self.timeout_s * 1000))}"  # ms, MySQL 5.7.8+
        with contextlib.suppress(pymysql.Error):  # unknown on an old server: the socket read timeout still applies
            cur.execute(limit)
        if not mariadb:  # MySQL 8 caches TABLE_ROWS / DATA_LENGTH for a day by default: ask InnoDB now
            with contextlib.suppress(pymysql.Error):
                cur.execute("SET SESSION information_schema_stats_expiry = 0")
        cur.execute("START TRANSACTION READ ONLY")

    def _constraints(self, cur: Any, tables: dict[tuple[str, str], Table], marks: str, dbs: tuple[str, ...]) -> None:
        import pymysql

        columns: dict[tuple[str, str, str], list[str]] = {}
        for r in self._rows(
            cur,
            "SELECT TABLE_SCHEMA, TABLE_NAME, CONSTRAINT_NAME, COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE "
            f"WHERE TABLE_SCHEMA IN ({marks}) ORDER BY TABLE_SCHEMA, TABLE_NAME, CONSTRAINT_NAME, ORDINAL_POSITION",
            dbs,
        ):
            key = (r["TABLE_SCHEMA"], r["TABLE_NAME"], r["CONSTRAINT_NAME"])
            columns.setdefault(key, []).append(r["COLUMN_NAME"])
        checks: dict[tuple[str, str | None, str], str] = {}
        try:
            for r in self._rows(
                cur, f"SELECT * FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA IN ({marks})", dbs
            ):
                # MariaDB names the table (check names are per table); MySQL 8 does not (per schema).
                checks[(r["CONSTRAINT_SCHEMA"], r.get("TABLE_NAME"), r["CONSTRAINT_NAME"])] = str(r["CHECK_CLAUSE"])
        except pymysql.err.ProgrammingError:  # MySQL < 8.0.16, MariaDB < 10.2: no CHECK constraints
            pass
        for r in self._rows(
            cur,
            f"SELECT * FROM information_schema.TABLE_CONSTRAINTS WHERE TABLE_SCHEMA IN ({marks}) "
            "ORDER BY TABLE_SCHEMA, TABLE_NAME, CONSTRAINT_NAME",
            dbs,
        ):
            table = tables.get((r["TABLE_SCHEMA"], r["TABLE_NAME"]))
            kind = _MYSQL_KINDS.get(str(r["CONSTRAINT_TYPE"]).upper())
            if table is None or kind is None:
                continue
            db, tname, cname = r["TABLE_SCHEMA"], r["TABLE_NAME"], r["CONSTRAINT_NAME"]
            expression = None
            if kind == "check":
                expression = checks.get((db, tname, cname), checks.get((db, None, cname)))
            enforced = str(r.get("ENFORCED") or "YES").upper() != "NO"
            # MySQL's primary key is always named PRIMARY; migrations never name it (DROP PRIMARY KEY),
            # and the history replay keeps it unnamed: the same here.
            name = None if kind == "primary_key" else cname
            table.constraints.append(Constraint(name, kind, columns.get((db, tname, cname), []), enforced, expression))

    def _indexes(
        self, cur: Any, schema: Schema, tables: dict[tuple[str, str], Table], marks: str, dbs: tuple[str, ...]
    ) -> None:
        indexes: dict[tuple[str, str, str], tuple[bool, list[str]]] = {}
        for r in self._rows(
            cur,
            f"SELECT * FROM information_schema.STATISTICS WHERE TABLE_SCHEMA IN ({marks}) "
            "ORDER BY TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX",
            dbs,
        ):
            key = (r["TABLE_SCHEMA"], r["TABLE_NAME"], r["INDEX_NAME"])
            unique = str(r["NON_UNIQUE"]) in ("0", "False")
            column = r.get("COLUMN_NAME") or r.get("EXPRESSION") or ""
            indexes.setdefault(key, (unique, []))[1].append(str(column))
        for (db, tname, iname), (unique, cols) in indexes.items():
            table = tables.get((db, tname))
            if table is None or iname == "PRIMARY":
                continue
            table.indexes[iname] = unique
            # Index names are per table in MySQL: the global map keeps the first table's (like the replay).
            schema.index_table.setdefault(iname, table.name)
            schema.index_columns.setdefault(iname, cols)


def _mariadb_json(schema: Schema) -> None:
    """MariaDB's JSON is LONGTEXT with a ``CHECK (json_valid(col))``: show it as the ``json`` a migration wrote."""
    for table in schema.tables.values():
        for c in table.constraints:
            m = re.fullmatch(r"json_valid\(`([^`]+)`\)", (c.expression or "").strip()) if c.kind == "check" else None
            col = table.columns.get(m.group(1)) if m else None
            if col is not None and col.type == "longtext":
                col.type = "json"


def _version_tuple(version: str) -> tuple[int, ...]:
    m = re.match(r"(\d+)\.(\d+)\.(\d+)", version)
    return tuple(int(x) for x in m.groups()) if m else (0, 0, 0)


def _mysql_default(r: dict[str, Any], quoted: bool) -> str | None:
    """``COLUMN_DEFAULT`` as the SQL text the normalizer gives ``DEFAULT ...`` (None: no default).

    MariaDB 10.2.7+ stores SQL text (``'x'``, ``0``, ``current_timestamp()``, ``NULL``); MySQL stores
    the bare value, with ``DEFAULT_GENERATED`` in ``EXTRA`` for expressions.
    """
    value = r.get("COLUMN_DEFAULT")
    extra = str(r.get("EXTRA") or "").upper()
    if "GENERATED" in extra and "DEFAULT_GENERATED" not in extra:  # VIRTUAL/STORED GENERATED column
        return None
    if value is None:
        return None
    text = str(value)
    if quoted:
        if text.upper() == "NULL":
            return None
        return _mysql_default_sql(text)
    data_type = str(r.get("DATA_TYPE") or "").lower()
    if "DEFAULT_GENERATED" in extra or _MYSQL_EXPRESSION_DEFAULT.match(text):
        sql = text if _MYSQL_EXPRESSION_DEFAULT.match(text) else f"({text})"
    elif data_type in _MYSQL_NUMERIC or (data_type == "bit" and text.startswith("b'")):
        sql = text
    else:
        sql = "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"
    return _mysql_default_sql(sql)


@lru_cache(maxsize=4096)
def _mysql_default_sql(text: str) -> str:
    """A MySQL default expression as the normalizer renders ``DEFAULT <text>``."""
    try:
        import sqlglot

        return sqlglot.parse_one(text, read="mysql").sql(dialect="mysql")
    except Exception:
        return text
