"""GitHub Actions workflow commands: ``::error file=…,line=…,col=…::message``."""

from __future__ import annotations

from ..lint.results import LintResult


def _escape_data(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(value: str) -> str:
    return _escape_data(value).replace(":", "%3A").replace(",", "%2C")


def render(result: LintResult) -> str:
    lines = []
    for f in result.findings:
        level = "error" if f.severity == "error" else "warning"
        props = ",".join(
            [
                f"file={_escape_property(f.file)}",
                f"line={f.line}",
                f"col={f.column}",
                f"endLine={f.end_line}",
                f"endColumn={f.end_column}",
                f"title={_escape_property(f'bgmigrate {f.rule} ({f.phase})')}",
            ]
        )
        body = f.message
        if f.fix:
            body += f"\nFix: {f.fix}"
        lines.append(f"::{level} {props}::{_escape_data(body)}")
    return "".join(line + "\n" for line in lines)
