"""The annotated fixture corpus: every statement's phase and findings match its ``-- expect:`` line.

Each directory under ``fixtures/`` (``postgres/``, ``mysql/``) is one migration history: its
``.sql`` files are linted in natural order (``0002`` before ``0010``) against one shared schema,
so a later file sees the tables an earlier one created as existing tables that blue uses. Each
file is linted with its own settings (the ``-- fixture:`` header), which ``lint_sources`` cannot
do (it takes one ``Settings`` for the whole history), so :func:`lint_history` drives
``FileLinter`` / ``RuleSet`` / ``Schema`` directly, the way ``lint_sources`` does.

The annotation format is documented in ``fixtures/README.md``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from functools import cache
from pathlib import Path

import pytest

from migrator.config import Settings
from migrator.facts.locks import LOCK_FACTS
from migrator.lint.analysis import analyze_one
from migrator.lint.classify import PHASES
from migrator.lint.engine import FileLinter, Finding, RuleSet, StatementResult
from migrator.schema.model import Schema
from migrator.sources.sqlfiles import discover
from migrator.sql.split import split_statements

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
DIALECTS = {"postgres": "postgres", "mysql": "mysql"}  # directory -> dialect
MINIMUM_STATEMENTS = {"postgres": 150, "mysql": 40}

_EXPECT = re.compile(r"^--\s*expect:\s*(?P<phase>[a-z]+)\s*(?:\[(?P<rules>[^\]]*)\])?\s*$")
_EXPECT_LOOSE = re.compile(r"^\s*--\s*expect\b", re.IGNORECASE)
_HEADER = re.compile(r"^--\s*fixture:\s*(?P<body>.*)$")
_RULE_ID = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")
_SETTING_FIELDS = {f.name: f for f in fields(Settings)}
_BOOL_SETTINGS = {"assume_in_transaction", "lock_timeout_from_runner"}
_STR_SETTINGS = {"target_version"}


class FixtureError(Exception):
    """A malformed fixture file: reported as a test failure, with file:line."""


# ---- parsing the annotations ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Expectation:
    phase: str
    rules: frozenset[str]
    line: int  # line of the ``-- expect:`` comment


@dataclass(slots=True)
class FixtureStatement:
    file: str  # path relative to fixtures/
    index: int  # statement index in its file (the engine's Statement.index)
    line: int
    end_line: int
    sql: str
    expect: Expectation | None


@dataclass(slots=True)
class FixtureFile:
    path: Path
    name: str  # path relative to fixtures/, used as the unit and in reports
    dialect: str
    settings: Settings
    statements: list[FixtureStatement] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def parse_header(name: str, text: str, dialect: str) -> Settings:
    """Settings for one file: the dialect's defaults plus its ``-- fixture:`` header."""
    settings = Settings(dialect=dialect, cache=False)
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    m = _HEADER.match(first)
    if m is None:
        return settings
    for item in filter(None, (part.strip() for part in m.group("body").split(","))):
        key, sep, value = (s.strip() for s in item.partition("="))
        attr = key.replace("-", "_")
        if not sep or attr not in _SETTING_FIELDS:
            raise FixtureError(f"{name}:1: bad fixture header item {item!r} (want key=value, key a Settings field)")
        if attr in _BOOL_SETTINGS:
            if value.lower() not in ("true", "false"):
                raise FixtureError(f"{name}:1: {key} must be true or false, got {value!r}")
            setattr(settings, attr, value.lower() == "true")
        elif attr in _STR_SETTINGS:
            setattr(settings, attr, value)
        else:
            raise FixtureError(f"{name}:1: header key {key!r} is not supported in fixtures")
    settings.version  # noqa: B018 - validates target_version
    return settings


def parse_expectation(name: str, line: int, text: str) -> Expectation:
    m = _EXPECT.match(text.strip())
    if m is None:
        raise FixtureError(
            f"{name}:{line}: malformed annotation {text.strip()!r} (want '-- expect: <phase> [rule, ...]')"
        )
    phase = m.group("phase")
    if phase not in PHASES:
        raise FixtureError(f"{name}:{line}: unknown phase {phase!r} (one of {', '.join(PHASES)})")
    rules = [r.strip() for r in (m.group("rules") or "").split(",") if r.strip()]
    for rule in rules:
        if not _RULE_ID.match(rule):
            raise FixtureError(f"{name}:{line}: malformed rule id {rule!r}")
    if len(set(rules)) != len(rules):
        raise FixtureError(f"{name}:{line}: a rule is listed twice in {text.strip()!r}")
    return Expectation(phase, frozenset(rules), line)


