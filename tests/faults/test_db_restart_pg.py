"""The database goes away under the runner: the server the test owns (an embedded PostgreSQL) crashes
(``pg_ctl stop -m immediate``) while a ``CREATE INDEX CONCURRENTLY`` waits for an old transaction, or is
shut down (``-m fast``) in the middle of a backfill; the runner's backend is killed with
``pg_terminate_backend`` while a step waits for its lock and while a concurrent build waits. Each time
the runner reports it in one line (exit 1, no traceback), and the rerun resumes (dropping the INVALID
index a crashed build leaves) and ends exactly as an uninterrupted run."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import psycopg
import pytest
from faults_harness import (
    Outcome,
    checksums,
    full_release,
    rows_lost,
    seed_sql,
    steps_status,
    table_rows,
    write_release,
)
from runner_harness import Release, bgm, bgm_popen, pg_exec, pg_rows

CUSTOMERS = 3000
PASSED_1000 = "SELECT count(*) FROM bgmigrate.steps WHERE step_id = 'migrate-001' AND backfill_rows >= 1000"
BATCH = ("--batch-size", "100")


@dataclass
class Setup:
    release: Release
    reference: Outcome


def _wait_for(check: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except psycopg.Error:
            pass
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def _reference(dsn_admin: str, dsn_for: Callable[[str], str], tmp_path) -> Setup:
    rel = write_release(tmp_path / "release")
    pg_exec(dsn_admin, 'CREATE DATABASE "reference"')
    ref = dsn_for("reference")
    pg_exec(ref, (rel.migrations / "0001_base.sql").read_text() + seed_sql(CUSTOMERS))
    full_release(ref, rel.plan, expand_args=BATCH)
    return Setup(rel, Outcome.of(ref))


def _finish_and_compare(dsn: str, setup: Setup, figures, point: str) -> None:
    survived, lost = False, None
    try:
        full_release(dsn, setup.release.plan, expand_args=BATCH)
        lost = rows_lost(setup.reference.rows, table_rows(dsn))
        got = Outcome.of(dsn)
        assert got.schema == setup.reference.schema
        assert checksums(got.rows) == checksums(setup.reference.rows) and lost == 0
        assert {v[0] for v in steps_status(dsn).values()} == {"done"}
        survived = True
    finally:
        figures.record("kill", where="database restart / killed connection", point=point, survived=survived,
                       rows_lost=lost)  # fmt: skip


def _index_invalid(dsn: str) -> list[tuple[bool]]:
    return pg_rows(dsn, "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass('orders_customer_idx')")


def _build_waiting(dsn: str) -> bool:
    """The runner's CREATE INDEX CONCURRENTLY has made its (INVALID) index and waits for a lock."""
    waiting = pg_rows(
        dsn,
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'bgmigrate' AND wait_event_type = 'Lock' "
        "AND query LIKE 'CREATE INDEX CONCURRENTLY%%' AND datname = current_database()",
    )
    return waiting == [(1,)] and _index_invalid(dsn) == [(False,)]


@pytest.fixture
def own(own_pg, tmp_path) -> Iterator[tuple[str, Setup]]:
    setup = _reference(own_pg.dsn, own_pg.dsn_for, tmp_path)
    pg_exec(own_pg.dsn, 'CREATE DATABASE "target"')
    dsn = own_pg.dsn_for("target")
    pg_exec(dsn, (setup.release.migrations / "0001_base.sql").read_text() + seed_sql(CUSTOMERS))
    yield dsn, setup


def test_server_crash_during_a_concurrent_index_build(own_pg, own, figures) -> None:
    dsn, setup = own
    writer = psycopg.connect(dsn, autocommit=True)
    writer.execute("BEGIN")
    writer.execute("UPDATE orders SET total = total WHERE id = 1")  # the build waits for this writer
    runner = bgm_popen("expand", "--plan", str(setup.release.plan), "--dsn", dsn, *BATCH)
    try:
        _wait_for(lambda: _build_waiting(dsn), "the concurrent build to wait")
        own_pg.stop("immediate")
        _, err = runner.communicate(timeout=60)
    finally:
        if runner.poll() is None:
            runner.kill()
        writer.close()
    assert runner.returncode == 1, err
    assert "bgmigrate: step failed: expand-003: lost the connection to the database" in err
    assert "rerun to resume" in err and "Traceback" not in err
    own_pg.start()
    assert _index_invalid(dsn) == [(False,)]  # what the crashed build left behind
    state = steps_status(dsn)
    assert state["expand-002"][0] == "done" and state["expand-003"][0] == "running"
    again = bgm("expand", "--plan", str(setup.release.plan), "--dsn", dsn, *BATCH)
    assert again.returncode == 0, again.stderr
    assert "dropping the INVALID index orders_customer_idx left by a failed build" in again.stderr
    assert _index_invalid(dsn) == [(True,)]
    _finish_and_compare(dsn, setup, figures, "server crash (immediate stop) in CREATE INDEX CONCURRENTLY")


