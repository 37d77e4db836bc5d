"""One connection to the target database, the same small interface for PostgreSQL and MySQL/MariaDB.

- PostgreSQL through psycopg 3, MySQL/MariaDB through SQLAlchemy with PyMySQL (``exec_driver_sql``,
  so the SQL that runs is the plan's text, unchanged). Cloud SQL instances through the Cloud SQL
  Python connector (see :mod:`.cloudsql`).
- The connection is in autocommit mode; transactions are explicit (``BEGIN`` ... ``COMMIT``), so a
  step that must not run in a transaction (``CREATE INDEX CONCURRENTLY``, MySQL DDL) simply runs
  outside one.
- Driver errors are classified (:class:`ErrorKind`) and described in one masked line: no message
  from here holds a password.
- The runner's mutual exclusion is a session lock: ``pg_try_advisory_lock`` / ``GET_LOCK``. It goes
  away with the session, so a killed runner never leaves it behind.
"""

from __future__ import annotations

import hashlib
import math
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime, timezone
from enum import Enum
from typing import Any

from ..dsn import Dsn, DsnError, parse_dsn
from ..schema.live.errors import LiveSchemaError, import_driver, one_line
from .errors import InputError

Params = Mapping[str, Any] | Sequence[Any] | None


class ErrorKind(Enum):
    LOCK_TIMEOUT = "lock timeout"  # waited lock_timeout for a lock: safe to retry
    DEADLOCK = "deadlock"  # chosen as a deadlock victim (or a serialization failure): safe to retry
    STATEMENT_TIMEOUT = "statement timeout"
    EXISTS = "already exists"
    MISSING = "does not exist"
    CONNECTION = "connection lost"
    PERMISSION = "permission denied"
    OTHER = "error"

    @property
    def retryable(self) -> bool:
        return self in (ErrorKind.LOCK_TIMEOUT, ErrorKind.DEADLOCK)


class Database(ABC):
    """A connection to the target database (autocommit; explicit transactions)."""

    dialect: str

    def __init__(self, dsn: Dsn) -> None:
        self.dsn = dsn

    # -- statements --------------------------------------------------------------------------------
    @abstractmethod
    def execute(self, sql: str, params: Params = None) -> int:
        """Run one statement; the number of rows it changed (-1 when not known)."""

    @abstractmethod
    def query(self, sql: str, params: Params = None) -> list[tuple[Any, ...]]: ...

    def query_one(self, sql: str, params: Params = None) -> tuple[Any, ...] | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN ... COMMIT; ROLLBACK on any exception (a rollback failure is swallowed: the
        original error is the one that matters, and a lost connection rolls back by itself)."""
        self.execute("BEGIN")
        try:
            yield
        except BaseException:
            with suppress(Exception):
                self.execute("ROLLBACK")
            raise
        self.execute("COMMIT")

    # -- timeouts ---------------------------------------------------------------------------------
    @abstractmethod
    def set_timeouts(self, lock_timeout: float | None, statement_timeout: float | None) -> None:
        """Session timeouts for what runs next; ``None`` (or 0) means no limit."""

    # -- the runner lock --------------------------------------------------------------------------
    @abstractmethod
    def try_lock(self, name: str) -> bool: ...

    @abstractmethod
    def unlock(self, name: str) -> None: ...

    @abstractmethod
    def lock_holder_session(self, name: str) -> str | None:
        """The server's view of the session holding the runner lock (pid / connection id)."""

    @abstractmethod
    def lock_holder_id(self, name: str) -> str | None:
        """The backend pid / connection id holding the runner lock; None when it is free."""

    @abstractmethod
    def session_id(self) -> str:
        """This connection's backend pid / connection id."""

    # -- errors ------------------------------------------------------------------------------------
    @abstractmethod
    def error_kind(self, err: BaseException) -> ErrorKind: ...

    @abstractmethod
    def is_driver_error(self, err: BaseException) -> bool: ...

    def describe(self, err: BaseException) -> str:
        """One line, every secret masked."""
        return self.dsn.scrub(one_line(err))

    # -- facts ------------------------------------------------------------------------------------
    @abstractmethod
    def server_version(self) -> str: ...

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    def blockers(self, table: str | None) -> str:
        """Who holds locks on ``table`` right now (for a lock-timeout message); "" when unknown."""
        return ""

    @abstractmethod
    def close(self) -> None: ...


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory lock key for ``name``."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


