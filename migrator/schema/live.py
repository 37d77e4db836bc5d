"""The current schema read from a live database, for projects whose early history is lost.

:func:`load_live_schema` connects to PostgreSQL (psycopg 3) or MySQL/MariaDB (PyMySQL), reads the
catalog in one read-only transaction under a statement timeout, and returns a :class:`Schema` in the
same shape the history replay builds: names qualified the way the normalizer qualifies them
(``schema.table``, PostgreSQL's ``public`` left out; MySQL tables of the connection's database
unqualified), column types rendered as the normalizer renders them (so :func:`compare_types` reads
both sides alike), CHECK expressions as PostgreSQL prints them (``(col IS NOT NULL)``, which
:meth:`Table.proves_not_null` reads). Everything loaded exists already: ``created_in`` is ``None``
(blue uses it). Row estimates and sizes are kept on each table for the planner.

No message from here ever holds the connection string's password: errors are
:class:`LiveSchemaError` with one masked line, and the driver's exception is replaced, in the
``__cause__`` chain, by a :class:`DriverError` holding its masked text.

The drivers are optional: ``pip install 'bgmigrate[live]'``.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from ..dsn import Dsn, DsnError, parse_dsn
from ..sql.types import SqlType, parse_type
from .model import Column, Constraint, Schema, Table

__all__ = ["DriverError", "LiveSchemaError", "canonical_type", "load_live_schema"]

EXTRA = "live"


class LiveSchemaError(Exception):
    """The live schema could not be read. ``str()`` is one line with every secret masked.

    ``kind``: ``dsn`` | ``driver`` (not installed) | ``connect`` | ``auth`` | ``database``
    (unknown database or schema) | ``timeout`` | ``query``.
    """

    def __init__(self, message: str, *, kind: str = "query", dsn: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.dsn = dsn  # masked


class DriverError(Exception):
    """Stands in for the driver's exception in the ``__cause__`` chain: its masked text only."""


def load_live_schema(dsn: str, *, schemas: list[str] | None = None, timeout_s: float = 10) -> Schema:
    """The schema of the database ``dsn`` points at.

    ``schemas``: PostgreSQL schemas to read (default: every non-system schema); for MySQL, the
    databases to read (default: the DSN's database). ``timeout_s`` bounds the connection and each
    catalog query.
    """
    problem: str | None = None
    try:
        parsed = parse_dsn(dsn)
    except DsnError as err:  # its message never holds the password
        problem = f"invalid connection string: {err}"
    if problem is not None:  # raised outside the handler: no __context__ to carry the original around
        raise LiveSchemaError(problem, kind="dsn")
    if timeout_s <= 0:
        raise LiveSchemaError("timeout must be positive", kind="dsn", dsn=parsed.masked)
    if parsed.dialect == "postgres":
        return _PostgresLoader(parsed, schemas, timeout_s).load()
    return _MySqlLoader(parsed, schemas, timeout_s).load()


# ---- shared helpers ----------------------------------------------------------------------------------


def _one_line(err: BaseException) -> str:
    text = "; ".join(part.strip() for part in str(err).splitlines() if part.strip())
    text = re.sub(r"\s+", " ", text)
    return text or type(err).__name__


def _failure(dsn: Dsn, kind: str, message: str, err: BaseException | None = None) -> LiveSchemaError:
    """A :class:`LiveSchemaError` whose cause is the masked text of ``err`` (never ``err`` itself)."""
    exc = LiveSchemaError(dsn.scrub(message), kind=kind, dsn=dsn.masked)
    if err is not None:
        cause = DriverError(f"{type(err).__module__}.{type(err).__qualname__}: {dsn.scrub(_one_line(err))}")
        exc.__cause__ = cause
    exc.__suppress_context__ = True
    return exc


