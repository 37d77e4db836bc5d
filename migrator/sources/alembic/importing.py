"""Running code: importing Alembic (once, with the PostgreSQL column-rename fix), and a revision
file as a fresh module with the project's ``prepend_sys_path`` entries on ``sys.path``."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..model import SourceError
from .errors import _error_text, _tb_line

if TYPE_CHECKING:
    from types import ModuleType

    from .project import Project


_COLUMN_RENAME_REGISTERED = False


def _prepare_alembic() -> None:
    """Import Alembic; render PostgreSQL column renames as ``RENAME COLUMN a TO b`` (Alembic writes the
    equivalent ``RENAME a TO b``, which reads like a table rename)."""
    global _COLUMN_RENAME_REGISTERED
    if _COLUMN_RENAME_REGISTERED:
        return
    try:
        import alembic.op  # noqa: F401
        from alembic.ddl.base import ColumnName, alter_table, format_column_name
        from sqlalchemy.ext.compiler import compiles
    except ImportError as err:
        raise SourceError(f"rendering Alembic revisions needs alembic and SQLAlchemy installed ({err})") from None

    @compiles(ColumnName, "postgresql")
    def _rename_column(element: Any, compiler: Any, **kw: Any) -> str:
        table = alter_table(compiler, element.table_name, element.schema)
        old, new = format_column_name(compiler, element.column_name), format_column_name(compiler, element.newname)
        return f"{table} RENAME COLUMN {old} TO {new}"

    _COLUMN_RENAME_REGISTERED = True


class _SysPath:
    def __init__(self, entries: list[str]) -> None:
        self.entries = [e for e in entries if e not in sys.path]

    def __enter__(self) -> None:
        sys.path[:0] = self.entries

    def __exit__(self, *exc: object) -> None:
        for entry in self.entries:
            if entry in sys.path:
                sys.path.remove(entry)


def _parse(shown: str, data: bytes, filename: str) -> Any:
    """The revision file's syntax tree (parsed once: compiled to run it, walked to map its lines)."""
    import ast

    try:
        return ast.parse(data, filename)
    except SyntaxError as err:
        where = f":{err.lineno}" if err.lineno else ""
        raise SourceError(f"{shown}{where}: cannot import the revision: {type(err).__name__}: {err.msg}") from None
    except (ValueError, RecursionError, MemoryError) as err:
        raise SourceError(f"{shown}: cannot import the revision: {_error_text(err)}") from None


def _import_module(path: Path, shown: str, data: bytes, project: Project, tree: Any = None) -> ModuleType:
    """Run a revision file as a fresh module (registered in ``sys.modules`` until the caller pops it);
    any failure is a :class:`SourceError` naming the file. No ``.pyc`` is written into the project."""
    import types

    filename = os.path.abspath(path)
    if tree is None:
        tree = _parse(shown, data, filename)
    try:
        code = compile(tree, filename, "exec", dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError) as err:
        line = getattr(err, "lineno", None)
        where = f":{line}" if line else ""
        raise SourceError(f"{shown}{where}: cannot import the revision: {_error_text(err)}") from None
    name = "_bgmigrate_revision_" + hashlib.sha256(filename.encode()).hexdigest()[:16]
    module = types.ModuleType(name)
    module.__file__ = filename
    sys.modules[name] = module
    try:
        with _SysPath(project.sys_path):
            exec(code, module.__dict__)
    except (Exception, SystemExit) as err:
        sys.modules.pop(name, None)
        line = _tb_line(err.__traceback__, filename)
        where = f":{line}" if line else ""
        raise SourceError(f"{shown}{where}: cannot import the revision: {_error_text(err)}") from None
    return module
