"""Real-database fixtures for the integration tests: a fresh scratch database per test module.

PostgreSQL: ``BGMIGRATE_TEST_PG_DSN`` when set, else the local server on 127.0.0.1:5432
(user postgres, trust auth), else an embedded server started from the ``pgserver`` wheel.
MySQL/MariaDB: ``BGMIGRATE_TEST_MYSQL_DSN`` (``mysql://user:password@host:port/db``) when set,
else the local server on 127.0.0.1:3306 (root, empty password).

No database reachable is a test *failure* with the reason, never a skip: a skipped test is not a
passing test. Connection strings are only ever shown with the password masked.
"""

from __future__ import annotations

import os
import re
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from db_servers import CONNECT_TIMEOUT, MySqlServer, PgServer, mask_dsn, parse_mysql_dsn

PG_ENV = "BGMIGRATE_TEST_PG_DSN"
MYSQL_ENV = "BGMIGRATE_TEST_MYSQL_DSN"
LOCAL_PG_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"


# ---- masking ---------------------------------------------------------------------------------------


def _short(err: BaseException) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return mask_dsn(text)


def _scratch_name(prefix: str, module: str) -> str:
    stem = re.sub(r"[^a-z0-9]+", "_", module.rsplit(".", 1)[-1].lower())[:24]
    return f"{prefix}_{stem}_{uuid.uuid4().hex[:8]}"


# ---- PostgreSQL ------------------------------------------------------------------------------------


def _require_psycopg() -> Any:
    try:
        import psycopg
    except ImportError:  # pragma: no cover - depends on the environment
        pytest.fail("psycopg is not installed: install the test extra (pip install -e '.[test]')", pytrace=False)
    return psycopg


def _pg_major(dsn: str) -> int:
    psycopg = _require_psycopg()
    with psycopg.connect(dsn, connect_timeout=CONNECT_TIMEOUT, autocommit=True) as conn:
        return int(conn.info.server_version) // 10000


def _start_pgserver(tmp_root: str) -> tuple[Any, str]:
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, containers)
        warnings.simplefilter("ignore")
        import pgserver  # type: ignore[import-not-found]

        server = pgserver.get_server(tempfile.mkdtemp(prefix="bgm-pg-", dir=tmp_root), cleanup_mode="delete")
    return server, server.get_uri()


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgServer]:
    tried: list[str] = []
    env = os.environ.get(PG_ENV)
    if env:
        try:
            yield PgServer(env, "env", _pg_major(env))
            return
        except Exception as err:
            pytest.fail(f"{PG_ENV}={mask_dsn(env)} is set but unreachable: {_short(err)}", pytrace=False)
    try:
        yield PgServer(LOCAL_PG_DSN, "local", _pg_major(LOCAL_PG_DSN))
        return
    except Exception as err:
        tried.append(f"local {LOCAL_PG_DSN}: {_short(err)}")
    try:
        server, uri = _start_pgserver(str(tmp_path_factory.getbasetemp()))
    except Exception as err:
        tried.append(f"embedded pgserver: {_short(err)}")
        pytest.fail(
            "no PostgreSQL reachable for the integration tests; set "
            f"{PG_ENV}, start PostgreSQL on 127.0.0.1:5432 or pip install pgserver. Tried: " + "; ".join(tried),
            pytrace=False,
        )
    try:
        yield PgServer(uri, "pgserver", _pg_major(uri))
    finally:
        server.cleanup()


@pytest.fixture(scope="module")
def pg_db(pg_server: PgServer, request: pytest.FixtureRequest) -> Iterator[PgServer]:
    """A uniquely named scratch database for this test module, dropped afterwards."""
    psycopg = _require_psycopg()
    name = _scratch_name("bgm", request.module.__name__)
    with psycopg.connect(pg_server.dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield replace(pg_server, dsn=pg_server.dsn_for(name))
    finally:
        with psycopg.connect(pg_server.dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT) as admin:
            if pg_server.major >= 13:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            else:
                admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
                admin.execute(f'DROP DATABASE IF EXISTS "{name}"')


# ---- MySQL / MariaDB -------------------------------------------------------------------------------


def _mysql_version(server: MySqlServer) -> str:
    conn = server.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT VERSION()")
            return str(cur.fetchone()[0])
    finally:
        conn.close()


@pytest.fixture(scope="session")
def mysql_server() -> MySqlServer:
    try:
        import pymysql  # noqa: F401
    except ImportError:  # pragma: no cover - depends on the environment
        pytest.fail("PyMySQL is not installed: install the test extra (pip install -e '.[test]')", pytrace=False)
    env = os.environ.get(MYSQL_ENV)
    if env:
        try:
            server = parse_mysql_dsn(env)
            return replace(server, version=_mysql_version(server))
        except Exception as err:
            pytest.fail(f"{MYSQL_ENV}={mask_dsn(env)} is set but unusable: {_short(err)}", pytrace=False)
    local = MySqlServer("127.0.0.1", 3306, "root", "", None, "local")
    try:
        return replace(local, version=_mysql_version(local))
    except Exception as err:
        pytest.fail(
            f"no MySQL/MariaDB reachable for the integration tests: set {MYSQL_ENV} or start a server on "
            f"127.0.0.1:3306 (root, empty password). Tried {local.shown}: {_short(err)}",
            pytrace=False,
        )


@pytest.fixture(scope="module")
def mysql_db(mysql_server: MySqlServer, request: pytest.FixtureRequest) -> Iterator[MySqlServer]:
    """A uniquely named scratch database for this test module, dropped afterwards."""
    name = _scratch_name("bgm", request.module.__name__)
    admin = replace(mysql_server, database=None)
    conn = admin.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}`")
    finally:
        conn.close()
    try:
        yield replace(mysql_server, database=name)
    finally:
        conn = admin.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        finally:
            conn.close()


@pytest.fixture
def fresh_pg(pg_server: PgServer) -> Iterator[str]:
    """A new empty database for one test (the runner's state lives in it); dropped afterwards."""
    psycopg = _require_psycopg()
    name = f"bgm_run_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_server.dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield pg_server.dsn_for(name)
    finally:
        with psycopg.connect(pg_server.dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
