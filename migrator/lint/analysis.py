"""Per-file analysis (split, parse, normalize) with a content-hash cache and worker processes.

Analysis depends only on a file's bytes, the dialect and the analyzer code, so its result is
cached (``migrator.lint.cache``) keyed by a hash of those. A warm run never imports the SQL
parsers. Files that miss the cache are analyzed in worker processes when there are enough of
them to pay for the start-up.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from .. import __version__
from ..config import Settings
from ..sources.sqlfiles import SourceFile, decode
from ..sql.statement import Statement
from .cache import Cache

CACHE_FORMAT = 1
_PARALLEL_MIN_FILES = 48


@lru_cache(maxsize=1)
def analyzer_fingerprint() -> str:
    """Identity of bgmigrate's own code (version, and each module's size and mtime, as ruff and
    mypy do for their caches): after an upgrade or an edit, no stale cache entry is read."""
    h = hashlib.sha256(f"{CACHE_FORMAT}:{__version__}".encode())
    package = Path(__file__).resolve().parent.parent
    for p in sorted(package.rglob("*.py")):
        st = p.stat()
        h.update(f"{p.relative_to(package)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def content_key(data: bytes, dialect: str) -> str:
    h = hashlib.sha256(analyzer_fingerprint().encode())
    h.update(dialect.encode())
    h.update(b"\0")
    h.update(data)
    return h.hexdigest()


def chain_keys(sources: list[SourceFile], settings: Settings, seed_extra: str = "") -> tuple[list[str], list[str]]:
    """Content keys, and chained keys: key of file i = hash(key of file i-1, file i's name and
    content). A file's lint result depends on every file before it (the schema they built), so
    any change earlier in the history invalidates it."""
    from .catalog import catalog_fingerprint

    seed = f"{analyzer_fingerprint()}|{catalog_fingerprint()}|{settings.fingerprint()}|{seed_extra}"
    previous = hashlib.sha256(seed.encode()).hexdigest()
    contents: list[str] = []
    chained: list[str] = []
    for source in sources:
        content = content_key(source.data, settings.dialect)
        h = hashlib.sha256(previous.encode())
        h.update(source.display.encode())
        h.update(b"\0")
        h.update(content.encode())
        h.update(source.identity().encode())
        previous = h.hexdigest()
        contents.append(content)
        chained.append(previous)
    return contents, chained


def analyze_one(data: bytes, dialect: str) -> list[Statement] | str:
    text, problem = decode(data)
    if problem is not None:
        return problem
    from ..sql.analyze import analyze_text

    assert text is not None
    return analyze_text(text, dialect)


def _worker_init() -> None:
    # Parse trees are cyclic (parent links): keep the collector, but run it less often.
    gc.set_threshold(50_000, 20, 20)


def _worker(args: tuple[bytes, str, bool]) -> tuple[list[Statement] | str, str | None]:
    """Analyze one file; also encode its cache entry here, in parallel, when the cache is on."""
    data, dialect, encode = args
    value = analyze_one(data, dialect)
    return value, _encode(value) if encode else None


def _encode(value: list[Statement] | str) -> str:
    return json.dumps(_to_cache(value), separators=(",", ":"))


def _jobs(settings: Settings, misses: int) -> int:
    if settings.jobs:
        return settings.jobs
    if misses < _PARALLEL_MIN_FILES:
        return 1
    return max(1, min(os.cpu_count() or 1, 8))


def _from_cache(data: Any) -> list[Statement] | str | None:
    try:
        if isinstance(data, dict) and "problem" in data:
            return str(data["problem"])
        return [Statement.from_json(s) for s in data]
    except (ValueError, KeyError, TypeError, IndexError):
        return None  # a damaged entry is a miss


def _to_cache(value: list[Statement] | str) -> Any:
    return {"problem": value} if isinstance(value, str) else [s.to_json() for s in value]


def iter_analysis(
    sources: list[SourceFile], settings: Settings, keys: list[str], cache: Cache
) -> Iterator[list[Statement] | str]:
    """Statements of each file, in order: from the cache (by content key) or analyzed now.

    Misses are analyzed by worker processes while the caller lints the files already yielded,
    so parsing and linting overlap. New analyses are written to the cache at the end.
    """
    stored = cache.get_many("analysis", keys)
    cached: list[list[Statement] | str | None] = [_from_cache(stored[k]) if k in stored else None for k in keys]
    todo = [i for i, r in enumerate(cached) if r is None]
    jobs = _jobs(settings, len(todo))
    work = [(sources[i].data, settings.dialect, cache.enabled) for i in todo]
    computed: list[tuple[str, str]] = []
    with _Analyzer(jobs) as analyzer:
        fresh = analyzer.run(work)
        for i, hit in enumerate(cached):
            if hit is not None:
                yield hit
                continue
            value, encoded = next(fresh)
            if encoded is not None:
                computed.append((keys[i], encoded))
            yield value
    cache.put_many_encoded("analysis", computed)


class _Analyzer:
    """Runs analyze_one over work items, in worker processes when ``jobs`` > 1."""

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs
        self.pool: Any = None

    def __enter__(self) -> _Analyzer:
        if self.jobs > 1:
            import multiprocessing as mp

            # Warm the parsers in this process before forking (imports, dialect tables, libpg_query),
            # and freeze what exists so the workers do not copy it page by page on their first GC.
            analyze_one(b"SELECT 1;", "postgres")
            analyze_one(b"SELECT 1;", "mysql")
            gc.freeze()
            try:
                ctx = mp.get_context("fork")
            except ValueError:  # pragma: no cover - platforms without fork
                ctx = mp.get_context()
            try:
                self.pool = ctx.Pool(self.jobs, initializer=_worker_init)
            except (OSError, RuntimeError):  # no processes available here: do it in-process
                self.pool = None
        return self

    def run(self, work: list[tuple[bytes, str, bool]]) -> Iterator[tuple[list[Statement] | str, str | None]]:
        if self.pool is None:
            return (_worker(item) for item in work)
        chunk = max(1, min(16, len(work) // (self.jobs * 8)))
        return self.pool.imap(_worker, work, chunksize=chunk)

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()
            gc.unfreeze()
