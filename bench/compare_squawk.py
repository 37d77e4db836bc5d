"""Which squawk findings does bgmigrate cover, and what does bgmigrate find that squawk does not?

Runs ``squawk --reporter json`` and ``bgmigrate lint --format json`` on the same files. A squawk
finding at (file, line) is *covered* when bgmigrate reports, on the statement whose span holds
that line, a finding of any rule that declares that squawk id in its ``squawk=(...)`` tuple.

Squawk rules are split into hazards (lock, rewrite, compatibility, transaction, timeout, parse)
and style/robustness preferences; both are reported, in separate sections. The exit code is 1
when an uncovered hazard finding has no documented decision: a rule file whose ``notes``
mention the squawk id together with "differs" or "decision", or a matching entry in
``bench/squawk_decisions.toml``; 2 when nothing could be compared or a tool could not run.

    python bench/compare_squawk.py                      # fixtures/postgres (one history)
    python bench/compare_squawk.py --corpus             # ... and a generated bench corpus
    python bench/compare_squawk.py path/to/a.sql dir/   # these files / directories

A directory is one migration history, linted in natural order, as the fixture tests do: a later
file sees the tables of an earlier one as existing tables. A file's ``-- fixture: key=value, ...``
first line (target-version, lock-timeout-from-runner, assume-in-transaction) sets both tools'
options for that file: squawk gets --pg-version and --assume-in-transaction, and when the runner
sets the timeouts its require-lock-timeout / require-statement-timeout rules are excluded.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import REPO_ROOT, bgmigrate_env, bgmigrate_module, squawk_path, tool_version
from corpus import DEFAULT_FILES, DEFAULT_SEED, generate

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DECISIONS_FILE = Path(__file__).resolve().parent / "squawk_decisions.toml"
DEFAULT_FIXTURES = REPO_ROOT / "fixtures" / "postgres"

# ---- what each squawk rule is about (squawk 2.70) ------------------------------------------------

STYLE = "style"
SQUAWK_KIND: dict[str, str] = {
    # style / robustness preferences: no lock, no rewrite, nothing the running version can notice
    "prefer-robust-stmts": STYLE,
    "prefer-text-field": STYLE,
    "ban-char-field": STYLE,
    "prefer-bigint-over-int": STYLE,
    "prefer-bigint-over-smallint": STYLE,
    "prefer-big-int": STYLE,
    "prefer-identity": STYLE,
    "prefer-timestamp-tz": STYLE,
    "prefer-timestamptz": STYLE,
    "require-table-schema": STYLE,
    "identifier-too-long": STYLE,
    "unused-ignore": STYLE,
    # locks taken the wrong way or held too long
    "require-concurrent-index-creation": "lock",
    "require-concurrent-index-deletion": "lock",
    "require-concurrent-reindex": "lock",
    "require-concurrent-partition-detach": "lock",
    "constraint-missing-not-valid": "lock",
    "adding-foreign-key-constraint": "lock",
    "disallowed-unique-constraint": "lock",
    "adding-not-nullable-field": "lock",
    "ban-create-domain-with-constraint": "lock",
    "ban-alter-domain-with-add-constraint": "lock",
    "prefer-repack": "lock",
    "require-lock-timeout": "timeout",
    "require-statement-timeout": "timeout",
    "require-timeout-settings": "timeout",
    # table rewrites
    "adding-field-with-default": "rewrite",
    "changing-column-type": "rewrite",
    "adding-serial-primary-key-field": "rewrite",
    # transaction structure
    "transaction-nesting": "transaction",
    "ban-uncommitted-transaction": "transaction",
    "ban-concurrent-index-creation-in-transaction": "transaction",
    # what the running version (blue) can notice
    "adding-required-field": "compat",
    "renaming-column": "compat",
    "renaming-table": "compat",
    "renaming-object": "compat",
    "ban-drop-column": "compat",
    "ban-drop-table": "compat",
    "ban-drop-not-null": "compat",
    "ban-drop-default": "compat",
    "ban-drop-constraint": "compat",
    "ban-drop-database": "compat",
    "ban-truncate-cascade": "compat",
    "require-enum-value-ordering": "compat",
    # squawk could not parse the statement
    "syntax-error": "parse",
}
ALIASES = {"prefer-timestamptz": "prefer-timestamp-tz"}  # declared name -> the name squawk reports
DEPRECATED = {"require-timeout-settings": "require-lock-timeout and require-statement-timeout"}
# squawk ids that are not lint rules, matched to bgmigrate's engine rules without a declaration
IMPLICIT = {"syntax-error": {"syntax-error", "unparsed-statement"}}
TIMEOUT_RULES = ("require-lock-timeout", "require-statement-timeout")
_HEADER = re.compile(r"^--\s*fixture:\s*(?P<body>.*)$")


def kind_of(squawk_id: str) -> str:
    if squawk_id in SQUAWK_KIND:
        return SQUAWK_KIND[squawk_id]
    if squawk_id.startswith("ban-"):
        return "compat"  # squawk's ban-* rules guard what running clients rely on
    return "compat?"  # not classified here: counted as a hazard (fail safe)


# ---- data --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileSettings:
    target_version: str
    lock_timeout_from_runner: bool = False
    assume_in_transaction: bool = False

    def bgmigrate_flags(self) -> list[str]:
        return [
            "--dialect",
            "postgres",
            "--target-version",
            self.target_version,
            "--lock-timeout-from-runner" if self.lock_timeout_from_runner else "--no-lock-timeout-from-runner",
            "--assume-in-transaction" if self.assume_in_transaction else "--no-assume-in-transaction",
        ]

    def squawk_flags(self) -> list[str]:
        # squawk 2.70 reads --pg-version=11 as older than 11.0: always pass major.minor
        version = self.target_version if "." in self.target_version else f"{self.target_version}.0"
        flags = [f"--pg-version={version}"]
        if self.assume_in_transaction:
            flags.append("--assume-in-transaction")
        if self.lock_timeout_from_runner:
            flags.append(f"--exclude={','.join(TIMEOUT_RULES)}")
        return flags

    def label(self) -> str:
        parts = [f"pg {self.target_version}"]
        if self.lock_timeout_from_runner:
            parts.append("timeouts from runner")
        if self.assume_in_transaction:
            parts.append("in transaction")
        return ", ".join(parts)


@dataclass
class BgStatement:
    line: int
    end_line: int
    sql: str
    operation: str
    table: str | None
    lock: str | None
    rewrite: str
    changes: list[tuple[str, str | None, str | None]]  # (operation, table, column)
    phase: str = ""

    def covers(self, line: int) -> bool:
        return self.line <= line <= self.end_line


@dataclass
class BgFinding:
    rule: str
    line: int
    end_line: int
    message: str


@dataclass
class SqFinding:
    file: Path
    line: int  # 1-based
    rule: str
    message: str


@dataclass
class FileResult:
    statements: list[BgStatement] = field(default_factory=list)
    findings: list[BgFinding] = field(default_factory=list)
    error: str | None = None

    def statement_at(self, line: int) -> BgStatement | None:
        return next((st for st in self.statements if st.covers(line)), None)

    def findings_on(self, st: BgStatement) -> list[BgFinding]:
        return [f for f in self.findings if f.line <= st.end_line and f.end_line >= st.line]


_CREATES = {"create_table", "create_table_as", "create_view", "create_type", "create_domain", "create_schema"}
_KIND = r"(?:TABLE|VIEW|MATERIALIZED\s+VIEW|DOMAIN|TYPE|INDEX|SEQUENCE)"
_NAME = r"([\w.\"]+)"
_CREATED_NAME = re.compile(
    rf"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?(?:UNIQUE\s+)?{_KIND}\s+(?:CONCURRENTLY\s+)?(?:IF\s+NOT\s+EXISTS\s+)?{_NAME}",
    re.IGNORECASE,
)
_TARGET_NAME = re.compile(
    rf"^\s*(?:ALTER|DROP)\s+{_KIND}\s+(?:CONCURRENTLY\s+)?(?:IF\s+EXISTS\s+)?{_NAME}", re.IGNORECASE
)
_RENAMED_TO = re.compile(rf"\bRENAME\s+TO\s+{_NAME}", re.IGNORECASE)
_ADDED_CONSTRAINT = re.compile(rf"\bADD\s+CONSTRAINT\s+{_NAME}", re.IGNORECASE)
_DROPPED_CONSTRAINT = re.compile(rf"\bDROP\s+CONSTRAINT\s+(?:IF\s+EXISTS\s+)?{_NAME}", re.IGNORECASE)


def _norm(name: str) -> str:
    return name.replace('"', "").lower()


def created_earlier(result: FileResult, st: BgStatement) -> bool:
    """The statement works on a table, column, index, view, type or constraint its own file created earlier."""
    names: set[str] = set()
    columns: set[tuple[str, str]] = set()
    constraints: set[str] = set()
    for s in result.statements:
        if s.line >= st.line:
            break
        names |= {_norm(t) for op, t, _c in s.changes if op in _CREATES and t}
        columns |= {(_norm(t), _norm(c)) for op, t, c in s.changes if op == "add_column" and t and c}
        m = _CREATED_NAME.search(s.sql)
        if m:
            names.add(_norm(m.group(1)))
        constraints |= {_norm(m.group(1)) for m in _ADDED_CONSTRAINT.finditer(s.sql)}
        target, renamed = _TARGET_NAME.search(s.sql), _RENAMED_TO.search(s.sql)
        if target and renamed and _norm(target.group(1)) in names:
            names.add(_norm(renamed.group(1)))
    if st.table and _norm(st.table) in names:
        return True
    if any(_norm(t) in names or (_norm(t), _norm(c or "")) in columns for _op, t, c in st.changes if t):
        return True
    if any(_norm(m.group(1)) in constraints for m in _DROPPED_CONSTRAINT.finditer(st.sql)):
        return True
    target = _TARGET_NAME.search(st.sql)
    return bool(target and _norm(target.group(1)) in names)


_DIRECTIVE = re.compile(r"bgmigrate:\s*(ignore(?:-file)?)\s*\[([^\]]*)\]", re.IGNORECASE)
_LINES: dict[Path, list[str]] = {}


def suppressed_rules(path: Path, result: FileResult, st: BgStatement) -> set[str]:
    """bgmigrate rules that the file's ignore directives silence for this statement."""
    if path not in _LINES:
        try:
            _LINES[path] = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            _LINES[path] = []
    lines = _LINES[path]
    before = max((s.end_line for s in result.statements if s.end_line < st.line), default=0)
    rules: set[str] = set()
    for number, text in enumerate(lines, start=1):
        m = _DIRECTIVE.search(text)
        if m and (m.group(1).lower() == "ignore-file" or before < number < st.line):
            rules |= {r.strip() for r in m.group(2).split(",") if r.strip()}
    return rules


