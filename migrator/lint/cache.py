"""The lint cache: one SQLite file, ``.bgmigrate_cache/cache.sqlite3``.

Two kinds of entries, both JSON text (never pickles: a cache directory can come from anywhere):

- ``analysis``: a file's statements and changes, keyed by its content, the dialect and the
  analyzer's code;
- ``results``: a file's lint results, keyed by the chain of every file up to it.

One database instead of a file per entry: a cold run writes everything in one transaction and a
warm run reads everything with a few queries. The cache is safe to delete. A corrupted or locked
database is never an error: it is set aside (or skipped) and the lint goes on uncached.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..config import Settings

FILE_NAME = "cache.sqlite3"
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS entries "
    "(kind TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (kind, key)) WITHOUT ROWID"
)
_BATCH = 500


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


class Cache:
    def __init__(self, root: Path | None) -> None:
        self.path = root / FILE_NAME if root is not None else None
        self._db: sqlite3.Connection | None = None
        self.enabled = self.path is not None

    @classmethod
    def for_settings(cls, settings: Settings) -> Cache:
        return cls(cache_root(settings))

    def _connect(self, create: bool) -> sqlite3.Connection | None:
        if self._db is not None or not self.enabled or self.path is None:
            return self._db
        if not create and not self.path.exists():
            return None
        try:
            if create:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                gitignore = self.path.parent / ".gitignore"
                if not gitignore.exists():
                    gitignore.write_text("# bgmigrate's lint cache: safe to delete\n*\n")
            db = sqlite3.connect(self.path, timeout=2.0, isolation_level=None)
            db.execute(_SCHEMA)
        except (OSError, sqlite3.DatabaseError):
            self._set_aside()
            return None
        self._db = db
        return db

    def _set_aside(self) -> None:
        """A database that cannot be opened or read is removed (once) and the run goes on uncached."""
        self.enabled = False
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None
        if self.path is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()

    def get_many(self, kind: str, keys: list[str]) -> dict[str, Any]:
        db = self._connect(create=False)
        if db is None or not keys:
            return {}
        found: dict[str, Any] = {}
        try:
            for start in range(0, len(keys), _BATCH):
                chunk = keys[start : start + _BATCH]
                marks = ",".join("?" * len(chunk))
                rows = db.execute(f"SELECT key, value FROM entries WHERE kind = ? AND key IN ({marks})", [kind, *chunk])
                for key, value in rows:
                    try:
                        found[key] = json.loads(value)
                    except ValueError:
                        continue  # a damaged entry is a miss
        except sqlite3.DatabaseError:
            self._set_aside()
            return {}
        return found

    def put_many(self, kind: str, items: Iterable[tuple[str, Any]]) -> None:
        if not self.enabled:
            return
        self.put_many_encoded(kind, ((key, json.dumps(value, separators=(",", ":"))) for key, value in items))

    def put_many_encoded(self, kind: str, items: Iterable[tuple[str, str]]) -> None:
        """Like :meth:`put_many` for values already encoded as JSON text (by worker processes)."""
        if not self.enabled:
            return
        rows = [(kind, key, text) for key, text in items]
        if not rows:
            return
        db = self._connect(create=True)
        if db is None:
            return
        try:
            db.execute("BEGIN")
            db.executemany("INSERT OR REPLACE INTO entries (kind, key, value) VALUES (?, ?, ?)", rows)
            db.execute("COMMIT")
        except sqlite3.OperationalError:  # locked by a concurrent run, read-only file system...
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
        except sqlite3.DatabaseError:
            self._set_aside()

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
