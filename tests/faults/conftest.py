"""Fixtures of the reliability and security suite (tests/faults/).

The database fixtures are the integration tests' own (``pg_server``, ``fresh_pg``, ``mysql_server``:
``BGMIGRATE_TEST_PG_DSN`` / the local PostgreSQL / an embedded one, and MariaDB), loaded from
tests/integration/conftest.py under a name of their own (a second module called ``conftest`` would
shadow that one); tests/integration is on ``sys.path`` for ``runner_harness``. (Being defined here
too, the session fixtures get their own instance in this directory: with no PostgreSQL reachable, a
worker that runs both directories starts two embedded servers.)

``own_pg`` is a PostgreSQL server the test owns (embedded, from the ``pgserver`` wheel) so that it can
be stopped and started; ``figures`` records what a test measured for ``bench/faults.py`` (a JSON line
per figure in ``$BGMIGRATE_FAULTS_FIGURES`` when set, nothing otherwise).

The longest cases are marked ``slow``: CI runs everything; ``python -m pytest -m "not slow"`` is the
quick local run.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
INTEGRATION = HERE.parent / "integration"
if str(INTEGRATION) not in sys.path:
    sys.path.insert(0, str(INTEGRATION))
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))


def _load_integration_fixtures() -> Any:
    name = "bgm_integration_db_fixtures"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, INTEGRATION / "conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


_db = _load_integration_fixtures()
pg_server = _db.pg_server
fresh_pg = _db.fresh_pg
mysql_server = _db.mysql_server

FIGURES_ENV = "BGMIGRATE_FAULTS_FIGURES"


class Figures:
    """Appends one JSON object per figure to ``$BGMIGRATE_FAULTS_FIGURES`` (bench/faults.py reads them)."""

    def __init__(self, test: str) -> None:
        self.test = test
        self.path = os.environ.get(FIGURES_ENV)

    def record(self, kind: str, **data: Any) -> None:
        if not self.path:
            return
        line = json.dumps({"kind": kind, "test": self.test, **data}, sort_keys=True, default=str)
        with open(self.path, "a", encoding="utf-8") as out:  # one short append per line: safe across workers
            out.write(line + "\n")


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Figures:
    return Figures(request.node.nodeid)


# ---- a PostgreSQL server the test owns (stop / start) ------------------------------------------------


@dataclass
class OwnPg:
    """An embedded PostgreSQL (pgserver) that only this test uses: ``stop()`` and ``start()`` it."""

    server: Any

    @property
    def dsn(self) -> str:
        return self.server.get_uri()

    def dsn_for(self, dbname: str) -> str:
        from psycopg.conninfo import make_conninfo

        return make_conninfo(self.dsn, dbname=dbname)

    def stop(self, mode: str = "immediate") -> None:
        """``pg_ctl stop -m immediate`` (every backend killed, crash recovery at the next start) or
        ``-m fast`` (clients disconnected, clean shutdown)."""
        from pgserver._commands import POSTGRES_BIN_PATH  # type: ignore[import-not-found]

        done = subprocess.run(
            [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(self.server.pgdata), "-w", "-m", mode, "stop"],
            capture_output=True,
            text=True,
            timeout=120,
            user=self.server.system_user,
        )
        if done.returncode != 0 and self.running():
            raise AssertionError(f"pg_ctl stop -m {mode} failed: {done.stderr.strip() or done.stdout.strip()}")

    def running(self) -> bool:
        return (Path(self.server.pgdata) / "postmaster.pid").exists()

    def start(self) -> None:
        with self.server._lock:
            self.server.ensure_postgres_running()
        deadline = time.monotonic() + 30
        import psycopg

        while True:
            try:
                with psycopg.connect(self.dsn, connect_timeout=3, autocommit=True) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.Error:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)


@pytest.fixture
def own_pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnPg]:
    """A fresh embedded PostgreSQL 16 for one test (stopped and deleted afterwards)."""
    try:
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
            warnings.simplefilter("ignore")
            import pgserver  # type: ignore[import-not-found]

            root = tempfile.mkdtemp(prefix="bgm-own-", dir=str(tmp_path_factory.getbasetemp()))
            server = pgserver.get_server(root, cleanup_mode="delete")
    except Exception as err:
        pytest.fail(f"cannot start an embedded PostgreSQL (pip install pgserver): {err}", pytrace=False)
    try:
        yield OwnPg(server)
    finally:
        server.cleanup()  # stops it if it runs, then deletes its data directory
