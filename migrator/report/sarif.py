"""SARIF 2.1.0 report (GitHub code scanning, GitLab, Azure DevOps, IDE viewers).

Written by hand: the format needed here is small, and the Python object models on PyPI
(sarif-om, last released 2019, and sarif-pydantic) need their own serializers or pull in
pydantic. The tests validate this output against the official 2.1.0 schema.
"""

from __future__ import annotations

import json
from typing import Any

from .. import __version__
from ..lint.catalog import load_rules
from ..lint.results import LintResult

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def _rule_descriptor(rule: Any) -> dict[str, Any]:
    return {
        "id": rule.id,
        "name": "".join(part.capitalize() for part in rule.id.split("-")),
        "shortDescription": {"text": rule.name},
        "fullDescription": {"text": " ".join(rule.why.split())},
        "help": {"text": f"{' '.join(rule.why.split())}\n\nFix: {rule.fix.strip()}"},
        "defaultConfiguration": {"level": "error" if rule.severity == "error" else "warning"},
        "properties": {"category": rule.category, "dialects": list(rule.dialects)},
    }


def build(result: LintResult) -> dict[str, Any]:
    catalog = {r.id: r for r in load_rules()}
    used = sorted({f.rule for f in result.findings})
    index = {rule_id: i for i, rule_id in enumerate(used)}
    results = []
    for f in result.findings:
        text = f.message + (f"\nFix: {f.fix}" if f.fix else "")
        results.append(
            {
                "ruleId": f.rule,
                "ruleIndex": index[f.rule],
                "level": "error" if f.severity == "error" else "warning",
                "message": {"text": text},
                "locations": [
                    {
                        "physicalLocation": {
                            "artifactLocation": {"uri": f.file, "uriBaseId": "%SRCROOT%"},
                            "region": {
                                "startLine": f.line,
                                "startColumn": f.column,
                                "endLine": f.end_line,
                                "endColumn": f.end_column + 1,
                            },
                        }
                    }
                ],
                "properties": {
                    "phase": f.phase,
                    **({"revision": rev} if (rev := result.revisions.get(f.file)) else {}),
                },
            }
        )
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "bgmigrate",
                        "version": __version__,
                        "rules": [_rule_descriptor(catalog[r]) for r in used if r in catalog],
                    }
                },
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }


def render(result: LintResult) -> str:
    return json.dumps(build(result), indent=2, ensure_ascii=False) + "\n"
