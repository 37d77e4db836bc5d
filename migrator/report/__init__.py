"""Renderers for lint results: text, json, sarif, github."""

from __future__ import annotations

from ..lint.results import LintResult


def render(result: LintResult, fmt: str, color: bool = False, explain: bool = False, statements: bool = False) -> str:
    if fmt == "json":
        from . import json_report

        return json_report.render(result)
    if fmt == "sarif":
        from . import sarif

        return sarif.render(result)
    if fmt == "github":
        from . import github

        return github.render(result)
    from . import text

    return text.render(result, color=color, explain=explain, statements=statements)