# ---- PostgreSQL ----------------------------------------------------------------------------------


_PG_KIND = {
    "55P03": ErrorKind.LOCK_TIMEOUT,
    "40P01": ErrorKind.DEADLOCK,
    "40001": ErrorKind.DEADLOCK,
    "57014": ErrorKind.STATEMENT_TIMEOUT,
    "42P07": ErrorKind.EXISTS,
    "42701": ErrorKind.EXISTS,
    "42710": ErrorKind.EXISTS,
    "42P06": ErrorKind.EXISTS,
    "42723": ErrorKind.EXISTS,
    "42P01": ErrorKind.MISSING,
    "42703": ErrorKind.MISSING,
    "42704": ErrorKind.MISSING,
    "42883": ErrorKind.MISSING,
    "42501": ErrorKind.PERMISSION,
    "57P01": ErrorKind.CONNECTION,
    "57P02": ErrorKind.CONNECTION,
    "57P03": ErrorKind.CONNECTION,
}


class PostgresDatabase(Database):
    dialect = "postgres"

    def __init__(self, dsn: Dsn, conn: Any, psycopg: Any) -> None:
        super().__init__(dsn)
        self.conn = conn
        self._psycopg = psycopg

    def execute(self, sql: str, params: Params = None) -> int:
        with self.conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.rowcount

    def query(self, sql: str, params: Params = None) -> list[tuple[Any, ...]]:
        with self.conn.cursor() as cur:
            cur.execute(sql, params)
            return list(cur.fetchall())

    def set_timeouts(self, lock_timeout: float | None, statement_timeout: float | None) -> None:
        self.execute(
            "SELECT set_config('lock_timeout', %s, false), set_config('statement_timeout', %s, false)",
            (_ms(lock_timeout), _ms(statement_timeout)),
        )

    def try_lock(self, name: str) -> bool:
        row = self.query_one("SELECT pg_try_advisory_lock(%s)", (lock_key(name),))
        return bool(row and row[0])

    def unlock(self, name: str) -> None:
        self.execute("SELECT pg_advisory_unlock(%s)", (lock_key(name),))

    def lock_holder_id(self, name: str) -> str | None:
        key = lock_key(name) & 0xFFFFFFFFFFFFFFFF
        row = self.query_one(
            "SELECT l.pid FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND l.classid::bigint = %s AND l.objid::bigint = %s",
            (key >> 32, key & 0xFFFFFFFF),
        )
        return str(row[0]) if row else None

    def session_id(self) -> str:
        row = self.query_one("SELECT pg_backend_pid()")
        return str(row[0]) if row else ""

    def lock_holder_session(self, name: str) -> str | None:
        key = lock_key(name) & 0xFFFFFFFFFFFFFFFF
        row = self.query_one(
            "SELECT a.pid, a.usename, a.application_name, a.client_addr::text, a.backend_start "
            "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND l.classid::bigint = %s AND l.objid::bigint = %s",
            (key >> 32, key & 0xFFFFFFFF),
        )
        if row is None:
            return None
        pid, user, app, addr, since = row
        app = app or "no application_name"
        return f"PostgreSQL backend pid {pid} ({user}@{addr or 'local'}, {app}, since {since:%Y-%m-%d %H:%M:%S %Z})"

    def error_kind(self, err: BaseException) -> ErrorKind:
        state = getattr(err, "sqlstate", None)
        if state in _PG_KIND:
            return _PG_KIND[state]
        if state and state.startswith("08"):
            return ErrorKind.CONNECTION
        if isinstance(err, self._psycopg.OperationalError) and (state is None or self.conn.closed):
            return ErrorKind.CONNECTION
        if isinstance(err, self._psycopg.InterfaceError):
            return ErrorKind.CONNECTION
        return ErrorKind.OTHER

    def is_driver_error(self, err: BaseException) -> bool:
        return isinstance(err, self._psycopg.Error)

    def server_version(self) -> str:
        v = int(self.conn.info.server_version)
        return f"{v // 10000}.{v % 10000}" if v >= 100000 else f"{v // 10000}.{v // 100 % 100}.{v % 100}"

    def blockers(self, table: str | None) -> str:
        if not table:
            return ""
        try:
            rows = self.query(
                "SELECT DISTINCT a.pid, a.state, a.xact_start, left(regexp_replace(a.query, '\\s+', ' ', 'g'), 80) "
                "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.relation = to_regclass(%s) AND l.granted AND a.pid <> pg_backend_pid() "
                "ORDER BY a.xact_start NULLS LAST LIMIT 3",
                (table,),
            )
        except Exception:  # a diagnostic only
            return ""
        parts = [
            f"pid {pid} ({state}{f', in a transaction since {xs:%H:%M:%S}' if xs else ''}: {query})"
            for pid, state, xs, query in rows
        ]
        return self.dsn.scrub("; ".join(parts))

    def close(self) -> None:
        with suppress(Exception):
            self.conn.close()


