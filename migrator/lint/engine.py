"""The lint engine: files in order, schema replay, phases, locks, rules, suppressions.

Usable without the CLI::

    from migrator.lint.engine import lint_paths
    from migrator.config import Settings
    result = lint_paths([Path("migrations")], Settings(dialect="postgres"))
    for f in result.findings: print(f.rule, f.line, f.message)
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import Settings
from ..facts.locks import EFFECT_COST, LOCK_STRENGTH, LockFact
from ..schema.model import Schema
from ..sources.model import SourceError, SourceFile
from ..sources.sqlfiles import read_sources
from ..sql.changes import Change, Op
from ..sql.statement import Statement
from . import suppress
from .catalog import load_rules
from .classify import Classified, classify, combine
from .results import Finding, LintResult, StatementResult
from .rule import Context, Hit, Rule

ENGINE_RULES = {
    "syntax": "syntax-error",
    "unparsed": "unparsed-statement",
    "unclassified": "unclassified-statement",
    "encoding": "invalid-encoding",
}


@dataclass(slots=True)
class HeldLock:
    table: str | None
    mode: str
    line: int


@dataclass(slots=True)
class TransactionState:
    """Where the runner's or the file's transaction stands."""

    active: bool = False
    explicit: bool = False
    begin_line: int | None = None
    locks: list[HeldLock] = field(default_factory=list)
    statements: int = 0
    local_lock_timeout: bool = False
    local_statement_timeout: bool = False


def strongest(locks: Iterable[LockFact | None]) -> LockFact | None:
    best: LockFact | None = None
    for lk in locks:
        if lk is None or lk.lock is None:
            continue
        if best is None or LOCK_STRENGTH.get(lk.lock, 0) > LOCK_STRENGTH.get(best.lock or "", 0):
            best = lk
    return best


class _Template(dict):
    def __missing__(self, key: str) -> str:
        return "?"


class RuleSet:
    """The enabled rules, indexed by the op they look at."""

    def __init__(self, settings: Settings) -> None:
        excluded = set(settings.exclude) | {r for r, s in settings.severity.items() if s == "off"}
        self.all = {r.id: r for r in load_rules()}
        self.enabled = [
            r for r in self.all.values() if r.id not in excluded and r.applies_to(settings.dialect, settings.version)
        ]
        self.by_op: dict[str, list[Rule]] = {}
        self.any_op: list[Rule] = []
        self.statement: list[Rule] = []
        self.file: list[Rule] = []
        for r in self.enabled:
            if r.scope == "change":
                if r.ops:
                    for op in r.ops:
                        self.by_op.setdefault(op, []).append(r)
                else:
                    self.any_op.append(r)
            elif r.scope == "statement":
                self.statement.append(r)
            elif r.scope == "file":
                self.file.append(r)
        self.enabled_ids = {r.id for r in self.enabled}
        self.severity = {r.id: settings.severity.get(r.id, r.severity) for r in self.all.values()}

    def for_change(self, op: str) -> list[Rule]:
        specific = self.by_op.get(op)
        if specific is None:
            return self.any_op
        return specific + self.any_op if self.any_op else specific


class FileLinter:
    """Lints one file's statements against a shared schema (the history so far)."""

    def __init__(
        self,
        display: str,
        statements: list[Statement],
        schema: Schema,
        settings: Settings,
        rules: RuleSet,
        unit: str | None = None,
        source: SourceFile | None = None,
    ):
        self.display = display
        self.source = source
        self.statements = statements
        self.schema = schema
        self.settings = settings
        self.rules = rules
        self.unit = unit or display  # the release this file belongs to: objects created in it are new
        self.findings: list[Finding] = []
        self.results: list[StatementResult] = []
        self.suppressions = suppress.collect(statements)
        self.tx = TransactionState(active=settings.assume_in_transaction)
        self.lock_timeout = settings.lock_timeout_from_runner
        self.statement_timeout = settings.lock_timeout_from_runner
        self.session: dict[str, str] = {}  # session settings seen so far (e.g. MySQL foreign_key_checks)

    # ---- findings --------------------------------------------------------------------------------
    def emit(self, rule: Rule | str, st: Statement | None, phase: str, hit: Any, fields: dict[str, Any]) -> None:
        rule_obj = rule if isinstance(rule, Rule) else self.rules.all.get(rule)
        rule_id = rule if isinstance(rule, str) else rule.id
        if rule_obj is None or rule_id not in self.rules.enabled_ids:
            return
        if st is not None:
            sup = suppress.find(self.suppressions, rule_id, st.index)
            if sup is not None:
                sup.used.add(rule_id)
                return
        message = rule_obj.message
        fix = rule_obj.fix
        if isinstance(hit, str):
            message = hit
        elif isinstance(hit, Hit):
            message = hit.message or message
            fix = hit.fix or fix
            if hit.fields:
                fields = {**fields, **hit.fields}
        template = _Template(fields)
        try:
            message = message.format_map(template)
            fix = fix.format_map(template)
        except (ValueError, IndexError, KeyError):
            pass
        if st is None:
            line = column = end_line = end_column = 1
        else:
            line, column, end_line, end_column = st.line, st.column, st.end_line, st.end_column
            if st.problem is not None and rule_id in ENGINE_RULES.values():
                line, column = st.problem.line, st.problem.column
                end_line, end_column = line, column
        self.findings.append(
            Finding(
                rule_id,
                self.rules.severity[rule_id],
                phase,
                self.display,
                line,
                column,
                end_line,
                end_column,
                message,
                rule_obj.why.strip(),
                fix.strip(),
            )
        )

    # ---- the walk --------------------------------------------------------------------------------
    def run(self) -> None:
        for st in self.statements:
            self._statement(st)
        self._file_rules()
        self._suppression_findings()

    def _fields(self, st: Statement, change: Change | None, c: Classified | None) -> dict[str, Any]:
        f: dict[str, Any] = {"statement": st.sql[:80], "file": self.display}
        if change is not None:
            f.update(change.attrs)
            f["table"] = change.table or change.get("type_name") or change.get("schema") or "?"
            f["column"] = change.column or "?"
            f["op"] = change.op
        if c is not None:
            f["lock"] = c.lock.lock if c.lock and c.lock.lock else "a lock"
            f["effect"] = c.lock.effect if c.lock else "none"
            f["algorithm"] = c.lock.algorithm if c.lock else None
            f["phase"] = c.phase
            f["reason"] = c.reason
            if c.type_change is not None:
                f["type_reason"] = c.type_change.reason
                t = self.schema.table(change.table) if change else None
                col = t.column(change.column) if t is not None and change is not None else None
                f["old_type"] = col.type if col is not None and col.type else "unknown"
        f["version"] = self.settings.version_text
        return f

    def _statement(self, st: Statement) -> None:
        settings = self.settings
        classified = [
            classify(ch, self.schema, self.unit, settings.dialect, settings.version, self.session) for ch in st.changes
        ]
        for ch, c in zip(st.changes, classified):
            if ch.op == Op.RENAME_TABLE and c.phase == "breaking" and self._compat_view_follows(st, ch.table):
                c.phase = "expand"
                c.reason = (
                    f"a view named {ch.table} is created in the same transaction: blue keeps reading and "
                    "writing through it (the expand half of the rename)"
                )
        phase = combine([c.phase for c in classified])
        reason = next((c.reason for c in classified if c.phase == phase), classified[0].reason if classified else "")
        if st.problem is not None:
            rule_id = ENGINE_RULES[st.problem.kind]
            self.emit(rule_id, st, phase, st.problem.message, {"message": st.problem.message})
        in_tx = self.tx.active and st.changes[0].op not in (Op.BEGIN,)
        base = Context(
            dialect=settings.dialect,
            version=settings.version,
            unit=self.unit,
            schema=self.schema,
            statement=st,
            statements=self.statements,
            change=None,
            statement_phase=phase,
            tx=self.tx,
            lock_timeout=self.lock_timeout or self.tx.local_lock_timeout,
            statement_timeout=self.statement_timeout or self.tx.local_statement_timeout,
            settings=settings,
            classified=list(zip(st.changes, classified)),
            source=self.source,
        )
        for ch, c in zip(st.changes, classified):
            _focus(base, ch, c)
            for rule in self.rules.for_change(ch.op):
                if rule.existing_tables_only and c.new_object:
                    continue
                self._run(rule, base, st, phase, ch, c)
        if st.changes:
            _focus(base, st.changes[0], classified[0])
            all_new = all(c.new_object for c in classified)
            for rule in self.rules.statement:
                if rule.existing_tables_only and all_new:
                    continue
                self._run(rule, base, st, phase, st.changes[0], classified[0])
        # record the statement
        locks = [c.lock for c in classified if not c.new_object]
        top = strongest(locks)
        effect = max(
            (c.lock.effect for c in classified if c.lock and not c.new_object),
            key=EFFECT_COST.get,
            default="none",
        )
        algorithm = next(
            (c.lock.algorithm for c in classified if c.lock and c.lock.algorithm and not c.new_object), None
        )
        self.results.append(
            StatementResult(
                self.display,
                st,
                phase,
                reason,
                top.lock if top else None,
                effect,
                in_tx,
                algorithm,
                [
                    {
                        "operation": ch.op,
                        "table": ch.table,
                        "column": ch.column,
                        "phase": c.phase,
                        "lock": c.lock.lock if c.lock and not c.new_object else None,
                        "rewrite": c.lock.effect if c.lock and not c.new_object else "none",
                    }
                    for ch, c in zip(st.changes, classified)
                ],
            )
        )
        # advance the state
        for ch in st.changes:
            self.schema.apply(ch, self.unit)
        self._advance_session(st, classified)

    def _compat_view_follows(self, st: Statement, old_name: str | None) -> bool:
        """A CREATE VIEW with the renamed table's old name later in the same transaction (PostgreSQL)."""
        if not old_name or self.settings.dialect != "postgres" or not self.tx.active:
            return False
        for later in self.statements[st.index + 1 :]:
            ops = {ch.op for ch in later.changes}
            if ops & {Op.COMMIT, Op.ROLLBACK}:
                return False
            if any(ch.op == Op.CREATE_VIEW and ch.table == old_name for ch in later.changes):
                return True
        return False

    def _run(self, rule: Rule, ctx: Context, st: Statement, phase: str, ch: Change, c: Classified) -> None:
        assert rule.func is not None
        try:
            out = rule.func(ctx)
        except Exception as err:  # a rule bug must not take the whole lint down
            out = Hit(f"internal error in rule {rule.id}: {type(err).__name__}: {err}")
        if not out:
            return
        hits = out if isinstance(out, list) else [out]
        for hit in hits:
            self.emit(rule, st, phase, None if hit is True else hit, self._fields(st, ch, c))

    def _advance_session(self, st: Statement, classified: list[Classified]) -> None:
        tx = self.tx
        ops = [ch.op for ch in st.changes]
        if Op.BEGIN in ops:
            if tx.active:
                return  # nested BEGIN: PostgreSQL warns and keeps the outer transaction
            tx.active = True
            tx.explicit = True
            tx.begin_line = st.line
            tx.locks = []
            tx.statements = 0
            return
        if Op.COMMIT in ops or Op.ROLLBACK in ops:
            tx.active = False
            tx.explicit = False
            tx.locks = []
            tx.local_lock_timeout = tx.local_statement_timeout = False
            return
        for ch in st.changes:
            if ch.op == Op.SET:
                setting = (ch.get("setting") or "").lower()
                value = ch.get("value")
                if value is not None:
                    self.session[setting] = str(value).strip().strip("'\"").lower()
                on = value is not None and str(value).strip().strip("'\"").lower() not in ("0", "default", "")
                local = bool(ch.get("local"))
                if setting in ("lock_timeout", "lock_wait_timeout", "innodb_lock_wait_timeout"):
                    if local and tx.active:
                        tx.local_lock_timeout = on
                    else:
                        self.lock_timeout = on
                elif setting in ("statement_timeout", "max_execution_time"):
                    if local and tx.active:
                        tx.local_statement_timeout = on
                    else:
                        self.statement_timeout = on
                elif setting == "all":
                    self.lock_timeout = self.statement_timeout = self.settings.lock_timeout_from_runner
        if self.settings.dialect == "mysql" and any(
            ch.op not in (Op.INSERT, Op.UPDATE, Op.DELETE, Op.SELECT, Op.SET) for ch in st.changes
        ):
            # MySQL commits implicitly around DDL.
            tx.active = tx.active and not tx.explicit and self.settings.assume_in_transaction
            tx.locks = []
            return
        if tx.active:
            tx.statements += 1
            for ch, c in zip(st.changes, classified):
                if c.lock and c.lock.lock and not c.new_object and (c.lock.blocks_writes or c.lock.blocks_reads):
                    tx.locks.append(HeldLock(ch.table, c.lock.lock, st.line))

    def _file_rules(self) -> None:
        if not self.statements:
            return
        ctx = Context(
            dialect=self.settings.dialect,
            version=self.settings.version,
            unit=self.unit,
            schema=self.schema,
            statement=None,
            statements=self.statements,
            change=None,
            tx=self.tx,
            settings=self.settings,
            source=self.source,
        )
        phases = {r.statement.index: r.phase for r in self.results}
        for rule in self.rules.file:
            assert rule.func is not None
            try:
                out = rule.func(ctx) or []
            except Exception as err:
                out = [(self.statements[-1], Hit(f"internal error in rule {rule.id}: {err}"))]
            for st, hit in out:
                self.emit(
                    rule,
                    st,
                    phases.get(st.index, "neutral"),
                    None if hit is True else hit,
                    self._fields(st, None, None),
                )

    def _suppression_findings(self) -> None:
        phases = {r.statement.index: r.phase for r in self.results}
        by_index = {s.index: s for s in self.statements}
        for sup in self.suppressions:
            st = by_index.get(sup.statement_index) if sup.statement_index is not None else None
            span = _Span(sup.line, sup.column)
            phase = phases.get(sup.statement_index if sup.statement_index is not None else -2, "neutral")
            if not sup.rules:
                self._emit_at("suppression-without-rule", span, phase, {"directive": sup.text})
                continue
            if not sup.reason:
                self._emit_at("suppression-without-reason", span, phase, {"rules": ", ".join(sup.rules)})
            for rule_id in sup.rules:
                if rule_id not in self.rules.all:
                    self._emit_at("unknown-rule-in-suppression", span, phase, {"rule": rule_id})
                elif sup.statement_index == -1:
                    self._emit_at(
                        "unused-suppression",
                        span,
                        phase,
                        {"rule": rule_id, "where": "no statement follows it directly"},
                    )
                elif rule_id not in sup.used and rule_id in self.rules.enabled_ids:
                    where = f"statement at line {st.line}" if st is not None else "this file"
                    self._emit_at("unused-suppression", span, phase, {"rule": rule_id, "where": where})

    def _emit_at(self, rule_id: str, span: _Span, phase: str, fields: dict[str, Any]) -> None:
        rule = self.rules.all.get(rule_id)
        if rule is None or rule_id not in self.rules.enabled_ids:
            return
        template = _Template(fields)
        self.findings.append(
            Finding(
                rule_id,
                self.rules.severity[rule_id],
                phase,
                self.display,
                span.line,
                span.column,
                span.line,
                span.column,
                rule.message.format_map(template),
                rule.why.strip(),
                rule.fix.format_map(template).strip(),
            )
        )


