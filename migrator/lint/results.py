"""What a lint run produces: findings, per-statement results, and the run as a whole."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..config import Settings
from ..schema.model import Schema
from ..sql.statement import Statement
from .classify import PHASES


@dataclass(slots=True)
class Finding:
    rule: str
    severity: str
    phase: str
    file: str
    line: int
    column: int
    end_line: int
    end_column: int
    message: str
    why: str
    fix: str

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "severity": self.severity,
            "phase": self.phase,
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "end_line": self.end_line,
            "end_column": self.end_column,
            "message": self.message,
            "why": self.why,
            "fix": self.fix,
        }


@dataclass(slots=True)
class StatementResult:
    file: str
    statement: Statement
    phase: str
    reason: str
    lock: str | None
    rewrite: str
    in_transaction: bool
    algorithm: str | None = None
    changes: list[dict[str, Any]] = field(default_factory=list)  # one summary per change

    def to_cache(self) -> dict[str, Any]:
        return {
            "statement": self.statement.to_json(comments=False),
            "phase": self.phase,
            "reason": self.reason,
            "lock": self.lock,
            "rewrite": self.rewrite,
            "in_transaction": self.in_transaction,
            "algorithm": self.algorithm,
            "changes": self.changes,
        }

    @classmethod
    def from_cache(cls, file: str, data: dict[str, Any]) -> StatementResult:
        return cls(
            file,
            Statement.from_json(data["statement"]),
            data["phase"],
            data["reason"],
            data["lock"],
            data["rewrite"],
            data["in_transaction"],
            data["algorithm"],
            data["changes"],
        )

    def to_json(self) -> dict[str, Any]:
        st = self.statement
        return {
            "file": self.file,
            "line": st.line,
            "column": st.column,
            "end_line": st.end_line,
            "end_column": st.end_column,
            "sql": st.sql,
            "operation": st.operation,
            "table": st.table,
            "phase": self.phase,
            "lock": self.lock,
            "rewrite": self.rewrite,
            "in_transaction": self.in_transaction,
            "algorithm": self.algorithm,
            "reason": self.reason,
            "changes": self.changes,
        }


@dataclass(slots=True)
class LintResult:
    files: list[str]
    statements: list[StatementResult]
    findings: list[Finding]
    settings: Settings
    revisions: dict[str, str] = field(default_factory=dict)  # file -> Alembic revision id
    history: Schema | None = None  # the schema before the release (lint_sources(keep_history=True))

    @property
    def errors(self) -> int:
        return sum(1 for f in self.findings if f.severity == "error")

    @property
    def warnings(self) -> int:
        return sum(1 for f in self.findings if f.severity == "warning")

    def by_phase(self) -> dict[str, int]:
        counts = dict.fromkeys(PHASES, 0)
        for s in self.statements:
            counts[s.phase] += 1
        return counts

    def failed(self) -> bool:
        if self.settings.fail_on == "never":
            return False
        if self.settings.fail_on == "warning":
            return bool(self.findings)
        return self.errors > 0
