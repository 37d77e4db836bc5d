"""The runner's output: run reports, release status (text and JSON, ``"version": 1``) and the
``--dry-run`` script, which is exactly what a run would execute, in order, with its timeouts."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from ..facts.locks import SHARE_UPDATE_EXCLUSIVE
from ..plan.model import Plan, Step
from .backfill import bounds_sql
from .durations import format_duration, parse_duration
from .state import DONE, PENDING, Release, StepState

OUTPUT_VERSION = 1


def _ts(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def report_json(report: Any, *, exit_code: int, error: str | None = None) -> str:
    data = {
        "version": OUTPUT_VERSION,
        "command": report.command if report else None,
        "release": report.release if report else None,
        "status": report.status if report else None,
        "exit_code": exit_code,
        "error": error,
        "steps": [
            {
                "id": s.id,
                "stage": s.stage,
                "status": s.status,
                "attempts": s.attempts,
                "seconds": s.seconds,
                "rows": s.rows,
                "note": s.note,
            }
            for s in (report.steps if report else [])
        ],
    }
    return json.dumps(data, indent=2) + "\n"


def error_json(command: str, exit_code: int, error: str, step_id: str | None = None) -> str:
    data = {"version": OUTPUT_VERSION, "command": command, "exit_code": exit_code, "error": error, "step": step_id}
    return json.dumps(data, indent=2) + "\n"


def report_text(report: Any) -> str:
    ran = [s for s in report.steps if s.note != "already done"]
    skipped = len(report.steps) - len(ran)
    extra = f", {skipped} already done" if skipped else ""
    message = f" ({report.message})" if report.message else ""
    return f"release {report.release}: {report.status}{message}: {len(ran)} step(s) {report.command}{extra}\n"


def _step_dict(s: StepState) -> dict[str, Any]:
    return {
        "id": s.step_id,
        "stage": s.stage,
        "status": s.status,
        "attempts": s.attempts,
        "statements_done": s.statements_done,
        "backfill_rows": s.backfill_rows,
        "backfill_last_key": s.backfill_last_key,
        "started_at": _ts(s.started_at),
        "finished_at": _ts(s.finished_at),
        "duration_ms": s.duration_ms,
        "ran_by": s.ran_by,
        "error": s.error,
        "checksum": s.checksum,
    }


def status_json(releases: list[Release], events: dict[str, list[tuple[Any, ...]]]) -> str:
    data = {
        "version": OUTPUT_VERSION,
        "releases": [
            {
                "name": r.name,
                "status": r.status,
                "plan_sha256": r.plan_sha256,
                "dialect": r.dialect,
                "created_at": _ts(r.created_at),
                "created_by": r.created_by,
                "expanded_at": _ts(r.expanded_at),
                "switched_at": _ts(r.switched_at),
                "decommissioned_at": _ts(r.decommissioned_at),
                "contracted_at": _ts(r.contracted_at),
                "aborted_at": _ts(r.aborted_at),
                "steps": [_step_dict(s) for s in sorted(r.steps.values(), key=lambda s: s.position)],
                "events": [
                    {"at": _ts(at), "kind": kind, "actor": actor, "detail": detail}
                    for at, kind, actor, detail in events.get(r.name, [])
                ],
            }
            for r in releases
        ],
    }
    return json.dumps(data, indent=2) + "\n"


def status_text(releases: list[Release]) -> str:
    if not releases:
        return "no release is recorded in this database\n"
    lines: list[str] = []
    for r in releases:
        gates = ", ".join(
            f"{label} {at:%Y-%m-%d %H:%M:%S}"
            for label, at in (
                ("expanded", r.expanded_at),
                ("switched", r.switched_at),
                ("decommissioned", r.decommissioned_at),
                ("contracted", r.contracted_at),
                ("aborted", r.aborted_at),
            )
            if at
        )
        lines.append(f"release {r.name}: {r.status} (plan {r.plan_sha256[:12]}{'; ' + gates if gates else ''})")
        for s in sorted(r.steps.values(), key=lambda s: s.position):
            detail = []
            if s.attempts:
                detail.append(f"{s.attempts} attempt(s)")
            if s.duration_ms is not None and s.status == DONE:
                detail.append(format_duration(s.duration_ms / 1000))
            if s.backfill_rows:
                detail.append(f"{s.backfill_rows:,} rows, last key {s.backfill_last_key}")
            if s.statements_done and s.status != DONE:
                detail.append(f"{s.statements_done} statement(s) done")
            lines.append(f"  {s.step_id:<14} {s.stage:<9} {s.status:<8} {', '.join(detail)}")
            if s.error and s.status != DONE:
                lines.append(f"  {'':<14} error: {s.error}")
    return "\n".join(lines) + "\n"


# ---- dry run -------------------------------------------------------------------------------------


def _timeouts(step: Step, lock_override: float | None, dialect: str, *, statement: bool = True) -> str:
    overridden = lock_override is not None and step.lock_timeout and step.lock != SHARE_UPDATE_EXCLUSIVE
    lock = lock_override if overridden else parse_duration(step.lock_timeout)
    stmt = parse_duration(step.statement_timeout) if statement else None
    if dialect == "postgres":
        return f"SET lock_timeout = '{_ms(lock)}'; SET statement_timeout = '{_ms(stmt)}';"
    wait = max(1, int(-(-(lock or 0) // 1))) if lock else 31536000
    return (
        f"SET SESSION lock_wait_timeout = {wait}, SESSION innodb_lock_wait_timeout = {wait};"
        f" -- MariaDB also: SET SESSION max_statement_time = {stmt or 0:g};"
    )


def _ms(seconds: float | None) -> str:
    return "0" if not seconds else f"{max(1, round(seconds * 1000))}ms"


def dry_run_script(
    plan: Plan,
    stages: tuple[str, ...],
    release: Release | None,
    *,
    command: str,
    release_name: str,
    lock_timeout: float | None = None,
    batch_size: int | None = None,
    undo: bool = False,
    notes: list[str] | None = None,
) -> str:
    """The SQL a run would execute, in order, as a commented script (nothing is executed)."""
    out = [
        f"-- bgmigrate {command} --dry-run: release {release_name}, plan sha256 {plan.sha256}",
        f"-- {'state: ' + release.status if release else 'no state recorded yet: every step is pending'}",
    ]
    out += [f"-- note: {n}" for n in notes or []]
    steps = [s for s in plan.steps if not s.is_gate and s.stage in stages]
    if undo:
        steps = list(reversed(steps))
    shown = 0
    for step in steps:
        state = release.steps.get(step.id) if release else None
        status = state.status if state else PENDING
        if not undo and status == DONE:
            out.append(f"\n-- {step.id}: already done, skipped")
            continue
        if undo and (state is None or status == PENDING):
            continue
        shown += 1
        sql = step.abort if undo else step.sql
        where = "in a transaction" if step.transactional else "outside a transaction"
        out.append(f"\n-- {step.id} ({step.stage}{', ' + step.recipe if step.recipe else ''}; {status}; {where})")
        if step.backfill is not None and not undo:
            b = step.backfill
            size = batch_size or b.batch_size
            out.append(f"-- backfill in batches of {size} on {b.key}, each batch in its own transaction:")
            out.append(_timeouts(step, lock_timeout, plan.dialect, statement=False))
            bounds = bounds_sql(type(b)(**{**b.__dict__, "batch_size": size}), after=True)
            out.append(f"-- per batch: {bounds};  -- the next batch's first and last key")
            if state and state.backfill_last_key:
                out.append(f"-- resumes after key {state.backfill_last_key} ({state.backfill_rows:,} rows done)")
            out.append("BEGIN;")
            out.append(b.batch_sql() + ";")
            out.append("COMMIT;")
            continue
        if not sql:
            out.append("-- no SQL (data only): nothing to undo")
            continue
        out.append(_timeouts(step, lock_timeout, plan.dialect))
        body = sql.rstrip().rstrip(";") + ";"
        if step.transactional:
            out += ["BEGIN;", body, "COMMIT;"]
        else:
            out.append(body)
    if not shown:
        out.append("\n-- nothing to run")
    stamp = _alembic_note(plan, command)
    if stamp:
        out.append(f"\n-- then, in the transaction that records the release {stamp}")
    return "\n".join(out) + "\n"


def _alembic_note(plan: Plan, command: str) -> str | None:
    """What the runner does to alembic_version when the stage completes (None: nothing)."""
    from .alembic_stamp import alembic_spec

    spec = alembic_spec(plan)
    if spec is None:
        return None
    stamp = {"expand": spec.after_expand, "contract": spec.after_contract, "abort": spec.after_abort}[command]()
    if stamp is None:
        return None
    done = {"expand": "expanded", "contract": "contracted", "abort": "aborted"}[command]
    removed = ", ".join(sorted(stamp.remove)) or "none"
    return f"{done}: alembic_version rows {removed} replaced by {', '.join(stamp.heads) or 'none'}"