def _import(dsn: Dsn, module: str, package: str, what: str) -> Any:
    """The driver module, imported lazily; a :class:`LiveSchemaError` naming the extra when missing."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        pass
    raise _failure(
        dsn,
        "driver",
        f"reading a live {what} schema needs the {package} driver, which is not installed: "
        f"pip install 'bgmigrate[{EXTRA}]'",
    )


_INT_WIDTH = re.compile(r"^(tinyint|smallint|mediumint|int|bigint)\(\d+\)")


def _same_shape(a: SqlType | None, b: SqlType | None) -> bool:
    if a is None or b is None:
        return a is b
    return (a.name, a.params, a.array, a.unsigned) == (b.name, b.params, b.array, b.unsigned)


@lru_cache(maxsize=4096)
def canonical_type(text: str, dialect: str) -> str:
    """A catalog type (PostgreSQL ``format_type``, MySQL ``COLUMN_TYPE``) as the normalizer writes it.

    The normalizer renders a migration's type through sqlglot (``character varying(20)`` →
    ``varchar(20)``, ``numeric(10,2)`` → ``decimal(10, 2)``, ``timestamp with time zone`` →
    ``timestamptz``); the same rendering is used here when it keeps the type's meaning (name,
    parameters, array, unsigned, as :func:`parse_type` reads them), else the catalog's own text in
    lower case (``bit varying(5)``, which sqlglot would render ``bit``). MySQL integer display
    widths are dropped as MySQL 8.0.19+ does (``int(11)`` → ``int``), except ``tinyint(1)``.
    """
    raw = text.strip()
    lowered = raw.lower()
    if dialect == "mysql":
        m = _INT_WIDTH.match(lowered)
        if m and not lowered.startswith("tinyint(1)"):
            lowered = m.group(1) + lowered[m.end() :]
            raw = lowered
    rendered: str | None = None
    try:
        from sqlglot import exp

        rendered = exp.DataType.build(raw, dialect=dialect, udt=True).sql(dialect=dialect).lower()
    except Exception:  # sqlglot cannot read it: keep the catalog's text
        rendered = None
    if rendered is not None and _same_shape(parse_type(rendered), parse_type(lowered)):
        return rendered
    return " ".join(lowered.split())


@lru_cache(maxsize=4096)
def _mysql_default_sql(text: str) -> str:
    """A MySQL default expression as the normalizer renders ``DEFAULT <text>``."""
    try:
        import sqlglot

        return sqlglot.parse_one(text, read="mysql").sql(dialect="mysql")
    except Exception:
        return text


def _qualify(schema: str, name: str, default: str | None) -> str:
    return name if schema == default else f"{schema}.{name}"


def _finish(schema: Schema) -> Schema:
    for table in schema.tables.values():
        for c in table.constraints:
            if c.kind == "primary_key":
                for col in c.columns:
                    if col in table.columns:
                        table.columns[col].nullable = False
    return schema


# ---- PostgreSQL --------------------------------------------------------------------------------------

_PG_SYSTEM = (
    "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast' AND n.nspname !~ '^pg_temp_'"
)
_PG_KINDS = {"p": "primary_key", "u": "unique", "f": "foreign_key", "c": "check", "x": "exclude", "n": "not_null"}


class _PostgresLoader:
    def __init__(self, dsn: Dsn, schemas: list[str] | None, timeout_s: float) -> None:
        self.dsn = dsn
        self.schemas = list(schemas) if schemas else None
        self.timeout_s = timeout_s

    def _connect_kwargs(self) -> dict[str, Any]:
        d = self.dsn
        kwargs: dict[str, Any] = dict(d.params)
        for key, value in (("host", d.host), ("port", d.port), ("user", d.user), ("dbname", d.database)):
            if value is not None:
                kwargs[key] = str(value)
        if d.password is not None:
            kwargs["password"] = d.password
        kwargs.setdefault("connect_timeout", str(max(2, math.ceil(self.timeout_s))))
        kwargs.setdefault("application_name", "bgmigrate")
        return kwargs

    def load(self) -> Schema:
        psycopg = _import(self.dsn, "psycopg", "psycopg", "PostgreSQL")
        failure: LiveSchemaError | None = None
        conn: Any = None
        try:
            conn = psycopg.connect(**self._connect_kwargs())
        except psycopg.Error as err:
            failure = self._connect_failure(err)
        except Exception as err:  # e.g. invalid option values rejected before connecting
            failure = _failure(self.dsn, "connect", f"cannot connect to {self.dsn.masked}: {_one_line(err)}", err)
        if failure is not None:
            raise failure
        try:
            try:
                conn.read_only = True
                with conn.cursor() as cur:
                    ms = str(max(1, int(self.timeout_s * 1000)))
                    cur.execute(
                        "SELECT set_config('statement_timeout', %s, true), set_config('lock_timeout', %s, true), "
                        "set_config('search_path', 'public', true)",
                        (ms, ms),
                    )
                    schema = self._read(cur, int(conn.info.server_version))
                conn.rollback()
            except psycopg.Error as err:
                failure = self._query_failure(err, psycopg)
        finally:
            conn.close()
        if failure is not None:
            raise failure
        return schema

    def _connect_failure(self, err: BaseException) -> LiveSchemaError:
        text = _one_line(err)
        low = text.lower()
        if "authentication failed" in low or "no password supplied" in low or re.search(r"role .* does not exist", low):
            kind = "auth"
        elif "does not exist" in low and "database" in low:
            kind = "database"
        elif "timeout" in low or "timed out" in low:
            kind = "timeout"
        else:
            kind = "connect"
        text = re.sub(r"^connection failed: ", "", text)
        return _failure(self.dsn, kind, f"cannot connect to {self.dsn.masked}: {text}", err)

    def _query_failure(self, err: BaseException, psycopg: Any) -> LiveSchemaError:
        text = _one_line(err)
        if isinstance(err, (psycopg.errors.QueryCanceled, psycopg.errors.LockNotAvailable)):
            return _failure(
                self.dsn,
                "timeout",
                f"reading the schema of {self.dsn.masked} timed out after {self.timeout_s:g} s: {text}",
                err,
            )
        if isinstance(err, psycopg.OperationalError):
            return _failure(self.dsn, "connect", f"lost the connection to {self.dsn.masked}: {text}", err)
        return _failure(self.dsn, "query", f"reading the schema of {self.dsn.masked} failed: {text}", err)

    # -- the catalog -------------------------------------------------------------------------------
    def _read(self, cur: Any, version: int) -> Schema:
        if self.schemas is not None:
            cur.execute("SELECT nspname FROM pg_namespace WHERE nspname = ANY(%s)", (self.schemas,))
            found = {r[0] for r in cur.fetchall()}
            missing = [s for s in self.schemas if s not in found]
            if missing:
                raise _failure(
                    self.dsn, "database", f"schema {', '.join(map(repr, missing))} not found in {self.dsn.masked}"
                )
            where, args = "n.nspname = ANY(%s)", [self.schemas]
        else:
            where, args = _PG_SYSTEM, []
        schema = Schema()
        cur.execute("SHOW server_version")
        schema.source = {
            "kind": "live",
            "dialect": "postgres",
            "server": "PostgreSQL",
            "server_version": str(cur.fetchone()[0]).split(" ")[0],
            "dsn": self.dsn.masked,
        }
        by_oid = self._tables(cur, schema, where, args, version)
        if by_oid:
            oids = list(by_oid)
            attnames = self._columns(cur, by_oid, oids, version)
            self._constraints(cur, by_oid, oids, attnames)
            self._indexes(cur, schema, by_oid, oids, attnames, version)
        self._enums(cur, schema, where, args)
        self._views(cur, schema, where, args)
        return _finish(schema)

    @staticmethod
    def _name(nsp: str, rel: str) -> str:
        return _qualify(nsp, rel, "public")

    def _tables(self, cur: Any, schema: Schema, where: str, args: list[Any], version: int) -> dict[int, Table]:
        # The planner's estimate: reltuples scaled to the relation's current size in pages.
        est = (
            "CASE WHEN {c}.reltuples < 0 THEN NULL "
            "WHEN {c}.relpages > 0 THEN {c}.reltuples / {c}.relpages "
            "* (pg_relation_size({c}.oid) / current_setting('block_size')::float8) "
            "ELSE {c}.reltuples END"
        )
        if version >= 120000:
            leaves = (
                "SELECT sum({est}), sum(pg_total_relation_size(lc.oid)) FROM pg_partition_tree(c.oid) pt "
                "JOIN pg_class lc ON lc.oid = pt.relid WHERE pt.isleaf AND lc.relkind = 'r'"
            ).format(est=est.format(c="lc"))
            part_rows = f"(SELECT s.sum FROM ({leaves}) s(sum, size))"
            part_size = f"(SELECT s.size FROM ({leaves}) s(sum, size))"
        else:
            part_rows = part_size = "NULL"
        cur.execute(
            f"""
            SELECT c.oid, n.nspname, c.relname, c.relkind,
                   CASE WHEN c.relkind = 'p' THEN {part_rows} WHEN c.relkind = 'f' THEN NULL
                        ELSE {est.format(c="c")} END,
                   CASE WHEN c.relkind = 'p' THEN {part_size} WHEN c.relkind = 'f' THEN NULL
                        ELSE pg_total_relation_size(c.oid) END
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'p', 'f') AND {where}
            ORDER BY n.nspname, c.relname
            """,
            args,
        )
        by_oid: dict[int, Table] = {}
        for oid, nsp, rel, _kind, rows, size in cur.fetchall():
            table = Table(self._name(nsp, rel))
            table.rows_estimate = round(rows) if rows is not None else None
            table.size_bytes = int(size) if size is not None else None
            schema.tables[table.name] = table
            by_oid[int(oid)] = table
        return by_oid

    def _columns(self, cur: Any, by_oid: dict[int, Table], oids: list[int], version: int) -> dict[int, dict[int, str]]:
        generated = "a.attgenerated" if version >= 120000 else "''"
        cur.execute(
            f"""
            SELECT a.attrelid, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                   pg_get_expr(d.adbin, d.adrelid), {generated}
            FROM pg_attribute a
            LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
            WHERE a.attrelid = ANY(%s::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
            ORDER BY a.attrelid, a.attnum
            """,
            (oids,),
        )
        attnames: dict[int, dict[int, str]] = {}
        for relid, attnum, name, type_text, notnull, default, gen in cur.fetchall():
            table = by_oid[int(relid)]
            if gen:  # a generated column's pg_attrdef row is its expression, not a default
                default = None
            table.columns[name] = Column(name, canonical_type(type_text, "postgres"), not notnull, default)
            attnames.setdefault(int(relid), {})[int(attnum)] = name
        return attnames

    def _constraints(
        self, cur: Any, by_oid: dict[int, Table], oids: list[int], attnames: dict[int, dict[int, str]]
    ) -> None:
        cur.execute(
            """
            SELECT con.conrelid, con.conname, con.contype, con.convalidated,
                   ARRAY(SELECT k.attnum FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, n) ORDER BY k.n),
                   CASE WHEN con.contype = 'c' THEN pg_get_expr(con.conbin, con.conrelid) END,
                   pg_get_constraintdef(con.oid, true)
            FROM pg_constraint con
            WHERE con.conrelid = ANY(%s::oid[]) AND con.contype IN ('p', 'u', 'f', 'c', 'x', 'n')
            ORDER BY con.conrelid, con.conname
            """,
            (oids,),
        )
        for relid, name, contype, validated, attnums, check, definition in cur.fetchall():
            names = attnames.get(int(relid), {})
            columns = [names[n] for n in attnums or [] if n in names]
            expression = check if contype == "c" else None
            if contype == "x":
                expression = definition
            by_oid[int(relid)].constraints.append(
                Constraint(name, _PG_KINDS[contype], columns, bool(validated), expression)
            )

    def _indexes(
        self,
        cur: Any,
        schema: Schema,
        by_oid: dict[int, Table],
        oids: list[int],
        attnames: dict[int, dict[int, str]],
        version: int,
    ) -> None:
        nkeys = "i.indnkeyatts" if version >= 110000 else "i.indnatts"
        cur.execute(
            f"""
            SELECT i.indrelid, n.nspname, ic.relname, i.indisunique,
                   ARRAY(SELECT u.attnum FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS u(attnum, k)
                         WHERE u.k <= {nkeys} ORDER BY u.k),
                   ARRAY(SELECT pg_get_indexdef(i.indexrelid, k, true) FROM generate_series(1, {nkeys}) AS k
                         ORDER BY k)
            FROM pg_index i
            JOIN pg_class ic ON ic.oid = i.indexrelid
            JOIN pg_namespace n ON n.oid = ic.relnamespace
            WHERE i.indrelid = ANY(%s::oid[])
            ORDER BY i.indrelid, ic.relname
            """,
            (oids,),
        )
        for relid, nsp, name, unique, attnums, defs in cur.fetchall():
            table = by_oid[int(relid)]
            index = self._name(nsp, name)
            names = attnames.get(int(relid), {})
            # plain columns by name, expressions as PostgreSQL prints them
            columns = [(names.get(n) or d) if n else d for n, d in zip(attnums or [], defs or [])]
            table.indexes[index] = bool(unique)
            schema.index_table[index] = table.name
            schema.index_columns[index] = columns

    def _enums(self, cur: Any, schema: Schema, where: str, args: list[Any]) -> None:
        cur.execute(
            f"""
            SELECT n.nspname, t.typname,
                   COALESCE(array_agg(e.enumlabel ORDER BY e.enumsortorder) FILTER (WHERE e.oid IS NOT NULL),
                            '{{}}')
            FROM pg_type t
            JOIN pg_namespace n ON n.oid = t.typnamespace
            LEFT JOIN pg_enum e ON e.enumtypid = t.oid
            WHERE t.typtype = 'e' AND {where}
            GROUP BY n.nspname, t.typname
            ORDER BY n.nspname, t.typname
            """,
            args,
        )
        for nsp, name, labels in cur.fetchall():
            schema.enums[self._name(nsp, name)] = list(labels)

    def _views(self, cur: Any, schema: Schema, where: str, args: list[Any]) -> None:
        cur.execute(
            f"""
            SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('v', 'm') AND {where}
            ORDER BY n.nspname, c.relname
            """,
            args,
        )
        for nsp, name in cur.fetchall():
            schema.views[self._name(nsp, name)] = None


# ---- MySQL / MariaDB ---------------------------------------------------------------------------------

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


class _MySqlLoader:
    def __init__(self, dsn: Dsn, schemas: list[str] | None, timeout_s: float) -> None:
        self.dsn = dsn
        self.timeout_s = timeout_s
        databases = list(schemas) if schemas else ([dsn.database] if dsn.database else [])
        if not databases:
            raise _failure(
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
                raise _failure(
                    d,
                    "dsn",
                    f"unsupported MySQL connection parameter {key!r} in {d.masked} "
                    f"(supported: {', '.join(sorted(_MYSQL_PARAMS))})",
                )
            kwargs[key] = convert(value)
        return kwargs

    def load(self) -> Schema:
        pymysql = _import(self.dsn, "pymysql", "PyMySQL", "MySQL/MariaDB")
        kwargs = self._connect_kwargs()
        failure: LiveSchemaError | None = None
        conn: Any = None
        try:
            conn = pymysql.connect(**kwargs)
        except pymysql.Error as err:
            failure = self._failure(err, connecting=True)
        except Exception as err:
            failure = _failure(self.dsn, "connect", f"cannot connect to {self.dsn.masked}: {_one_line(err)}", err)
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
        text = str(args[1]) if len(args) > 1 else _one_line(err)
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
            return _failure(self.dsn, kind, f"cannot connect to {self.dsn.masked}: {text}", err)
        if kind == "timeout":
            return _failure(
                self.dsn,
                kind,
                f"reading the schema of {self.dsn.masked} timed out after {self.timeout_s:g} s: {text}",
                err,
            )
        return _failure(self.dsn, kind, f"reading the schema of {self.dsn.masked} failed: {text}", err)

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
                raise _failure(
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
                name = _qualify(r["TABLE_SCHEMA"], r["TABLE_NAME"], self.default)
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
        return _finish(schema)

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
