"""Alembic projects: each revision rendered to SQL offline, in the order the revisions apply.

A project is an ``alembic.ini`` (its ``script_location`` and ``version_locations``), a directory
holding one, or a script directory holding ``env.py`` and ``versions/``.

The revision graph is read *statically*: ``revision``, ``down_revision``, ``branch_labels`` and
``depends_on`` are module-level literals in every revision file, so they are read with a regular
expression (``ast`` for the odd multi-line value) without importing Alembic. Only a revision whose
rendered SQL is not in the cache is imported and run: its ``upgrade()`` is called with ``alembic.op``
bound to an :class:`~alembic.operations.Operations` over a :class:`~alembic.runtime.migration.
MigrationContext` in offline (``as_sql``) mode for the dialect, with no database connection and
without the project's ``env.py`` (``use_env=True`` runs ``env.py`` in offline mode instead).

Every statement Alembic writes to its output buffer is attributed to the line of the ``op`` call
that produced it, found on the call stack: the innermost frame whose code comes from the revision
file (so ``op`` calls inside helper functions of the file point at the helper's line; ops of a
``batch_alter_table`` block point at their own ``batch_op.*`` line, not at the ``with``). Statements
with no revision frame on the stack (the ``alembic_version`` bookkeeping, ``BEGIN``/``COMMIT`` of
``env.py``) are dropped. The comment block directly above an ``op`` call is copied before its SQL
as ``--`` lines, so ``# bgmigrate: ignore[rule] reason`` works in revision files; ``ignore-file``
directives anywhere in the file are copied to the top.

Rendered SQL is cached per revision (cache kind ``"alembic"``) under the file's content, the
dialect, the Alembic and SQLAlchemy versions and :data:`RENDER_VERSION`.

Layout: :mod:`.project` (finding the project, ``alembic.ini``, version locations), :mod:`.graph`
(revision headers read statically, apply order, branch labels), :mod:`.cache` (cache keys),
:mod:`.importing` (importing Alembic and revision files), :mod:`.render` (offline rendering),
:mod:`.capture` (statements attributed to ``op`` lines, comment lines), :mod:`.bind` (``op.get_bind()``
offline), :mod:`.assemble` (a revision's SQL, origins and notes), :mod:`.fork` (the child process
rendering cache misses), :mod:`.errors` (error text). This module loads a project; nothing here
imports Alembic or SQLAlchemy until a revision has to be rendered.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

# The loader below calls these through this module's namespace (the fork's child too), so patching
# one here (tests patch ``_render``) is obeyed; the ``as`` imports are re-exports.
from ..model import Origin, SourceError, SourceFile
from .assemble import Rendered
from .cache import _VERSION_ATTR as _VERSION_ATTR
from .cache import CACHE_KIND, RENDER_VERSION, _cache_key, _package_version
from .capture import _IGNORE_FILE as _IGNORE_FILE
from .fork import _ForkedRenderer
from .graph import _HEADER as _HEADER
from .graph import _HEADER_NAMES as _HEADER_NAMES
from .graph import _SIMPLE_VALUE as _SIMPLE_VALUE
from .graph import _STR as _STR
from .graph import _STRING_ITEM as _STRING_ITEM
from .graph import Revision, _read_revisions, order_revisions
from .graph import read_header as read_header
from .project import Project, find_project
from .project import is_alembic_project as is_alembic_project
from .render import _render, _render_with_env

if TYPE_CHECKING:
    from ...lint.cache import Cache

_DIALECTS = {"postgres": "postgresql", "postgresql": "postgresql", "mysql": "mysql", "mariadb": "mysql"}


def load_alembic(
    path: Path,
    dialect: str,
    cwd: Path,
    *,
    use_env: bool = False,
    cache: Cache | None = None,
    transactional: bool = True,
    while_rendering: Callable[[], object] | None = None,
) -> list[SourceFile]:
    """One :class:`SourceFile` per revision of the Alembic project at ``path``, in apply order, each
    holding the SQL its ``upgrade()`` renders offline for ``dialect`` ("postgres" or "mysql").

    ``transactional`` (the default) renders what Alembic really runs on a dialect with transactional
    DDL (PostgreSQL): each revision between ``BEGIN;`` and ``COMMIT;`` (both mapped to the
    ``def upgrade`` line), and ``COMMIT;`` ... ``BEGIN;`` around an ``autocommit_block()``, so the
    linter knows which statements run inside a transaction. ``transactional=False`` renders no
    transaction control at all.

    ``while_rendering`` is called while revisions that miss the cache are rendered: rendering then
    happens in a forked process (importing Alembic and SQLAlchemy takes a quarter of a second), so
    the caller can get its own work done meanwhile (the linter imports its parsers)."""
    sa_dialect = _DIALECTS.get(dialect)
    if sa_dialect is None:
        raise SourceError(f"unknown dialect for Alembic rendering: {dialect}")
    cwd = Path(os.path.abspath(cwd))
    project = find_project(path, cwd)
    renderer = _ForkedRenderer() if while_rendering is not None and not use_env else None
    if renderer is not None and not renderer.start():
        renderer = None
    try:
        return _load(project, dialect, sa_dialect, cwd, use_env, cache, transactional, while_rendering, renderer)
    finally:
        if renderer is not None:
            renderer.stop()


def _load(
    project: Project,
    dialect: str,
    sa_dialect: str,
    cwd: Path,
    use_env: bool,
    cache: Cache | None,
    transactional: bool,
    while_rendering: Callable[[], object] | None,
    renderer: _ForkedRenderer | None,
) -> list[SourceFile]:
    order, branches = order_revisions(_read_revisions(project, cwd))
    toolchain = f"{_package_version('alembic')}|{_package_version('sqlalchemy')}|{RENDER_VERSION}|{transactional}"
    if use_env:
        env = project.script_dir / "env.py"
        env_data = env.read_bytes() if env.is_file() else b""
        toolchain += "|env|" + hashlib.sha256(env_data).hexdigest()
    keys = [_cache_key(rev.data, sa_dialect, toolchain) for rev in order]
    use_cache = cache is not None and cache.enabled
    stored = cache.get_many(CACHE_KIND, keys) if use_cache and cache is not None else {}
    rendered: dict[str, Rendered] = {}
    missing: list[Revision] = []
    for rev, key in zip(order, keys):
        hit = Rendered.from_cache(stored[key]) if key in stored else None
        if hit is None:
            missing.append(rev)
        else:
            rendered[rev.id] = hit
    if missing:
        import warnings

        with warnings.catch_warnings():  # SQLAlchemy/Alembic warnings from project code are not ours to print
            warnings.simplefilter("ignore")
            if use_env:
                fresh = _render_with_env(project, missing, sa_dialect, cwd, transactional)
            elif renderer is not None:
                fresh = renderer.render((project, missing, sa_dialect, transactional), while_rendering)
            else:
                fresh = _render(project, missing, sa_dialect, transactional)
        rendered.update(fresh)
        if use_cache and cache is not None:
            key_of = dict(zip((rev.id for rev in order), keys))
            cache.put_many(CACHE_KIND, [(key_of[rev.id], fresh[rev.id].to_cache()) for rev in missing])
    out = []
    for rev in order:
        r = rendered[rev.id]
        out.append(
            SourceFile(
                rev.path,
                rev.display,
                r.sql.encode("utf-8"),
                revision=rev.id,
                branches=branches[rev.id],
                origins=[Origin(*o) for o in r.origins],
                notes=list(r.notes),
            )
        )
    return out


__all__ = ["CACHE_KIND", "RENDER_VERSION", "Project", "find_project", "is_alembic_project", "load_alembic"]