@dataclass
class Decision:
    """Why bgmigrate deliberately reports no finding of its own for some findings of a squawk rule."""

    squawk_id: str
    reason: str
    source: str
    when: str = "always"  # always | object-created-in-same-file
    locks: list[str] | None = None  # bgmigrate's lock for the statement ("none": no lock)
    rewrites: list[str] | None = None  # bgmigrate's rewrite for the statement (none / scan / rewrite)
    operations: list[str] | None = None
    sql_matches: str | None = None
    sql_not_matches: str | None = None
    with_rules: list[str] | None = None  # bgmigrate reports one of these on the statement
    phases: list[str] | None = None  # bgmigrate's phase for the statement
    pg_versions: list[str] | None = None  # major target versions the file is linted for

    def applies(self, result: FileResult, st: BgStatement | None, version: str) -> bool:
        if self.pg_versions is not None and version.split(".")[0] not in self.pg_versions:
            return False
        filters = (self.locks, self.rewrites, self.operations, self.sql_matches, self.sql_not_matches)
        if st is None:
            return self.when == "always" and all(v is None for v in (*filters, self.with_rules, self.phases))
        if self.phases is not None and st.phase not in self.phases:
            return False
        if self.when == "object-created-in-same-file" and not created_earlier(result, st):
            return False
        if self.locks is not None and (st.lock or "none") not in self.locks:
            return False
        if self.rewrites is not None and st.rewrite not in self.rewrites:
            return False
        if self.operations is not None and st.operation not in self.operations:
            return False
        if self.sql_matches is not None and not re.search(self.sql_matches, st.sql, re.IGNORECASE | re.DOTALL):
            return False
        if self.sql_not_matches is not None and re.search(self.sql_not_matches, st.sql, re.IGNORECASE | re.DOTALL):
            return False
        return self.with_rules is None or any(b.rule in self.with_rules for b in result.findings_on(st))


