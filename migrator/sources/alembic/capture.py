"""Where each rendered statement comes from: Alembic's output buffer attributes every statement to
the line of the ``op`` call that produced it (the innermost frame of a revision file on the call
stack; each ``batch_op.*`` call of a batch), and a revision file's statement spans and comment
lines (the comment block above an ``op`` call, ``ignore-file`` directives)."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

_IGNORE_FILE = re.compile(r"bgmigrate:\s*ignore-file", re.IGNORECASE)


class _SourceMap:
    """Statement boundaries and comment lines of a revision file (read only when it is rendered)."""

    def __init__(self, text: str, tree: Any) -> None:
        import ast

        self.lines = re.split(r"\r\n|\r|\n", text)  # Python's line ends only (not form feeds, U+2028...)
        self.tree = tree
        self.spans: list[tuple[int, int, bool]] = []
        self.upgrade_line = 1
        self._in_strings: set[int] | None = None
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == "upgrade":
                self.upgrade_line = node.lineno
        pending = list(tree.body)
        while pending:
            node = pending.pop()
            if not isinstance(node, ast.stmt):  # except handlers, match cases: only their bodies
                pending.extend(getattr(node, "body", ()))
                continue
            compound = False
            for name in ("body", "orelse", "finalbody", "handlers", "cases"):
                children = getattr(node, name, None)
                if isinstance(children, list) and children:
                    compound = True
                    pending.extend(children)
            self.spans.append((node.lineno, node.end_lineno or node.lineno, not compound))

    def _string_lines(self) -> set[int]:
        """Lines inside multi-line string literals (after their first line): never comments."""
        if self._in_strings is None:
            import ast

            self._in_strings = set()
            for node in ast.walk(self.tree):
                if isinstance(node, (ast.Constant, ast.JoinedStr)) and (node.end_lineno or 0) > node.lineno:
                    self._in_strings.update(range(node.lineno + 1, (node.end_lineno or 0) + 1))
        return self._in_strings

    def statement(self, line: int) -> tuple[int, bool]:
        """Start line of the innermost statement holding ``line``, and whether it is a simple one."""
        best = (0, line, True)
        for start, end, simple in self.spans:
            if start <= line <= end and start >= best[0]:
                best = (start, end, simple)
        return (best[0] or line), best[2]

    def comment(self, n: int) -> str | None:
        """Line ``n`` if it is a comment line: ``#`` first, not inside a string."""
        if n < 1 or n > len(self.lines):
            return None
        text = self.lines[n - 1].strip()
        if not text.startswith("#") or n in self._string_lines():
            return None
        return text

    def block_above(self, line: int) -> list[tuple[int, str]]:
        """The comment block directly above ``line`` (no blank line between), top first."""
        found = []
        n = line - 1
        while (text := self.comment(n)) is not None:
            found.append((n, text))
            n -= 1
        return found[::-1]

    def file_directives(self) -> list[tuple[int, str]]:
        """``# bgmigrate: ignore-file[...]`` comment lines anywhere in the file."""
        return [
            (n, text)
            for n, line in enumerate(self.lines, 1)
            if "bgmigrate" in line and _IGNORE_FILE.search(line) and (text := self.comment(n)) is not None
        ]


@dataclass(slots=True)
class _Emitted:
    text: str
    line: int  # the op call
    statement: int  # start of the statement holding it (its comment block is copied)


class _Capture:
    """Alembic's output buffer: every write is one statement, attributed to the innermost frame of a
    revision file on the call stack (statements with none are Alembic's own bookkeeping)."""

    def __init__(self, resolve: bool = False) -> None:
        self.resolve = resolve  # match frames by real path too (env.py mode: Alembic loads the files)
        self.files: dict[str, str] = {}  # co_filename -> revision id
        self.maps: dict[str, _SourceMap] = {}
        self.emitted: dict[str, list[_Emitted]] = {}
        self.override: tuple[str, int] | None = None  # (filename, line) of the batch op being flushed
        self._known: dict[str, str | None] = {}

    def watch(self, filename: str, rev_id: str, text: str, tree: Any) -> None:
        self.files[filename] = rev_id
        self.maps[filename] = _SourceMap(text, tree)
        self.emitted.setdefault(rev_id, [])
        self._known.clear()

    def _rev_file(self, co_filename: str) -> str | None:
        known = self._known.get(co_filename, "")
        if known != "":
            return known
        found: str | None = None
        if co_filename in self.files:
            found = co_filename
        elif self.resolve and not co_filename.startswith("<"):
            real = os.path.realpath(co_filename)
            for name in self.files:
                if os.path.realpath(name) == real:
                    found = name
                    break
        self._known[co_filename] = found
        return found

    def locate(self, depth: int = 2) -> tuple[str, int] | None:
        """(revision file, line) of the innermost frame in a revision file, above the caller."""
        frame = sys._getframe(depth)
        while frame is not None:
            name = self._rev_file(frame.f_code.co_filename)
            if name is not None:
                return name, frame.f_lineno
            frame = frame.f_back
        return None

    def write(self, text: str) -> int:
        where = self.locate()
        if where is None:
            return len(text)
        filename, line = where
        if self.override is not None and self.override[0] == filename:
            line = self.override[1]
        smap = self.maps[filename]
        start, simple = smap.statement(line)
        if simple and sys.version_info < (3, 11):
            line = start  # before 3.11 a multi-line call may report one of its later lines
        self.emitted[self.files[filename]].append(_Emitted(text, line, start))
        return len(text)

    def flush(self) -> None:
        pass

    def writable(self) -> bool:
        return True


class _BatchLines(list):  # type: ignore[type-arg]
    """``BatchOperationsImpl.batch``: remembers the line of each ``batch_op.*`` call and, while Alembic
    replays the batch, tells the capture which one is running."""

    def __init__(self, capture: _Capture) -> None:
        super().__init__()
        self.capture = capture
        self.lines: list[tuple[str, int] | None] = []

    def append(self, item: Any) -> None:
        self.lines.append(self.capture.locate())
        super().append(item)

    def __iter__(self) -> Iterator[Any]:
        try:
            for index, item in enumerate(list.__iter__(self)):
                self.capture.override = self.lines[index] if index < len(self.lines) else None
                yield item
        finally:
            self.capture.override = None


class _Patched:
    """While rendering: batch operations remember the line of each ``batch_op.*`` call."""

    def __init__(self, capture: _Capture) -> None:
        self.capture = capture

    def __enter__(self) -> None:
        from alembic.operations.batch import BatchOperationsImpl

        self.cls = BatchOperationsImpl
        self.original = BatchOperationsImpl.__init__
        capture = self.capture
        original = self.original

        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            original(self, *args, **kwargs)
            self.batch = _BatchLines(capture)

        BatchOperationsImpl.__init__ = __init__  # type: ignore[method-assign]

    def __exit__(self, *exc: object) -> None:
        self.cls.__init__ = self.original  # type: ignore[method-assign]
