"""The scratch database: the target's schema in a uniquely named database nobody else uses.

Where it is created (the first that applies):

1. ``--scratch-server DSN`` (or ``BGMIGRATE_SCRATCH_SERVER``): any PostgreSQL where the role may
   ``CREATE DATABASE``;
2. the server behind ``--dsn`` (a sibling database ``bgm_scratch_<pid>_<random>`` next to it);
3. an embedded PostgreSQL started from the ``pgserver`` wheel in a temporary directory.

What it holds: with ``--dsn``, the output of ``pg_dump --schema-only`` of that database (no owners,
privileges, tablespaces, publications or subscriptions), restored; without, the migration history
before the release, replayed statement by statement. Then, with ``sample_rows``, generated rows in
every table (:mod:`.sample`) and ``ANALYZE``.

The database behind ``--dsn`` is only ever read, by pg_dump (which takes ACCESS SHARE locks while it
reads the catalog). Everything that can fail is checked before the scratch database is created
(pg_dump present and working, the scratch server reachable); the scratch database is dropped in a
``finally``, so also when what runs on it fails or is interrupted, unless ``keep`` is set and the
build succeeded.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from ..dsn import Dsn, DsnError, parse_dsn
from ..run.errors import InputError
from ..schema.live.errors import one_line
from ..sources.model import SourceFile

SCRATCH_PREFIX = "bgm_scratch_"
PG_DUMP_TIMEOUT_S = 600
_DUMP_FLAGS = (
    "--schema-only",
    "--no-owner",
    "--no-privileges",
    "--no-tablespaces",
    "--no-publications",
    "--no-subscriptions",  # a restored subscription would connect to its publisher
    "--no-security-labels",
)


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:  # pragma: no cover - depends on the environment
        raise InputError(
            "trace and compat need the psycopg driver, which is not installed: pip install 'bgmigrate[live]'"
        ) from None
    return psycopg


def _postgres_dsn(text: str, what: str) -> Dsn:
    try:
        dsn = parse_dsn(text)
    except DsnError as err:
        raise InputError(f"{what}: invalid connection string: {err}") from None
    if dsn.dialect != "postgres":
        raise InputError(f"{what} is a {dsn.dialect} database: trace and compat support PostgreSQL only")
    if any(k.lower().startswith("cloudsql_") for k in dsn.params):
        raise InputError(
            f"{what} {dsn.masked} goes through the Cloud SQL connector, which pg_dump and a scratch database "
            "cannot use: give a direct connection string (e.g. through the Cloud SQL Auth Proxy)"
        )
    return dsn


def _conninfo(dsn: Dsn, *, dbname: str | None = None, password: bool = True) -> str:
    """A libpq ``key=value`` string for ``dsn`` (optionally another database, without the password)."""
    from psycopg.conninfo import make_conninfo

    from ..schema.live.postgres import PostgresLoader

    kwargs = PostgresLoader(dsn, None, 10)._connect_kwargs()
    if dbname is not None:
        kwargs["dbname"] = dbname
    if not password:
        kwargs.pop("password", None)
    kwargs["application_name"] = "bgmigrate-scratch"
    try:
        return make_conninfo(**kwargs)
    except Exception as err:  # an option libpq does not know
        raise InputError(f"{dsn.masked}: {dsn.scrub(one_line(err))}") from None


def _error_text(err: BaseException, dsn: Dsn | None = None) -> str:
    diag = getattr(err, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    text = primary or one_line(err)
    return dsn.scrub(text) if dsn is not None else text


# ---- pg_dump -----------------------------------------------------------------------------------------


def find_pg_dump() -> str:
    exe = shutil.which("pg_dump")
    if exe is None:
        raise InputError(
            "pg_dump not found on PATH: install the PostgreSQL client tools (pg_dump of the server's major "
            "version or newer), or leave out --dsn to build the schema by replaying the migration history"
        )
    return exe


def dump_schema(dsn: Dsn, pg_dump: str) -> str:
    """``pg_dump --schema-only`` of ``dsn`` as SQL text. The password goes through the environment,
    never the command line; errors are one masked line."""
    env = dict(os.environ)
    if dsn.password:
        env["PGPASSWORD"] = dsn.password
    cmd = [pg_dump, *_DUMP_FLAGS, "--dbname", _conninfo(dsn, password=False)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=PG_DUMP_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise InputError(f"pg_dump --schema-only of {dsn.masked} took longer than {PG_DUMP_TIMEOUT_S} s") from None
    except OSError as err:
        raise InputError(f"cannot run pg_dump ({pg_dump}): {err.strerror or err}") from None
    if done.returncode != 0:
        lines = [ln.strip() for ln in done.stderr.splitlines() if ln.strip()]
        important = [ln for ln in lines if "error" in ln or "detail" in ln] or lines or ["no message"]
        message = "; ".join(ln.removeprefix("pg_dump: ") for ln in important[:3])
        raise InputError(f"pg_dump --schema-only of {dsn.masked} failed: {dsn.scrub(message)}")
    return done.stdout


def _without_meta_commands(script: str) -> str:
    """pg_dump's script minus psql meta-commands (``\\restrict``, ``\\unrestrict``, ``\\connect``)."""
    return "\n".join(line for line in script.splitlines() if not line.startswith("\\"))