# ---- inputs -------------------------------------------------------------------------------------


def natural_key(path: Path) -> list[Any]:
    return [int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", path.as_posix())]


def histories_for(paths: list[Path]) -> list[list[Path]]:
    """A directory is one history (its .sql files, natural order); a file is a history of its own."""
    out: list[list[Path]] = []
    for p in paths:
        if p.is_dir():
            files = sorted((q for q in p.rglob("*.sql") if q.is_file()), key=lambda q: natural_key(q.relative_to(p)))
            if files:
                out.append([f.resolve() for f in files])
        elif p.is_file():
            out.append([p.resolve()])
        else:
            print(f"compare: path not found: {p}", file=sys.stderr)
            raise SystemExit(2)
    return out


def file_settings(path: Path, default: FileSettings, use_headers: bool, notes: list[str]) -> FileSettings:
    if not use_headers:
        return default
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return default
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    m = _HEADER.match(first)
    if m is None:
        return default
    values: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in m.group("body").split(","))):
        key, _sep, value = (s.strip() for s in item.partition("="))
        attr = key.replace("-", "_")
        if attr == "target_version":
            values[attr] = value
        elif attr in ("lock_timeout_from_runner", "assume_in_transaction"):
            values[attr] = value.lower() == "true"
        else:
            notes.append(f"{_display(path)}: fixture header item {item!r} not understood, ignored")
    return FileSettings(
        values.get("target_version", default.target_version),
        values.get("lock_timeout_from_runner", default.lock_timeout_from_runner),
        values.get("assume_in_transaction", default.assume_in_transaction),
    )


