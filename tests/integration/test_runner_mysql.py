"""The runner on the real MariaDB/MySQL (SQLAlchemy + PyMySQL): a whole release, the GET_LOCK runner
lock, metadata-lock contention with a reader bounded by lock_wait_timeout, SIGKILL inside the
backfill, abort, and the state database kept apart per application database."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from db_servers import MySqlServer
from runner_harness import Release, bgm, bgm_popen, my_database
from runner_harness import my_exec as _exec
from runner_harness import my_rows as _rows

BASE = """\
CREATE TABLE customers (id bigint PRIMARY KEY, email varchar(200) NOT NULL, name varchar(100),
  created_at datetime NOT NULL DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint NOT NULL, total int);
"""
RELEASE = """\
ALTER TABLE customers RENAME COLUMN email TO email_address;
CREATE INDEX orders_customer_idx ON orders (customer_id);
ALTER TABLE customers ADD COLUMN tier varchar(20);
ALTER TABLE orders MODIFY total int NOT NULL;
"""


@pytest.fixture
def my_db(mysql_server: MySqlServer) -> Iterator[tuple[MySqlServer, str]]:
    """A fresh database per test, and the runner's state database for it; both dropped afterwards."""
    with my_database(mysql_server) as made:
        yield made


def _setup(server: MySqlServer, tmp_path: Path, customers: int) -> Release:
    rel = Release.write(tmp_path, BASE, RELEASE, dialect="mysql")
    statements = [s for s in BASE.split(";") if s.strip()]
    _exec(server, *statements)
    rows = ", ".join(
        f"({i}, 'user{i}@example.com', 'name {i}', '2024-01-01 00:00:00')" for i in range(1, customers + 1)
    )
    orders = ", ".join(f"({i}, {1 + i % customers}, {i % 100})" for i in range(1, 2 * customers + 1))
    _exec(server, f"INSERT INTO customers VALUES {rows}", f"INSERT INTO orders VALUES {orders}")
    return rel


def _state(server: MySqlServer, column: str = "status") -> dict[str, Any]:
    rows = _rows(server, f"SELECT step_id, {column} FROM `bgmigrate_{server.database}`.steps")
    return dict(rows)


def test_whole_release_on_mysql(my_db: tuple[MySqlServer, str], tmp_path: Path) -> None:
    server, dsn = my_db
    rel = _setup(server, tmp_path, customers=2000)
    before = _rows(server, "SELECT id, email FROM customers ORDER BY id")
    done = bgm("expand", "--plan", str(rel.plan), "--dsn", dsn, "--batch-size", "300")
    assert done.returncode == 0, done.stderr
    assert _rows(server, "SELECT COUNT(*) FROM customers WHERE NOT (email_address <=> email)") == [(0,)]
    assert _state(server, "backfill_rows")["migrate-001"] == 2000
    assert bgm("contract", "--dsn", dsn).returncode == 3
    for gate in ("switched", "decommissioned"):
        assert bgm("mark", gate, "--dsn", dsn).returncode == 0
    done = bgm("contract", "--dsn", dsn)
    assert done.returncode == 0, done.stderr
    columns = _rows(
        server,
        "SELECT COLUMN_NAME, IS_NULLABLE FROM information_schema.COLUMNS "
        f"WHERE TABLE_SCHEMA = '{server.database}' AND TABLE_NAME = 'customers' ORDER BY COLUMN_NAME",
    )
    assert columns == [("created_at", "NO"), ("email_address", "NO"), ("id", "NO"), ("name", "YES"), ("tier", "YES")]
    assert _rows(server, "SELECT id, email_address FROM customers ORDER BY id") == before
    assert _rows(server, "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()") == [(0,)]
    assert set(_state(server).values()) == {"done"}


