"""Human-readable report: ``file:line:col: severity [rule] message`` plus the fix.

Colour only when writing to a terminal (and ``NO_COLOR`` is unset), so pipes
and CI logs stay plain text.
"""

from __future__ import annotations

import os
from typing import TextIO

from ..lint.results import LintResult

_COLORS = {
    "error": "\033[1;31m",
    "warning": "\033[1;33m",
    "dim": "\033[2m",
    "bold": "\033[1m",
    "reset": "\033[0m",
}
_PHASE_ORDER = ("expand", "migrate", "contract", "breaking", "neutral")


def use_color(stream: TextIO) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def render(result: LintResult, color: bool = False, explain: bool = False, statements: bool = False) -> str:
    def c(name: str, text: str) -> str:
        return f"{_COLORS[name]}{text}{_COLORS['reset']}" if color else text

    out: list[str] = []
    if statements:
        for s in result.statements:
            st = s.statement
            lock = s.lock or "-"
            out.append(
                f"{s.file}:{st.line}:{st.column}: {s.phase:<8} {st.operation:<22} lock={lock:<22} "
                f"{s.rewrite:<7} {c('dim', st.sql.splitlines()[0][:60] if st.sql else '')}"
            )
        if out:
            out.append("")
    sql_by_pos = {(s.file, s.statement.line): s.statement.sql for s in result.statements}
    for f in result.findings:
        where = f"{f.file}:{f.line}:{f.column}"
        out.append(f"{where}: {c(f.severity, f.severity)} [{c('bold', f.rule)}] ({f.phase}) {f.message}")
        sql = sql_by_pos.get((f.file, f.line))
        if sql:
            first = sql.strip().splitlines()[0]
            out.append("    " + c("dim", first[:120] + (" …" if len(first) > 120 or "\n" in sql.strip() else "")))
        if explain and f.why:
            for line in f.why.splitlines():
                out.append("  why: " + line if line else "")
        if f.fix:
            fix_lines = f.fix.splitlines()
            out.append("  fix: " + fix_lines[0])
            out.extend("       " + line for line in fix_lines[1:])
    phases = result.by_phase()
    phase_text = ", ".join(f"{p} {phases[p]}" for p in _PHASE_ORDER if phases.get(p))
    summary = (
        f"{len(result.files)} file{'s' if len(result.files) != 1 else ''}, "
        f"{len(result.statements)} statement{'s' if len(result.statements) != 1 else ''}"
        + (f" ({phase_text})" if phase_text else "")
        + f": {result.errors} error{'s' if result.errors != 1 else ''}, "
        f"{result.warnings} warning{'s' if result.warnings != 1 else ''}"
    )
    if out:
        out.append("")
    out.append(c("bold", summary))
    return "\n".join(out) + "\n"
