"""The revision graph, read statically: each revision file's ``revision``, ``down_revision``,
``branch_labels`` and ``depends_on`` (module-level literals, read without importing Alembic; a file
whose values are not literals is imported), the apply order and the branch labels of each revision."""

from __future__ import annotations

import heapq
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..model import SourceError
from ..sqlfiles import _display
from .importing import _import_module, _prepare_alembic

if TYPE_CHECKING:
    from .project import Project

_HEADER_NAMES = ("revision", "down_revision", "branch_labels", "depends_on")
_HEADER = re.compile(
    r"^(revision|down_revision|branch_labels|depends_on)[ \t]*(?::[^=\n]*)?=(?!=)[ \t]*(.*)$", re.MULTILINE
)
_STR = r"""(?:"[^"\\\n]*"|'[^'\\\n]*')"""
_SIMPLE_VALUE = re.compile(rf"(None|{_STR}|\(\s*(?:{_STR}(?:\s*,\s*{_STR})*\s*,?)?\s*\))[ \t\r]*(?:#.*)?$")
_STRING_ITEM = re.compile(r""""([^"\\\n]*)"|'([^'\\\n]*)'""")


@dataclass(slots=True)
class Revision:
    id: str
    path: Path
    display: str
    data: bytes
    down: tuple[str, ...]
    labels: tuple[str, ...]
    depends_on: tuple[str, ...]


def _walk_versions(dirs: list[Path]) -> list[Path]:
    """Every ``.py`` file under the version locations (recursively), except ``__init__.py``."""
    seen: set[str] = set()
    found: list[Path] = []
    for root in dirs:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__" and not d.startswith("."))
            for name in sorted(filenames):
                if not name.endswith(".py") or name == "__init__.py" or name.startswith(".#"):
                    continue
                full = os.path.join(dirpath, name)
                key = os.path.realpath(full) if len(dirs) > 1 else full
                if key not in seen:
                    seen.add(key)
                    found.append(Path(full))
    return found


def _as_ids(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (tuple, list, set, frozenset)) and all(isinstance(v, str) for v in value):
        return tuple(value) if not isinstance(value, (set, frozenset)) else tuple(sorted(value))
    return None


class _Dynamic(Exception):
    """A header value that is not a literal: the module has to be imported to know it."""


def _literal(text: str) -> Any:
    import ast

    return ast.literal_eval(text.strip())


def _header_value(text: str, start: int, rest: str) -> Any:
    """The literal assigned on a header line; continues over the next lines for a multi-line tuple."""
    simple = _SIMPLE_VALUE.match(rest)
    if simple is not None:  # the usual None, "abc123", ("abc", "def"): no parser needed
        value = simple.group(1)
        if value == "None":
            return None
        items = [a or b for a, b in _STRING_ITEM.findall(value)]
        return tuple(items) if value.startswith("(") else items[0]
    for candidate in (rest, rest.split("#", 1)[0]):
        try:
            return _literal(candidate)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            pass
    if rest.lstrip()[:1] in ("(", "["):
        tail = text[start:].split("\n", 40)
        for n in range(2, len(tail) + 1):
            chunk = "\n".join(tail[:n])
            try:
                return _literal(chunk)
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                continue
    raise _Dynamic


def read_header(text: str) -> dict[str, Any] | None:
    """``revision``, ``down_revision``, ``branch_labels``, ``depends_on`` of a revision file, read
    without running it (``None`` when the file assigns no ``revision`` at module level). The last
    module-level assignment wins, as when the module runs. Raises :class:`_Dynamic` for a value that
    is not a literal."""
    header: dict[str, Any] = {}
    for m in _HEADER.finditer(text):
        header[m.group(1)] = (m.start(2), m.group(2))
    if "revision" not in header:
        return None
    out: dict[str, Any] = {}
    for name, (start, rest) in header.items():
        out[name] = _header_value(text, start, rest)
    return out


def _read_revisions(project: Project, cwd: Path) -> list[Revision]:
    base = str(cwd)
    out: list[Revision] = []
    dynamic: list[tuple[Path, str, bytes]] = []
    for path in _walk_versions(project.version_dirs):
        shown = _display(path, base)
        try:
            data = path.read_bytes()
        except OSError as err:
            raise SourceError(f"{shown}: cannot read: {err.strerror or err}") from None
        try:
            text = data.decode("utf-8").removeprefix("\ufeff")
        except UnicodeDecodeError as err:
            raise SourceError(f"{shown}: not valid UTF-8 (byte {err.start})") from None
        try:
            header = read_header(text)
        except _Dynamic:
            dynamic.append((path, shown, data))
            continue
        if header is None:
            continue  # not a revision (a helper module kept beside them)
        out.append(_revision(path, shown, data, header))
    if dynamic:
        _prepare_alembic()  # the real package first: a project directory named alembic/ must not shadow it
    for path, shown, data in dynamic:
        module = _import_module(path, shown, data, project)
        try:
            header = {name: getattr(module, name, None) for name in _HEADER_NAMES}
            if not hasattr(module, "revision"):
                continue
            if not hasattr(module, "down_revision"):
                header.pop("down_revision")
            out.append(_revision(path, shown, data, header))
        finally:
            sys.modules.pop(module.__name__, None)
    return out


