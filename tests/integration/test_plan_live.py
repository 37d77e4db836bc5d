"""bgmigrate plan --dsn: the live schema is the starting point and steps get sizes; verify-plan."""

from __future__ import annotations

import json
import os
from pathlib import Path

import psycopg
from typer.testing import CliRunner

from migrator.cli import app


def _run(cwd: Path, *args: str):
    old = Path.cwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(app, list(args), catch_exceptions=False)
    finally:
        os.chdir(old)


def test_plan_against_a_live_database(pg_db, tmp_path: Path) -> None:
    with psycopg.connect(pg_db.dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS events")
        conn.execute("CREATE TABLE events (id bigint PRIMARY KEY, kind text, payload text)")
        conn.execute("INSERT INTO events SELECT g, 'k' || (g % 7), repeat('x', 50) FROM generate_series(1, 5000) g")
        conn.execute("ANALYZE events")
    release = tmp_path / "migrations"
    release.mkdir()
    (release / "0001_release.sql").write_text(
        "SET lock_timeout = '2s';\n"
        "ALTER TABLE events ADD COLUMN source text;\n"
        "CREATE INDEX events_kind_idx ON events (kind);\n"
        "UPDATE events SET source = 'legacy' WHERE source IS NULL;\n"
    )
    res = _run(tmp_path, "plan", "--dsn", pg_db.dsn, "migrations", "-o", "plan.json", "--markdown", "plan.md")
    assert res.exit_code == 0, res.output
    plan = json.loads((tmp_path / "plan.json").read_text())
    by_sql = {s["sql"].split()[0] + " " + s["sql"].split()[1]: s for s in plan["steps"] if s["sql"]}
    add = by_sql["ALTER TABLE"]
    assert add["rows_estimate"] == 5000 and add["size_bytes"] > 0 and add["duration"] == "instant"
    index = next(s for s in plan["steps"] if "events_kind_idx" in s["sql"])
    assert index["duration"] == "proportional" and index["rows_estimate"] == 5000
    assert "~5,000 rows" in (tmp_path / "plan.md").read_text()

    ok = _run(tmp_path, "verify-plan", "plan.json", "--dsn", pg_db.dsn)
    assert ok.exit_code == 0 and "ok (sha256" in ok.output

    with psycopg.connect(pg_db.dsn, autocommit=True) as conn:  # the database moves on
        conn.execute("ALTER TABLE events ADD COLUMN extra int")
    moved = _run(tmp_path, "verify-plan", "plan.json", "--dsn", pg_db.dsn)
    assert moved.exit_code == 2 and "not in the state the plan was made for" in moved.output

    edited = json.loads((tmp_path / "plan.json").read_text())
    edited["steps"][0]["sql"] = "DROP TABLE events;"
    (tmp_path / "edited.json").write_text(json.dumps(edited))
    tampered = _run(tmp_path, "verify-plan", "edited.json")
    assert tampered.exit_code == 2 and "edited after it was made" in tampered.output
