"""Per-file analysis (split, parse, normalize) with a content-hash cache and worker processes.

Analysis depends only on a file's bytes, the dialect and the analyzer code,
so its result is cached under ``.bgmigrate_cache/analysis/`` keyed by a hash
of those. A warm run reads JSON and never imports the SQL parsers. Files that
miss the cache are analyzed in worker processes when there are enough of them
to pay for the start-up.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from .. import __version__
from ..config import Settings
from ..sources.sqlfiles import SourceFile, decode
from ..sql.statement import Statement

CACHE_FORMAT = 1
_PARALLEL_MIN_FILES = 48


@lru_cache(maxsize=1)
def analyzer_fingerprint() -> str:
    """Hash of the analyzer's own code: a changed analyzer never reads stale cache entries."""
    h = hashlib.sha256(f"{CACHE_FORMAT}:{__version__}".encode())
    sql_dir = Path(__file__).resolve().parent.parent / "sql"
    for p in sorted(sql_dir.glob("*.py")):
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def cache_root(settings: Settings) -> Path | None:
    if not settings.cache:
        return None
    if settings.cache_dir:
        return Path(settings.cache_dir)
    env = os.environ.get("BGMIGRATE_CACHE_DIR")
    if env:
        return Path(env)
    if settings.config_path:
        return Path(settings.config_path).resolve().parent / ".bgmigrate_cache"
    return Path.cwd() / ".bgmigrate_cache"


class JsonStore:
    """JSON documents in ``root/<kind>/<key[:2]>/<key>.json``; unreadable entries are misses."""

    def __init__(self, root: Path | None, kind: str) -> None:
        self.dir = root / kind if root is not None else None
        self.writable = self.dir is not None

    def read(self, key: str) -> Any:
        if self.dir is None:
            return None
        try:
            return json.loads((self.dir / key[:2] / f"{key}.json").read_bytes())
        except (OSError, ValueError):
            return None

    def write(self, key: str, payload: Any) -> None:
        if self.dir is None or not self.writable:
            return
        target = self.dir / key[:2] / f"{key}.json"
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(payload, separators=(",", ":")), encoding="utf-8")
            os.replace(tmp, target)
        except OSError:
            self.writable = False  # read-only checkout: lint on without caching


def content_key(data: bytes, dialect: str) -> str:
    h = hashlib.sha256(analyzer_fingerprint().encode())
    h.update(dialect.encode())
    h.update(b"\0")
    h.update(data)
    return h.hexdigest()


class AnalysisCache(JsonStore):
    """Per-file analysis (statements and changes), keyed by content, dialect and analyzer code."""

    def __init__(self, root: Path | None) -> None:
        super().__init__(root, "analysis")

    def key(self, data: bytes, dialect: str) -> str:
        return content_key(data, dialect)

    def get(self, key: str) -> list[Statement] | str | None:
        data = self.read(key)
        if data is None:
            return None
        try:
            if isinstance(data, dict) and "problem" in data:
                return str(data["problem"])
            return [Statement.from_json(s) for s in data]
        except (ValueError, KeyError, TypeError, IndexError):
            return None  # corrupted: analyze again

    def put(self, key: str, value: list[Statement] | str) -> None:
        self.write(key, {"problem": value} if isinstance(value, str) else [s.to_json() for s in value])


class ResultCache(JsonStore):
    """Per-file lint results, keyed by the chain of every file up to this one (see chain_keys)."""

    @classmethod
    def for_settings(cls, settings: Settings) -> ResultCache:
        return cls(cache_root(settings), "results")

    def get(self, key: str) -> dict[str, Any] | None:
        data = self.read(key)
        if not isinstance(data, dict) or not isinstance(data.get("statements"), list):
            return None
        if not isinstance(data.get("findings"), list):
            return None
        return data

    def put(self, key: str, value: dict[str, Any]) -> None:
        self.write(key, value)


def chain_keys(sources: list[SourceFile], settings: Settings) -> list[str]:
    """Key of file i = hash(key of file i-1, file i's name and content): a file's result
    depends on every file before it (the schema they built), so any change earlier in the
    history invalidates it."""
    from .catalog import catalog_fingerprint

    seed = f"{analyzer_fingerprint()}|{catalog_fingerprint()}|{settings.fingerprint()}"
    previous = hashlib.sha256(seed.encode()).hexdigest()
    keys = []
    for source in sources:
        h = hashlib.sha256(previous.encode())
        h.update(source.display.encode())
        h.update(b"\0")
        h.update(content_key(source.data, settings.dialect).encode())
        previous = h.hexdigest()
        keys.append(previous)
    return keys


def analyze_one(data: bytes, dialect: str) -> list[Statement] | str:
    text, problem = decode(data)
    if problem is not None:
        return problem
    from ..sql.analyze import analyze_text

    assert text is not None
    return analyze_text(text, dialect)


def _worker(args: tuple[bytes, str]) -> list[Statement] | str:
    return analyze_one(*args)


def _jobs(settings: Settings, misses: int) -> int:
    if settings.jobs:
        return settings.jobs
    if misses < _PARALLEL_MIN_FILES:
        return 1
    return max(1, min(os.cpu_count() or 1, 8))


def analyze_sources(sources: list[SourceFile], settings: Settings) -> list[list[Statement] | str]:
    cache = AnalysisCache(cache_root(settings))
    results: list[list[Statement] | str | None] = [None] * len(sources)
    keys = [cache.key(s.data, settings.dialect) for s in sources]
    todo: list[int] = []
    for i, key in enumerate(keys):
        hit = cache.get(key)
        if hit is None:
            todo.append(i)
        else:
            results[i] = hit
    if todo:
        jobs = _jobs(settings, len(todo))
        work = [(sources[i].data, settings.dialect) for i in todo]
        if jobs > 1:
            computed = _parallel(work, jobs)
        else:
            computed = [analyze_one(d, dia) for d, dia in work]
        for i, value in zip(todo, computed):
            results[i] = value
            cache.put(keys[i], value)
    return [r if r is not None else [] for r in results]


def _parallel(work: list[tuple[bytes, str]], jobs: int) -> list[list[Statement] | str]:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    from ..sql import analyze  # noqa: F401 - import the parsers once, before forking

    try:
        ctx = mp.get_context("fork")
    except ValueError:  # pragma: no cover - platforms without fork
        ctx = mp.get_context()
    chunk = max(1, len(work) // (jobs * 4))
    try:
        with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
            return list(pool.map(_worker, work, chunksize=chunk))
    except (OSError, RuntimeError):  # no processes available here: do it in-process
        return [analyze_one(d, dia) for d, dia in work]
