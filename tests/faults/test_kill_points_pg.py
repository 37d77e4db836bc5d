"""SIGKILL of the runner at every step boundary of a realistic release, and at 20 random points inside
its backfills, on the real PostgreSQL: every time the rerun finishes, and the final schema
(``pg_dump --schema-only``) and data (per-table checksums) equal an uninterrupted run's, with no row
lost and no row updated twice.

Each kill point runs on its own copy of one seeded template database; the reference is the same
release, uninterrupted, on another copy."""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from faults_harness import (
    BACKFILLS,
    CONTRACT_STEPS,
    EXPAND_STEPS,
    KILL_POINTS,
    Outcome,
    checksums,
    create_db,
    drop_db,
    dsn_for,
    full_release,
    rows_lost,
    seed_sql,
    steps_status,
    table_rows,
    write_release,
)
from runner_harness import Release, bgm_popen, pg_exec, pg_rows

CUSTOMERS = 2000
BATCH = ("--batch-size", "100")
PAUSE = "20ms"  # between batches, while a kill point inside a backfill is waited for
# the kill points a quick local run (-m "not slow") keeps: one of each kind of boundary
QUICK = {"before:expand-001", "after:expand-003", "after:migrate-001", "before:contract-001", "after:contract-011"}
RANDOM_POINTS = 20
SEED = 20261204


@dataclass
class Prepared:
    admin: str
    template: str
    release: Release
    reference: Outcome
    backfilled: dict[str, int]  # rows each backfill changed in the uninterrupted run


@pytest.fixture(scope="module")
def prepared(pg_server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prepared]:
    """A seeded template database, the release's plan, and the outcome of an uninterrupted run."""
    admin = pg_server.dsn
    rel = write_release(tmp_path_factory.mktemp("kill_release"))
    template = create_db(admin, "bgm_tmpl")
    reference = create_db(admin, "bgm_ref")
    try:
        pg_exec(dsn_for(admin, template), (rel.migrations / "0001_base.sql").read_text() + seed_sql(CUSTOMERS))
        drop_db(admin, reference)
        pg_exec(admin, f'CREATE DATABASE "{reference}" TEMPLATE "{template}"')
        ref_dsn = dsn_for(admin, reference)
        full_release(ref_dsn, rel.plan, expand_args=BATCH)
        state = steps_status(ref_dsn)
        yield Prepared(admin, template, rel, Outcome.of(ref_dsn), {b: state[b][3] for b in BACKFILLS})
    finally:
        drop_db(admin, reference)
        drop_db(admin, template)


@pytest.fixture
def copy_db(prepared: Prepared) -> Iterator[str]:
    name = create_db(prepared.admin, "bgm_kill", template=prepared.template)
    try:
        yield dsn_for(prepared.admin, name)
    finally:
        drop_db(prepared.admin, name)


def _compare(dsn: str, prepared: Prepared) -> int:
    got = Outcome.of(dsn)
    lost = rows_lost(prepared.reference.rows, got.rows)
    assert got.schema == prepared.reference.schema
    assert checksums(got.rows) == checksums(prepared.reference.rows)
    assert lost == 0
    assert pg_rows(dsn, "SELECT status FROM bgmigrate.releases") == [("contracted",)]
    state = steps_status(dsn)
    assert {v[0] for v in state.values()} == {"done"}
    # every row a backfill changes was changed once: none skipped, none twice across the kills
    assert {b: state[b][3] for b in BACKFILLS} == prepared.backfilled
    return lost


def test_every_step_boundary_is_a_kill_point(prepared: Prepared) -> None:
    import json

    steps = [s["id"] for s in json.loads(prepared.release.plan.read_text())["steps"] if s["sql"]]
    assert steps == EXPAND_STEPS + CONTRACT_STEPS, "the planner changed: update faults_harness.EXPAND/CONTRACT_STEPS"
    assert len(KILL_POINTS) == len(steps) + 2