# ---- running the tools ---------------------------------------------------------------------------


def squawk_line_base(squawk: str, work: Path) -> int:
    """What to add to squawk's JSON line numbers to get 1-based lines (squawk 2.x counts from 0)."""
    probe = work / "line-probe.sql"
    probe.write_text("-- probe\n\nCREATE INDEX probe_idx ON probe_t (c);\n", encoding="utf-8")
    proc = subprocess.run([squawk, "--reporter", "json", str(probe)], capture_output=True, check=False)
    try:
        for f in json.loads(proc.stdout):
            if f.get("rule_name") == "require-concurrent-index-creation":
                return 3 - int(f["line"])
    except (ValueError, KeyError, TypeError):
        pass
    raise SystemExit("compare: cannot calibrate squawk's line numbers (the probe gave no finding)")


def run_squawk(squawk: str, files: list[Path], flags: list[str], base: int, cwd: Path) -> list[SqFinding]:
    out: list[SqFinding] = []
    for chunk in _chunks(files, 500):
        argv = [squawk, "--reporter", "json", *flags, *map(str, chunk)]
        proc = subprocess.run(argv, capture_output=True, cwd=cwd, check=False)
        if proc.returncode not in (0, 1):
            raise SystemExit(f"compare: squawk exited {proc.returncode}: {proc.stderr.decode(errors='replace')}")
        for f in json.loads(proc.stdout or b"[]"):
            out.append(
                SqFinding((cwd / f["file"]).resolve(), int(f["line"]) + base, f["rule_name"], f.get("message") or "")
            )
    return out


