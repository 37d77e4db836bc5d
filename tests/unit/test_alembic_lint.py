"""Lint results of the Alembic fixture projects: every finding at the file and line of its op call.

Each ``op`` call in the revision files of ``fixtures/alembic/`` is annotated, in the comment block
directly above it, with ``# expect: <phase> [rule, ...]`` (the format of ``fixtures/README.md``):
the phase of the statements it renders and the exact set of rules reported on them. Linted with
``lock_timeout_from_runner`` (Alembic projects usually set the timeouts in ``env.py``), so the
timeout rules do not drown the hazards the fixtures are about. ``BEGIN``/``COMMIT`` that bgmigrate
renders around a revision (at the ``def upgrade`` line) and around ``autocommit_block()`` are not
annotated.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections import defaultdict
from pathlib import Path

import pytest

from migrator.config import Settings
from migrator.lint.engine import lint_sources
from migrator.sources.alembic import load_alembic

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures" / "alembic"
PROJECTS = ["linear", "merge_heads", "expand_contract"]
_EXPECT = re.compile(r"^\s*#\s*expect:\s*(\w+)\s*(?:\[([^\]]*)\])?\s*$")


def annotations(project: Path) -> tuple[dict[tuple[str, int], tuple[str, frozenset[str]]], dict[tuple[str, int], int]]:
    """(file, op line) -> (phase, rules); and (file, comment line) -> the op line below it."""
    expected: dict[tuple[str, int], tuple[str, frozenset[str]]] = {}
    comment_owner: dict[tuple[str, int], int] = {}
    for path in sorted(project.rglob("versions/**/*.py")):
        rel = path.relative_to(project).as_posix()
        lines = path.read_text().splitlines()
        for n, text in enumerate(lines, 1):
            m = _EXPECT.match(text)
            if not m:
                continue
            target = n + 1
            while lines[target - 1].lstrip().startswith("#"):
                target += 1
            rules = frozenset(r.strip() for r in (m.group(2) or "").split(",") if r.strip())
            assert (rel, target) not in expected, f"{rel}:{n}: two annotations for one op call"
            expected[(rel, target)] = (m.group(1), rules)
            for c in range(n, target):
                comment_owner[(rel, c)] = target
    return expected, comment_owner


def lint(project: Path, dialect: str = "postgres", **settings):
    sources = load_alembic(project, dialect, project)
    return lint_sources(sources, Settings(cache=False, dialect=dialect, **settings))


@pytest.mark.parametrize("name", PROJECTS)
def test_fixture_findings_match_annotations(name: str):
    project = FIXTURES / name
    expected, comment_owner = annotations(project)
    assert expected, "no annotations"
    result = lint(project, lock_timeout_from_runner=True)
    phases: dict[tuple[str, int], set[str]] = defaultdict(set)
    for r in result.statements:
        if r.statement.sql in ("BEGIN", "COMMIT"):
            continue
        phases[(r.file, r.statement.line)].add(r.phase)
    found: dict[tuple[str, int], set[str]] = defaultdict(set)
    for f in result.findings:
        key = (f.file, comment_owner.get((f.file, f.line), f.line))
        found[key].add(f.rule)
    problems = []
    for key in sorted(set(expected) | set(phases) | set(found)):
        where = f"{key[0]}:{key[1]}"
        if key not in expected:
            problems.append(f"{where}: not annotated, phases {sorted(phases.get(key, ()))}, rules {sorted(found[key])}")
            continue
        phase, rules = expected[key]
        if key not in phases:
            problems.append(f"{where}: annotated but no statement maps to this line")
            continue
        if phases[key] != {phase}:
            problems.append(f"{where}: phase {sorted(phases[key])}, expected {phase}")
        if found.get(key, set()) != rules:
            got = found.get(key, set())
            problems.append(f"{where}: missing {sorted(rules - got)}, unexpected {sorted(got - rules)}")
    assert not problems, "\n".join(problems)


def test_expected_findings_at_op_lines():
    """The headline findings, spelled out: rule, revision file, line of the op call."""

    def hits(name: str) -> set[tuple[str, str, int]]:
        return {(f.rule, f.file, f.line) for f in lint(FIXTURES / name, lock_timeout_from_runner=True).findings}

    linear = hits("linear")
    assert ("require-concurrent-index-creation", "versions/0003_index_and_backfill.py", 19) in linear
    assert ("renaming-column", "versions/0004_rename_note.py", 19) in linear
    assert ("ban-drop-column", "versions/0005_drop_updated_by.py", 19) in linear
    # suppressed by the comment above the op call
    assert not any(r == "require-concurrent-index-creation" and line == 22 for r, _, line in linear)
    merge = hits("merge_heads")
    assert ("require-concurrent-index-creation", "versions/3b7e5a9c1d24_teams_name_index.py", 18) in merge
    assert ("set-not-null-tightening", "versions/a5c6d7e8f901_users_email_not_null.py", 21) in merge
    branches = hits("expand_contract")
    drop = ("versions/expand/6f7a8b9c0d1e_invoices_paid_at.py", 25)
    assert ("alembic-branch-discipline", *drop) in branches
    assert [(r, f, n) for r, f, n in branches if r == "alembic-branch-discipline"] == [
        ("alembic-branch-discipline", *drop)
    ]


def test_branch_discipline_message_names_revision_and_statement():
    result = lint(FIXTURES / "expand_contract")
    [finding] = [f for f in result.findings if f.rule == "alembic-branch-discipline"]
    assert "6f7a8b9c0d1e" in finding.message and "expand" in finding.message and "contract" in finding.message


def test_mysql_lints_the_same_projects():
    for name in PROJECTS:
        result = lint(FIXTURES / name, "mysql")
        assert result.statements, name
        assert all(f.file.startswith("versions/") and f.line > 1 for f in result.findings), name


def test_unrendered_code_is_a_finding(tmp_path: Path):
    project = tmp_path / "proj"
    shutil.copytree(FIXTURES / "linear", project)
    path = project / "versions" / "0005_drop_updated_by.py"
    path.write_text(
        path.read_text().replace(
            '    op.drop_column("orders", "updated_by")\n',
            '    op.drop_column("orders", "updated_by")\n    sa.inspect(op.get_bind()).get_columns("orders")\n',
        )
    )
    result = lint(project)
    notes = [f for f in result.findings if f.rule == "migration-not-rendered"]
    assert [f.file for f in notes] == ["versions/0005_drop_updated_by.py"]
    assert "reflection" in notes[0].message
    source_lines = path.read_text().splitlines()
    assert "get_bind()" in source_lines[notes[0].line - 1]  # the finding points at the call


def test_cli_lints_an_alembic_project(tmp_path: Path, monkeypatch):
    from typer.testing import CliRunner

    from migrator.cli import app

    monkeypatch.chdir(ROOT)
    res = CliRunner().invoke(app, ["lint", "examples/alembic", "--format", "json"], catch_exceptions=False)
    data = json.loads(res.output)
    assert res.exit_code == 1
    rules = {(f["rule"], f["file"].rsplit("/", 1)[-1], f["line"]) for f in data["findings"]}
    assert ("renaming-column", "d35b8f0e2c47_rename_email.py", 24) in rules
    assert ("require-concurrent-index-creation", "a91d3c5e7b02_index_orders_by_status.py", 25) in rules


def test_cli_bad_project_is_exit_2_with_one_line(tmp_path: Path, monkeypatch):
    from typer.testing import CliRunner

    from migrator.cli import app

    project = tmp_path / "proj"
    shutil.copytree(FIXTURES / "linear", project)
    (project / "versions" / "0006_broken.py").write_text(
        'revision = "6"\ndown_revision = "5a0e3d6f7b05"\n\ndef upgrade(:\n    pass\n'
    )
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(app, ["lint", "proj"], catch_exceptions=False)
    assert res.exit_code == 2
    err = (res.stderr if hasattr(res, "stderr") else res.output).strip()
    assert len(err.splitlines()) == 1 and "proj/versions/0006_broken.py:4" in err and "SyntaxError" in err
    assert "Traceback" not in res.output
    assert os.path.exists(project / "versions" / "0006_broken.py")


def test_concurrent_index_inside_alembics_transaction(tmp_path: Path):
    """Alembic runs a PostgreSQL revision in a transaction: CREATE INDEX CONCURRENTLY there fails
    at run time unless it sits in op.get_context().autocommit_block()."""
    project = tmp_path / "proj"
    shutil.copytree(FIXTURES / "linear", project)
    path = project / "versions" / "0002_add_order_status.py"
    text = path.read_text()
    path.write_text(text.replace("    with op.get_context().autocommit_block():\n", "    if True:\n"))
    line = next(n for n, t in enumerate(path.read_text().splitlines(), 1) if "op.create_index(" in t)
    hits = {(f.rule, f.line) for f in lint(project).findings if f.file == "versions/0002_add_order_status.py"}
    assert ("ban-concurrent-index-creation-in-transaction", line) in hits
    fixed = {(f.rule, f.line) for f in lint(FIXTURES / "linear").findings}
    assert not any(rule == "ban-concurrent-index-creation-in-transaction" for rule, _ in fixed)


def test_json_report_names_the_revision(monkeypatch):
    import json

    from typer.testing import CliRunner

    from migrator.cli import app

    monkeypatch.chdir(ROOT)
    res = CliRunner().invoke(app, ["lint", "--no-cache", "--format", "json", "fixtures/alembic/linear"])
    data = json.loads(res.output)
    revisions = {s["file"]: s.get("revision") for s in data["statements"]}
    assert all(revisions.values()) and len(set(revisions.values())) == len(revisions)
    assert all(f["revision"] == revisions[f["file"]] for f in data["findings"])