@pytest.mark.parametrize("point", [p if p in QUICK else pytest.param(p, marks=pytest.mark.slow) for p in KILL_POINTS])
def test_sigkill_at_a_step_boundary_then_the_rerun_equals_an_uninterrupted_run(
    prepared: Prepared, copy_db: str, point: str, figures
) -> None:
    survived, lost = False, None
    try:
        full_release(copy_db, prepared.release.plan, kill=point, expand_args=BATCH)
        lost = rows_lost(prepared.reference.rows, table_rows(copy_db))
        _compare(copy_db, prepared)
        survived = True
    finally:
        figures.record("kill", where="step boundary", point=point, survived=survived, rows_lost=lost)


def _random_point(index: int) -> tuple[str, int, int, float]:
    """A backfill, its table's rows, the key it must have passed, and a delay after that (the kill lands
    mid-batch, between a batch and its pause, or in the pause): reproducible from the index."""
    rng = random.Random(SEED + index)
    step = sorted(BACKFILLS)[index % 2]
    rows = CUSTOMERS if BACKFILLS[step] == "customers" else 2 * CUSTOMERS
    threshold = rng.randrange(0, rows - 5 * 100)  # at least 5 batches (and their pauses) left at the threshold
    return step, rows, threshold, rng.uniform(0, 0.015)


def _kill_inside_backfill(
    dsn: str, plan: Path, step: str, rows: int, threshold: int, delay: float
) -> tuple[str, int] | None:
    """Start expand, SIGKILL it once ``step`` has committed the batch past key ``threshold`` (+ ``delay``
    s); the step's status and last committed key right after the kill. None when the watcher saw the
    threshold too late (a loaded machine) to kill inside the backfill: nothing was killed."""
    runner = bgm_popen("expand", "--plan", str(plan), "--dsn", dsn, *BATCH, "--batch-pause", PAUSE)
    progress = "SELECT status, COALESCE(backfill_last_key::bigint, 0) FROM bgmigrate.steps WHERE step_id = %s"
    try:
        with psycopg.connect(dsn, autocommit=True) as watch:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if runner.poll() is not None:  # done before the watcher saw the kill point (or failed)
                    _, err = runner.communicate()
                    assert runner.returncode == 0, err[-2000:]
                    return None
                if watch.execute("SELECT to_regclass('bgmigrate.steps') IS NOT NULL").fetchone()[0]:
                    row = watch.execute(progress, (step,)).fetchone()
                    if row and (row[0] not in ("pending", "running") or row[1] >= rows - 200):  # seen too late
                        runner.communicate(timeout=60)
                        return None
                    if row and row[0] == "running" and row[1] >= threshold:
                        break
                time.sleep(0.002)
            else:
                raise AssertionError(f"{step} never passed key {threshold}")
            time.sleep(delay)
            os.kill(runner.pid, signal.SIGKILL)
            runner.communicate(timeout=30)
            assert runner.returncode == -signal.SIGKILL
            return watch.execute(progress, (step,)).fetchone()
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.communicate()


@pytest.mark.slow
@pytest.mark.parametrize("index", range(RANDOM_POINTS))
def test_sigkill_at_a_random_point_inside_a_backfill(prepared: Prepared, index: int, figures) -> None:
    step, rows, threshold, delay = _random_point(index)
    survived, lost, where = False, None, f"{step}, past key {threshold} + {delay * 1000:.1f} ms"
    name = None
    try:
        for _ in range(3):  # a fresh copy again when the watcher was too late to kill inside the backfill
            if name:
                drop_db(prepared.admin, name)
            name = create_db(prepared.admin, "bgm_kill", template=prepared.template)
            dsn = dsn_for(prepared.admin, name)
            killed = _kill_inside_backfill(dsn, prepared.release.plan, step, rows, threshold, delay)
            if killed is not None:
                break
        assert killed is not None, "three runs went past the kill point before the watcher saw it"
        status, key = killed
        where += f" (killed after key {key})"
        assert status == "running", (status, key)  # the kill landed inside the backfill
        full_release(dsn, prepared.release.plan, expand_args=BATCH)
        lost = rows_lost(prepared.reference.rows, table_rows(dsn))
        _compare(dsn, prepared)
        assert steps_status(dsn)[step][1] == 2  # the killed attempt and the one that resumed
        survived = True
    finally:
        figures.record("kill", where="inside a backfill", point=where, survived=survived, rows_lost=lost)
        if name:
            drop_db(prepared.admin, name)
