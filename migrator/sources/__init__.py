"""Migration sources: SQL directories and files, and Alembic projects, in the order they apply."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .model import Origin, SourceError, SourceFile
from .sqlfiles import read_sources

if TYPE_CHECKING:
    from ..config import Settings
    from ..lint.cache import Cache

__all__ = ["Origin", "SourceError", "SourceFile", "load_sources", "looks_like_alembic", "read_sources"]


def looks_like_alembic(path: Path) -> bool:
    """An ``alembic.ini``, or a directory holding one, or holding ``env.py`` and ``versions/``."""
    if path.is_file():
        return path.name == "alembic.ini"
    if not path.is_dir():
        return False
    return (path / "alembic.ini").is_file() or ((path / "env.py").is_file() and (path / "versions").is_dir())


def _prepare_lint() -> None:
    """What linting will need anyway, done while Alembic renders in another process."""
    from ..lint.catalog import load_rules
    from ..sql.analyze import analyze_text

    analyze_text("SELECT 1;", "postgres")  # imports sqlglot and pglast, builds their tables
    load_rules()


def load_sources(
    paths: list[Path], settings: Settings, cwd: Path | None = None, cache: Cache | None = None
) -> list[SourceFile]:
    """Every migration under ``paths``: Alembic projects are rendered to SQL, the rest read as SQL."""
    cwd = cwd or Path.cwd()
    out: list[SourceFile] = []
    sql_paths: list[Path] = []
    for path in paths:
        if not path.exists():
            raise SourceError(f"path not found: {path}")
        if looks_like_alembic(path):
            if sql_paths:
                out.extend(read_sources(sql_paths, cwd))
                sql_paths = []
            from .alembic import load_alembic

            out.extend(
                load_alembic(
                    path, settings.dialect, cwd, use_env=settings.use_env, cache=cache, while_rendering=_prepare_lint
                )
            )
        else:
            sql_paths.append(path)
    if sql_paths:
        out.extend(read_sources(sql_paths, cwd))
    return out
