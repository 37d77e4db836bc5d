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
"""

from __future__ import annotations

import configparser
import contextlib
import hashlib
import heapq
import os
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .model import Origin, SourceError, SourceFile
from .sqlfiles import _display

if TYPE_CHECKING:
    from types import ModuleType

    from ..lint.cache import Cache

RENDER_VERSION = "1"  # bump whenever the rendered text of an unchanged revision would change
CACHE_KIND = "alembic"
_DIALECTS = {"postgres": "postgresql", "postgresql": "postgresql", "mysql": "mysql", "mariadb": "mysql"}
_HEADER_NAMES = ("revision", "down_revision", "branch_labels", "depends_on")
_HEADER = re.compile(
    r"^(revision|down_revision|branch_labels|depends_on)[ \t]*(?::[^=\n]*)?=(?!=)[ \t]*(.*)$", re.MULTILINE
)
_VERSION_ATTR = re.compile(r"""^__version__\s*(?::[^=\n]*)?=\s*["']([^"']+)["']""", re.MULTILINE)
_STR = r"""(?:"[^"\\\n]*"|'[^'\\\n]*')"""
_SIMPLE_VALUE = re.compile(rf"(None|{_STR}|\(\s*(?:{_STR}(?:\s*,\s*{_STR})*\s*,?)?\s*\))[ \t\r]*(?:#.*)?$")
_STRING_ITEM = re.compile(r""""([^"\\\n]*)"|'([^'\\\n]*)'""")
_IGNORE_FILE = re.compile(r"bgmigrate:\s*ignore-file", re.IGNORECASE)


# ---- the project --------------------------------------------------------------------------------


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


# ---- the revision graph, read statically ---------------------------------------------------------


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


# ---- cache keys ---------------------------------------------------------------------------------


def _package_version(name: str) -> str:
    """A package's ``__version__`` read from its ``__init__.py`` without importing it."""
    module = sys.modules.get(name)
    if module is not None and isinstance(getattr(module, "__version__", None), str):
        return module.__version__
    import importlib.util

    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return "missing"
    if spec is None or not spec.origin:
        return "missing"
    try:
        with open(spec.origin, encoding="utf-8") as fh:
            m = _VERSION_ATTR.search(fh.read())
    except OSError:
        return "unknown"
    return m.group(1) if m else "unknown"


def _cache_key(data: bytes, dialect: str, toolchain: str) -> str:
    h = hashlib.sha256(data)
    h.update(f"\0{dialect}\0{toolchain}".encode())
    return h.hexdigest()


# ---- loading ------------------------------------------------------------------------------------


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


# ---- rendering ----------------------------------------------------------------------------------


class _ForkedRenderer:
    """A child process, forked before the revision graph is read, that imports Alembic and SQLAlchemy
    (a quarter of a second) while this process reads the graph and the cache, then renders the
    revisions that missed the cache. Errors come back and are raised here as they would be in-process.
    """

    def __init__(self) -> None:
        self.pid = 0
        self.jobs_w = self.results_r = -1

    def start(self) -> bool:
        if not hasattr(os, "fork"):
            return False
        jobs_r, jobs_w = os.pipe()
        results_r, results_w = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            for fd in (jobs_r, jobs_w, results_r, results_w):
                os.close(fd)
            return False
        if pid == 0:  # the child
            os.close(jobs_w)
            os.close(results_r)
            self._serve(jobs_r, results_w)  # never returns
        os.close(jobs_r)
        os.close(results_w)
        self.pid, self.jobs_w, self.results_r = pid, jobs_w, results_r
        return True

    @staticmethod
    def _serve(jobs_r: int, results_w: int) -> None:
        import pickle
        import warnings

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _prepare_alembic()  # the slow imports, while the parent reads the graph
            with os.fdopen(jobs_r, "rb") as inp:
                job = inp.read()
            if job:
                project, missing, sa_dialect, transactional = pickle.loads(job)  # from our own parent
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        payload = pickle.dumps(("ok", _render(project, missing, sa_dialect, transactional)))
                except BaseException as err:
                    try:
                        payload = pickle.dumps(("error", err))
                    except Exception:  # an exception that does not pickle
                        payload = pickle.dumps(("error", SourceError(f"{project.script_dir}: {err}")))
                with os.fdopen(results_w, "wb") as out:
                    out.write(payload)
        finally:
            os._exit(0)

    def render(
        self, job: tuple[Project, list[Revision], str, bool], meanwhile: Callable[[], object] | None
    ) -> dict[str, Rendered]:
        import pickle

        with os.fdopen(self.jobs_w, "wb") as out:
            out.write(pickle.dumps(job))
        self.jobs_w = -1
        try:
            if meanwhile is not None:
                meanwhile()
        finally:
            with os.fdopen(self.results_r, "rb") as inp:
                data = inp.read()
            self.results_r = -1
            os.waitpid(self.pid, 0)
            self.pid = 0
        if not data:
            raise SourceError(f"{job[0].script_dir}: the process rendering Alembic revisions died")
        status, value = pickle.loads(data)  # our own child's bytes, through a private pipe
        if status == "error":
            raise value
        return value

    def stop(self) -> None:
        """Nothing to render: let the child go."""
        for fd in (self.jobs_w, self.results_r):
            if fd >= 0:
                os.close(fd)
        self.jobs_w = self.results_r = -1
        if self.pid:
            import signal

            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                os.waitpid(self.pid, 0)
            self.pid = 0