def load_fixture_file(path: Path, dialect: str) -> FixtureFile:
    name = path.relative_to(FIXTURES).as_posix()
    text = path.read_bytes().decode("utf-8")
    ff = FixtureFile(path, name, dialect, Settings(dialect=dialect, cache=False))
    try:
        ff.settings = parse_header(name, text, dialect)
    except FixtureError as err:
        ff.errors.append(str(err))
    used_lines: set[int] = set()
    for index, raw in enumerate(split_statements(text, dialect)):
        found: list[Expectation] = []
        for comment in raw.comments:
            for offset, line_text in enumerate(comment.text.splitlines()):
                if _EXPECT_LOOSE.match(line_text):
                    try:
                        found.append(parse_expectation(name, comment.line + offset, line_text))
                    except FixtureError as err:
                        ff.errors.append(str(err))
                    used_lines.add(comment.line + offset)
        if len(found) > 1:
            ff.errors.append(f"{name}:{raw.line}: statement has {len(found)} '-- expect:' annotations")
        ff.statements.append(
            FixtureStatement(name, index, raw.line, raw.end_line, raw.sql, found[-1] if found else None)
        )
    # an annotation that precedes no statement (end of file) would silently check nothing
    for number, line_text in enumerate(text.splitlines(), start=1):
        if _EXPECT_LOOSE.match(line_text) and number not in used_lines:
            inside = any(st.line <= number <= st.end_line for st in ff.statements)
            if not inside:
                ff.errors.append(f"{name}:{number}: annotation is not followed by a statement")
    return ff


@cache
def load_corpus(directory: str) -> tuple[FixtureFile, ...]:
    root = FIXTURES / directory
    if not root.is_dir():
        return ()
    return tuple(load_fixture_file(p, DIALECTS[directory]) for p in discover([root], FIXTURES))


# ---- linting a history with per-file settings ---------------------------------------------------------


@dataclass(slots=True)
class FileOutcome:
    results: dict[int, StatementResult]  # statement index -> result
    findings: list[Finding]
    problem: str | None = None  # unreadable file


def lint_history(files: tuple[FixtureFile, ...]) -> dict[str, FileOutcome]:
    """Lint ``files`` in order as one history, each with its own settings.

    Mirrors ``migrator.lint.engine.lint_sources`` but builds a ``RuleSet`` per file's settings while
    the ``Schema`` (the replayed history) is shared by all files.
    """
    schema = Schema()
    rulesets: dict[str, RuleSet] = {}
    out: dict[str, FileOutcome] = {}
    for ff in files:
        settings = ff.settings
        rules = rulesets.setdefault(settings.fingerprint(), RuleSet(settings))
        analyzed = analyze_one(ff.path.read_bytes(), settings.dialect)
        if isinstance(analyzed, str):
            out[ff.name] = FileOutcome({}, [], analyzed)
            continue
        linter = FileLinter(ff.name, analyzed, schema, settings, rules)
        linter.run()
        out[ff.name] = FileOutcome(
            {r.statement.index: r for r in linter.results},
            sorted(linter.findings, key=lambda f: (f.line, f.column, f.rule)),
        )
    return out


@cache
def linted(directory: str) -> dict[str, FileOutcome]:
    return lint_history(load_corpus(directory))


def attribute(
    findings: list[Finding], results: dict[int, StatementResult]
) -> tuple[dict[int, list[Finding]], list[Finding]]:
    """Map each finding to the statement whose span holds it.

    A finding that sits in the comments before a statement (suppression findings point at the
    ignore comment) belongs to that statement. Findings after the last statement are orphans.
    """
    spans = sorted(
        ((r.statement.line, r.statement.column), (r.statement.end_line, r.statement.end_column), i)
        for i, r in results.items()
    )
    by_statement: dict[int, list[Finding]] = {}
    orphans: list[Finding] = []
    for f in findings:
        pos = (f.line, f.column)
        owner = next((i for _start, end, i in spans if pos <= end), None)
        if owner is None:
            orphans.append(f)
        else:
            by_statement.setdefault(owner, []).append(f)
    return by_statement, orphans


# ---- the tests ------------------------------------------------------------------------------------


def _statement_params() -> Iterator[object]:
    for directory in DIALECTS:
        for ff in load_corpus(directory):
            for st in ff.statements:
                yield pytest.param(directory, st, id=f"{st.file}:{st.line}")


def _sql_excerpt(sql: str, limit: int = 600) -> str:
    text = sql if len(sql) <= limit else sql[:limit] + " ..."
    return "\n".join("    " + line for line in text.splitlines())


