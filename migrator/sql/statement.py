"""A parsed statement: where it stands in its file and what it changes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .changes import Change
from .split import Comment


@dataclass(slots=True)
class Problem:
    """Why a statement could not be read: a syntax error or a form nobody models."""

    kind: str  # "syntax" | "unparsed" | "unclassified" | "encoding"
    message: str
    line: int
    column: int


@dataclass(slots=True)
class Statement:
    index: int
    sql: str
    line: int
    column: int
    end_line: int
    end_column: int
    comments: list[Comment] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    problem: Problem | None = None
    parsed_by: str = "sqlglot"  # sqlglot | tokens | none

    @property
    def operation(self) -> str:
        if not self.changes:
            return "unknown"
        ops = list(dict.fromkeys(c.op for c in self.changes))
        return ops[0] if len(ops) == 1 else "+".join(ops)

    @property
    def table(self) -> str | None:
        return next((c.table for c in self.changes if c.table), None)

    def to_json(self, comments: bool = True) -> dict[str, Any]:
        return {
            "index": self.index,
            "sql": self.sql,
            "span": [self.line, self.column, self.end_line, self.end_column],
            "comments": [[c.line, c.end_line, c.text] for c in self.comments] if comments else [],
            "changes": [c.to_json() for c in self.changes],
            "problem": None
            if self.problem is None
            else [self.problem.kind, self.problem.message, self.problem.line, self.problem.column],
            "parsed_by": self.parsed_by,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Statement:
        line, column, end_line, end_column = data["span"]
        problem = data.get("problem")
        return cls(
            index=data["index"],
            sql=data["sql"],
            line=line,
            column=column,
            end_line=end_line,
            end_column=end_column,
            comments=[Comment(a, b, t) for a, b, t in data.get("comments") or []],
            changes=[Change.from_json(c) for c in data.get("changes") or []],
            problem=None if problem is None else Problem(*problem),
            parsed_by=data.get("parsed_by", "sqlglot"),
        )