# ---- the server the scratch database lives on -----------------------------------------------------------


@dataclass
class _Server:
    """Where scratch databases are created: an admin connection and how to reach a database there."""

    dsn: Dsn
    admin: Any  # psycopg connection (autocommit)
    origin: str  # "scratch-server" | "dsn-server" | "embedded"
    embedded: Any = None  # the pgserver handle
    data_dir: str | None = None

    @property
    def version_num(self) -> int:
        return int(self.admin.info.server_version)

    @property
    def shown(self) -> str:
        if self.origin == "embedded":
            return f"embedded PostgreSQL {self.version_num // 10000} ({self.data_dir})"
        return self.dsn.masked

    def close(self, *, keep: bool) -> None:
        with suppress(Exception):
            self.admin.close()
        if self.embedded is not None:
            with suppress(Exception):
                self.embedded.cleanup()
            if not keep and self.data_dir:
                shutil.rmtree(self.data_dir, ignore_errors=True)


def _connect_admin(dsn: Dsn, origin: str) -> _Server:
    psycopg = _psycopg()
    try:
        conn = psycopg.connect(_conninfo(dsn), autocommit=True)
    except psycopg.Error as err:
        what = "--scratch-server" if origin == "scratch-server" else "--dsn"
        raise InputError(f"{what}: cannot connect to {dsn.masked}: {_error_text(err, dsn)}") from None
    return _Server(dsn, conn, origin)


def _start_embedded(keep: bool) -> _Server:
    try:
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
            warnings.simplefilter("ignore")
            import pgserver  # type: ignore[import-not-found]
    except ImportError:
        raise InputError(
            "no PostgreSQL for the scratch database: give --dsn (a scratch database is created on its server) "
            "or --scratch-server DSN, or install the embedded server: pip install pgserver"
        ) from None
    data_dir = tempfile.mkdtemp(prefix="bgmigrate-scratch-")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            handle = pgserver.get_server(data_dir, cleanup_mode="stop" if keep else "delete")
            uri = handle.get_uri()
    except Exception as err:
        shutil.rmtree(data_dir, ignore_errors=True)
        raise InputError(f"the embedded PostgreSQL (pgserver) did not start: {one_line(err)}") from None
    server = _connect_admin(parse_dsn(uri), "embedded")
    server.embedded = handle
    server.data_dir = data_dir
    return server


# ---- the scratch database ---------------------------------------------------------------------------------


@dataclass
class ScratchDatabase:
    name: str
    conninfo: str  # holds the password: never shown (see ``shown``)
    shown: str  # masked
    server: str  # where it lives (masked)
    server_version_num: int
    schema_from: str  # "pg_dump of ..." | "replay of N migrations" | "empty"
    sample_rows: int = 0
    notes: list[str] = field(default_factory=list)
    kept: bool = False

    @property
    def server_version(self) -> str:
        v = self.server_version_num
        return f"{v // 10000}.{v % 10000}"

    @property
    def major(self) -> int:
        return self.server_version_num // 10000

    def connect(self) -> Any:
        psycopg = _psycopg()
        try:
            return psycopg.connect(self.conninfo, autocommit=True)
        except psycopg.Error as err:
            raise InputError(f"cannot connect to the scratch database {self.shown}: {one_line(err)}") from None

    def describe(self) -> dict[str, Any]:
        return {
            "database": self.name,
            "server": self.server,
            "server_version": self.server_version,
            "schema_from": self.schema_from,
            "sample_rows": self.sample_rows,
            "kept": self.kept,
            "notes": list(self.notes),
        }


