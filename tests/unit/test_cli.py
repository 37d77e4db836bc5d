"""The command line: exit codes, bad input, output formats, settings."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from typer.testing import CliRunner

from migrator.cli import app

runner = CliRunner()
SCHEMA = json.loads((Path(__file__).parent.parent / "data" / "sarif-schema-2.1.0.json").read_text())


def run(*args: str, cwd: Path | None = None):
    old = Path.cwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        return runner.invoke(app, list(args), catch_exceptions=False)
    finally:
        os.chdir(old)


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write(
        tmp_path / "migrations" / "0001_base.sql",
        "CREATE TABLE IF NOT EXISTS accounts (id bigint PRIMARY KEY, email text);\n",
    )
    write(
        tmp_path / "migrations" / "0002_index.sql",
        "SET statement_timeout = '5min';\nSET lock_timeout = '2s';\n"
        "CREATE INDEX IF NOT EXISTS accounts_email_idx ON accounts (email);\n",
    )
    return tmp_path


def test_findings_exit_1_and_text_report(project: Path):
    res = run("lint", "migrations", cwd=project)
    assert res.exit_code == 1, res.output
    assert "migrations/0002_index.sql:3:1: error [require-concurrent-index-creation]" in res.output
    assert "fix: CREATE INDEX CONCURRENTLY" in res.output
    assert "\033[" not in res.output  # no colour when not a terminal
    assert "2 files, 4 statements (expand 2, neutral 2): 1 error, 0 warnings" in res.output


def test_clean_run_exits_0(tmp_path: Path):
    write(
        tmp_path / "a.sql",
        "CREATE TABLE t (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body text);\n",
    )
    res = run("lint", str(tmp_path / "a.sql"))
    assert res.exit_code == 0, res.output


def test_fail_on_levels(project: Path):
    assert run("lint", "migrations", "--fail-on", "never", cwd=project).exit_code == 0
    assert run("lint", "migrations", "--exclude", "require-concurrent-index-creation", cwd=project).exit_code == 0
    assert run("lint", "migrations", "--fail-on", "warning", cwd=project).exit_code == 1


def test_missing_path_is_a_usage_error(tmp_path: Path):
    res = run("lint", str(tmp_path / "nope.sql"))
    assert res.exit_code == 2
    assert res.output.strip().startswith("bgmigrate: error: path not found:")
    assert "Traceback" not in res.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dialect", "oracle"], "'dialect' must be one of postgres, mysql"),
        (["--format", "xml"], "'format' must be one of text, json, sarif, github"),
        (["--fail-on", "sometimes"], "'fail_on' must be one of error, warning, never"),
        (["--target-version", "fifteen"], "'target_version' must be a version"),
        (["--exclude", "no-such-rule"], "unknown rule id: no-such-rule"),
    ],
)
def test_bad_options_exit_2_with_one_line(project: Path, args, message):
    res = run("lint", "migrations", *args, cwd=project)
    assert res.exit_code == 2, res.output
    assert message in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_bad_config_exit_2(project: Path):
    write(project / "pyproject.toml", "[tool.bgmigrate]\ndialect = 'postgres'\nfail_onn = 'error'\n")
    res = run("lint", "migrations", cwd=project)
    assert res.exit_code == 2 and "unknown setting 'fail_onn'" in res.output
    write(project / "pyproject.toml", "[tool.bgmigrate\n")
    res = run("lint", "migrations", cwd=project)
    assert res.exit_code == 2 and "invalid TOML" in res.output
    res = run("lint", "migrations", "--config", str(project / "missing.toml"), cwd=project)
    assert res.exit_code == 2 and "config file not found" in res.output


def test_settings_from_nearest_pyproject(project: Path):
    write(project / "pyproject.toml", "[tool.bgmigrate]\nexclude = ['require-concurrent-index-creation']\n")
    sub = project / "migrations"
    res = run("lint", ".", cwd=sub)
    assert res.exit_code == 0, res.output


def test_settings_from_explicit_config(project: Path):
    cfg = write(project / "lint.toml", "fail-on = 'never'\n")
    assert run("lint", "migrations", "--config", str(cfg), cwd=project).exit_code == 0


def test_unreadable_file_exit_2(project: Path, monkeypatch):
    def deny(self):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", deny)
    res = run("lint", "migrations", cwd=project)
    assert res.exit_code == 2 and "file not readable" in res.output


def test_binary_and_non_utf8_files_are_findings(tmp_path: Path):
    write(tmp_path / "m" / "0001_bin.sql", b"\x00\x01\x02SELECT")
    write(tmp_path / "m" / "0002_latin1.sql", "SELECT 'caf\xe9';".encode("latin-1"))
    write(tmp_path / "m" / "0003_ok.sql", "SELECT 1;")
    res = run("lint", str(tmp_path / "m"), "--format", "json")
    data = json.loads(res.output)
    rules = [(f["file"].rsplit("/", 1)[-1], f["rule"]) for f in data["findings"]]
    assert ("0001_bin.sql", "invalid-encoding") in rules
    assert ("0002_latin1.sql", "invalid-encoding") in rules
    assert data["summary"]["statements"] == 1
    assert res.exit_code == 1


def test_empty_file_is_fine(tmp_path: Path):
    write(tmp_path / "empty.sql", "")
    res = run("lint", str(tmp_path / "empty.sql"), "--format", "json")
    assert res.exit_code == 0
    assert json.loads(res.output)["summary"]["statements"] == 0


def test_natural_file_order(tmp_path: Path):
    for name in ("0010_b.sql", "0002_a.sql", "V10__y.sql", "V2__x.sql"):
        write(tmp_path / name, f"SELECT '{name}';")
    res = run("lint", str(tmp_path), "--format", "json")
    files = [s["file"].rsplit("/", 1)[-1] for s in json.loads(res.output)["statements"]]
    assert files == ["0002_a.sql", "0010_b.sql", "V2__x.sql", "V10__y.sql"]


def test_json_contract(project: Path):
    res = run("lint", "migrations", "--format", "json", cwd=project)
    data = json.loads(res.output)
    assert data["version"] == 1
    assert data["tool"]["name"] == "bgmigrate"
    st = data["statements"][-1]
    for key in (
        "file",
        "line",
        "column",
        "end_line",
        "end_column",
        "sql",
        "operation",
        "table",
        "phase",
        "lock",
        "rewrite",
        "in_transaction",
    ):
        assert key in st
    assert st == {
        **st,
        "file": "migrations/0002_index.sql",
        "line": 3,
        "column": 1,
        "end_line": 3,
        "operation": "create_index",
        "table": "accounts",
        "phase": "expand",
        "lock": "SHARE",
        "rewrite": "scan",
        "in_transaction": False,
    }
    finding = data["findings"][0]
    for key in (
        "rule",
        "severity",
        "phase",
        "file",
        "line",
        "column",
        "end_line",
        "end_column",
        "message",
        "why",
        "fix",
    ):
        assert key in finding
    assert data["summary"] == {
        "files": 2,
        "statements": 4,
        "errors": 1,
        "warnings": 0,
        "by_phase": {"expand": 2, "migrate": 0, "contract": 0, "breaking": 0, "neutral": 2},
    }


def test_sarif_validates_against_the_official_schema(project: Path):
    write(
        project / "migrations" / "0003_more.sql",
        "ALTER TABLE accounts RENAME COLUMN email TO mail;\nALTER TABLE x ADD COLUM y int;\n",
    )
    res = run("lint", "migrations", "--format", "sarif", cwd=project)
    data = json.loads(res.output)
    jsonschema.validate(data, SCHEMA)
    results = data["runs"][0]["results"]
    assert {r["ruleId"] for r in results} >= {"require-concurrent-index-creation", "syntax-error"}
    syntax = next(r for r in results if r["ruleId"] == "syntax-error")
    region = syntax["locations"][0]["physicalLocation"]["region"]
    assert region["startLine"] == 2 and region["startColumn"] == 27
    rules = data["runs"][0]["tool"]["driver"]["rules"]
    assert all(rules[r["ruleIndex"]]["id"] == r["ruleId"] for r in results)


def test_github_annotations(project: Path):
    res = run("lint", "migrations", "--format", "github", cwd=project)
    line = res.output.splitlines()[0]
    assert line.startswith("::error file=migrations/0002_index.sql,line=3,col=1,endLine=3,endColumn=")
    assert "::CREATE INDEX on existing table accounts" in line
    assert "%0AFix: CREATE INDEX CONCURRENTLY" in line


def test_colour_only_when_forced(project: Path, monkeypatch):
    monkeypatch.setenv("FORCE_COLOR", "1")
    res = run("lint", "migrations", cwd=project)
    assert "\033[1;31merror\033[0m" in res.output


def test_cache_warm_run_matches_cold_run_and_survives_corruption(project: Path, tmp_path: Path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("BGMIGRATE_CACHE_DIR", str(cache))
    cold = run("lint", "migrations", "--format", "json", cwd=project).output
    db = sqlite3.connect(cache / "cache.sqlite3")
    counts = dict(db.execute("SELECT kind, count(*) FROM entries GROUP BY kind").fetchall())
    assert counts == {"analysis": 2, "results": 2, "runs": 1}
    db.execute("UPDATE entries SET value = '{not json'")  # damaged entries are misses
    db.commit()
    db.close()
    assert run("lint", "migrations", "--format", "json", cwd=project).output == cold
    warm = run("lint", "migrations", "--format", "json", cwd=project).output
    assert warm == cold
    (cache / "cache.sqlite3").write_bytes(b"this is not a database" * 100)  # a corrupted file is set aside
    assert run("lint", "migrations", "--format", "json", cwd=project).output == cold
    assert run("lint", "migrations", "--format", "json", cwd=project).output == cold
    assert (cache / ".gitignore").read_text().strip().endswith("*")


def test_unwritable_cache_is_not_an_error(project: Path, tmp_path: Path, monkeypatch):
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("x")
    monkeypatch.setenv("BGMIGRATE_CACHE_DIR", str(blocker / "cache"))
    res = run("lint", "migrations", cwd=project)
    assert res.exit_code == 1 and "require-concurrent-index-creation" in res.output


def test_rules_command_lists_and_shows(project: Path):
    res = run("rules")
    assert res.exit_code == 0 and "require-concurrent-index-creation" in res.output
    res = run("rules", "require-concurrent-index-creation")
    assert "## Bad" in res.output and "CREATE INDEX accounts_email_idx ON accounts (email);" in res.output
    assert run("rules", "nope").exit_code == 2


def test_console_script_never_prints_a_traceback(tmp_path: Path):
    """End to end through a real interpreter: bad input gives one line and exit 2."""
    proc = subprocess.run(
        [sys.executable, "-m", "migrator.cli", "lint", str(tmp_path / "missing")],
        capture_output=True,
        text=True,
        env={**os.environ, "BGMIGRATE_DEBUG": ""},
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("bgmigrate: error: path not found") and "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_cached_history_is_invalidated_by_an_earlier_file(tmp_path: Path, monkeypatch):
    """A file's result depends on the files before it: editing history re-lints what follows."""
    monkeypatch.setenv("BGMIGRATE_CACHE_DIR", str(tmp_path / "cache"))
    m = tmp_path / "m"
    write(m / "0001_t.sql", "CREATE TABLE t (c varchar(10));")
    write(m / "0002_widen.sql", "SET lock_timeout = '1s';\nALTER TABLE t ALTER COLUMN c TYPE varchar(20);")

    def phase_of_last() -> str:
        return json.loads(run("lint", str(m), "--format", "json").output)["statements"][-1]["phase"]

    assert phase_of_last() == "expand"
    assert phase_of_last() == "expand"  # from the cache
    write(m / "0001_t.sql", "CREATE TABLE t (c int);")
    assert phase_of_last() == "breaking"  # int -> varchar: blue reads a different kind of value


def test_explicit_files_are_put_in_natural_order(tmp_path: Path):
    for name in ("V10__b.sql", "V2__a.sql"):
        write(tmp_path / name, f"SELECT '{name}';")
    res = run("lint", str(tmp_path / "V10__b.sql"), str(tmp_path / "V2__a.sql"), "--format", "json")
    files = [s["file"].rsplit("/", 1)[-1] for s in json.loads(res.output)["statements"]]
    assert files == ["V2__a.sql", "V10__b.sql"]


def test_pre_commit_hook_manifest_is_valid():
    from pre_commit.clientlib import load_manifest

    (hook,) = load_manifest(str(Path(__file__).parents[2] / ".pre-commit-hooks.yaml"))
    assert hook["id"] == "bgmigrate-lint"
    assert hook["entry"] == "bgmigrate lint" and hook["types"] == ["sql"] and hook["require_serial"]