@dataclass(slots=True)
class _Span:
    line: int
    column: int


def _focus(ctx: Context, change: Change, c: Classified) -> None:
    """Point the statement's context at one of its changes (one Context per statement, not per change)."""
    ctx.change = change
    ctx.phase = c.phase
    ctx.reason = c.reason
    ctx.lock = c.lock
    ctx.type_change = c.type_change
    ctx.new_object = c.new_object


# ---- entry points --------------------------------------------------------------------------------


def _encoding_finding(rules: RuleSet, display: str, problem: str) -> list[Finding]:
    rule = rules.all.get("invalid-encoding")
    if rule is None or "invalid-encoding" not in rules.enabled_ids:
        return []
    severity = rules.severity["invalid-encoding"]
    return [Finding("invalid-encoding", severity, "breaking", display, 1, 1, 1, 1, problem, rule.why.strip(), "")]


def _finding_to_cache(f: Finding) -> list[Any]:
    return [f.rule, f.severity, f.phase, f.line, f.column, f.end_line, f.end_column, f.message, f.fix]


def _finding_from_cache(rules: RuleSet, file: str, row: list[Any]) -> Finding:
    rule, severity, phase, line, column, end_line, end_column, message, fix = row
    known = rules.all.get(rule)
    return Finding(
        rule,
        severity,
        phase,
        file,
        line,
        column,
        end_line,
        end_column,
        message,
        known.why.strip() if known else "",
        fix,
    )


