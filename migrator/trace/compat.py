"""Prove blue's queries survive the release's expand, and green's work on the expanded schema.

The steps are the plan's ``expand`` and ``migrate`` steps (what ``bgmigrate expand`` runs before
green is deployed; a backfill runs as one UPDATE), or with ``as_written`` every statement of the
release in file order (what a pipeline that simply runs the migrations before deploying does).

Dynamic check, on the scratch database: every blue query is prepared and its generic plan explained
(``PREPARE``, then ``EXPLAIN EXECUTE`` under ``plan_cache_mode = force_generic_plan``: PostgreSQL
15 has no ``EXPLAIN (GENERIC_PLAN)``; nothing is executed) before the first step, then after each
step: a query that stops working is reported with the step that broke it and the server's error.
Green's queries are checked the same way once every step before the decommission gate ran.

Static check, on the schema model (sqlglot column qualification, :mod:`.references`): a blue query
must not use a table or column that a step before ``decommission-blue`` removes (a contract step
removing it is fine, and listed: blue must be gone first); a green query must not use anything any
later step (contract) removes.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..sql.changes import Op
from .observe import needs_own_transaction
from .queries import Query
from .references import Ref, references, removals, removed_by

if TYPE_CHECKING:
    from ..lint.results import LintResult
    from ..plan.model import Plan
    from ..schema.model import Schema
    from .scratch import ScratchDatabase

BEFORE_GATE = ("expand", "migrate", "as-written")
_CONTROL = {Op.BEGIN, Op.COMMIT, Op.ROLLBACK, Op.META_COMMAND}


@dataclass
class CompatStep:
    id: str
    stage: str
    origin: str
    sql: str
    statements: list[str]
    transactional: bool = True

    @property
    def before_gate(self) -> bool:
        """Runs while blue is live (before the decommission-blue gate)."""
        return self.stage in BEFORE_GATE

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "stage": self.stage, "origin": self.origin, "sql": self.sql}


@dataclass
class QueryResult:
    query: Query
    role: str  # blue | green
    status: str = "ok"  # ok | broken | invalid | skipped | unchecked
    error: str | None = None
    step: CompatStep | None = None  # the step after which it stopped working
    removed: list[tuple[str, CompatStep]] = field(default_factory=list)  # static, before the gate (blue) / later
    needs_decommission: list[tuple[str, CompatStep]] = field(default_factory=list)  # blue: removed by contract
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            **self.query.to_json(),
            "role": self.role,
            "status": self.status,
            "error": self.error,
            "broken_by": self.step.to_json() if self.step else None,
            "removed_references": [{"reference": r, "step": s.id, "stage": s.stage} for r, s in self.removed],
            "needs_decommission": [{"reference": r, "step": s.id} for r, s in self.needs_decommission],
            "note": self.note,
        }


@dataclass
class CompatReport:
    mode: str  # plan | as-written
    scratch: dict[str, Any]
    steps: list[CompatStep]
    blue: list[QueryResult]
    green: list[QueryResult]
    step_failure: tuple[CompatStep, str] | None = None
    left_out: int = 0  # pg_stat_statements entries that did not parse

    def findings(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []

        def add(rule: str, severity: str, r: QueryResult, message: str, step: CompatStep | None) -> None:
            out.append(
                {
                    "rule": rule,
                    "severity": severity,
                    "query": r.query.source,
                    "sql": r.query.sql,
                    "step": step.id if step else None,
                    "step_origin": step.origin if step else None,
                    "step_sql": step.sql if step else None,
                    "message": message,
                }
            )

        for r in self.blue:
            if r.status == "broken" and r.step is not None:
                add(
                    "blue-query-broken",
                    "error",
                    r,
                    f"blue query {r.query.source} fails after step {_step_name(r.step)}: {r.error}",
                    r.step,
                )
            elif r.status == "invalid":
                add(
                    "query-fails-before-release",
                    "warning",
                    r,
                    f"blue query {r.query.source} fails before the release, so it proves nothing: {r.error}",
                    None,
                )
            for ref, step in r.removed:
                if r.status == "broken" and r.step is step:
                    continue  # the dynamic finding says it already
                add(
                    "blue-query-removed-reference",
                    "error",
                    r,
                    f"blue query {r.query.source} uses {ref}, which step {_step_name(step)} removes while blue "
                    "is still live (before decommission-blue)",
                    step,
                )
        for r in self.green:
            if r.status == "broken":
                add(
                    "green-query-broken",
                    "error",
                    r,
                    f"green query {r.query.source} fails on the expanded schema: {r.error}",
                    r.step,
                )
            for ref, step in r.removed:
                add(
                    "green-query-removed-reference",
                    "error",
                    r,
                    f"green query {r.query.source} uses {ref}, which step {_step_name(step)} ({step.stage}) removes",
                    step,
                )
        if self.step_failure is not None:
            step, error = self.step_failure
            out.append(
                {
                    "rule": "compat-step-failed",
                    "severity": "error",
                    "query": None,
                    "sql": None,
                    "step": step.id,
                    "step_origin": step.origin,
                    "step_sql": step.sql,
                    "message": f"step {_step_name(step)} failed on the scratch database: {error}; the queries "
                    "were checked up to the step before it",
                }
            )
        return out

    @property
    def failed(self) -> bool:
        return any(f["severity"] == "error" for f in self.findings())


def _step_name(step: CompatStep) -> str:
    return step.id if step.origin in ("", step.id) else f"{step.id} ({step.origin})"


def _split(sql: str) -> list[str]:
    from ..sql.split import split_statements

    return [r.sql for r in split_statements(sql, "postgres") if r.sql.strip() and not r.meta_command]


def steps_from_plan(plan: Plan) -> list[CompatStep]:
    from .tracing import step_statements

    return [
        CompatStep(s.id, s.stage, s.origin, s.sql, step_statements(s), s.transactional)
        for s in plan.steps
        if not s.is_gate
    ]


def steps_as_written(result: LintResult) -> list[CompatStep]:
    steps = []
    for r in result.statements:
        ops = {c["operation"] for c in r.changes}
        if ops & _CONTROL:
            continue
        where = f"{r.file}:{r.statement.line}"
        sql = r.statement.sql
        steps.append(CompatStep(where, "as-written", where, sql, [sql], not needs_own_transaction(sql)))
    return steps


class _Checker:
    """PREPARE + EXPLAIN EXECUTE of the generic plan, on one connection to the scratch database."""

    NAME = "bgm_compat_query"

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        conn.execute("SET plan_cache_mode = force_generic_plan")
        conn.execute("SET statement_timeout = '30s'")

    def check(self, q: Query) -> str | None:
        import psycopg

        conn = self.conn
        try:
            conn.execute(f"PREPARE {self.NAME} AS {q.text}")
        except psycopg.Error as err:
            return _message(err)
        try:
            row = conn.execute(
                "SELECT cardinality(parameter_types) FROM pg_prepared_statements WHERE name = %s", (self.NAME,)
            ).fetchone()
            count = int(row[0] or 0) if row else 0
            args = f"({', '.join(['NULL'] * count)})" if count else ""
            conn.execute(f"EXPLAIN EXECUTE {self.NAME}{args}")
        except psycopg.Error as err:
            return _message(err)
        finally:
            with suppress(psycopg.Error):
                conn.execute(f"DEALLOCATE {self.NAME}")
        return None


def _message(err: BaseException) -> str:
    from ..schema.live.errors import one_line

    diag = getattr(err, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    return primary or one_line(err)


def _apply(conn: Any, step: CompatStep) -> str | None:
    import psycopg

    try:
        if step.transactional:
            with conn.transaction():
                for sql in step.statements:
                    conn.execute(sql)
        else:
            for sql in step.statements:
                conn.execute(sql)
    except psycopg.Error as err:
        return _message(err)
    return None


def run_compat(
    scratch: ScratchDatabase,
    steps: list[CompatStep],
    base: Schema,
    blue: list[Query],
    green: list[Query],
    *,
    mode: str,
) -> CompatReport:
    """Apply the steps before the decommission gate on the scratch database, checking the queries."""
    report = CompatReport(
        mode,
        scratch.describe(),
        steps,
        [QueryResult(q, "blue") for q in blue],
        [QueryResult(q, "green") for q in green],
    )
    for r in report.blue + report.green:
        if not r.query.preparable:
            r.status, r.note = "skipped", "not a query PREPARE accepts (SET, DDL, transaction control): not checked"
    live = [s for s in steps if s.before_gate]
    conn = scratch.connect()
    try:
        checker = _Checker(conn)
        alive = [r for r in report.blue if r.status == "ok"]
        for r in alive:
            error = checker.check(r.query)
            if error is not None:
                r.status, r.error = "invalid", error
        alive = [r for r in alive if r.status == "ok"]
        for step in live:
            error = _apply(conn, step)
            if error is not None:
                report.step_failure = (step, error)
                break
            for r in alive:
                error = checker.check(r.query)
                if error is not None:
                    r.status, r.error, r.step = "broken", error, step
            alive = [r for r in alive if r.status == "ok"]
        for r in report.green:
            if r.status != "ok":
                continue
            if report.step_failure is not None:
                r.status, r.note = "unchecked", "a step before it failed"
                continue
            error = checker.check(r.query)
            if error is not None:
                r.status, r.error = "broken", error
                r.step = live[-1] if live else None
    finally:
        conn.close()
    _static(report, base)
    return report


def _static(report: CompatReport, base: Schema) -> None:
    steps = report.steps
    states, models = removals(base, [s.sql for s in steps])
    gate = sum(1 for s in steps if s.before_gate)  # steps run in stage order: the live ones come first

    def check(r: QueryResult, start: int) -> None:
        if r.status == "skipped":
            return
        refs, readable = references(r.query.text, models[start])
        if not readable:
            r.note = (r.note + "; " if r.note else "") + "sqlglot cannot read it: no static check"
            return
        for ref in sorted(refs, key=lambda x: (x[0], x[1] or "")):
            index = removed_by(ref, states, start)
            if index is None:
                continue
            step = steps[index]
            name = _ref_name(ref)
            if r.role == "blue" and not step.before_gate:
                r.needs_decommission.append((name, step))
            else:
                r.removed.append((name, step))

    for r in report.blue:
        check(r, 0)
    for r in report.green:
        check(r, gate)


def _ref_name(ref: Ref) -> str:
    table, column = ref
    return f"{table}.{column}" if column else f"table {table}"
