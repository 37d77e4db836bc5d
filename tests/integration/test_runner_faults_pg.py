"""The runner under faults on the real PostgreSQL: a second runner, lock contention with a reader that
must never stall longer than lock_timeout (+100 ms), a failed CONCURRENTLY build, SIGKILL between
steps and inside a backfill, and a killed connection; every rerun ends as an uninterrupted run."""

from __future__ import annotations

import json
import signal
import threading
import time
import uuid
from pathlib import Path

import psycopg
from db_servers import PgServer
from runner_harness import Release, bgm, bgm_popen, pg_data, pg_exec, pg_rows, pg_schema, seed_sql, steps_state


def _setup(dsn: str, tmp_path: Path, customers: int) -> Release:
    rel = Release.write(tmp_path)
    pg_exec(dsn, (rel.migrations / "0001_base.sql").read_text() + seed_sql(customers))
    return rel


def _full_run(dsn: str, plan: Path, *extra: str) -> None:
    for args in (
        ("expand", "--plan", str(plan), *extra),
        ("mark", "switched"),
        ("mark", "decommissioned"),
        ("contract",),
    ):
        done = bgm(*args, "--dsn", dsn)
        assert done.returncode == 0, (args, done.stderr)


class Reader(threading.Thread):
    """Reads the table in a loop on its own connection and records the slowest read."""

    def __init__(self, dsn: str, sql: str) -> None:
        super().__init__(daemon=True)
        self.dsn, self.sql = dsn, sql
        self.stop = threading.Event()
        self.longest = 0.0
        self.reads = 0
        self.errors: list[str] = []

    def run(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self.stop.is_set():
                start = time.monotonic()
                try:
                    conn.execute(self.sql).fetchall()
                except psycopg.Error as err:
                    self.errors.append(str(err))
                self.longest = max(self.longest, time.monotonic() - start)
                self.reads += 1
                time.sleep(0.005)


def test_a_second_runner_exits_3_naming_the_holder_and_wait_queues(fresh_pg: str, tmp_path: Path) -> None:
    rel = _setup(fresh_pg, tmp_path, customers=100)
    with psycopg.connect(fresh_pg, autocommit=True) as blocker:
        # keep the first runner busy: a transaction holds a lock its first step needs
        blocker.execute("BEGIN")
        blocker.execute("LOCK TABLE customers IN ACCESS SHARE MODE")
        first = bgm_popen(
            "expand", "--plan", str(rel.plan), "--dsn", fresh_pg, "--lock-timeout", "200ms", "--retries", "50",
            env={"BGMIGRATE_ACTOR": "pipeline-run-41"},
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            held = pg_rows(  # pg_locks is cluster-wide: only this test's database counts
                fresh_pg,
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            )
            if held != [(0,)]:
                break
            time.sleep(0.05)
        second = bgm("expand", "--plan", str(rel.plan), "--dsn", fresh_pg)
        assert second.returncode == 3
        assert "another bgmigrate runner is working on this database: pipeline-run-41" in second.stderr
        assert "bgmigrate expand" in second.stderr and "PostgreSQL backend pid" in second.stderr
        waiting = bgm_popen("status", "--dsn", fresh_pg)  # status never takes the lock
        assert waiting.wait(30) == 0
        queued = bgm_popen("contract", "--dsn", fresh_pg, "--wait", "--force", "--reason", "test")
        time.sleep(0.5)
        assert queued.poll() is None  # queued behind the first runner
        blocker.execute("COMMIT")
    assert first.wait(60) == 0, first.stderr.read() if first.stderr else ""
    _, err = queued.communicate(timeout=60)
    assert queued.returncode == 0, err
    assert "waiting for the runner lock, held by pipeline-run-41" in err
    assert pg_rows(fresh_pg, "SELECT status FROM bgmigrate.releases") == [("contracted",)]


def test_lock_contention_retries_and_readers_never_wait_longer_than_lock_timeout(fresh_pg: str, tmp_path: Path) -> None:
    rel = _setup(fresh_pg, tmp_path, customers=1000)
    reader = Reader(fresh_pg, "SELECT count(*) FROM customers WHERE id < 50")
    reader.start()
    lock_timeout = 0.3
    with psycopg.connect(fresh_pg, autocommit=True) as blocker:
        blocker.execute("BEGIN")
        blocker.execute("SELECT * FROM customers WHERE id = 1")  # a long read transaction: ACCESS SHARE
        runner = bgm_popen(
            "expand", "--plan", str(rel.plan), "--dsn", fresh_pg, "--lock-timeout", "300ms", "--retries", "30",
        )  # fmt: skip
        time.sleep(2.5)  # several lock timeouts and retries while the transaction stays open
        assert runner.poll() is None
        blocker.execute("COMMIT")
    _, err = runner.communicate(timeout=60)
    reader.stop.set()
    reader.join(10)
    assert runner.returncode == 0, err
    assert "lock timeout on attempt 1; retrying" in err
    assert reader.errors == [] and reader.reads > 50
    assert reader.longest < lock_timeout + 0.1, f"a reader waited {reader.longest:.3f} s"
    attempts = steps_state(fresh_pg)["expand-001"][1]
    assert attempts >= 3
    retries = pg_rows(fresh_pg, "SELECT count(*) FROM bgmigrate.events WHERE kind = 'retry'")[0][0]
    assert retries == attempts - 1


def test_retry_budget_exhausted_fails_clearly_then_rerun_resumes(fresh_pg: str, tmp_path: Path) -> None:
    rel = _setup(fresh_pg, tmp_path, customers=100)
    with psycopg.connect(fresh_pg, autocommit=True) as blocker:
        blocker.execute("BEGIN")
        blocker.execute("LOCK TABLE customers IN ACCESS SHARE MODE")
        done = bgm("expand", "--plan", str(rel.plan), "--dsn", fresh_pg, "--lock-timeout", "100ms", "--retries", "3")
        blocker.execute("COMMIT")
    assert done.returncode == 1
    assert (
        "expand-001: could not take the ACCESS EXCLUSIVE lock on customers within 100 ms in 3 attempts" in done.stderr
    )
    assert "holding locks on it now: pid" in done.stderr and "idle in transaction" in done.stderr
    state = steps_state(fresh_pg)
    assert state["expand-001"][:2] == ("failed", 3)
    assert "email_address" not in pg_schema(fresh_pg)
    status = bgm("status", "--dsn", fresh_pg)
    assert "expand-001     expand    failed" in status.stdout and "could not take" in status.stdout
    again = bgm("expand", "--plan", str(rel.plan), "--dsn", fresh_pg)
    assert again.returncode == 0, again.stderr
    assert steps_state(fresh_pg)["expand-001"][:2] == ("done", 4)


def test_failed_concurrent_index_build_is_dropped_before_the_rerun(fresh_pg: str, tmp_path: Path) -> None:
    rel = Release.write(tmp_path, release="CREATE UNIQUE INDEX customers_name_key ON customers (name);\n")
    pg_exec(fresh_pg, (rel.migrations / "0001_base.sql").read_text() + seed_sql(100))
    pg_exec(fresh_pg, "UPDATE customers SET name = 'twin' WHERE id IN (7, 8)")
    failed = bgm("expand", "--plan", str(rel.plan), "--dsn", fresh_pg)
    assert failed.returncode == 1
    assert "could not create unique index" in failed.stderr and "Key (name)=(twin) is duplicated" in failed.stderr
    invalid = "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass('customers_name_key')"
    assert pg_rows(fresh_pg, invalid) == [(False,)]  # what a failed CONCURRENTLY build leaves
    assert steps_state(fresh_pg)["expand-001"][0] == "failed"

    pg_exec(fresh_pg, "UPDATE customers SET name = 'name 8' WHERE id = 8")
    again = bgm("expand", "--plan", str(rel.plan), "--dsn", fresh_pg)
    assert again.returncode == 0, again.stderr
    # IF NOT EXISTS alone would have kept the INVALID index: the runner dropped it and built again
    assert "dropping the INVALID index customers_name_key left by a failed build" in again.stderr
    assert pg_rows(fresh_pg, invalid) == [(True,)]
    plan = json.loads(rel.plan.read_text())
    assert plan["steps"][0]["lock_timeout"] == "1min"  # a SHARE UPDATE EXCLUSIVE wait stalls no query


def test_sigkill_between_steps_and_in_a_backfill_then_rerun_equals_an_uninterrupted_run(
    fresh_pg: str, pg_server: PgServer, tmp_path: Path
) -> None:
    # the reference: the same release, uninterrupted, on a database of its own
    ref_name = f"bgm_ref_{uuid.uuid4().hex[:10]}"
    pg_exec(pg_server.dsn, f'CREATE DATABASE "{ref_name}"')
    ref_dsn = pg_server.dsn_for(ref_name)
    try:
        ref_rel = _setup(ref_dsn, tmp_path / "reference", customers=5000)
        _full_run(ref_dsn, ref_rel.plan, "--batch-size", "250")

        rel = _setup(fresh_pg, tmp_path / "crashed", customers=5000)
        expand = ("expand", "--plan", str(rel.plan), "--batch-size", "250")
        for point in ("after:expand-002", "batch:3", "batch:7", "after:migrate-001"):
            killed = bgm(*expand, "--dsn", fresh_pg, env={"BGMIGRATE_FAULT_KILL": point})
            assert killed.returncode == -signal.SIGKILL, (point, killed.returncode, killed.stderr)
            state = steps_state(fresh_pg)
            if point.startswith("batch:"):
                assert state["migrate-001"][0] == "running" and state["migrate-001"][3] > 0
        assert bgm(*expand, "--dsn", fresh_pg).returncode == 0
        assert bgm("mark", "switched", "--dsn", fresh_pg).returncode == 0
        assert bgm("mark", "decommissioned", "--dsn", fresh_pg).returncode == 0
        for point in ("after:contract-001", "after:contract-004"):
            killed = bgm("contract", "--dsn", fresh_pg, env={"BGMIGRATE_FAULT_KILL": point})
            assert killed.returncode == -signal.SIGKILL, (point, killed.returncode, killed.stderr)
        assert bgm("contract", "--dsn", fresh_pg).returncode == 0

        assert pg_schema(fresh_pg) == pg_schema(ref_dsn)
        assert pg_data(fresh_pg) == pg_data(ref_dsn)
        state = steps_state(fresh_pg)
        assert all(v[0] == "done" for v in state.values())
        assert state["migrate-001"][3] == 5000  # every row updated exactly once across the kills
        assert state["migrate-001"][1] == 3  # killed twice inside it, then it finished (and was killed after)
    finally:
        pg_exec(pg_server.dsn, f'DROP DATABASE IF EXISTS "{ref_name}" WITH (FORCE)')


def test_killed_connection_is_reported_and_the_rerun_resumes(fresh_pg: str, tmp_path: Path) -> None:
    rel = _setup(fresh_pg, tmp_path, customers=20000)
    runner = bgm_popen(
        "expand", "--plan", str(rel.plan), "--dsn", fresh_pg, "--batch-size", "200", "--batch-pause", "20ms"
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        rows = pg_rows(fresh_pg, "SELECT to_regclass('bgmigrate.steps') IS NOT NULL")[0][0] and pg_rows(
            fresh_pg, "SELECT backfill_rows FROM bgmigrate.steps WHERE step_id = 'migrate-001'"
        )
        if rows and rows[0][0] > 1000:
            break
        time.sleep(0.02)
    pg_exec(
        fresh_pg,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'bgmigrate' "
        "AND pid <> pg_backend_pid() AND datname = current_database()",
    )
    _, err = runner.communicate(timeout=60)
    assert runner.returncode == 1, err
    assert "migrate-001: lost the connection to the database" in err and "rerun to resume" in err
    assert "Traceback" not in err
    partial = steps_state(fresh_pg)["migrate-001"]
    assert partial[0] == "running" and 0 < partial[3] < 20000
    again = bgm("expand", "--plan", str(rel.plan), "--dsn", fresh_pg, "--batch-size", "200")
    assert again.returncode == 0, again.stderr
    assert "(resuming)" in again.stderr or steps_state(fresh_pg)["migrate-001"][3] == 20000
    assert steps_state(fresh_pg)["migrate-001"][3] == 20000
    assert pg_rows(fresh_pg, "SELECT count(*) FROM customers WHERE email_address IS DISTINCT FROM email") == [(0,)]


def test_a_backfill_batch_waiting_on_a_row_lock_is_retried_alone(fresh_pg: str, tmp_path: Path) -> None:
    rel = _setup(fresh_pg, tmp_path, customers=3000)
    # the expand steps first (they take table locks a row lock would hold off), stopping before the backfill
    stopped = bgm(
        "expand", "--plan", str(rel.plan), "--dsn", fresh_pg, env={"BGMIGRATE_FAULT_KILL": "after:expand-006"}
    )
    assert stopped.returncode == -signal.SIGKILL and steps_state(fresh_pg)["migrate-001"][0] == "pending"
    with psycopg.connect(fresh_pg, autocommit=True) as app:
        app.execute("BEGIN")
        app.execute("SELECT * FROM customers WHERE id = 1500 FOR UPDATE")  # an app transaction on one row
        runner = bgm_popen(
            "expand", "--plan", str(rel.plan), "--dsn", fresh_pg, "--batch-size", "500", "--lock-timeout", "200ms",
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if pg_rows(fresh_pg, "SELECT to_regclass('bgmigrate.events') IS NOT NULL") == [(True,)] and pg_rows(
                fresh_pg, "SELECT count(*) FROM bgmigrate.events WHERE kind = 'retry'"
            ) != [(0,)]:
                break
            time.sleep(0.05)
        app.execute("COMMIT")
    _, err = runner.communicate(timeout=60)
    assert runner.returncode == 0, err
    assert "migrate-001: lock timeout on attempt 1; retrying" in err
    state = steps_state(fresh_pg)["migrate-001"]
    assert state[0] == "done" and state[1] == 1  # one attempt of the step: only the batch was retried
    assert state[3] == 3000  # and no row was updated twice
    assert pg_rows(fresh_pg, "SELECT count(*) FROM customers WHERE email_address IS DISTINCT FROM email") == [(0,)]