def _revision(path: Path, shown: str, data: bytes, header: dict[str, Any]) -> Revision:
    rev = header.get("revision")
    if not isinstance(rev, str) or not rev:
        raise SourceError(f"{shown}: 'revision' must be a non-empty string, got {rev!r}")
    if "down_revision" not in header:
        raise SourceError(f"{shown}: revision {rev} has no down_revision (use down_revision = None for a base)")
    values = {}
    for name in ("down_revision", "branch_labels", "depends_on"):
        ids = _as_ids(header.get(name))
        if ids is None:
            raise SourceError(f"{shown}: {name} must be a string, a tuple of strings or None, got {header[name]!r}")
        values[name] = ids
    return Revision(rev, path, shown, data, values["down_revision"], values["branch_labels"], values["depends_on"])


def order_revisions(revisions: list[Revision]) -> tuple[list[Revision], dict[str, tuple[str, ...]]]:
    """Apply order (every revision after its down_revisions and depends_on; ties by revision id)
    and the branch labels each revision is on."""
    by_id: dict[str, Revision] = {}
    for rev in revisions:
        other = by_id.get(rev.id)
        if other is not None:
            raise SourceError(f"{rev.display}: revision id {rev.id} is also defined in {other.display}")
        by_id[rev.id] = rev
    label_owner: dict[str, Revision] = {}
    for rev in revisions:
        for label in rev.labels:
            if label in by_id:
                raise SourceError(f"{rev.display}: branch label '{label}' is also a revision id")
            other = label_owner.get(label)
            if other is not None:
                raise SourceError(f"{rev.display}: branch label '{label}' is already used by {other.display}")
            label_owner[label] = rev
    parents: dict[str, list[str]] = {}
    children: dict[str, list[str]] = {rev.id: [] for rev in revisions}
    for rev in revisions:
        deps = []
        for down in rev.down:
            if down not in by_id:
                raise SourceError(f"{rev.display}: down_revision '{down}' names no revision in the project")
            deps.append(down)
        for dep in rev.depends_on:
            target = by_id.get(dep) or label_owner.get(dep)
            if target is None:
                raise SourceError(f"{rev.display}: depends_on '{dep}' names no revision or branch label")
            deps.append(target.id)
        parents[rev.id] = list(dict.fromkeys(deps))
        for dep in parents[rev.id]:
            children[dep].append(rev.id)
    waiting = {rid: len(p) for rid, p in parents.items()}
    ready = [rid for rid, n in waiting.items() if n == 0]
    heapq.heapify(ready)
    order: list[Revision] = []
    while ready:
        rid = heapq.heappop(ready)
        order.append(by_id[rid])
        for child in children[rid]:
            waiting[child] -= 1
            if waiting[child] == 0:
                heapq.heappush(ready, child)
    if len(order) != len(revisions):
        stuck = {rid for rid, n in waiting.items() if n > 0}
        cycle = _find_cycle(stuck, parents)
        first = by_id[min(cycle)] if cycle else by_id[min(stuck)]
        path = " -> ".join(cycle[cycle.index(first.id) :] + cycle[: cycle.index(first.id) + 1]) if cycle else ""
        raise SourceError(f"{first.display}: revision {first.id} is in a down_revision cycle ({path})")
    return order, _branches(order, by_id, children)


def _find_cycle(stuck: set[str], parents: dict[str, list[str]]) -> list[str]:
    """One cycle among the revisions Kahn's algorithm could not order (each has a stuck parent)."""
    node = min(stuck)
    seen: dict[str, int] = {}
    walk: list[str] = []
    while node not in seen:
        seen[node] = len(walk)
        walk.append(node)
        node = min(p for p in parents[node] if p in stuck)
    return walk[seen[node] :]


def _branches(
    order: list[Revision], by_id: dict[str, Revision], children: dict[str, list[str]]
) -> dict[str, tuple[str, ...]]:
    """Alembic's rule: a branch label applies to the revision that declares it, every descendant
    (through down_revision), and the ancestors on the same unbranched stretch above it (up to a
    branch point or a merge)."""
    labels: dict[str, set[str]] = {rev.id: set(rev.labels) for rev in order}
    for rev in order:
        if not rev.labels:
            continue
        node: Revision | None = rev
        while node is not None and len(children[node.id]) <= 1 and len(node.down) <= 1:
            labels[node.id].update(rev.labels)
            node = by_id[node.down[0]] if node.down else None
    for rev in order:  # topological: parents are complete before their children
        for down in rev.down:
            labels[rev.id] |= labels[down]
    return {rid: tuple(sorted(found)) for rid, found in labels.items()}