def release_start(sources: list[SourceFile], since: str | None) -> int:
    """Index of the first migration of the release under review.

    ``since`` names the last migration *before* the release: an Alembic revision id (or a unique
    prefix of one), a file path as reports show it, or a file name. Without it every migration is
    its own release (index 0, and each file is its own unit).
    """
    if not since:
        return 0
    wanted = since.strip()
    exact = [
        i
        for i, s in enumerate(sources)
        if wanted in (s.revision, s.display, s.path.name, str(s.path)) or s.display.endswith("/" + wanted)
    ]
    if not exact and len(wanted) >= 4:
        exact = [i for i, s in enumerate(sources) if s.revision and s.revision.startswith(wanted)]
    if not exact:
        raise SourceError(f"--since {since}: no migration has that revision id, path or file name")
    if len(exact) > 1:
        names = ", ".join(sources[i].label for i in exact[:3])
        raise SourceError(f"--since {since} is ambiguous: it matches {names}")
    return exact[0] + 1


def _remap(source: SourceFile, findings: list[Finding], results: list[StatementResult]) -> None:
    """Point findings and statements of a rendered revision at the op calls that produced them."""
    if not source.origins:
        return
    for f in findings:
        f.line, f.end_line = source.origin_line(f.line), source.origin_line(f.end_line)
        f.column = f.end_column = 1
    for r in results:
        st = r.statement
        st.line, st.end_line = source.origin_line(st.line), source.origin_line(st.end_line)
        st.column = st.end_column = 1


