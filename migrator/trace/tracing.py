"""Trace a release (its statements as written) or a plan (its steps) on a scratch database.

Statements run in order, each in its own transaction (see :mod:`.observe`), each compared with its
static classification (:mod:`.compare`). Transaction control (``BEGIN``/``COMMIT``) in the files is
not replayed: every statement is traced on its own, which is what the per-statement lock report
needs (a file's transaction would hold each lock until its end: lint's
``multiple-locks-in-transaction`` says so statically). Session settings (``SET``) run as written.
The first statement that fails stops the trace: the ones after it are listed as not run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..config import LATEST
from ..lint.rule import parse_version
from ..sql.changes import Op
from .compare import FAILED_RULE, RULE, Mismatch, compare
from .observe import Observation, Tracer

if TYPE_CHECKING:
    from ..lint.results import LintResult
    from ..plan.model import Plan, Step
    from .scratch import ScratchDatabase

_CONTROL = {Op.BEGIN, Op.COMMIT, Op.ROLLBACK}


@dataclass
class TracedItem:
    id: str  # file:line, or a plan step id
    sql: str
    operation: str
    static_lock: str | None
    static_rewrite: str
    file: str | None = None
    line: int | None = None
    stage: str | None = None
    status: str = "traced"  # traced | ran (session setting) | skipped | failed | not-run
    note: str | None = None
    observation: Observation | None = None
    mismatches: list[Mismatch] = field(default_factory=list)
    static_also: dict[str, str] = field(default_factory=dict)  # relation -> its own static lock (partitions)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "file": self.file,
            "line": self.line,
            "stage": self.stage,
            "sql": self.sql,
            "operation": self.operation,
            "status": self.status,
            "note": self.note,
            "static": {"lock": self.static_lock, "rewrite": self.static_rewrite, "also": self.static_also},
            "observed": self.observation.to_json() if self.observation else None,
            "mismatches": [m.to_json() for m in self.mismatches],
        }


@dataclass
class TraceReport:
    scratch: dict[str, Any]
    target_version: str
    items: list[TracedItem] = field(default_factory=list)
    kind: str = "release"  # release | plan

    def findings(self) -> list[dict[str, Any]]:
        out = []
        for item in self.items:
            where = {"id": item.id, "file": item.file, "line": item.line, "stage": item.stage}
            for m in item.mismatches:
                out.append({"rule": RULE, "severity": "error", **where, "kind": m.kind, "message": m.message})
            if item.status == "failed" and item.observation is not None:
                out.append(
                    {
                        "rule": FAILED_RULE,
                        "severity": "error",
                        **where,
                        "kind": "failed",
                        "message": f"failed on the scratch database: {item.observation.error}",
                    }
                )
        return out

    @property
    def failed(self) -> bool:
        return bool(self.findings())

    def by_id(self) -> dict[str, TracedItem]:
        return {item.id: item for item in self.items}


def _statements(sql: str) -> list[str]:
    from ..sql.split import split_statements

    return [r.sql for r in split_statements(sql, "postgres") if r.sql.strip() and not r.meta_command]


def _trace(tracer: Tracer, item: TracedItem, statements: list[str], *, transactional: bool | None, table: str | None):
    obs = tracer.run(statements, transactional=transactional, table=table, op=item.operation)
    item.observation = obs
    if obs.status != "ok":
        item.status = "failed"
        return
    item.mismatches = compare(item.static_lock, item.static_rewrite, obs, item.static_also)


def _partition_locks(statements: list[str], version: tuple[int, int, int]) -> dict[str, str]:
    """The partitions that ATTACH / DETACH PARTITION statements name, with the rule table's lock on each."""
    from ..facts.locks import lookup
    from ..sql.analyze import analyze_text

    out: dict[str, str] = {}
    for text in statements:
        for st in analyze_text(text, "postgres"):
            for change in st.changes:
                if change.op not in (Op.ATTACH_PARTITION, Op.DETACH_PARTITION) or not change.get("partition"):
                    continue
                fact = lookup(change.op, "concurrently" if change.get("concurrently") else "", "postgres", version)
                if fact is not None and fact.partition_lock:
                    out[str(change.get("partition"))] = fact.partition_lock
    return out


def trace_release(result: LintResult, scratch: ScratchDatabase) -> TraceReport:
    """Trace the release's statements as written, against the lint engine's classification."""
    report = TraceReport(scratch.describe(), result.settings.version_text)
    tracer = Tracer(scratch)
    try:
        unit: str | None = None
        stopped = False
        for r in result.statements:
            st = r.statement
            ops = {c["operation"] for c in r.changes} or {st.operation}
            item = TracedItem(f"{r.file}:{st.line}", st.sql, st.operation, r.lock, r.rewrite, file=r.file, line=st.line)
            report.items.append(item)
            this_unit = "release" if result.settings.since else r.file
            if this_unit != unit:
                tracer.mark_existing()
                unit = this_unit
            if stopped:
                item.status, item.note = "not-run", "an earlier statement failed"
            elif ops & _CONTROL:
                item.status, item.note = "skipped", "transaction control: every statement is traced in its own"
            elif Op.META_COMMAND in ops:
                item.status, item.note = "skipped", "a psql meta-command, not SQL"
            elif ops <= {Op.SET}:
                error = tracer.execute(st.sql)
                item.status, item.note = ("ran", "session setting") if error is None else ("failed", error)
                if error is not None:
                    item.observation = Observation(status="failed", error=error)
                    stopped = True
            else:
                item.static_also = _partition_locks([st.sql], result.settings.version)
                _trace(tracer, item, [st.sql], transactional=None, table=st.table)
                stopped = item.status == "failed"
    finally:
        tracer.close()
    return report


def step_statements(step: Step) -> list[str]:
    """What a plan step runs, as statements; a backfill as one UPDATE of the whole table."""
    if step.backfill is not None:
        b = step.backfill
        return [f"UPDATE {b.table} SET {b.assignments} WHERE {b.condition}"]
    return _statements(step.sql)


def trace_plan(plan: Plan, scratch: ScratchDatabase) -> TraceReport:
    """Trace a plan's steps in order (gates skipped), against the lock and rewrite the plan states."""
    report = TraceReport(scratch.describe(), plan.target_version, kind="plan")
    tracer = Tracer(scratch)
    try:
        tracer.mark_existing()
        stopped = False
        for step in plan.steps:
            if step.is_gate:
                continue
            file, _, line = step.origin.partition(" ")[0].rpartition(":")
            truncate = any(s.lstrip()[:8].upper() == "TRUNCATE" for s in step_statements(step))
            item = TracedItem(
                step.id,
                step.sql,
                Op.TRUNCATE if truncate else (step.recipe or step.phase),
                step.lock,
                step.rewrite,
                file=file or None,
                line=int(line) if line.isdigit() else None,
                stage=step.stage,
            )
            report.items.append(item)
            if stopped:
                item.status, item.note = "not-run", "an earlier step failed"
                continue
            item.static_also = _partition_locks(
                step_statements(step), parse_version(plan.target_version, missing=LATEST)
            )
            _trace(tracer, item, step_statements(step), transactional=step.transactional, table=step.table)
            stopped = item.status == "failed"
    finally:
        tracer.close()
    return report