def test_second_runner_refused_on_mysql_naming_the_holder(my_db: tuple[MySqlServer, str], tmp_path: Path) -> None:
    server, dsn = my_db
    rel = _setup(server, tmp_path, customers=50)
    holder = server.connect()
    try:
        with holder.cursor() as cur:  # a transaction holding a metadata lock the first step needs
            cur.execute("START TRANSACTION")
            cur.execute("SELECT * FROM customers LIMIT 1")
        first = bgm_popen(
            "expand", "--plan", str(rel.plan), "--dsn", dsn, "--retries", "30", "--lock-timeout", "1s",
            env={"BGMIGRATE_ACTOR": "deploy-7"},
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if _rows(server, f"SELECT IS_USED_LOCK('bgmigrate:{server.database}:bgmigrate_{server.database}')")[0][0]:
                break
            time.sleep(0.05)
        second = bgm("expand", "--plan", str(rel.plan), "--dsn", dsn)
        events = f"SELECT COUNT(*) FROM `bgmigrate_{server.database}`.events WHERE kind = 'retry'"
        while time.monotonic() < deadline and _rows(server, events) == [(0,)]:
            time.sleep(0.05)  # the first runner is retrying its first step
        assert second.returncode == 3
        assert "another bgmigrate runner is working on this database: deploy-7" in second.stderr
        assert "connection id" in second.stderr
        with holder.cursor() as cur:
            cur.execute("COMMIT")
    finally:
        holder.close()
    _, err = first.communicate(timeout=90)
    assert first.returncode == 0, err
    assert "lock timeout on attempt 1; retrying" in err


def test_metadata_lock_contention_never_stalls_a_reader_beyond_lock_wait_timeout(
    my_db: tuple[MySqlServer, str], tmp_path: Path
) -> None:
    server, dsn = my_db
    rel = _setup(server, tmp_path, customers=200)
    longest, reads, errors = [0.0], [0], []
    stop = threading.Event()

    def read() -> None:
        conn = server.connect()
        try:
            with conn.cursor() as cur:
                while not stop.is_set():
                    start = time.monotonic()
                    try:
                        cur.execute("SELECT COUNT(*) FROM customers WHERE id < 20")
                        cur.fetchall()
                    except Exception as err:  # any error is a failure of the test
                        errors.append(str(err))
                    longest[0] = max(longest[0], time.monotonic() - start)
                    reads[0] += 1
                    time.sleep(0.005)
        finally:
            conn.close()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    blocker = server.connect()
    try:
        with blocker.cursor() as cur:
            cur.execute("START TRANSACTION")
            cur.execute("SELECT * FROM customers WHERE id = 1")
        runner = bgm_popen("expand", "--plan", str(rel.plan), "--dsn", dsn, "--lock-timeout", "1s", "--retries", "20")
        time.sleep(3.5)
        assert runner.poll() is None
        with blocker.cursor() as cur:
            cur.execute("COMMIT")
    finally:
        blocker.close()
    _, err = runner.communicate(timeout=90)
    stop.set()
    reader.join(10)
    assert runner.returncode == 0, err
    assert errors == [] and reads[0] > 50
    assert longest[0] < 1.0 + 0.1, f"a reader waited {longest[0]:.3f} s (lock_wait_timeout is 1 s)"
    assert (
        _rows(server, f"SELECT attempts FROM `bgmigrate_{server.database}`.steps WHERE step_id = 'expand-001'")[0][0]
        >= 2
    )


def test_sigkill_in_the_backfill_then_rerun_and_abort_on_mysql(my_db: tuple[MySqlServer, str], tmp_path: Path) -> None:
    server, dsn = my_db
    rel = _setup(server, tmp_path, customers=3000)
    original = _rows(server, "SHOW CREATE TABLE customers")
    killed = bgm(
        "expand", "--plan", str(rel.plan), "--dsn", dsn, "--batch-size", "200", env={"BGMIGRATE_FAULT_KILL": "batch:4"}
    )
    assert killed.returncode == -signal.SIGKILL
    assert _state(server)["migrate-001"] == "running" and _state(server, "backfill_rows")["migrate-001"] == 800
    again = bgm("expand", "--plan", str(rel.plan), "--dsn", dsn, "--batch-size", "200")
    assert again.returncode == 0, again.stderr
    assert _state(server, "backfill_rows")["migrate-001"] == 3000
    assert _rows(server, "SELECT COUNT(*) FROM customers WHERE NOT (email_address <=> email)") == [(0,)]

    done = bgm("abort", "--dsn", dsn)
    assert done.returncode == 0, done.stderr
    assert _rows(server, "SHOW CREATE TABLE customers") == original
    assert _rows(
        server,
        "SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() "
        "AND INDEX_NAME = 'orders_customer_idx'",
    ) == [(0,)]