def _note_findings(rules: RuleSet, source: SourceFile) -> list[Finding]:
    rule = rules.all.get("migration-not-rendered")
    if rule is None or rule.id not in rules.enabled_ids:
        return []
    severity = rules.severity[rule.id]
    out = []
    for note in source.notes:
        m = re.match(r"line (\d+): (.*)", note, re.DOTALL)  # the renderer's "line N: message"
        line, message = (int(m.group(1)), m.group(2)) if m else (1, note)
        out.append(
            Finding(
                rule.id,
                severity,
                "breaking",
                source.display,
                line,
                1,
                line,
                1,
                message,
                rule.why.strip(),
                rule.fix.strip(),
            )
        )
    return out


def _history_schema(
    history: list[SourceFile],
    settings: Settings,
    keys: list[str],
    content_keys: list[str],
    cache: Any,
    base: Schema | None,
) -> Schema:
    """The schema the history before the release built, from a cached snapshot when unchanged."""
    from ..schema import snapshot
    from .analysis import iter_analysis

    if not history:
        return snapshot.copy(base) if base is not None else Schema()
    key = keys[len(history) - 1]
    stored = cache.get_many("schema", [key]).get(key)
    if stored is not None:
        try:
            return snapshot.load(stored)
        except (KeyError, TypeError, ValueError, AttributeError):
            pass  # a damaged snapshot: replay
    schema = snapshot.copy(base) if base is not None else Schema()
    analyzed = iter_analysis(history, settings, content_keys[: len(history)], cache)
    for i, statements in enumerate(analyzed):  # to the generator's end: it caches what it analyzed
        source = history[i]
        if isinstance(statements, str):
            continue
        for st in statements:
            for change in st.changes:
                schema.apply(change, source.display)
    cache.put_many("schema", [(key, snapshot.dump(schema))])
    return schema


