"""Two and five runners started at the same moment on one database: exactly one proceeds, every other
exits 3 naming the holder (who, which command, its backend pid or connection id), on PostgreSQL (a
database without state tables yet, and one whose runner table still names an earlier holder) and on
MariaDB. The winner is kept busy by a transaction holding a lock its first step needs, so that the
others all meet the runner lock held."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import mysql_faults as my
import psycopg
import pytest
from faults_harness import mark_gates, seed_sql, write_release
from runner_harness import bgm, bgm_popen, pg_exec, pg_rows


def _race(n: int, args: list[str], release_blocker: Callable[[], None]) -> tuple[int, list[tuple[str, int, str]]]:
    """Start ``n`` runners at once (actors runner-1..n); once all but one have exited, end the blocking
    transaction. The index of the one that proceeded and (actor, exit code, stderr) of each."""
    actors = [f"runner-{i + 1}" for i in range(n)]
    procs: list[subprocess.Popen[str]] = [bgm_popen(*args, env={"BGMIGRATE_ACTOR": a}) for a in actors]
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and sum(p.poll() is None for p in procs) > 1:
            time.sleep(0.05)
        running = [i for i, p in enumerate(procs) if p.poll() is None]
        assert len(running) == 1, f"{len(running)} runners still running after the others exited"
        time.sleep(0.3)
        assert procs[running[0]].poll() is None  # it is the one holding the lock, waiting on the blocker
        release_blocker()
        out = []
        for actor, proc in zip(actors, procs):
            _, err = proc.communicate(timeout=120)
            out.append((actor, proc.returncode, err))
        return running[0], out
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()


def _check(winner: int, results: list[tuple[str, int, str]], session: str, figures, n: int) -> None:
    codes = [code for _, code, _ in results]
    figures.record("runners", n=n, proceeded=codes.count(0), refused=codes.count(3))
    assert codes.count(0) == 1 and codes[winner] == 0, codes
    assert codes.count(3) == n - 1, [(a, c, e[-500:]) for a, c, e in results]
    holder = results[winner][0]
    for _actor, code, err in results:
        if code == 3:
            assert "Traceback" not in err
            line = next(x for x in err.splitlines() if "another bgmigrate runner" in x)
            assert f"another bgmigrate runner is working on this database: {holder}: bgmigrate expand since " in line
            assert re.search(session, line), line
            assert "rerun with --wait to queue" in line


def _pg_blocker(dsn: str) -> tuple[psycopg.Connection, Callable[[], None]]:
    conn = psycopg.connect(dsn, autocommit=True)
    conn.execute("BEGIN")
    conn.execute("LOCK TABLE customers IN ACCESS SHARE MODE")  # expand-001 (ACCESS EXCLUSIVE) waits

    def release() -> None:
        conn.execute("COMMIT")

    return conn, release


@pytest.mark.parametrize("n", [2, 5])
def test_concurrent_runners_on_postgres(fresh_pg: str, tmp_path: Path, n: int, figures) -> None:
    rel = write_release(tmp_path)
    pg_exec(fresh_pg, (rel.migrations / "0001_base.sql").read_text() + seed_sql(50))
    if n == 5:
        # the state tables exist, and the runner table names an earlier holder that is long gone
        from migrator.run.db import connect
        from migrator.run.runner import Runner

        db = connect(fresh_pg)
        try:
            runner = Runner(db)
            runner.store.ensure()
            runner.store.set_holder(runner.lock_name, "pipeline-40: bgmigrate contract")
        finally:
            db.close()
    conn, release = _pg_blocker(fresh_pg)
    try:
        args = ["expand", "--plan", str(rel.plan), "--dsn", fresh_pg, "--lock-timeout", "100ms", "--retries", "500"]
        winner, results = _race(n, args, release)
    finally:
        conn.close()
    pid = pg_rows(fresh_pg, "SELECT count(*) FROM bgmigrate.releases")  # one release, made by the winner
    assert pid == [(1,)]
    _check(winner, results, r"PostgreSQL backend pid \d+ \(postgres@", figures, n)
    assert all("pipeline-40" not in err for _, _, err in results)
    assert pg_rows(fresh_pg, "SELECT created_by FROM bgmigrate.releases") == [(results[winner][0],)]
    mark_gates(fresh_pg)


def test_five_concurrent_runners_on_mariadb(mysql_server, tmp_path: Path, figures) -> None:
    rel = my.write_release(tmp_path)
    with my.my_database(mysql_server) as (server, dsn):
        my.seed(server, 50)
        blocker = server.connect()
        try:
            with blocker.cursor() as cur:  # a transaction holding a metadata lock expand-001 needs
                cur.execute("START TRANSACTION")
                cur.execute("SELECT * FROM customers LIMIT 1")

            def release() -> None:
                with blocker.cursor() as cur:
                    cur.execute("COMMIT")

            args = ["expand", "--plan", str(rel.plan), "--dsn", dsn, "--lock-timeout", "1s", "--retries", "100"]
            winner, results = _race(5, args, release)
        finally:
            blocker.close()
        _check(winner, results, r"connection id \d+", figures, 5)
        assert {v[0] for v in my.steps(server).values() if v} >= {"done"}


ADVISORY_HOLDER = (
    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


def test_the_holder_named_is_the_one_on_this_database(pg_server, fresh_pg: str, tmp_path: Path) -> None:
    """Advisory locks are per database, and so is the holder a refused runner names: a runner holding the
    lock on another database of the same server is never named."""
    import uuid

    from faults_harness import create_db, drop_db, dsn_for

    other = create_db(pg_server.dsn, "bgm_other")
    rel = write_release(tmp_path)
    base = (rel.migrations / "0001_base.sql").read_text() + seed_sql(20)
    conns: list[psycopg.Connection] = []
    runners: list[subprocess.Popen[str]] = []
    try:
        dsns = {"A": dsn_for(pg_server.dsn, other), "B": fresh_pg}
        for side, dsn in dsns.items():
            pg_exec(dsn, base)
            conn, _ = _pg_blocker(dsn)
            conns.append(conn)
            runners.append(bgm_popen("expand", "--plan", str(rel.plan), "--dsn", dsn, "--lock-timeout", "100ms",
                                     "--retries", "500", env={"BGMIGRATE_ACTOR": f"runner-{side}"}))  # fmt: skip
        pids = {}
        deadline = time.monotonic() + 30
        for side, dsn in dsns.items():
            while time.monotonic() < deadline and side not in pids:
                rows = pg_rows(dsn, ADVISORY_HOLDER)
                if rows:
                    pids[side] = rows[0][0]
                time.sleep(0.05)
        assert set(pids) == {"A", "B"}
        refused = bgm("expand", "--plan", str(rel.plan), "--dsn", fresh_pg, env={"BGMIGRATE_ACTOR": uuid.uuid4().hex})
        assert refused.returncode == 3, refused.stderr
        assert "working on this database: runner-B: bgmigrate expand" in refused.stderr
        assert f"PostgreSQL backend pid {pids['B']} " in refused.stderr
        assert "runner-A" not in refused.stderr and f"pid {pids['A']} " not in refused.stderr
    finally:
        for conn in conns:
            conn.close()
        for proc in runners:
            proc.kill()
            proc.communicate()
        drop_db(pg_server.dsn, other)