def _ms(seconds: float | None) -> str:
    return "0" if not seconds else f"{max(1, round(seconds * 1000))}ms"


# ---- MySQL / MariaDB -----------------------------------------------------------------------------


_MY_KIND = {
    1205: ErrorKind.LOCK_TIMEOUT,  # lock wait timeout (metadata lock and row lock)
    1142: ErrorKind.PERMISSION,  # command denied to user
    1143: ErrorKind.PERMISSION,
    1044: ErrorKind.PERMISSION,  # access denied to database
    1227: ErrorKind.PERMISSION,  # needs SUPER or a similar privilege
    1213: ErrorKind.DEADLOCK,
    3024: ErrorKind.STATEMENT_TIMEOUT,  # MySQL max_execution_time
    1969: ErrorKind.STATEMENT_TIMEOUT,  # MariaDB max_statement_time
    1050: ErrorKind.EXISTS,
    1060: ErrorKind.EXISTS,
    1061: ErrorKind.EXISTS,
    1826: ErrorKind.EXISTS,
    1022: ErrorKind.EXISTS,
    1091: ErrorKind.MISSING,
    1146: ErrorKind.MISSING,
    1054: ErrorKind.MISSING,
    1051: ErrorKind.MISSING,
    2006: ErrorKind.CONNECTION,
    2013: ErrorKind.CONNECTION,
    2003: ErrorKind.CONNECTION,
    1927: ErrorKind.CONNECTION,  # MariaDB: connection was killed
    4031: ErrorKind.CONNECTION,
    1053: ErrorKind.CONNECTION,  # server shutdown in progress
}


