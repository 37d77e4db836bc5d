"""JSON report, contract version 1 (see README: "JSON output")."""

from __future__ import annotations

import json
from typing import Any

from .. import __version__
from ..lint.results import LintResult

JSON_VERSION = 1


def build(result: LintResult) -> dict[str, Any]:
    return {
        "version": JSON_VERSION,
        "tool": {"name": "bgmigrate", "version": __version__},
        "settings": {
            "dialect": result.settings.dialect,
            "target_version": result.settings.version_text,
            "fail_on": result.settings.fail_on,
        },
        "statements": [_with_revision(s.to_json(), result) for s in result.statements],
        "findings": [_with_revision(f.to_json(), result) for f in result.findings],
        "summary": {
            "files": len(result.files),
            "statements": len(result.statements),
            "errors": result.errors,
            "warnings": result.warnings,
            "by_phase": result.by_phase(),
        },
    }


def _with_revision(item: dict[str, Any], result: LintResult) -> dict[str, Any]:
    """Name the Alembic revision beside the file, when the file is one."""
    revision = result.revisions.get(item["file"])
    if revision:
        item["revision"] = revision
    return item


def render(result: LintResult) -> str:
    return json.dumps(build(result), indent=2, ensure_ascii=False) + "\n"
