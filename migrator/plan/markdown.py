"""The plan as one Markdown document a DBA reads top to bottom."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..facts.locks import BLOCKS_WRITES
from .model import GATES, STAGES, Plan, Step

if TYPE_CHECKING:
    from ..trace.tracing import TraceReport

_STAGE_TITLE = {
    "expand": "Expand: before green is deployed (blue keeps working)",
    "migrate": "Migrate: data changes, in batches",
    "contract": "Contract: after blue is decommissioned",
}


def _size(step: Step) -> str:
    if step.rows_estimate is None and step.size_bytes is None:
        return "-"
    rows = f"~{step.rows_estimate:,} rows" if step.rows_estimate is not None else "rows unknown"
    size = f", {step.size_bytes / 1048576:.1f} MiB" if step.size_bytes is not None else ""
    return rows + size


def _duration(step: Step) -> str:
    if step.duration is not None:
        return step.duration + (f" ({step.batches} batches)" if step.batches else "")
    if step.backfill is not None:
        return "proportional (batched)"
    return "instant" if step.rewrite == "none" else "proportional to the table"


def render(plan: Plan, trace: TraceReport | None = None) -> str:
    """The plan; with ``trace`` (``bgmigrate plan --trace``) also a ``## Trace`` section at the end."""
    out = [
        "# Migration plan",
        "",
        f"- sources: {', '.join(plan.sources) or '-'}" + (f" (release after {plan.since})" if plan.since else ""),
        f"- dialect: {plan.dialect} {plan.target_version}",
        f"- schema fingerprint: `{plan.schema_fingerprint[:16]}`",
        f"- plan sha256: `{plan.sha256}` (what runs must match it)",
        "",
        "## Summary",
        "",
        "| stage | steps | blocking locks | scans or rewrites | not in a transaction |",
        "|---|---|---|---|---|",
    ]
    for stage in STAGES:
        steps = [s for s in plan.steps if s.stage == stage]
        if stage in GATES:
            out.append(f"| **{stage}** (gate) | - | - | - | - |")
            continue
        blocking = sum(1 for s in steps if s.lock in BLOCKS_WRITES)
        heavy = sum(1 for s in steps if s.rewrite != "none" or s.backfill is not None)
        outside = sum(1 for s in steps if not s.transactional)
        out.append(f"| {stage} | {len(steps)} | {blocking} | {heavy} | {outside} |")
    for stage in STAGES:
        steps = [s for s in plan.steps if s.stage == stage]
        if stage in GATES:
            gate = steps[0]
            out += ["", f"## Gate: {stage}", "", f"> {gate.reason}"]
            continue
        out += ["", f"## {_STAGE_TITLE[stage]}", ""]
        if not steps:
            out.append("Nothing.")
            continue
        for step in steps:
            out += [
                f"### {step.id}" + (f" ({step.recipe})" if step.recipe else ""),
                "",
                f"- from: `{step.origin}`",
                f"- why here: {step.reason}",
                f"- lock: {step.lock or 'none on existing tables'}; {step.rewrite}; "
                + ("in a transaction" if step.transactional else "outside a transaction"),
                f"- timeouts: lock_timeout {step.lock_timeout or '-'}, "
                f"statement_timeout {step.statement_timeout or '-'}",
                f"- size: {_size(step)}; expected duration: {_duration(step)}",
            ]
            for note in step.notes:
                out.append(f"- note: {note}")
            out += ["", "```sql", step.sql, "```"]
            if step.abort:
                out += ["", "Abort (while blue is live):", "", "```sql", step.abort.strip(), "```"]
            out.append("")
    if trace is not None:
        from ..trace.render import trace_markdown

        out += ["", *trace_markdown(trace)]
    return "\n".join(out).rstrip() + "\n"
