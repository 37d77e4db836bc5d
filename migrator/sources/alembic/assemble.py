"""A revision's rendered SQL put together: each statement after the comment block above its ``op``
call, ``ignore-file`` directives first, origins (SQL lines to revision lines) and notes; and its
cache form."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .capture import _Emitted, _SourceMap


@dataclass(slots=True)
class Rendered:
    sql: str
    origins: list[tuple[int, int, int]]
    notes: list[str]

    def to_cache(self) -> dict[str, Any]:
        return {"sql": self.sql, "origins": [list(o) for o in self.origins], "notes": self.notes}

    @classmethod
    def from_cache(cls, value: Any) -> Rendered | None:
        try:
            sql, origins, notes = value["sql"], value["origins"], value["notes"]
            if not isinstance(sql, str) or not all(isinstance(n, str) for n in notes):
                return None
            return cls(sql, [(int(a), int(b), int(c)) for a, b, c in origins], list(notes))
        except (KeyError, TypeError, ValueError):
            return None


def _statement_text(raw: str) -> str | None:
    """One emitted statement, normalized: LF line ends, ending with exactly one ``;``."""
    text = raw.replace("\r\n", "\n").replace("\r", "\n").strip()
    while text.endswith(";"):
        text = text[:-1].rstrip()
    if not text:
        return None
    last = text.rsplit("\n", 1)[-1]
    return text + ("\n;" if "--" in last else ";")


def _comment_sql(comment: str) -> str:
    body = comment.lstrip("#")
    return "--" + (body if body.startswith(" ") or not body else " " + body)


def _assemble(emitted: list[_Emitted], smap: _SourceMap, notes: list[tuple[int, str]], wrap: bool) -> Rendered:
    """The revision's SQL: each statement after the comment block above its op call, with origins
    (a comment line maps to itself, a statement and the blank line after it to the op call)."""
    if wrap:
        emitted = [_Emitted("BEGIN", smap.upgrade_line, 0), *emitted, _Emitted("COMMIT", smap.upgrade_line, 0)]
    blocks_used: set[int] = set()
    comments_used: set[int] = set()
    chunks: list[tuple[list[tuple[int, str]], str, int]] = []
    for item in emitted:
        text = _statement_text(item.text)
        if text is None:
            continue
        block: list[tuple[int, str]] = []
        if item.statement and item.statement not in blocks_used:
            blocks_used.add(item.statement)
            block = smap.block_above(item.statement)
            comments_used.update(n for n, _ in block)
        chunks.append((block, text, item.line))
    lines: list[str] = []
    origins: list[tuple[int, int, int]] = []
    file_wide = [(n, c) for n, c in smap.file_directives() if n not in comments_used]
    for n, comment in file_wide:
        lines.append(_comment_sql(comment))
        origins.append((len(lines), len(lines), n))
    if file_wide:
        lines.append("")
        origins[-1] = (origins[-1][0], len(lines), origins[-1][2])
    for block, text, line in chunks:
        for n, comment in block:
            lines.append(_comment_sql(comment))
            origins.append((len(lines), len(lines), n))
        first = len(lines) + 1
        lines.extend(text.split("\n"))
        lines.append("")
        origins.append((first, len(lines), line))
    sql = "\n".join(lines) + ("\n" if lines else "")
    return Rendered(sql, origins, [f"line {line}: {message}" if line else message for line, message in notes])