def test_server_shutdown_in_the_middle_of_a_backfill(own_pg, own, figures) -> None:
    dsn, setup = own
    runner = bgm_popen("expand", "--plan", str(setup.release.plan), "--dsn", dsn, *BATCH, "--batch-pause", "50ms")
    try:
        _wait_for(
            lambda: pg_rows(dsn, PASSED_1000) == [(1,)],
            "the backfill to pass 1000 rows",
        )
        own_pg.stop("fast")
        _, err = runner.communicate(timeout=60)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert runner.returncode == 1, err
    assert "migrate-001: lost the connection to the database" in err and "Traceback" not in err
    own_pg.start()
    partial = steps_status(dsn)["migrate-001"]
    assert partial[0] == "running" and 1000 <= partial[3] < CUSTOMERS
    again = bgm("expand", "--plan", str(setup.release.plan), "--dsn", dsn, *BATCH)
    assert again.returncode == 0, again.stderr
    assert "migrate-001 (migrate, rename_column): run" in again.stderr
    assert steps_status(dsn)["migrate-001"][3] == CUSTOMERS  # resumed from the last key: no row twice
    _finish_and_compare(dsn, setup, figures, "server shutdown (fast stop) in a backfill")


def _terminate_runner(dsn: str) -> None:
    pg_exec(
        dsn,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'bgmigrate' "
        "AND pid <> pg_backend_pid() AND datname = current_database()",
    )


def test_connection_killed_while_a_concurrent_build_waits(own_pg, own, figures) -> None:
    dsn, setup = own
    writer = psycopg.connect(dsn, autocommit=True)
    writer.execute("BEGIN")
    writer.execute("UPDATE orders SET total = total WHERE id = 1")
    runner = bgm_popen("expand", "--plan", str(setup.release.plan), "--dsn", dsn, *BATCH)
    try:
        _wait_for(lambda: _build_waiting(dsn), "the concurrent build to wait")
        _terminate_runner(dsn)
        _, err = runner.communicate(timeout=60)
    finally:
        if runner.poll() is None:
            runner.kill()
        writer.execute("COMMIT")
        writer.close()
    assert runner.returncode == 1, err
    assert "expand-003: lost the connection to the database (terminating connection due to administrator command" in err
    assert "Traceback" not in err
    assert bgm("status", "--dsn", dsn).stdout.count("running") >= 1
    _finish_and_compare(dsn, setup, figures, "pg_terminate_backend in CREATE INDEX CONCURRENTLY")


def test_connection_killed_while_a_step_waits_for_its_lock(own_pg, own, figures) -> None:
    dsn, setup = own
    reader = psycopg.connect(dsn, autocommit=True)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM customers")  # expand-001 (ACCESS EXCLUSIVE) queues behind it
    runner = bgm_popen("expand", "--plan", str(setup.release.plan), "--dsn", dsn, "--lock-timeout", "5s")
    try:
        _wait_for(
            lambda: (
                pg_rows(
                    dsn,
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'bgmigrate' "
                    "AND wait_event_type = 'Lock' AND query LIKE 'ALTER TABLE customers%%'",
                )
                == [(1,)]
            ),
            "expand-001 to wait for its lock",
        )
        _terminate_runner(dsn)
        _, err = runner.communicate(timeout=60)
    finally:
        if runner.poll() is None:
            runner.kill()
        reader.execute("COMMIT")
        reader.close()
    assert runner.returncode == 1, err
    assert "expand-001: lost the connection to the database" in err and "Traceback" not in err
    assert steps_status(dsn)["expand-001"][0] == "running"  # rolled back with the session: not done
    assert "email_address" not in Outcome.of(dsn).schema
    _finish_and_compare(dsn, setup, figures, "pg_terminate_backend while a step waits for its lock")