def _one_line(text: str, limit: int = 240) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _error_text(err: BaseException) -> str:
    name = type(err).__name__
    if name == "NoInspectionAvailable":
        return "reflection (sqlalchemy.inspect, autoload_with) needs a database connection"
    text = str(err).strip().split("\n", 1)[0] if str(err).strip() else ""
    return _one_line(f"{name}: {text}" if text else name)


def _tb_line(tb: Any, filename: str, resolve: bool = False) -> int | None:
    """The line of the innermost traceback frame in ``filename``."""
    line = None
    real = os.path.realpath(filename) if resolve else filename
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if name == filename or (resolve and not name.startswith("<") and os.path.realpath(name) == real):
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


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


class _EmptyResult:
    """What a query through the offline connection returns: no rows (and a note, once consumed)."""

    rowcount = 0

    def __init__(self, on_use: Any) -> None:
        self._on_use = on_use

    def _used(self) -> None:
        self._on_use()

    def __iter__(self) -> Iterator[Any]:
        self._used()
        return iter(())

    def fetchall(self) -> list[Any]:
        self._used()
        return []

    def fetchmany(self, *args: Any, **kwargs: Any) -> list[Any]:
        self._used()
        return []

    def all(self) -> list[Any]:
        self._used()
        return []

    def fetchone(self) -> None:
        self._used()
        return None

    def first(self) -> None:
        self._used()
        return None

    def scalar(self) -> None:
        self._used()
        return None

    def one_or_none(self) -> None:
        self._used()
        return None

    def scalar_one_or_none(self) -> None:
        self._used()
        return None

    def scalars(self, *args: Any) -> _EmptyResult:
        return self

    def mappings(self) -> _EmptyResult:
        return self

    def close(self) -> None:
        pass

    def one(self) -> Any:
        self._used()
        raise LookupError("a query run through op.get_bind() returns no row offline (no database)")

    scalar_one = one


class _OfflineBind:
    """``op.get_bind()`` offline: statements executed through it are rendered like ``op.execute``;
    queries return no rows; anything else needs a database and fails (the revision gets a note)."""

    def __init__(self, operations: Any, capture: _Capture, notes: list[tuple[int, str]]) -> None:
        self._operations = operations
        self._capture = capture
        self._notes = notes
        self.dialect = operations.migration_context.dialect

    def _empty_result_used(self) -> None:
        where = self._capture.locate(3)
        line = where[1] if where else 0
        message = "a query result through op.get_bind() is empty offline: code depending on it was not rendered"
        if not any(text == message for _, text in self._notes):
            self._notes.append((line, message))

    def execute(self, statement: Any, parameters: Any = None, *args: Any, **kwargs: Any) -> _EmptyResult:
        if parameters:
            raise TypeError("op.get_bind().execute() with parameters cannot be rendered offline")
        self._operations.execute(statement)
        return _EmptyResult(self._empty_result_used)

    def exec_driver_sql(self, statement: str, parameters: Any = None, *args: Any, **kwargs: Any) -> _EmptyResult:
        return self.execute(statement, parameters)

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(f"op.get_bind().{name} needs a database connection (offline rendering has none)")


def _offline_bind(operations: Any, capture: _Capture, notes: list[tuple[int, str]]) -> Any:
    def get_bind() -> _OfflineBind:
        return _OfflineBind(operations, capture, notes)

    return get_bind


def _failure_note(err: BaseException) -> str:
    return f"cannot be rendered offline ({_error_text(err)}): the rest of upgrade() is not linted"


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


__all__ = ["CACHE_KIND", "RENDER_VERSION", "Project", "find_project", "is_alembic_project", "load_alembic"]
