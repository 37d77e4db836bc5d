"""Text and JSON (``"version": 1``) for ``bgmigrate trace`` and ``bgmigrate compat``, and the trace
section of plan.md."""

from __future__ import annotations

import json
from typing import Any

from .. import __version__
from .compat import CompatReport, QueryResult
from .tracing import TracedItem, TraceReport

OUTPUT_VERSION = 1


def _one_line(sql: str, width: int = 100) -> str:
    text = " ".join(sql.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _header(tool: str) -> dict[str, Any]:
    return {"version": OUTPUT_VERSION, "tool": {"name": "bgmigrate", "version": __version__}, "command": tool}


# ---- trace -----------------------------------------------------------------------------------------------


def _static_text(item: TracedItem) -> str:
    also = "".join(f" ({mode} on {relation})" for relation, mode in sorted(item.static_also.items()))
    return f"{item.static_lock or 'no lock beyond ACCESS SHARE'}{also}; {item.static_rewrite}"


def _observed_text(item: TracedItem) -> str:
    obs = item.observation
    if obs is None:
        return "-"
    if obs.status != "ok":
        return f"FAILED: {obs.error}"
    top, where = obs.strongest()
    parts = [f"{top} on {', '.join(where)}" if top else "no lock on existing relations"]
    strongest: dict[str, str] = {}
    for lk in obs.locks:  # sorted strongest first per relation
        if lk.existing and lk.relation not in where and lk.kind not in ("index", "partitioned index"):
            strongest.setdefault(lk.relation, lk.mode)
    others = sorted(f"{rel} {mode}" for rel, mode in strongest.items())
    if others:
        parts[0] += f" (also {', '.join(others)})"
    if obs.rewritten:
        parts.append(f"rewrote {', '.join(obs.rewritten)}")
    if obs.truncated:
        parts.append(f"truncated {', '.join(obs.truncated)}")
    if obs.indexes_rebuilt:
        parts.append("rebuilt " + ", ".join(i for i, _t in obs.indexes_rebuilt))
    if obs.full_reads:
        parts.append("read all rows of " + ", ".join(obs.full_reads))
    elif not obs.scans_observable:
        parts.append("scans not observable")
    if obs.duration_ms is not None:
        parts.append(f"{obs.duration_ms:.1f} ms")
    if not obs.in_transaction:
        parts.append("outside a transaction")
    return "; ".join(parts)


def trace_text(report: TraceReport) -> str:
    s = report.scratch
    out = [
        f"trace on scratch database {s['database']} ({s['server']}, PostgreSQL {s['server_version']}); "
        f"schema from {s['schema_from']}; {s['sample_rows']} sample rows per table",
    ]
    out += [f"  note: {n}" for n in s.get("notes", [])]
    out.append("")
    for item in report.items:
        out.append(f"{item.id}  {_one_line(item.sql)}")
        if item.status in ("skipped", "not-run", "ran"):
            out.append(f"    {item.status}: {item.note}")
            continue
        out.append(f"    static:   {_static_text(item)}")
        out.append(f"    observed: {_observed_text(item)}")
        for note in item.observation.notes if item.observation else []:
            out.append(f"    note: {note}")
        for m in item.mismatches:
            out.append(f"    MISMATCH ({m.kind}): {m.message}")
    findings = report.findings()
    traced = sum(1 for i in report.items if i.status == "traced")
    out.append("")
    kept = f"; kept {s['database']}" if s.get("kept") else ""
    out.append(
        f"{traced} traced, {len(report.items) - traced} not traced; {len(findings)} finding(s)"
        + (f" ({', '.join(sorted({f['rule'] for f in findings}))})" if findings else "")
        + kept
    )
    return "\n".join(out) + "\n"


def trace_json(report: TraceReport) -> str:
    findings = report.findings()
    data = {
        **_header("trace"),
        "kind": report.kind,
        "target_version": report.target_version,
        "scratch": report.scratch,
        "statements": [i.to_json() for i in report.items],
        "findings": findings,
        "summary": {
            "statements": len(report.items),
            "traced": sum(1 for i in report.items if i.status == "traced"),
            "mismatches": sum(1 for f in findings if f["rule"] == "trace-mismatch"),
            "failed": sum(1 for i in report.items if i.status == "failed"),
        },
    }
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def trace_markdown(report: TraceReport) -> list[str]:
    """The ``## Trace`` section of plan.md (a table of every step)."""
    s = report.scratch
    out = [
        "## Trace",
        "",
        f"Every step run on a scratch database ({s['server']}, PostgreSQL {s['server_version']}; schema from "
        f"{s['schema_from']}; {s['sample_rows']} sample rows per table), locks read from `pg_locks`, "
        "rewrites from `relfilenode`.",
        "",
        "| step | planned | observed | mismatch |",
        "|---|---|---|---|",
    ]
    for item in report.items:
        mismatch = "; ".join(m.message for m in item.mismatches) or ("-" if item.status == "traced" else item.status)
        observed = _observed_text(item) if item.observation else (item.note or "-")
        out.append(f"| {item.id} | {_static_text(item)} | {observed} | {mismatch} |".replace("\n", " "))
    findings = report.findings()
    out += ["", f"{len(findings)} finding(s)." if findings else "The trace agrees with the plan."]
    return out


# ---- compat ----------------------------------------------------------------------------------------------


def _query_lines(r: QueryResult) -> list[str]:
    label = {"ok": "ok", "broken": "BROKEN", "invalid": "INVALID", "skipped": "skipped", "unchecked": "unchecked"}
    out = [f"{label[r.status]:<9} {r.role} {r.query.source}  {_one_line(r.query.sql)}"]
    if r.status == "broken":
        if r.step is not None:
            where = f" ({r.step.origin})" if r.step.origin and r.step.origin != r.step.id else ""
            out.append(f"          broken by {r.step.id}{where}: {_one_line(r.step.sql)}")
        out.append(f"          error: {r.error}")
    elif r.status == "invalid":
        out.append(f"          fails before the release: {r.error}")
    for ref, step in r.removed:
        if r.status != "broken" or step is not r.step:  # else the line above says it
            out.append(f"          uses {ref}, removed by {step.id} ({step.stage})")
    for ref, step in r.needs_decommission:
        out.append(f"          uses {ref}, removed by {step.id} after decommission-blue: blue must be gone first")
    if r.note:
        out.append(f"          note: {r.note}")
    return out


def compat_text(report: CompatReport) -> str:
    s = report.scratch
    live = [st for st in report.steps if st.before_gate]
    what = (
        "every release statement as written" if report.mode == "as-written" else "the plan's expand and migrate steps"
    )
    out = [
        f"compat on scratch database {s['database']} ({s['server']}, PostgreSQL {s['server_version']}); schema "
        f"from {s['schema_from']}",
        f"steps applied while blue is live: {what} ({len(live)})",
    ]
    if report.left_out:
        out.append(f"  note: {report.left_out} pg_stat_statements entries did not parse and were left out")
    out.append("")
    for r in report.blue + report.green:
        out += _query_lines(r)
    if report.step_failure is not None:
        step, error = report.step_failure
        out.append(f"STEP FAILED {step.id}: {error}")
    findings = report.findings()
    out.append("")
    counts = {
        role: sum(1 for r in rs if r.status == "ok") for role, rs in (("blue", report.blue), ("green", report.green))
    }
    out.append(
        f"blue: {counts['blue']}/{len(report.blue)} ok; green: {counts['green']}/{len(report.green)} ok; "
        f"{len(findings)} finding(s)" + (f" ({', '.join(sorted({f['rule'] for f in findings}))})" if findings else "")
    )
    return "\n".join(out) + "\n"


def compat_json(report: CompatReport) -> str:
    findings = report.findings()
    data = {
        **_header("compat"),
        "mode": report.mode,
        "scratch": report.scratch,
        "steps": [{**s.to_json(), "applied": s.before_gate} for s in report.steps],
        "blue": [r.to_json() for r in report.blue],
        "green": [r.to_json() for r in report.green],
        "findings": findings,
        "summary": {
            "blue": len(report.blue),
            "blue_ok": sum(1 for r in report.blue if r.status == "ok"),
            "green": len(report.green),
            "green_ok": sum(1 for r in report.green if r.status == "ok"),
            "errors": sum(1 for f in findings if f["severity"] == "error"),
            "warnings": sum(1 for f in findings if f["severity"] == "warning"),
            "left_out": report.left_out,
        },
    }
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
