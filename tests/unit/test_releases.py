"""History and releases: --since, the schema snapshot cache, Flyway ordering."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

from typer.testing import CliRunner

from migrator.cli import app

runner = CliRunner()


def lint(cwd: Path, *args: str):
    old = Path.cwd()
    os.chdir(cwd)
    try:
        res = runner.invoke(app, ["lint", "--format", "json", *args], catch_exceptions=False)
    finally:
        os.chdir(old)
    return res.exit_code, (json.loads(res.output) if res.output.startswith("{") else res.output)


def project(tmp_path: Path) -> Path:
    m = tmp_path / "migrations"
    m.mkdir()
    (m / "0001_accounts.sql").write_text("CREATE TABLE accounts (id bigint PRIMARY KEY, email varchar(20));\n")
    (m / "0002_orders.sql").write_text("CREATE TABLE orders (id bigint PRIMARY KEY, account_id bigint);\n")
    (m / "0003_index.sql").write_text(
        "SET lock_timeout = '1s';\nSET statement_timeout = '1min';\n"
        "CREATE INDEX IF NOT EXISTS orders_account_idx ON orders (account_id);\n"
    )
    return tmp_path


def rules_by_file(data) -> set[tuple[str, str]]:
    return {(f["file"].rsplit("/", 1)[-1], f["rule"]) for f in data["findings"]}


def test_default_each_file_is_its_own_release(tmp_path: Path):
    _, data = lint(project(tmp_path), "migrations")
    assert ("0003_index.sql", "require-concurrent-index-creation") in rules_by_file(data)
    assert {s["file"].rsplit("/", 1)[-1] for s in data["statements"]} == {
        "0001_accounts.sql",
        "0002_orders.sql",
        "0003_index.sql",
    }


def test_history_before_since_is_replayed_not_reported(tmp_path: Path):
    _, data = lint(project(tmp_path), "migrations", "--since", "0002_orders.sql")
    files = {s["file"].rsplit("/", 1)[-1] for s in data["statements"]}
    assert files == {"0003_index.sql"}  # history is not reported
    assert ("0003_index.sql", "require-concurrent-index-creation") in rules_by_file(data)  # orders exists: in use


def test_objects_created_in_the_release_are_new_across_its_files(tmp_path: Path):
    _, data = lint(project(tmp_path), "migrations", "--since", "0001_accounts.sql")
    # orders is created in 0002, part of the same release as 0003: blue never saw it
    assert not [f for f in data["findings"] if f["file"].endswith("0003_index.sql")]
    index = next(s for s in data["statements"] if s["operation"] == "create_index")
    assert index["phase"] == "expand" and index["lock"] is None


def test_unknown_since_is_a_usage_error(tmp_path: Path):
    code, output = lint(project(tmp_path), "migrations", "--since", "0099_nope.sql")
    assert code == 2 and "--since 0099_nope.sql: no migration has that revision id" in output


def test_history_snapshot_is_cached_and_follows_history_edits(tmp_path: Path, monkeypatch):
    root = project(tmp_path)
    cache = tmp_path / "cache"
    monkeypatch.setenv("BGMIGRATE_CACHE_DIR", str(cache))
    m = root / "migrations"
    (m / "0004_widen.sql").write_text(
        "SET lock_timeout = '1s';\nALTER TABLE accounts ALTER COLUMN email TYPE varchar(40);\n"
    )
    _, first = lint(root, "migrations", "--since", "0003_index.sql")
    db = sqlite3.connect(cache / "cache.sqlite3")
    assert db.execute("SELECT count(*) FROM entries WHERE kind = 'schema'").fetchone()[0] == 1
    db.close()
    widen = next(s for s in first["statements"] if s["operation"] == "alter_column_type")
    assert widen["phase"] == "expand" and widen["rewrite"] == "none"  # varchar(20) -> varchar(40)
    _, again = lint(root, "migrations", "--since", "0003_index.sql")
    assert again == first
    (m / "0001_accounts.sql").write_text("CREATE TABLE accounts (id bigint PRIMARY KEY, email int);\n")
    _, edited = lint(root, "migrations", "--since", "0003_index.sql")
    widen = next(s for s in edited["statements"] if s["operation"] == "alter_column_type")
    assert widen["phase"] == "breaking"  # the history changed: int -> varchar is incompatible


def test_flyway_repeatables_come_after_versioned_migrations(tmp_path: Path):
    m = tmp_path / "db"
    m.mkdir()
    for name in ("R__views.sql", "V10__b.sql", "V2__a.sql"):
        (m / name).write_text(f"SELECT '{name}';\n")
    _, data = lint(tmp_path, "db")
    assert [s["file"].rsplit("/", 1)[-1] for s in data["statements"]] == ["V2__a.sql", "V10__b.sql", "R__views.sql"]
