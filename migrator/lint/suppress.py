"""Suppression comments.

``-- bgmigrate: ignore[rule-a, rule-b] reason`` on the comment line(s)
directly before a statement silences those rules for that statement.
``-- bgmigrate: ignore-file[rule-a] reason`` anywhere between statements
silences them for the whole file. The reason is required: an ignore without
one still silences the rule but is reported itself, so it cannot pass review
silently. Ignores that silence nothing, or name unknown rules, are reported too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..sql.split import Comment
from ..sql.statement import Statement

_DIRECTIVE = re.compile(r"bgmigrate:\s*(ignore(?:-file)?)\s*(?:\[([^\]]*)\])?\s*(.*)", re.IGNORECASE)


@dataclass(slots=True)
class Suppression:
    rules: list[str]
    reason: str
    line: int
    column: int
    file_wide: bool
    statement_index: int | None
    used: set[str] = field(default_factory=set)
    text: str = ""


def _parse(comment: Comment, statement_index: int | None) -> Suppression | None:
    body = comment.text
    m = _DIRECTIVE.search(body)
    if not m:
        return None
    kind, rules_text, reason = m.groups()
    reason = reason.strip().rstrip("*/").strip()
    rules = [r.strip() for r in (rules_text or "").split(",") if r.strip()]
    line_offset = body[: m.start()].count("\n")
    column = 1 if line_offset else (m.start() + 1)
    return Suppression(
        rules,
        reason,
        comment.line + line_offset,
        column,
        kind.lower() == "ignore-file",
        statement_index,
        text=m.group(0).strip(),
    )


def _adjacent(statement: Statement) -> list[Comment]:
    """Comments forming a contiguous block that ends right before the statement."""
    block: list[Comment] = []
    expected_end = statement.line - 1
    for comment in reversed(statement.comments):
        if comment.end_line == statement.line or comment.end_line == expected_end:
            block.append(comment)
            expected_end = comment.line - 1
        else:
            break
    return block


def collect(statements: list[Statement], trailing: list[Comment] | None = None) -> list[Suppression]:
    out: list[Suppression] = []
    for st in statements:
        adjacent = {id(c) for c in _adjacent(st)}
        for comment in st.comments:
            sup = _parse(comment, st.index)
            if sup is None:
                continue
            if sup.file_wide:
                sup.statement_index = None
                out.append(sup)
            elif id(comment) in adjacent:
                out.append(sup)
            # a statement-level ignore that is not adjacent to a statement is reported as unused
            else:
                sup.statement_index = -1
                out.append(sup)
    for comment in trailing or []:
        sup = _parse(comment, None)
        if sup is not None:
            if not sup.file_wide:
                sup.statement_index = -1
            out.append(sup)
    return out


def find(suppressions: list[Suppression], rule: str, statement_index: int) -> Suppression | None:
    for sup in suppressions:
        if rule not in sup.rules:
            continue
        if sup.file_wide or sup.statement_index == statement_index:
            return sup
    return None
