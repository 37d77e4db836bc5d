"""Finding an Alembic project: ``alembic.ini`` (``script_location``, ``version_locations``,
``prepend_sys_path``), a directory holding one, or a script directory holding ``env.py`` and
``versions/``."""

from __future__ import annotations

import configparser
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..model import SourceError
from ..sqlfiles import _display
from .errors import _one_line


@dataclass(slots=True)
class Project:
    """Where an Alembic project keeps things."""

    ini: Path | None
    script_dir: Path
    version_dirs: list[Path]
    sys_path: list[str] = field(default_factory=list)  # prepended while revisions are imported


def _ini_in(directory: Path) -> Path | None:
    candidate = directory / "alembic.ini"
    return candidate if candidate.is_file() else None


def is_alembic_project(path: Path) -> bool:
    """``path`` is an ``alembic.ini`` (any ``.ini`` file), a directory holding ``alembic.ini``, or a
    script directory holding ``env.py`` and ``versions/``. Cheap: nothing is imported or parsed."""
    try:
        if path.is_file():
            return path.suffix.lower() == ".ini"
        if path.is_dir():
            return _ini_in(path) is not None or ((path / "env.py").is_file() and (path / "versions").is_dir())
    except OSError:
        return False
    return False


def _split_locations(value: str, separator: str | None) -> list[str]:
    if separator is not None:
        sep = {"space": " ", "newline": "\n", "os": os.pathsep, ":": ":", ";": ";"}.get(separator.strip())
        if sep is not None:
            return [part.strip() for part in value.split(sep) if part.strip()]
    return [part for part in re.split(r"[,\s]+", value) if part]  # Alembic's legacy split


def _resolve_location(location: str, base: Path) -> Path | None:
    """A ``script_location``/``version_locations`` entry: a path (relative to the ini file's directory,
    else to the working directory) or ``package:path``."""
    location = os.path.expanduser(location.strip())
    candidates = [Path(location)] if os.path.isabs(location) else [base / location, Path(location)]
    if ":" in location and not re.match(r"^[A-Za-z]:[\\/]", location):
        package, _, sub = location.partition(":")
        if re.fullmatch(r"[A-Za-z_][\w.]*", package):
            import importlib.util

            try:
                spec = importlib.util.find_spec(package)
            except (ImportError, ValueError):
                spec = None
            if spec is not None and spec.submodule_search_locations:
                candidates.insert(0, Path(next(iter(spec.submodule_search_locations))) / sub)
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    return None


def _read_ini(ini: Path, cwd: Path) -> Project:
    shown = _display(ini, str(cwd))
    parser = configparser.ConfigParser(defaults={"here": str(ini.parent.resolve())})
    try:
        with ini.open(encoding="utf-8") as fh:
            parser.read_file(fh)
    except (OSError, UnicodeDecodeError) as err:
        raise SourceError(f"{shown}: cannot read the Alembic configuration: {err}") from None
    except configparser.Error as err:
        raise SourceError(f"{shown}: invalid Alembic configuration: {_one_line(str(err))}") from None

    def option(name: str) -> str | None:
        try:
            return parser.get("alembic", name, fallback=None)
        except configparser.Error as err:
            raise SourceError(f"{shown}: invalid '{name}' in [alembic]: {_one_line(str(err))}") from None

    if not parser.has_section("alembic"):
        raise SourceError(f"{shown}: no [alembic] section: not an Alembic configuration")
    location = option("script_location")
    if not location:
        raise SourceError(f"{shown}: [alembic] has no script_location")
    base = ini.parent
    script_dir = _resolve_location(location, base)
    if script_dir is None:
        raise SourceError(f"{shown}: script_location '{location}' is not a directory")
    separator = option("path_separator") or option("version_path_separator")
    versions = option("version_locations")
    if versions:
        version_dirs = []
        for entry in _split_locations(versions, separator):
            resolved = _resolve_location(entry, base)
            if resolved is None:
                raise SourceError(f"{shown}: version location '{entry}' is not a directory")
            version_dirs.append(resolved)
    else:
        version_dirs = [script_dir / "versions"]
        if not version_dirs[0].is_dir():
            raise SourceError(f"{shown}: {_display(version_dirs[0], str(cwd))} is not a directory")
    sys_path = []
    prepend = option("prepend_sys_path")
    if prepend:
        for entry in _split_locations(prepend, separator if separator else None):
            sys_path.append(str(entry if os.path.isabs(entry) else (base / entry).resolve()))
    return Project(ini, script_dir, version_dirs, sys_path)


def find_project(path: Path, cwd: Path) -> Project:
    if path.is_file():
        return _read_ini(path, cwd)
    ini = _ini_in(path)
    if ini is not None:
        return _read_ini(ini, cwd)
    if (path / "env.py").is_file() and (path / "versions").is_dir():
        return Project(None, path, [path / "versions"], [str(path.resolve().parent)])
    raise SourceError(f"{_display(path, str(cwd))}: not an Alembic project (no alembic.ini, no env.py and versions/)")
