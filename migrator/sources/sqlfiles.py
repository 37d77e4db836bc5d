"""Find ``.sql`` migration files and read them.

Directories are searched recursively and ordered naturally by relative path,
so ``0002_x.sql`` comes before ``0010_y.sql`` and Flyway's ``V2__x.sql``
before ``V10__y.sql``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .model import SourceError, SourceFile

_DIGITS = re.compile(r"(\d+)")


def _natural_key(text: str) -> tuple[tuple[int, int | str], ...]:
    """Natural order: digit runs compare as numbers (V2 < V10, 0002 < 0010)."""
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in _DIGITS.split(text) if part)


def _display(path: Path, cwd: str) -> str:
    """The path as reports show it: relative to the working directory when it is below it."""
    absolute = os.path.abspath(path)
    if absolute.startswith(cwd + os.sep):
        return absolute[len(cwd) + 1 :].replace(os.sep, "/")
    return path.as_posix()


def _walk_sql(root: Path) -> list[Path]:
    """Every .sql file under ``root``, in natural order of the relative path."""
    found: list[tuple[tuple[object, ...], str]] = []
    base = str(root)
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = [d for d in dirnames if d != ".bgmigrate_cache" and not d.startswith(".git")]
        rel_dir = os.path.relpath(dirpath, base)
        for name in filenames:
            # a FIFO or socket named like a migration would block the read forever: regular files only
            if name.endswith(".sql") and os.path.isfile(os.path.join(dirpath, name)):
                rel = name if rel_dir == "." else f"{rel_dir}/{name}"
                # Flyway repeatable migrations (R__x.sql) apply after every versioned one.
                found.append(((name.startswith("R__"), *_natural_key(rel.lower())), os.path.join(dirpath, name)))
    found.sort(key=lambda item: item[0])
    return [Path(p) for _, p in found]


def discover(paths: list[Path], cwd: Path | None = None) -> list[Path]:
    """Files to lint, in the order they apply.

    Each directory is expanded in natural order of relative path. When only files are given
    (as pre-commit does, in its own order), they are put in natural order of their path.
    """
    found: list[Path] = []
    seen: set[str] = set()
    for path in paths:
        if not path.exists():
            raise SourceError(f"path not found: {path}")
        if path.is_dir():
            if not os.access(path, os.R_OK | os.X_OK):
                raise SourceError(f"directory not readable: {path}")
            files = _walk_sql(path)
        else:  # named explicitly: read whatever it is (``lint <(git show HEAD:m.sql)`` reads a pipe)
            files = [path]
        for f in files:
            key = os.path.realpath(f)
            if key not in seen:
                seen.add(key)
                found.append(f)
    if paths and all(not p.is_dir() for p in paths):
        found.sort(key=lambda p: (p.name.startswith("R__"), *_natural_key(p.as_posix().lower())))
    return found


def read_sources(paths: list[Path], cwd: Path | None = None) -> list[SourceFile]:
    base = os.path.abspath(cwd or Path.cwd())
    out = []
    for path in discover(paths, cwd):
        try:
            data = path.read_bytes()
        except PermissionError:
            raise SourceError(f"file not readable: {path}") from None
        except OSError as err:
            raise SourceError(f"cannot read {path}: {err.strerror or err}") from None
        out.append(SourceFile(path, _display(path, base), data, repeatable=path.name.startswith("R__")))
    return out


def decode(data: bytes) -> tuple[str | None, str | None]:
    """Return (text, problem). Binary or non-UTF-8 content is a problem, not an exception."""
    if b"\x00" in data[:8192]:
        return None, "the file looks binary (it contains NUL bytes)"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        return None, f"the file is not valid UTF-8 (byte {err.start}: {data[err.start : err.start + 1]!r})"
    return text.removeprefix("\ufeff"), None
