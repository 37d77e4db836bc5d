"""Whole-run memo: the same files, settings and output options give the same report.

Keyed by bgmigrate's code and rule catalog, the settings, how the report is rendered, and every
file's name and content hash. A hit replays the stored report and exit status without loading the
rules or the parsers: the pre-commit case of a rerun on unchanged files. Anything else goes through
the engine, whose per-file caches (``migrator.lint.cache``) still spare unchanged history.
"""

from __future__ import annotations

import hashlib

from .. import __version__
from ..config import Settings
from ..sources.sqlfiles import SourceFile
from .cache import Cache

KIND = "runs"


def run_key(sources: list[SourceFile], settings: Settings, render: str) -> str:
    from .analysis import analyzer_fingerprint
    from .catalog import catalog_fingerprint

    h = hashlib.sha256(
        f"{__version__}|{analyzer_fingerprint()}|{catalog_fingerprint()}|{settings.fingerprint()}|{render}".encode()
    )
    for source in sources:
        h.update(source.display.encode())
        h.update(b"\0")
        h.update(hashlib.sha256(source.data).digest())
    return h.hexdigest()


def lookup(cache: Cache, key: str) -> tuple[str, bool] | None:
    entry = cache.get_many(KIND, [key]).get(key)
    if not isinstance(entry, dict) or not isinstance(entry.get("output"), str):
        return None
    return entry["output"], bool(entry.get("failed"))


def store(cache: Cache, key: str, output: str, failed: bool) -> None:
    cache.put_many(KIND, [(key, {"output": output, "failed": failed})])
