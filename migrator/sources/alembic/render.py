"""Offline rendering: each revision's ``upgrade()`` run in an offline (``as_sql``) migration context
for the dialect, or the project's ``env.py`` run in offline mode (``use_env``); a failure becomes a
note on the revision and the rest of its ``upgrade()`` is not rendered."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..model import SourceError
from ..sqlfiles import _display
from .assemble import Rendered, _assemble
from .bind import _offline_bind
from .capture import _Capture, _Patched
from .errors import _error_text, _tb_line
from .importing import _import_module, _parse, _prepare_alembic, _SysPath

if TYPE_CHECKING:
    from .graph import Revision
    from .project import Project


def _failure_note(err: BaseException) -> str:
    return f"cannot be rendered offline ({_error_text(err)}): the rest of upgrade() is not linted"


def _render(project: Project, revisions: list[Revision], sa_dialect: str, transactional: bool) -> dict[str, Rendered]:
    """Render each revision's ``upgrade()`` in a fresh offline migration context."""
    _prepare_alembic()
    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext

    out: dict[str, Rendered] = {}
    dialect = None
    for rev in revisions:
        capture = _Capture()
        filename = os.path.abspath(rev.path)
        tree = _parse(rev.display, rev.data, filename)
        module = _import_module(rev.path, rev.display, rev.data, project, tree)
        try:
            upgrade = getattr(module, "upgrade", None)
            if not callable(upgrade):
                raise SourceError(f"{rev.display}: revision {rev.id} has no upgrade() function")
            capture.watch(filename, rev.id, rev.data.decode("utf-8", "replace"), tree)
            opts: dict[str, Any] = {"as_sql": True, "output_buffer": capture, "literal_binds": True}
            if not transactional:
                opts["transactional_ddl"] = False
            context = MigrationContext.configure(
                dialect_name=sa_dialect if dialect is None else None,
                dialect=dialect,
                dialect_opts={"paramstyle": "named"},
                opts=opts,
            )
            dialect = context.dialect
            wrap = transactional and bool(context.impl.transactional_ddl)
            operations = Operations(context)
            notes: list[tuple[int, str]] = []
            operations.get_bind = _offline_bind(operations, capture, notes)  # type: ignore[method-assign]
            operations._install_proxy()
            try:
                with _Patched(capture), _SysPath(project.sys_path):
                    upgrade()
            except (Exception, SystemExit) as err:
                line = _tb_line(err.__traceback__, filename) or 0
                notes.append((line, _failure_note(err)))
            finally:
                operations._remove_proxy()
        finally:
            sys.modules.pop(module.__name__, None)
        out[rev.id] = _assemble(capture.emitted[rev.id], capture.maps[filename], notes, wrap)
    return out


def _render_with_env(
    project: Project, revisions: list[Revision], sa_dialect: str, cwd: Path, transactional: bool
) -> dict[str, Rendered]:
    """Render through the project's ``env.py`` in offline mode (``use_env``): Alembic loads the
    script directory and runs ``env.py`` with the revisions to render as its migration steps; each
    statement is attributed to the revision file on the stack (the ``alembic_version`` bookkeeping
    and ``env.py``'s own statements have none, and are dropped). A revision whose ``upgrade()``
    fails gets a note and the run resumes after it. ``sqlalchemy.url`` is replaced by a URL naming
    only the dialect: nothing connects."""
    _prepare_alembic()
    from alembic.config import Config

    env_py = project.script_dir / "env.py"
    env_shown = _display(env_py, str(cwd))
    if not env_py.is_file():
        raise SourceError(f"{env_shown}: no env.py to run")
    capture = _Capture(resolve=True)
    filenames: dict[str, str] = {}
    for rev in revisions:
        filename = os.path.abspath(rev.path)
        filenames[rev.id] = filename
        capture.watch(filename, rev.id, rev.data.decode("utf-8", "replace"), _parse(rev.display, rev.data, filename))
    config = Config(str(project.ini) if project.ini else None, output_buffer=capture)  # type: ignore[arg-type]

    def option(name: str, value: str) -> None:
        config.set_main_option(name, value.replace("%", "%%"))

    option("script_location", os.path.abspath(project.script_dir))
    option("path_separator", "os")
    option("version_path_separator", "os")  # the name before Alembic 1.16
    dirs = [os.path.realpath(p) for p in project.version_dirs]
    outer = [d for d in dict.fromkeys(dirs) if not any(d != o and d.startswith(o + os.sep) for o in dirs)]
    option("version_locations", os.pathsep.join(outer))  # searched recursively: nested ones would load twice
    option("recursive_version_locations", "true")
    option("sqlalchemy.url", f"{sa_dialect}://")
    notes: dict[str, list[tuple[int, str]]] = {rev.id: [] for rev in revisions}
    wrapped: list[bool] = []  # whether env.py's migration context has transactional DDL
    no_bytecode, sys.dont_write_bytecode = sys.dont_write_bytecode, True  # no .pyc into the project
    try:
        with _SysPath(project.sys_path):
            _run_env(config, capture, revisions, filenames, notes, wrapped, transactional, env_shown)
    finally:
        sys.dont_write_bytecode = no_bytecode
    wrap = any(wrapped)
    return {
        rev.id: _assemble(capture.emitted[rev.id], capture.maps[filenames[rev.id]], notes[rev.id], wrap)
        for rev in revisions
    }


def _run_env(
    config: Any,
    capture: _Capture,
    revisions: list[Revision],
    filenames: dict[str, str],
    notes: dict[str, list[tuple[int, str]]],
    wrapped: list[bool],
    transactional: bool,
    env_shown: str,
) -> None:
    from alembic.runtime.environment import EnvironmentContext
    from alembic.runtime.migration import RevisionStep
    from alembic.script import ScriptDirectory

    try:
        script = ScriptDirectory.from_config(config)
        revision_map = script.revision_map
        for rev in revisions:
            revision_map.get_revision(rev.id)
    except (Exception, SystemExit) as err:
        raise SourceError(f"{env_shown}: Alembic cannot load the revisions: {_error_text(err)}") from None
    pending = list(revisions)
    while pending:
        steps = [RevisionStep(revision_map, script.get_revision(rev.id), True) for rev in pending]

        def migrations(rev: Any, context: Any, steps: list[Any] = steps) -> list[Any]:
            wrapped.append(transactional and bool(context.impl.transactional_ddl))
            return steps

        done = len(pending)
        try:
            with _Patched(capture), EnvironmentContext(config, script, fn=migrations, as_sql=True):
                script.run_env()
        except (Exception, SystemExit) as err:
            for index, rev in enumerate(pending):
                line = _tb_line(err.__traceback__, filenames[rev.id], resolve=True)
                if line is not None:
                    done = index + 1
                    notes[rev.id].append((line, _failure_note(err)))
                    break
            else:
                raise SourceError(f"{env_shown}: env.py failed in offline mode: {_error_text(err)}") from None
        pending = pending[done:]
