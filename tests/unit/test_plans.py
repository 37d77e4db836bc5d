"""Plans of the releases in fixtures/plans/ match their golden plan.json / plan.md / error.txt."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from migrator.config import Settings
from migrator.lint.engine import lint_sources
from migrator.plan.builder import build_plan
from migrator.plan.markdown import render
from migrator.plan.model import Plan, PlanError
from migrator.sources import read_sources

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
CASES = sorted(p for p in (ROOT / "fixtures" / "plans").iterdir() if p.is_dir())
REGEN = bool(os.environ.get("BGMIGRATE_REGEN_GOLDEN"))


def make_plan(case: Path) -> Plan:
    options = tomllib.loads((case / "case.toml").read_text())
    settings = Settings(cache=False, **options)
    sources = read_sources([case / "migrations"], cwd=case)
    result = lint_sources(sources, settings, keep_history=True)
    return build_plan(result, settings)


def _check(path: Path, text: str) -> None:
    if REGEN:
        path.write_text(text)
    assert path.exists(), f"{path} missing: run with BGMIGRATE_REGEN_GOLDEN=1 and review it"
    assert text == path.read_text(), f"{path} differs from the plan built now"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_plan_matches_golden(case: Path):
    try:
        plan = make_plan(case)
    except PlanError as err:
        _check(case / "error.txt", str(err) + "\n")
        assert not (case / "plan.json").exists()
        return
    plan.tool_version = "golden"  # the golden files do not change with each release of bgmigrate
    plan.seal()
    _check(case / "plan.json", plan.to_json())
    _check(case / "plan.md", render(plan))
    assert not (case / "error.txt").exists()


def test_plan_hash_detects_edits():
    plan = make_plan(ROOT / "fixtures" / "plans" / "simple")
    text = plan.to_json()
    assert Plan.from_json(text).sha256 == plan.sha256
    data = json.loads(text)
    data["steps"][0]["sql"] = "DROP TABLE accounts;"
    with pytest.raises(PlanError, match="edited after it was made"):
        Plan.from_json(json.dumps(data))
    with pytest.raises(PlanError, match="not a version 1"):
        Plan.from_json('{"version": 2}')
    with pytest.raises(PlanError, match="invalid JSON"):
        Plan.from_json("{nope")


def test_stages_are_in_order_with_gates_between():
    plan = make_plan(ROOT / "fixtures" / "plans" / "simple")
    stages = [s.stage for s in plan.steps]
    order = ["expand", "migrate", "deploy-green", "switch", "decommission-blue", "contract"]
    assert [s for s in order if s in stages] == sorted(set(stages), key=order.index)
    assert stages == sorted(stages, key=order.index)
    assert stages.count("deploy-green") == stages.count("switch") == stages.count("decommission-blue") == 1


def _cli(cwd: Path, *args: str):
    from typer.testing import CliRunner

    from migrator.cli import app

    old = Path.cwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(app, list(args), catch_exceptions=False)
    finally:
        os.chdir(old)


def test_plan_command_writes_the_plan_and_the_review_document(tmp_path: Path):
    case = ROOT / "fixtures" / "plans" / "rename_column"
    res = _cli(
        case,
        "plan",
        "migrations",
        "--since",
        "0001_base.sql",
        "-o",
        str(tmp_path / "plan.json"),
        "--markdown",
        str(tmp_path / "plan.md"),
    )
    assert res.exit_code == 0, res.output
    plan = Plan.from_json((tmp_path / "plan.json").read_text())
    assert [s.stage for s in plan.steps if s.recipe == "rename_column"][:2] == ["expand", "expand"]
    assert "## Gate: switch" in (tmp_path / "plan.md").read_text()
    ok = _cli(tmp_path, "verify-plan", "plan.json")
    assert ok.exit_code == 0 and "ok (sha256" in ok.output


def test_plan_command_refuses_with_exit_2(tmp_path: Path):
    for case, message in (("conflict", "reordering conflict"), ("no_recipe", "cannot be planned")):
        res = _cli(
            ROOT / "fixtures" / "plans" / case,
            "plan",
            "migrations",
            "--since",
            "0001_base.sql",
            "-o",
            str(tmp_path / f"{case}.json"),
        )
        assert res.exit_code == 2 and message in res.output, res.output
        assert not (tmp_path / f"{case}.json").exists()  # nothing written
    (tmp_path / "junk.json").write_text("{}")
    res = _cli(tmp_path, "verify-plan", "junk.json")
    assert res.exit_code == 2 and "not a version 1 bgmigrate plan" in res.output
    res = _cli(tmp_path, "verify-plan", "missing.json")
    assert res.exit_code == 2 and "cannot read missing.json" in res.output


@pytest.mark.parametrize(
    ("later", "refused"),
    [
        ("CREATE INDEX CONCURRENTLY a_email ON accounts (email);", True),
        ("CREATE INDEX CONCURRENTLY a_lower ON accounts (lower(email));", True),
        ("CREATE INDEX CONCURRENTLY a_part ON accounts (id) WHERE email IS NOT NULL;", True),
        ("ALTER TABLE accounts ADD CONSTRAINT a_email_key UNIQUE (email);", True),
        ("ALTER TABLE accounts ADD CONSTRAINT a_email_len CHECK (length(email) < 300) NOT VALID;", True),
        ("CREATE INDEX CONCURRENTLY a_note ON accounts (note);", False),
        ("CREATE INDEX CONCURRENTLY a_part ON accounts (note) WHERE note <> 'email';", False),
        ("ALTER TABLE accounts ADD CONSTRAINT a_note_len CHECK (length(note) < 300) NOT VALID;", False),
    ],
)
def test_an_index_or_constraint_on_a_column_retyped_earlier_in_the_release(
    tmp_path: Path, later: str, refused: bool
) -> None:
    """change_column_type replaces the column in contract: what a later statement builds on it in expand
    would be built on the old column and dropped with it, so the release needs a boundary."""
    (tmp_path / "migrations").mkdir()
    (tmp_path / "migrations" / "0001_base.sql").write_text(
        "CREATE TABLE accounts (id bigint PRIMARY KEY, email text, note text);\n"
    )
    (tmp_path / "migrations" / "0002_release.sql").write_text(
        f"ALTER TABLE accounts ALTER COLUMN email TYPE varchar(300);\n{later}\n"
    )
    (tmp_path / "case.toml").write_text('since = "0001_base.sql"\n')
    if not refused:
        assert any(s.recipe == "change_column_type" for s in make_plan(tmp_path).steps)
        return
    with pytest.raises(PlanError, match=r"(?s)reordering conflict.*the same column accounts\.email"):
        make_plan(tmp_path)
