"""Plan tampering is refused: a plan edited after review (its SQL, its hash, a step removed, the plan
re-sealed with a new hash after the release started), a structurally broken plan with a valid hash, and
the plan the state tables recorded, edited in the database (with and without its hash). Nothing runs:
the schema is untouched each time."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import psycopg
import pytest
from faults_harness import mark_gates, pg_dump_schema, run_ok
from runner_harness import Release, bgm, pg_exec, pg_rows, seed_sql

EDITED = "the plan's sha256 does not match its content: it was edited after it was made"


def _seal(data: dict) -> str:
    data = {k: v for k, v in data.items() if k != "sha256"}
    data["sha256"] = hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return json.dumps(data, indent=2)


@pytest.fixture
def release(fresh_pg: str, tmp_path: Path) -> tuple[str, Release, dict]:
    rel = Release.write(tmp_path / "release")
    pg_exec(fresh_pg, (rel.migrations / "0001_base.sql").read_text() + seed_sql(20))
    return fresh_pg, rel, json.loads(rel.plan.read_text())


def _refused(dsn: str, plan: Path, *, code: int, says: str) -> None:
    before = pg_dump_schema(dsn)
    for args in (["verify-plan", str(plan)], ["expand", "--plan", str(plan), "--dsn", dsn]):
        done = bgm(*args)
        if args[0] == "verify-plan" and code == 3:
            continue  # the file itself is sound: only the runner, which knows the release, refuses it
        assert done.returncode == code, (args, done.returncode, done.stderr)
        assert says in done.stderr and "Traceback" not in done.stderr, (args, done.stderr)
    assert pg_dump_schema(dsn) == before


def test_edited_plan_files_are_refused_before_anything_runs(release, tmp_path: Path) -> None:
    dsn, _, data = release
    step = next(s for s in data["steps"] if s["sql"])
    cases = {
        "sql edited": lambda d: d["steps"][0].update(sql=d["steps"][0]["sql"].replace("ADD COLUMN", "DROP COLUMN")),
        "timeout raised": lambda d: d["steps"][0].update(lock_timeout="1h"),
        "step removed": lambda d: d["steps"].pop(1),
        "abort sql emptied": lambda d: d["steps"][0].update(abort=None),
        "expects loosened": lambda d: d["expects"].clear(),
    }
    for name, edit in cases.items():
        edited = json.loads(json.dumps(data))
        edit(edited)
        path = tmp_path / f"{name.replace(' ', '_')}.json"
        path.write_text(json.dumps(edited, indent=2))  # the old sha256 kept
        _refused(
            dsn, path, code=2, says="the plan's sha256 does not match its content: it was edited after it was made"
        )
    wrong_hash = dict(data, sha256="0" * 64)
    (tmp_path / "hash.json").write_text(json.dumps(wrong_hash))
    _refused(dsn, tmp_path / "hash.json", code=2, says="edited after it was made")
    # re-sealed but malformed: a correct hash does not make any content acceptable
    broken = json.loads(json.dumps(data))
    broken["steps"][0]["lock_timeout"] = ["2s"]
    (tmp_path / "broken.json").write_text(_seal(broken))
    _refused(dsn, tmp_path / "broken.json", code=2, says="malformed plan: steps[0].lock_timeout has the wrong type")
    assert step["id"] == "expand-001"


def test_a_plan_resealed_after_the_release_started_is_refused(release, tmp_path: Path) -> None:
    dsn, rel, data = release
    run_ok("expand", "--plan", str(rel.plan), "--dsn", dsn)
    resealed = json.loads(json.dumps(data))
    resealed["steps"][0]["sql"] += "\nALTER TABLE customers ADD COLUMN backdoor text;"
    (tmp_path / "resealed.json").write_text(_seal(resealed))
    assert bgm("verify-plan", str(tmp_path / "resealed.json")).returncode == 0  # a sound file on its own
    _refused(dsn, tmp_path / "resealed.json", code=3, says="changes step expand-001, which already ran")
    fewer = json.loads(json.dumps(data))
    fewer["steps"] = [s for s in fewer["steps"] if s["id"] != "contract-001"]
    (tmp_path / "fewer.json").write_text(_seal(fewer))
    done = bgm("contract", "--dsn", dsn, "--plan", str(tmp_path / "fewer.json"), "--force", "--reason", "test")
    assert done.returncode == 3 and "the contract that runs must be the one reviewed with the expand" in done.stderr
    assert "backdoor" not in pg_dump_schema(dsn)


def test_the_plan_recorded_in_the_state_tables_cannot_be_edited(release) -> None:
    dsn, rel, data = release
    run_ok("expand", "--plan", str(rel.plan), "--dsn", dsn)
    mark_gates(dsn)
    before = pg_dump_schema(dsn)
    recorded = pg_rows(dsn, "SELECT plan FROM bgmigrate.releases")[0][0]

    # 1. the recorded plan edited in place: its hash no longer verifies
    evil = recorded.replace("DROP COLUMN email", "DROP TABLE customers CASCADE; SELECT 1")
    assert evil != recorded
    _record(dsn, evil)
    done = bgm("contract", "--dsn", dsn)
    assert done.returncode == 2 and "the plan recorded for release 0002_release does not verify" in done.stderr
    assert pg_dump_schema(dsn) == before

    # 2. edited and re-sealed, with the release's hash updated too: the per-step checksums recorded when
    #    the release started still refuse the changed step
    resealed = json.loads(evil)
    text = _seal(resealed)
    _record(dsn, text, json.loads(text)["sha256"])
    done = bgm("contract", "--dsn", dsn)
    assert done.returncode == 3 and "its SQL differs from the SQL recorded" in done.stderr, done.stderr
    assert pg_dump_schema(dsn) == before

    # the untouched plan back: contract runs
    _record(dsn, recorded, data["sha256"])
    run_ok("contract", "--dsn", dsn)
    assert pg_rows(dsn, "SELECT count(*) FROM customers") == [(20,)]


def _record(dsn: str, plan: str, sha256: str | None = None) -> None:
    """What someone with write access to the state tables could do."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("UPDATE bgmigrate.releases SET plan = %s", (plan,))
        if sha256:
            conn.execute("UPDATE bgmigrate.releases SET plan_sha256 = %s", (sha256,))