class MySqlDatabase(Database):
    dialect = "mysql"

    def __init__(self, dsn: Dsn, engine: Any, conn: Any, sqlalchemy: Any) -> None:
        super().__init__(dsn)
        self.engine = engine
        self.conn = conn
        self._sa = sqlalchemy
        self._mariadb = "mariadb" in self.server_version_text().lower()

    def server_version_text(self) -> str:
        row = self.conn.exec_driver_sql("SELECT VERSION()").fetchone()
        return str(row[0]) if row else ""

    def execute(self, sql: str, params: Params = None) -> int:
        result = self.conn.exec_driver_sql(sql, params) if params is not None else self.conn.exec_driver_sql(sql)
        try:
            return int(result.rowcount)
        finally:
            result.close()

    def query(self, sql: str, params: Params = None) -> list[tuple[Any, ...]]:
        result = self.conn.exec_driver_sql(sql, params) if params is not None else self.conn.exec_driver_sql(sql)
        return [tuple(r) for r in result.fetchall()]

    def set_timeouts(self, lock_timeout: float | None, statement_timeout: float | None) -> None:
        # metadata locks (DDL) and InnoDB row locks (backfills) each have their own timeout, in whole
        # seconds, at least 1; "no limit" is the server's maximum (a year)
        wait = max(1, math.ceil(lock_timeout)) if lock_timeout else 31536000
        self.execute(
            f"SET SESSION lock_wait_timeout = {wait}, SESSION innodb_lock_wait_timeout = {min(wait, 1073741824)}"
        )
        if self._mariadb:  # MariaDB limits every statement; MySQL's max_execution_time covers SELECT only
            self.execute(f"SET SESSION max_statement_time = {statement_timeout or 0:g}")

    def try_lock(self, name: str) -> bool:
        row = self.query_one("SELECT GET_LOCK(%s, 0)", (name,))
        return bool(row and row[0] == 1)

    def unlock(self, name: str) -> None:
        self.query("SELECT RELEASE_LOCK(%s)", (name,))

    def lock_holder_id(self, name: str) -> str | None:
        row = self.query_one("SELECT IS_USED_LOCK(%s)", (name,))
        return None if not row or row[0] is None else str(row[0])

    def session_id(self) -> str:
        row = self.query_one("SELECT CONNECTION_ID()")
        return str(row[0]) if row else ""

    def lock_holder_session(self, name: str) -> str | None:
        row = self.query_one("SELECT IS_USED_LOCK(%s)", (name,))
        if not row or row[0] is None:
            return None
        info = self.query_one(
            "SELECT USER, HOST, TIME FROM information_schema.PROCESSLIST WHERE ID = %s", (int(row[0]),)
        )
        if info is None:
            return f"connection id {row[0]}"
        return f"connection id {row[0]} ({info[0]}@{info[1]}, connected {info[2]} s)"

    def _code(self, err: BaseException) -> int | None:
        orig = getattr(err, "orig", err)
        args = getattr(orig, "args", ())
        return args[0] if args and isinstance(args[0], int) else None

    def error_kind(self, err: BaseException) -> ErrorKind:
        code = self._code(err)
        if code in _MY_KIND:
            return _MY_KIND[code]
        if isinstance(err, self._sa.exc.DBAPIError) and err.connection_invalidated:
            return ErrorKind.CONNECTION
        if isinstance(err, (self._sa.exc.ResourceClosedError,)) or ("closed" in str(err).lower() and code is None):
            return ErrorKind.CONNECTION
        return ErrorKind.OTHER

    def is_driver_error(self, err: BaseException) -> bool:
        return isinstance(err, self._sa.exc.SQLAlchemyError)

    def describe(self, err: BaseException) -> str:
        orig = getattr(err, "orig", None)
        args = getattr(orig, "args", ()) if orig is not None else ()
        if len(args) >= 2 and isinstance(args[0], int):
            return self.dsn.scrub(f"{one_line(Exception(args[1]))} (error {args[0]})")
        return self.dsn.scrub(one_line(orig if orig is not None else err))

    def server_version(self) -> str:
        return self.server_version_text().split("-")[0]

    def now(self) -> datetime:
        return datetime.now(timezone.utc).replace(tzinfo=None)

    def blockers(self, table: str | None) -> str:
        if not table:
            return ""
        try:
            rows = self.query(
                "SELECT ID, COMMAND, TIME, LEFT(COALESCE(INFO, ''), 80) FROM information_schema.PROCESSLIST "
                "WHERE ID <> CONNECTION_ID() AND COMMAND <> 'Daemon' ORDER BY TIME DESC LIMIT 3"
            )
        except Exception:
            return ""
        return self.dsn.scrub("; ".join(f"connection {i} ({c}, {t} s: {q or 'idle'})" for i, c, t, q in rows))

    def close(self) -> None:
        try:
            self.conn.close()
            self.engine.dispose()
        except Exception:
            pass


