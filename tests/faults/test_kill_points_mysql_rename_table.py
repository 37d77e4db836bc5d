"""SIGKILL of the runner at every step boundary of a MariaDB/MySQL table rename (the rename_table recipe:
a view under the new name in expand; in contract a placeholder table and a view, two atomic RENAME
TABLEs, then the clean-up), each statement committing on its own: every rerun finishes, nothing of the
recipe's staging names is left, and the table, its unique key and its rows equal an uninterrupted run's.
Green's name works at every kill point: a killed contract never leaves ``customers`` missing."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import mysql_faults as my
import pytest
from faults_harness import KILL_ENV, mark_gates, run_ok
from runner_harness import Release, bgm

BASE = """\
CREATE TABLE accounts (id bigint AUTO_INCREMENT PRIMARY KEY, name varchar(60) NOT NULL, note varchar(100),
  UNIQUE KEY accounts_name_key (name));
"""
RELEASE = "RENAME TABLE accounts TO customers;\n"
ROWS = 300
CONTRACT = [f"contract-{i:03d}" for i in range(1, 5)]
POINTS = ["before:contract-001"] + [f"after:{s}" for s in CONTRACT]


@dataclass
class Reference:
    release: Release
    schema: dict[str, str]
    data: dict[str, list[str]]


def _seed(server: object) -> None:
    my.execute(server, BASE.strip().rstrip(";"))
    values = ", ".join(f"({i}, 'name {i}', {'NULL' if i % 3 else repr(f'note {i}')})" for i in range(1, ROWS + 1))
    my.execute(server, f"INSERT INTO accounts VALUES {values}")


def _green_reads(server: object) -> int:
    """What green does between the kill and the rerun: its name answers, with every row."""
    return int(my.rows(server, "SELECT count(*) FROM customers")[0][0])


@pytest.fixture(scope="module")
def reference(mysql_server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Reference]:
    rel = Release.write(tmp_path_factory.mktemp("mysql_rename_table"), BASE, RELEASE, dialect="mysql")
    with my.my_database(mysql_server) as (server, dsn):
        _seed(server)
        run_ok("expand", "--plan", str(rel.plan), "--dsn", dsn)
        mark_gates(dsn)
        run_ok("contract", "--dsn", dsn)
        yield Reference(rel, my.schema(server), my.data(server))


def test_the_reference_is_the_renamed_table_alone(reference: Reference) -> None:
    steps = [s["id"] for s in json.loads(reference.release.plan.read_text())["steps"] if s["sql"]]
    assert steps == ["expand-001", *CONTRACT], "the planner changed: update CONTRACT"
    assert set(reference.schema) == {"customers", "(triggers)"}
    assert "UNIQUE KEY `accounts_name_key`" in reference.schema["customers"]
    assert len(reference.data["customers"]) == ROWS


@pytest.mark.parametrize("point", POINTS)
def test_sigkill_in_the_rename_table_contract(mysql_server, reference: Reference, point: str, figures) -> None:
    survived, lost = False, None
    with my.my_database(mysql_server) as (server, dsn):
        try:
            _seed(server)
            run_ok("expand", "--plan", str(reference.release.plan), "--dsn", dsn)
            mark_gates(dsn)
            killed = bgm("contract", "--dsn", dsn, env={KILL_ENV: point})
            assert killed.returncode == -9, (point, killed.returncode, killed.stderr[-2000:])
            assert _green_reads(server) == ROWS
            run_ok("contract", "--dsn", dsn)
            data = my.data(server)
            lost = sum((Counter(reference.data["customers"]) - Counter(data.get("customers", []))).values())
            assert my.schema(server) == reference.schema
            assert data == reference.data and lost == 0
            assert {v[0] for v in my.steps(server).values()} == {"done"}
            survived = True
        finally:
            where = "rename_table contract (MariaDB)"
            figures.record("kill", where=where, point=point, survived=survived, rows_lost=lost)
