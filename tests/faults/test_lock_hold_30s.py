"""Lock contention for 30 s: a transaction holds a lock that conflicts with the release's first step
(an idle read transaction on ``customers``: ACCESS SHARE against the step's ACCESS EXCLUSIVE) for 30
seconds. Readers and a writer on other connections never wait longer than the lock timeout plus 100 ms,
the runner gives up after its retry budget with a clear message naming the blocker, and the rerun
after the transaction ends goes through."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psycopg
import pytest
from faults_harness import seed_sql, steps_status, write_release
from runner_harness import bgm, bgm_popen, pg_exec

HOLD_S = 30.0
LOCK_TIMEOUT_S = 0.2
RETRIES = 6  # backoff 0.5 + 1 + 2 + 4 + 8 s (+ jitter): about 17-20 s, well inside the 30 s hold


class Client(threading.Thread):
    """One application connection: a statement in a loop, its slowest round trip recorded."""

    def __init__(self, dsn: str, sql: str) -> None:
        super().__init__(daemon=True)
        self.dsn, self.sql = dsn, sql
        self.stop = threading.Event()
        self.longest = 0.0
        self.count = 0
        self.errors: list[str] = []

    def run(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            i = 0
            while not self.stop.is_set():
                i += 1
                start = time.monotonic()
                try:
                    cur = conn.execute(self.sql, {"id": 2 + i % 500})
                    if cur.description:
                        cur.fetchall()
                except psycopg.Error as err:
                    self.errors.append(str(err))
                self.longest = max(self.longest, time.monotonic() - start)
                self.count += 1
                time.sleep(0.01)


@pytest.mark.slow
def test_a_30_s_lock_holder_never_stalls_clients_beyond_lock_timeout(fresh_pg: str, tmp_path: Path, figures) -> None:
    rel = write_release(tmp_path)
    pg_exec(fresh_pg, (rel.migrations / "0001_base.sql").read_text() + seed_sql(2000))
    clients = [
        Client(fresh_pg, "SELECT id, email, name FROM customers WHERE id = %(id)s"),
        Client(fresh_pg, "SELECT count(*) FROM customers WHERE id < %(id)s"),
        Client(fresh_pg, "SELECT o.id FROM orders o JOIN customers c ON c.id = o.customer_id WHERE c.id = %(id)s"),
        Client(fresh_pg, "UPDATE customers SET name = name WHERE id = %(id)s"),
    ]
    for c in clients:
        c.start()
    time.sleep(0.3)
    runner_done_at = None
    with psycopg.connect(fresh_pg, autocommit=True) as blocker:
        blocker.execute("BEGIN")
        blocker.execute("SELECT * FROM customers WHERE id = 1")  # then idle in transaction, holding ACCESS SHARE
        held_from = time.monotonic()
        runner = bgm_popen(
            "expand", "--plan", str(rel.plan), "--dsn", fresh_pg,
            "--lock-timeout", f"{int(LOCK_TIMEOUT_S * 1000)}ms", "--retries", str(RETRIES),
        )  # fmt: skip
        try:
            _, err = runner.communicate(timeout=HOLD_S + 20)
        finally:
            if runner.poll() is None:
                runner.kill()
        runner_done_at = time.monotonic() - held_from
        time.sleep(max(0.0, HOLD_S - (time.monotonic() - held_from)))
        blocker.execute("COMMIT")
        held = time.monotonic() - held_from
    time.sleep(0.5)
    for c in clients:
        c.stop.set()
    for c in clients:
        c.join(10)
    stall = max(c.longest for c in clients)
    figures.record(
        "stall",
        hold_s=round(held, 1),
        lock_timeout_ms=int(LOCK_TIMEOUT_S * 1000),
        max_stall_ms=round(stall * 1000, 1),
        requests=sum(c.count for c in clients),
        runner_gave_up_after_s=round(runner_done_at, 1),
    )
    assert held >= HOLD_S
    assert runner.returncode == 1, err
    assert runner_done_at < HOLD_S  # it gave up while the transaction still held the table
    message = next(line for line in err.splitlines() if "step failed" in line)
    assert (
        f"expand-001: could not take the ACCESS EXCLUSIVE lock on customers within 200 ms in {RETRIES} attempts over"
        in message
    )
    assert "holding locks on it now: pid" in message and "idle in transaction" in message
    assert "SELECT * FROM customers WHERE id = 1" in message
    assert "Nothing waited longer than the lock timeout; rerun when the blocking transactions are gone" in message
    assert "Traceback" not in err
    assert err.count("lock timeout on attempt") == RETRIES - 1
    assert all(c.errors == [] for c in clients), [c.errors[:3] for c in clients]
    assert all(c.count > 500 for c in clients)
    assert stall < LOCK_TIMEOUT_S + 0.1, f"a client waited {stall:.3f} s"
    state = steps_status(fresh_pg)["expand-001"]
    assert state[:2] == ("failed", RETRIES)
    again = bgm("expand", "--plan", str(rel.plan), "--dsn", fresh_pg)
    assert again.returncode == 0, again.stderr
    assert steps_status(fresh_pg)["expand-001"][:2] == ("done", RETRIES + 1)