def lint_sources(
    sources: list[SourceFile],
    settings: Settings,
    base_schema: Schema | None = None,
    keep_history: bool = False,
) -> LintResult:
    """Lint migrations in order as one history, reporting the release under review.

    With ``settings.since`` the migrations up to it are history: replayed into the schema (from a
    cached snapshot when unchanged), never reported; everything after it is one release, so an
    object created anywhere in it is new to blue. Without it each migration is its own release.
    ``base_schema`` (a live database's schema) is the starting point instead of an empty one.
    ``keep_history`` keeps a copy of the schema the history built in ``result.history`` (the planner
    starts from it).

    Each release file's result is cached under a key chained over every earlier file (and the
    settings, rules, analyzer and base schema), so an unchanged prefix is neither parsed nor linted
    again: its results are read back, and its changes replayed into the schema only when a later
    file has to be linted.
    """
    from ..schema import snapshot
    from .analysis import chain_keys, iter_analysis
    from .cache import Cache

    rules = RuleSet(settings)
    cache = Cache.for_settings(settings)
    seed = "" if base_schema is None else snapshot.identity(base_schema)
    content_keys, keys = chain_keys(sources, settings, seed)
    boundary = release_start(sources, settings.since)
    schema = _history_schema(sources[:boundary], settings, keys, content_keys, cache, base_schema)
    history = snapshot.copy(schema) if keep_history else None
    release = sources[boundary:]
    release_keys = keys[boundary:]

    def unit_of(source: SourceFile) -> str:
        return "release" if settings.since else source.display

    findings: list[Finding] = []
    results: list[StatementResult] = []
    stored = cache.get_many("results", release_keys)
    cached: list[dict[str, Any]] = []
    for key in release_keys:
        entry = stored.get(key)
        if not isinstance(entry, dict) or not isinstance(entry.get("statements"), list):
            break
        cached.append(entry)
    try:
        for source, entry in zip(release, cached):
            results.extend(StatementResult.from_cache(source.display, s) for s in entry["statements"])
            findings.extend(_finding_from_cache(rules, source.display, f) for f in entry["findings"])
            for s in entry["statements"]:
                for change in s["statement"]["changes"]:
                    schema.apply(Change.from_json(change), unit_of(source))
    except (KeyError, TypeError, ValueError, IndexError):  # a damaged entry: lint the release again
        cached, results, findings = [], [], []
        schema = _history_schema(sources[:boundary], settings, keys, content_keys, cache, base_schema)
    rest = release[len(cached) :]
    if rest:
        analyzed = iter_analysis(rest, settings, content_keys[boundary + len(cached) :], cache)
        new_entries: list[tuple[str, dict[str, Any]]] = []
        for offset, statements in enumerate(analyzed):  # runs the generator to its end (it caches)
            source = rest[offset]
            if isinstance(statements, str):  # unreadable content
                file_findings = _encoding_finding(rules, source.display, statements)
                file_results: list[StatementResult] = []
            else:
                linter = FileLinter(source.display, statements, schema, settings, rules, unit_of(source), source)
                linter.run()
                file_findings = linter.findings
                file_results = linter.results
                _remap(source, file_findings, file_results)
            file_findings = sorted(
                file_findings + _note_findings(rules, source), key=lambda f: (f.line, f.column, f.rule)
            )
            findings.extend(file_findings)
            results.extend(file_results)
            entry = {
                "statements": [r.to_cache() for r in file_results],
                "findings": [_finding_to_cache(f) for f in file_findings],
            }
            new_entries.append((release_keys[len(cached) + offset], entry))
        cache.put_many("results", new_entries)
    cache.close()
    revisions = {s.display: s.revision for s in release if s.revision}
    return LintResult([s.display for s in release], results, findings, settings, revisions, history)


def lint_paths(paths: list[Path], settings: Settings, cwd: Path | None = None) -> LintResult:
    return lint_sources(read_sources(paths, cwd), settings)


def lint_text(text: str, settings: Settings, name: str = "<stdin>", history: list[str] | None = None) -> LintResult:
    """Lint SQL given as text; ``history`` holds earlier files' SQL, replayed first and not reported."""
    sources = [SourceFile(Path(f"<history-{i}>"), f"<history-{i}>", h.encode()) for i, h in enumerate(history or [])]
    sources.append(SourceFile(Path(name), name, text.encode()))
    result = lint_sources(sources, settings)
    result.findings = [f for f in result.findings if f.file == name]
    result.statements = [s for s in result.statements if s.file == name]
    result.files = [name]
    return result


__all__ = ["Finding", "LintResult", "StatementResult", "lint_paths", "lint_sources", "lint_text"]