@pytest.mark.parametrize(("directory", "st"), list(_statement_params()))
def test_statement_matches_annotation(directory: str, st: FixtureStatement) -> None:
    if st.expect is None:
        pytest.fail(f"{st.file}:{st.line}: statement has no '-- expect:' annotation\n{_sql_excerpt(st.sql)}")
    outcome = linted(directory)[st.file]
    assert outcome.problem is None, f"{st.file}: {outcome.problem}"
    result = outcome.results.get(st.index)
    assert result is not None, f"{st.file}:{st.line}: the engine produced no result for this statement"
    by_statement, _ = attribute(outcome.findings, outcome.results)
    findings = by_statement.get(st.index, [])
    actual_rules = frozenset(f.rule for f in findings)
    phase_ok = result.phase == st.expect.phase
    rules_ok = actual_rules == st.expect.rules
    if phase_ok and rules_ok:
        return
    lines = [f"{st.file}:{st.line}:", _sql_excerpt(st.sql)]
    if not phase_ok:
        lines.append(f"  phase: expected {st.expect.phase}, actual {result.phase} ({result.reason})")
    if not rules_ok:
        lines.append(f"  rules: expected {sorted(st.expect.rules)}, actual {sorted(actual_rules)}")
        missing = sorted(st.expect.rules - actual_rules)
        extra = sorted(actual_rules - st.expect.rules)
        if missing:
            lines.append(f"    missing: {', '.join(missing)}")
        if extra:
            lines.append(f"    unexpected: {', '.join(extra)}")
    for f in findings:
        lines.append(f"    {f.file}:{f.line}:{f.column} {f.rule} ({f.severity}): {f.message}")
    lines.append(f"  lock: {result.lock}, rewrite: {result.rewrite}, algorithm: {result.algorithm}")
    pytest.fail("\n".join(lines), pytrace=False)


@pytest.mark.parametrize("directory", list(DIALECTS))
def test_fixture_files_are_well_formed(directory: str) -> None:
    files = load_corpus(directory)
    assert files, f"no fixtures in {FIXTURES / directory}"
    errors = [e for ff in files for e in ff.errors]
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("directory", list(DIALECTS))
def test_every_statement_is_annotated(directory: str) -> None:
    missing = [
        f"{st.file}:{st.line}: {st.sql.splitlines()[0][:80]}"
        for ff in load_corpus(directory)
        for st in ff.statements
        if st.expect is None
    ]
    assert not missing, "statements without '-- expect:':\n" + "\n".join(missing)


@pytest.mark.parametrize("directory", list(DIALECTS))
def test_corpus_is_large_enough(directory: str) -> None:
    count = sum(len(ff.statements) for ff in load_corpus(directory))
    assert count >= MINIMUM_STATEMENTS[directory], (
        f"{directory}: {count} statements, want >= {MINIMUM_STATEMENTS[directory]}"
    )


@pytest.mark.parametrize("directory", list(DIALECTS))
def test_every_phase_is_covered(directory: str) -> None:
    seen = {st.expect.phase for ff in load_corpus(directory) for st in ff.statements if st.expect}
    assert seen == set(PHASES), f"{directory}: no statement expects {sorted(set(PHASES) - seen)}"


@pytest.mark.parametrize("directory", list(DIALECTS))
def test_no_orphan_findings(directory: str) -> None:
    orphans = []
    for name, outcome in linted(directory).items():
        _, lost = attribute(outcome.findings, outcome.results)
        orphans += [f"{name}:{f.line}:{f.column} {f.rule}: {f.message}" for f in lost]
    assert not orphans, "findings after the last statement of their file:\n" + "\n".join(orphans)


def test_postgres_corpus_takes_every_lock_mode() -> None:
    """Every PostgreSQL lock mode of the lock-fact table is the strongest lock of some fixture statement."""
    modes = {f.lock for f in LOCK_FACTS if f.dialect == "postgres" and f.lock}
    taken = {r.lock for outcome in linted("postgres").values() for r in outcome.results.values() if r.lock}
    assert modes <= taken, f"no fixture statement takes {sorted(modes - taken)}"


def test_mysql_corpus_uses_every_algorithm() -> None:
    """Every MySQL online-DDL algorithm of the lock-fact table is used by some fixture statement."""
    algorithms = {f.algorithm for f in LOCK_FACTS if f.dialect == "mysql" and f.algorithm}
    used = {r.algorithm for outcome in linted("mysql").values() for r in outcome.results.values() if r.algorithm}
    assert algorithms <= used, f"no MySQL fixture statement uses {sorted(algorithms - used)}"
