"""SIGKILL of the runner at every step boundary of a release on MariaDB/MySQL, where DDL is not
transactional and most steps run statement by statement: every rerun finishes, and the final tables
(``SHOW CREATE TABLE``, triggers) and rows equal an uninterrupted run's."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mysql_faults as my
import pytest
from faults_harness import KILL_ENV, mark_gates, run_ok
from runner_harness import Release, bgm

CUSTOMERS = 400
BATCH = ("--batch-size", "50")
EXPAND = [f"expand-{i:03d}" for i in range(1, 6)] + ["migrate-001", "migrate-002"]
CONTRACT = [f"contract-{i:03d}" for i in range(1, 7)]
POINTS = ["before:expand-001"] + [f"after:{s}" for s in EXPAND]
POINTS += ["before:contract-001"] + [f"after:{s}" for s in CONTRACT]
QUICK = {"after:expand-002", "after:migrate-001", "after:contract-002"}


@dataclass
class Reference:
    release: Release
    schema: dict[str, str]
    data: dict[str, list[str]]


def _release(dsn: str, plan: Path, kill: str | None) -> None:
    expand = ("expand", "--plan", str(plan), "--dsn", dsn, *BATCH)
    in_contract = kill is not None and "contract-" in kill
    if kill and not in_contract:
        killed = bgm(*expand, env={KILL_ENV: kill})
        assert killed.returncode == -9, (kill, killed.returncode, killed.stderr[-2000:])
    run_ok(*expand)
    mark_gates(dsn)
    if in_contract:
        killed = bgm("contract", "--dsn", dsn, env={KILL_ENV: kill or ""})
        assert killed.returncode == -9, (kill, killed.returncode, killed.stderr[-2000:])
    run_ok("contract", "--dsn", dsn)


@pytest.fixture(scope="module")
def reference(mysql_server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Reference]:
    rel = my.write_release(tmp_path_factory.mktemp("mysql_release"))
    with my.my_database(mysql_server) as (server, dsn):
        my.seed(server, CUSTOMERS)
        _release(dsn, rel.plan, None)
        yield Reference(rel, my.schema(server), my.data(server))


def test_every_mysql_step_boundary_is_a_kill_point(reference: Reference) -> None:
    steps = [s["id"] for s in json.loads(reference.release.plan.read_text())["steps"] if s["sql"]]
    assert steps == EXPAND + CONTRACT, "the planner changed: update EXPAND / CONTRACT"


@pytest.mark.parametrize("point", [p if p in QUICK else pytest.param(p, marks=pytest.mark.slow) for p in POINTS])
def test_sigkill_at_a_step_boundary_on_mysql(mysql_server, reference: Reference, point: str, figures) -> None:
    survived, lost = False, None
    with my.my_database(mysql_server) as (server, dsn):
        try:
            my.seed(server, CUSTOMERS)
            _release(dsn, reference.release.plan, point)
            data = my.data(server)
            lost = sum(
                sum((Counter(rows) - Counter(data.get(table, []))).values()) for table, rows in reference.data.items()
            )
            assert my.schema(server) == reference.schema
            assert data == reference.data and lost == 0
            assert {v[0] for v in my.steps(server).values()} == {"done"}
            survived = True
        finally:
            figures.record("kill", where="step boundary (MariaDB)", point=point, survived=survived, rows_lost=lost)
