"""Find ``.sql`` migration files and read them.

Directories are searched recursively and ordered naturally by relative path,
so ``0002_x.sql`` comes before ``0010_y.sql`` and Flyway's ``V2__x.sql``
before ``V10__y.sql``. Paths given explicitly keep the order they were given in.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from natsort import natsort_keygen

_natural = natsort_keygen(key=lambda p: p.as_posix().lower())


class SourceError(Exception):
    """A path that cannot be linted at all: reported as one line, exit code 2."""


@dataclass(slots=True)
class SourceFile:
    path: Path
    display: str  # path as shown in reports (relative to the working directory when possible)
    data: bytes


def _display(path: Path, cwd: Path) -> str:
    try:
        return path.resolve().relative_to(cwd.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def discover(paths: list[Path], cwd: Path | None = None) -> list[Path]:
    cwd = cwd or Path.cwd()
    found: list[Path] = []
    seen: set[Path] = set()
    for path in paths:
        if not path.exists():
            raise SourceError(f"path not found: {path}")
        if path.is_dir():
            if not os.access(path, os.R_OK | os.X_OK):
                raise SourceError(f"directory not readable: {path}")
            files = [p for p in path.rglob("*.sql") if p.is_file() and ".bgmigrate_cache" not in p.parts]
            files.sort(key=lambda p: _natural(p.relative_to(path)))
        else:
            files = [path]
        for f in files:
            key = f.resolve()
            if key not in seen:
                seen.add(key)
                found.append(f)
    return found


def read_sources(paths: list[Path], cwd: Path | None = None) -> list[SourceFile]:
    cwd = cwd or Path.cwd()
    out = []
    for path in discover(paths, cwd):
        try:
            data = path.read_bytes()
        except PermissionError:
            raise SourceError(f"file not readable: {path}") from None
        except OSError as err:
            raise SourceError(f"cannot read {path}: {err.strerror or err}") from None
        out.append(SourceFile(path, _display(path, cwd), data))
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
