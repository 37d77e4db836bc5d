"""The demo's comparison table (text) and its JSON form (``--json FILE``, ``"version": 1``)."""

from __future__ import annotations

import json
from typing import Any

from .measure import StageRow
from .scenario import HALVES, DemoResult

HEADER = ("half", "stage", "time s", "blue", "green", "failed", "longest stall", "lock waits", "note")


def _ms(seconds: float) -> str:
    if seconds >= 10:
        return f"{seconds:.1f} s"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    return f"{seconds * 1000:.0f} ms"


def _waits(row: StageRow) -> str:
    if not row.lock_waits:
        return "0"
    return f"{row.lock_waits} (max {_ms(row.longest_lock_wait_s)})"


def _cells(row: StageRow) -> tuple[str, ...]:
    return (
        row.half if row.stage != "total" else "",
        row.stage,
        f"{row.seconds:.2f}",
        f"{row.blue:,}",
        f"{row.green:,}",
        f"{row.failed:,}",
        _ms(row.longest_stall_s),
        _waits(row),
        row.note,
    )


def render_table(result: DemoResult) -> str:
    rows = [HEADER]
    rules: list[int] = []
    for half in HALVES:
        for row in (r for r in result.rows if r.half == half):
            if row.stage == "total":
                rules.append(len(rows))
            rows.append(_cells(row))
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER) - 1)]
    right = {2, 3, 4, 5, 6}

    def line(cells: tuple[str, ...]) -> str:
        parts = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))]
        return "  ".join([*parts, cells[-1]]).rstrip()

    rule = "  ".join("-" * w for w in widths) + "  ----"
    out = [line(rows[0]), rule]
    for index, cells in enumerate(rows[1:], start=1):
        if index in rules:
            out.append(rule)
        out.append(line(cells))
        if index in rules and index != len(rows) - 1:
            out.append("")
    return "\n".join(out) + "\n"


def render(result: DemoResult) -> str:
    opts = result.options
    head = (
        f"The example shop's release (examples/app/migrations/0002_release.sql: rename a column, add a required "
        f"column, build an index, drop a column) on {opts.rows:,} customers, {opts.clients} clients through the "
        "local proxy.\nblue / green: requests each version served in that stage (by send time); failed: errors, "
        "5xx and wrong answers; lock waits: the shop's sessions seen waiting for a lock (pg_stat_activity).\n"
    )
    out = [head, render_table(result), ""]
    for half in HALVES:
        total = result.total(half)
        if total is None:
            continue
        text = f"{half + ':':<10} {total.failed:,} failed requests, longest stall {_ms(total.longest_stall_s)}"
        if total.lock_waits:
            text += f", {total.lock_waits} lock waits of the shop (longest {_ms(total.longest_lock_wait_s)})"
        if half == "bgmigrate":
            text += f"; release {result.release_status or 'not finished'}"
        elif result.naive_error:
            text += f"; the migration failed: {result.naive_error}"
        out.append(text)
        if total.failures:
            out.append(f"{'':<10} first failure: {total.failures[0]}")
        if half in result.app_errors:
            out.append(f"{'':<10} {result.app_errors[half]}")
    for problem in result.sampler_errors:
        out.append(f"(the lock sampler stopped early: {problem})")
    return "\n".join(out) + "\n"


def to_json(result: DemoResult) -> str:
    data: dict[str, Any] = {
        "version": 1,
        "server": result.server,
        "rows": result.options.rows,
        "clients": result.options.clients,
        "step_seconds": result.options.step_seconds,
        "lint": result.lint,
        "plan": result.plan,
        "release_status": result.release_status,
        "naive_error": result.naive_error,
        "exit_code": result.exit_code,
        "app_errors": result.app_errors,
        "databases": result.databases,
        "pids": result.pids,
        "halves": {
            half: {
                "stages": [r.to_json() for r in result.rows if r.half == half and r.stage != "total"],
                "total": (total.to_json() if (total := result.total(half)) else None),
            }
            for half in HALVES
        },
    }
    return json.dumps(data, indent=2) + "\n"