def _create(server: _Server, name: str) -> None:
    psycopg = _psycopg()
    try:
        server.admin.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    except psycopg.Error as err:
        if getattr(err, "sqlstate", None) == "42501":
            raise InputError(
                f"cannot create a scratch database on {server.shown}: permission denied (the role needs CREATEDB); "
                "give --scratch-server DSN of a PostgreSQL where it may create one. Nothing was changed"
            ) from None
        raise InputError(
            f"cannot create a scratch database on {server.shown}: {_error_text(err, server.dsn)}. Nothing was changed"
        ) from None


def _drop(server: _Server, name: str) -> str | None:
    """Drop the scratch database; a message when that failed (the caller reports it)."""
    try:
        if server.version_num >= 130000:
            server.admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        else:  # pragma: no cover - PostgreSQL < 13
            server.admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            server.admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    except Exception as err:
        return f"could not drop the scratch database {name} on {server.shown}: {_error_text(err, server.dsn)}"
    return None


def _replay(conn: Any, history: list[SourceFile]) -> None:
    from ..sql.split import split_statements

    psycopg = _psycopg()
    for source in history:
        try:
            text = source.data.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError(f"{source.label}: not UTF-8 text, cannot replay it into the scratch database") from None
        for raw in split_statements(text, "postgres"):
            if raw.meta_command or not raw.sql.strip():
                continue
            try:
                conn.execute(raw.sql)
            except psycopg.Error as err:
                line = source.origin_line(raw.line)
                raise InputError(
                    f"{source.display}:{line}: replaying the history into the scratch database failed: "
                    f"{_error_text(err)}"
                ) from None
        if conn.info.transaction_status != 0:  # a file that left its transaction open
            conn.execute("COMMIT")


def _restore(conn: Any, script: str, dsn: Dsn) -> None:
    psycopg = _psycopg()
    try:
        conn.execute(_without_meta_commands(script))
    except psycopg.Error as err:
        raise InputError(
            f"restoring the schema of {dsn.masked} into the scratch database failed: {_error_text(err, dsn)}"
        ) from None


@contextmanager
def scratch_database(
    *,
    dsn: str | None,
    scratch_server: str | None = None,
    history: list[SourceFile] | None = None,
    sample_rows: int = 0,
    keep: bool = False,
    say: Callable[[str], None] | None = None,
) -> Iterator[ScratchDatabase]:
    """A scratch database with the target's schema, dropped when the block ends (unless ``keep``)."""
    if sample_rows < 0:
        raise InputError("--sample-rows must be 0 or more")
    target = _postgres_dsn(dsn, "--dsn") if dsn else None
    pg_dump = find_pg_dump() if target is not None else None
    if scratch_server:
        server = _connect_admin(_postgres_dsn(scratch_server, "--scratch-server"), "scratch-server")
    elif target is not None:
        server = _connect_admin(target, "dsn-server")
    else:
        server = _start_embedded(keep)
    built = False
    try:
        script = dump_schema(target, pg_dump) if target is not None and pg_dump is not None else None
        name = f"{SCRATCH_PREFIX}{os.getpid()}_{uuid.uuid4().hex[:8]}"
        _create(server, name)
        conninfo = _conninfo(server.dsn, dbname=name)
        if script is not None and target is not None:
            schema_from = f"pg_dump --schema-only of {target.masked}"
        elif history:
            schema_from = f"replay of {len(history)} migration(s) before the release"
        else:
            schema_from = "an empty database (no history before the release)"
        db = ScratchDatabase(
            name=name,
            conninfo=conninfo,
            shown=parse_dsn(conninfo).masked,
            server=server.shown,
            server_version_num=server.version_num,
            schema_from=schema_from,
            sample_rows=sample_rows,
        )
        try:
            if say:
                say(f"scratch database {name} on {server.shown} ({schema_from})")
            conn = db.connect()
            try:
                if script is not None and target is not None:
                    _restore(conn, script, target)
                    conn.close()
                    conn = db.connect()  # the dump set search_path to '' for its session
                elif history:
                    _replay(conn, history)
                if sample_rows:
                    from .sample import fill_sample_rows

                    db.notes.extend(fill_sample_rows(conn, sample_rows))
            finally:
                conn.close()
            built = True
            db.kept = keep
            yield db
        finally:
            if not db.kept:
                problem = _drop(server, name)
                if problem and say:
                    say(problem)
            elif say:
                where = f" (data directory {server.data_dir}, server stopped)" if server.embedded is not None else ""
                say(f"kept the scratch database {db.shown}{where}")
    finally:
        server.close(keep=keep and built)