def _chunks(items: list[Path], size: int) -> Iterable[list[Path]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def run_bgmigrate(files: list[Path], keep: set[Path], flags: list[str], env: dict[str, str], cwd: Path) -> dict:
    """Lint ``files`` as one history (in this order); return the results of the files in ``keep``."""
    argv = [*bgmigrate_module(), "lint", "--format", "json", "--fail-on", "never", *flags, *map(str, files)]
    proc = subprocess.run(argv, capture_output=True, env=env, cwd=cwd, check=False)
    results: dict[Path, FileResult] = {p: FileResult() for p in keep}
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip()
        message = f"`bgmigrate lint ...` exit {proc.returncode}" + (f": {err[-1500:]}" if err else "")
        for r in results.values():
            r.error = message
        return results
    try:
        report = json.loads(proc.stdout)
    except ValueError as err:
        for r in results.values():
            r.error = f"invalid JSON: {err}"
        return results
    for s in report.get("statements", []):
        key = (cwd / s["file"]).resolve()
        if key in results:
            changes = [(c.get("operation") or "", c.get("table"), c.get("column")) for c in s.get("changes", [])]
            results[key].statements.append(
                BgStatement(
                    s["line"],
                    s["end_line"],
                    s["sql"],
                    s.get("operation") or "",
                    s.get("table"),
                    s.get("lock"),
                    s.get("rewrite") or "none",
                    changes,
                    s.get("phase") or "",
                )
            )
    for f in report.get("findings", []):
        key = (cwd / f["file"]).resolve()
        if key in results:
            results[key].findings.append(BgFinding(f["rule"], f["line"], f["end_line"], f.get("message") or ""))
    return results


# ---- rules and decisions -----------------------------------------------------------------------


def load_catalog() -> list[Any]:
    sys.dont_write_bytecode = True  # leave no __pycache__ in rules/
    sys.path.insert(0, str(REPO_ROOT))
    from migrator.lint.catalog import load_rules

    return list(load_rules())


def declared_map(rules: list[Any]) -> dict[str, set[str]]:
    """bgmigrate rule id -> the squawk ids it covers (aliases resolved to the names squawk reports)."""
    out = {r.id: {ALIASES.get(s, s) for s in r.squawk} for r in rules}
    for sid, rule_ids in IMPLICIT.items():
        for rid in rule_ids:
            out.setdefault(rid, set()).add(sid)
    return out


_FILTER_KEYS = (
    "locks",
    "rewrites",
    "operations",
    "sql_matches",
    "sql_not_matches",
    "with_rules",
    "phases",
    "pg_versions",
)


def load_decisions(rules: list[Any], path: Path) -> tuple[dict[str, list[Decision]], list[str]]:
    """Decisions from rule notes and from the decisions file.

    The file holds ``[[decision]]`` tables: ``squawk`` (an id or a list of ids), ``reason``, an
    optional ``evidence``, and optional filters that all must hold for a finding to be decided:
    ``when = "object-created-in-same-file"``, ``locks``, ``rewrites``, ``operations``, ``phases``
    (bgmigrate's view of the statement), ``sql_matches`` / ``sql_not_matches`` (regular
    expressions), ``with_rules`` (bgmigrate reports one of these rules on the statement) and
    ``pg_versions`` (major versions the file is linted for). A top-level
    ``squawk-id = "reason"`` is a decision for every finding of that rule.
    """
    decisions: dict[str, list[Decision]] = defaultdict(list)
    problems: list[str] = []
    for r in rules:
        notes = (r.notes or "").lower()
        if "differs" not in notes and "decision" not in notes:
            continue
        for sid in sorted(set(re.findall(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)+", notes))):
            if sid in SQUAWK_KIND or sid in r.squawk:
                source = f"rules/{Path(r.path).name} notes"
                decisions[ALIASES.get(sid, sid)].append(Decision(sid, r.notes.strip(), source))
    if not path.is_file():
        return decisions, problems
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, OSError) as err:
        return decisions, [f"{path.name}: {err}"]
    entries: list[tuple[str, Any]] = []
    for key, value in data.items():
        if key == "decision" and isinstance(value, list):
            entries += [(f"{path.name}: decision {i + 1}", v) for i, v in enumerate(value)]
        elif isinstance(value, str):
            entries.append((f"{path.name}: {key}", {"squawk": key, "reason": value}))
        else:
            problems.append(f"{path.name}: {key}: expected [[decision]] tables or a reason string")
    for where, entry in entries:
        if not isinstance(entry, dict) or not str(entry.get("reason", "")).strip():
            problems.append(f"{where}: needs a non-empty reason; ignored")
            continue
        ids = entry.get("squawk")
        ids = [ids] if isinstance(ids, str) else ids
        unknown = set(entry) - {"squawk", "reason", "when", "evidence", *_FILTER_KEYS}
        when = entry.get("when", "always")
        if not ids or unknown or when not in ("always", "object-created-in-same-file"):
            problems.append(f"{where}: no squawk id, unknown keys {sorted(unknown)} or when = {when!r}; ignored")
            continue
        filters = {k: entry[k] for k in _FILTER_KEYS if k in entry}
        for sid in ids:
            decisions[ALIASES.get(sid, sid)].append(Decision(sid, str(entry["reason"]), path.name, when, **filters))
    return decisions, problems


def unknown_squawk_ids(squawk: str, ids: set[str]) -> list[str]:
    """Declared ids that this squawk does not accept as rule names."""
    bad: list[str] = []
    remaining = sorted(ids)
    while remaining:
        argv = [squawk, f"--exclude={','.join(remaining)}", "--version"]
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        match = re.search(r"invalid rule name (\S+)", proc.stderr)
        if proc.returncode == 0 or match is None:
            break
        bad.append(match.group(1))
        remaining = [r for r in remaining if r != match.group(1)]
    return bad


# ---- main -------------------------------------------------------------------------------------


def one_line(sql: str, width: int = 160) -> str:
    text = " ".join(sql.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", type=Path, help=f"files or directories (default: {DEFAULT_FIXTURES})")
    parser.add_argument("--corpus", action="store_true", help="also compare on a generated bench corpus")
    parser.add_argument("--corpus-files", type=int, default=DEFAULT_FILES)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--pg-version", default="15", help="default target version for both tools (%(default)s)")
    parser.add_argument("--no-fixture-headers", action="store_true", help="ignore '-- fixture:' first lines")
    parser.add_argument("--decisions", type=Path, default=DECISIONS_FILE)
    parser.add_argument("--all", action="store_true", help="list every uncovered style finding too")
    parser.add_argument("--json", type=Path, help="also write the comparison as JSON")
    args = parser.parse_args(argv)
    if args.corpus_files < 1:
        parser.error("--corpus-files must be at least 1")
    squawk = squawk_path()
    with tempfile.TemporaryDirectory(prefix="bgmigrate-compare-") as tmp:
        return compare(args, squawk, Path(tmp))


def compare(args: argparse.Namespace, squawk: str, work: Path) -> int:
    notes: list[str] = []
    default = FileSettings(args.pg_version)
    given = args.paths or ([DEFAULT_FIXTURES] if DEFAULT_FIXTURES.is_dir() else [])
    histories = histories_for(given)
    fixture_count = sum(len(h) for h in histories)
    if args.corpus:
        histories.append([p.resolve() for p in generate(work / "corpus", args.corpus_files, args.seed)])
    settings = {f: file_settings(f, default, not args.no_fixture_headers, notes) for h in histories for f in h}
    if not settings:
        where = ", ".join(map(str, given)) or str(DEFAULT_FIXTURES)
        print(f"compare: no .sql files under {where} (pass paths, or --corpus)", file=sys.stderr)
        return 2

    rules = load_catalog()
    declared = declared_map(rules)
    decisions, decision_problems = load_decisions(rules, args.decisions)
    notes += decision_problems
    base = squawk_line_base(squawk, work)
    print(f"squawk:    {tool_version([squawk, '--version'])} --reporter json (its lines + {base})")
    print(f"bgmigrate: {tool_version([*bgmigrate_module(), '--version'], bgmigrate_env())}, {len(rules)} rules")
    print(
        f"files:     {fixture_count} given"
        + (f" + {args.corpus_files} corpus files (seed {args.seed})" if args.corpus else "")
        + f", in {len(histories)} histories; settings: "
        + "; ".join(f"{n} x {s.label()}" for s, n in Counter(settings.values()).most_common())
    )

    # bgmigrate: per history and per distinct settings, the history up to the last file with them
    jobs: list[tuple[list[Path], set[Path], list[str]]] = []
    for history in histories:
        for s in dict.fromkeys(settings[f] for f in history):
            last = max(i for i, f in enumerate(history) if settings[f] == s)
            keep = {f for f in history if settings[f] == s}
            jobs.append((history[: last + 1], keep, s.bgmigrate_flags()))
    env = bgmigrate_env(work / "cache")
    results: dict[Path, FileResult] = {}
    with ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as pool:
        for res in pool.map(lambda j: run_bgmigrate(j[0], j[1], j[2], env, work), jobs):
            results.update(res)
    by_flags: dict[tuple[str, ...], list[Path]] = defaultdict(list)
    for f, s in settings.items():
        by_flags[tuple(s.squawk_flags())].append(f)
    sq_findings = [x for flags, files in by_flags.items() for x in run_squawk(squawk, files, list(flags), base, work)]

    # ---- squawk -> bgmigrate ----
    per_rule: dict[str, Counter[str]] = defaultdict(Counter)
    uncovered: list[tuple[SqFinding, BgStatement | None, FileResult, Decision | None]] = []
    sq_on_statement: dict[tuple[Path, int], set[str]] = defaultdict(set)
    for f in sq_findings:
        res = results.get(f.file, FileResult(error="not linted by bgmigrate"))
        st = res.statement_at(f.line)
        per_rule[f.rule]["squawk"] += 1
        if st is not None:
            sq_on_statement[(f.file, st.line)].add(f.rule)
        if st is not None and any(f.rule in declared.get(b.rule, ()) for b in res.findings_on(st)):
            per_rule[f.rule]["covered"] += 1
            continue
        if st is not None and any(f.rule in declared.get(r, ()) for r in suppressed_rules(f.file, res, st)):
            per_rule[f.rule]["suppressed"] += 1  # the migration's author silenced bgmigrate's equivalent
            continue
        version = settings[f.file].target_version if f.file in settings else args.pg_version
        decision = next((d for d in decisions.get(f.rule, []) if d.applies(res, st, version)), None)
        per_rule[f.rule]["decided" if decision else "open"] += 1
        uncovered.append((f, st, res, decision))

    declared_by: dict[str, list[str]] = defaultdict(list)
    for rid, sids in declared.items():
        for sid in sids:
            declared_by[sid].append(rid)
    hazard_rules = sorted((r for r in per_rule if kind_of(r) != STYLE), key=lambda r: (kind_of(r), r))
    style_rules = sorted(r for r in per_rule if kind_of(r) == STYLE)
    for title, group in (
        ("Squawk hazard rules (lock / rewrite / compat / transaction / timeout / parse)", hazard_rules),
        ("Squawk style / robustness rules", style_rules),
    ):
        print(f"\n## {title}\n")
        rows = [
            [
                r,
                kind_of(r),
                str(per_rule[r]["squawk"]),
                str(per_rule[r]["covered"]),
                str(per_rule[r]["suppressed"]),
                str(per_rule[r]["decided"]),
                str(per_rule[r]["open"]),
                ", ".join(sorted(declared_by.get(r, []))) or "-",
            ]
            for r in group
        ]
        headers = ["squawk rule", "kind", "squawk", "covered", "suppressed", "decided", "open", "bgmigrate rules"]
        print_table(headers, rows or [["(none)", "", "", "", "", "", "", ""]])

    open_hazards = [u for u in uncovered if kind_of(u[0].rule) != STYLE and u[3] is None]
    print("\n## Uncovered squawk findings (OPEN: hazard without a documented decision)\n")
    shown: Counter[str] = Counter()
    order = sorted(
        uncovered,
        key=lambda u: (kind_of(u[0].rule) == STYLE, u[3] is not None, u[0].rule, natural_key(u[0].file), u[0].line),
    )
    for f, st, res, decision in order:
        style = kind_of(f.rule) == STYLE
        shown[f.rule, style or decision is not None] += 1
        if (style or decision is not None) and not args.all and shown[f.rule, True] > 3:
            continue
        text = one_line(st.sql) if st is not None else _source_line(f.file, f.line)
        tag = "style" if style else ("decided" if decision else "OPEN")
        print(f"{_display(f.file)}:{f.line}: [{tag}] {f.rule}: {text}")
        if res.error:
            print(f"    bgmigrate failed: {res.error.splitlines()[0][:200]}")
        elif st is None:
            print("    bgmigrate has no statement covering this line")
        else:
            others = sorted({b.rule for b in res.findings_on(st)})
            print(f"    bgmigrate on this statement: {', '.join(others) or 'nothing'} (lock {st.lock or 'none'})")
        if decision is not None:
            print(f"    decision ({decision.source}): {one_line(decision.reason, 200)}")
    hidden = sum(max(0, n - 3) for (_rule, short), n in shown.items() if short)
    if hidden:
        print(f"... {hidden} more decided or style findings not listed (--all lists them)")

    # ---- bgmigrate -> squawk ----
    print("\n## What bgmigrate reports that squawk does not\n")
    reverse: dict[str, Counter[str]] = defaultdict(Counter)
    for path, res in results.items():
        for b in res.findings:
            st = next((s for s in res.statements if b.line <= s.end_line and b.end_line >= s.line), None)
            sq_rules = sq_on_statement.get((path, st.line), set()) if st is not None else set()
            reverse[b.rule]["total"] += 1
            if declared.get(b.rule, set()) & sq_rules:
                reverse[b.rule]["also squawk"] += 1
            elif not sq_rules:
                reverse[b.rule]["squawk silent"] += 1
    rows = [
        [
            rid,
            str(c["total"]),
            str(c["also squawk"]),
            str(c["total"] - c["also squawk"]),
            str(c["squawk silent"]),
            ", ".join(sorted(declared.get(rid, set()))) or "-",
        ]
        for rid, c in sorted(reverse.items(), key=lambda kv: (-(kv[1]["total"] - kv[1]["also squawk"]), kv[0]))
    ]
    headers = ["bgmigrate rule", "findings", "same hazard in squawk", "bgmigrate only", "squawk silent", "declares"]
    print_table(headers, rows or [["(none)", "", "", "", "", ""]])
    print("(bgmigrate only: squawk reports none of the rule's declared squawk ids on that statement;")
    print(" squawk silent: squawk reports nothing at all on it)")

    # ---- notes ----
    for bad in unknown_squawk_ids(squawk, {s for r in rules for s in r.squawk}):
        owners = [r.id for r in rules if bad in r.squawk]
        notes.append(f"{', '.join(owners)} declare squawk id '{bad}', which this squawk does not know")
    for old, new in DEPRECATED.items():
        owners = [r.id for r in rules if old in r.squawk]
        if owners:
            notes.append(
                f"{', '.join(owners)} declare '{old}', a deprecated squawk alias: squawk 2.70 reports {new}, "
                "and the alias is matched only literally here"
            )
    failed = sorted({res.error for res in results.values() if res.error})
    notes += [f"bgmigrate failed: {err.splitlines()[0][:300]}" for err in failed]
    if notes:
        print("\n## Notes\n")
        for n in notes:
            print(f"- {n}")

    total = len(sq_findings)
    covered = sum(c["covered"] for c in per_rule.values())
    hazards = sum(per_rule[r]["squawk"] for r in hazard_rules)
    hazards_cov = sum(per_rule[r]["covered"] for r in hazard_rules)
    decided = sum(per_rule[r]["decided"] for r in hazard_rules)
    suppressed = sum(per_rule[r]["suppressed"] for r in hazard_rules)
    style = sum(per_rule[r]["squawk"] for r in style_rules)
    style_cov = sum(per_rule[r]["covered"] for r in style_rules)
    print(
        f"\nsummary: squawk {total} findings, {covered} covered by bgmigrate on the same statement. "
        f"Hazards: {hazards_cov}/{hazards} covered, {suppressed} silenced by a bgmigrate ignore directive, "
        f"{decided} uncovered with a documented decision, "
        f"{len(open_hazards)} uncovered without one. Style: {style_cov}/{style} covered."
    )
    if args.json:
        payload = {
            "squawk": {r: dict(c) for r, c in per_rule.items()},
            "bgmigrate": {r: dict(c) for r, c in reverse.items()},
            "uncovered": [
                {
                    "file": _display(f.file),
                    "line": f.line,
                    "rule": f.rule,
                    "kind": kind_of(f.rule),
                    "statement": st.sql if st else None,
                    "operation": st.operation if st else None,
                    "lock": st.lock if st else None,
                    "bgmigrate": sorted({b.rule for b in res.findings_on(st)}) if st else [],
                    "decision": d.source if d else None,
                }
                for f, st, res, d in uncovered
            ],
            "notes": notes,
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    if failed and all(r.error for r in results.values()):
        return 2
    return 1 if open_hazards else 0


def _display(path: Path) -> str:
    try:
        return path.relative_to(REPO_ROOT).as_posix()
    except ValueError:
        parts = path.parts
        return "/".join(parts[parts.index("corpus") :]) if "corpus" in parts else str(path)


def _source_line(path: Path, line: int) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        return one_line(lines[line - 1]) if 0 < line <= len(lines) else "?"
    except OSError:
        return "?"


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    fmt = "  ".join(f"{{:{'<' if i in (0, len(headers) - 1) else '>'}{w}}}" for i, w in enumerate(widths))
    print(fmt.format(*headers).rstrip())
    print(fmt.format(*("-" * w for w in widths)).rstrip())
    for r in rows:
        print(fmt.format(*r).rstrip())


if __name__ == "__main__":
    sys.exit(main())