# ---- connecting ------------------------------------------------------------------------------------


def connect(dsn_text: str, *, timeout_s: float = 10, application_name: str = "bgmigrate") -> Database:
    """A :class:`Database` for ``dsn_text``; :class:`InputError` (masked) when it cannot connect."""
    try:
        dsn = parse_dsn(dsn_text)
    except DsnError as err:
        problem = f"invalid connection string: {err}"
    else:
        problem = None
    if problem is not None:
        raise InputError(problem)
    from .cloudsql import cloudsql_options

    try:
        cloud = cloudsql_options(dsn)
        if dsn.dialect == "postgres":
            return _connect_postgres(dsn, timeout_s, application_name, cloud)
        return _connect_mysql(dsn, timeout_s, cloud)
    except LiveSchemaError as err:
        raise InputError(str(err)) from None


def _connect_postgres(dsn: Dsn, timeout_s: float, application_name: str, cloud: Any) -> PostgresDatabase:
    from ..schema.live.postgres import PostgresLoader

    psycopg = import_driver(dsn, "psycopg", "psycopg", "PostgreSQL")
    loader = PostgresLoader(dsn, None, timeout_s)
    failure: Exception | None = None
    conn: Any = None
    try:
        if cloud is not None:
            app = dsn.params.get("application_name", application_name)
            conn = cloud.connect_postgres(dsn, psycopg, timeout_s=timeout_s, application_name=app)
            conn.autocommit = True
        else:
            kwargs = loader._connect_kwargs()
            kwargs["application_name"] = dsn.params.get("application_name", application_name)
            conn = psycopg.connect(**kwargs, autocommit=True)
    except psycopg.Error as err:
        failure = loader._connect_failure(err)
    except LiveSchemaError as err:
        failure = err
    except Exception as err:  # invalid option values, connector errors
        failure = InputError(f"cannot connect to {dsn.masked}: {dsn.scrub(one_line(err))}")
    if failure is not None:
        raise InputError(str(failure))
    return PostgresDatabase(dsn, conn, psycopg)


def _connect_mysql(dsn: Dsn, timeout_s: float, cloud: Any) -> MySqlDatabase:
    from ..schema.live.mysql import MySqlLoader

    pymysql = import_driver(dsn, "pymysql", "PyMySQL", "MySQL/MariaDB")
    sqlalchemy = import_driver(dsn, "sqlalchemy", "SQLAlchemy", "MySQL/MariaDB")
    from sqlalchemy.pool import NullPool

    loader = MySqlLoader(dsn, None, timeout_s)
    failure: Exception | None = None
    try:
        if cloud is not None:
            creator = lambda: cloud.connect_mysql(dsn, pymysql, timeout_s=timeout_s)  # noqa: E731
        else:
            kwargs = loader._connect_kwargs()
            kwargs.pop("read_timeout", None)  # a backfill batch or an index build may take longer
            kwargs.pop("write_timeout", None)
            creator = lambda: pymysql.connect(**kwargs)  # noqa: E731
        engine = sqlalchemy.create_engine("mysql+pymysql://", creator=creator, poolclass=NullPool)
        conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        return MySqlDatabase(dsn, engine, conn, sqlalchemy)
    except LiveSchemaError as err:
        failure = err
    except sqlalchemy.exc.DBAPIError as err:
        failure = loader._failure(err.orig, connecting=True)
    except pymysql.Error as err:
        failure = loader._failure(err, connecting=True)
    except Exception as err:
        failure = InputError(f"cannot connect to {dsn.masked}: {dsn.scrub(one_line(err))}")
    raise InputError(str(failure))
