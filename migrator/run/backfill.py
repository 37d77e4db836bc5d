"""Backfills: the plan's ``UPDATE`` in keyset-paginated batches, each batch its own short transaction.

For each batch the runner finds the next ``batch_size`` keys after the last committed one (in key
order, through the key's index), then runs the plan's batch statement over that inclusive range and
records the range's last key in the same transaction. A crash loses at most the batch in flight,
which was rolled back with its progress row: the rerun continues from the last committed key and
never updates a row twice.

Batches wait at most ``lock_timeout`` for a row lock (retried with backoff like any step), run
without a statement timeout, and pause ``pause`` seconds between them so that replicas and the
application's own writes keep up.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ..plan.model import Backfill
from .db import Database
from .state import StateStore


class Progress(Protocol):
    def start(self, step_id: str, total: int | None, done: int) -> None: ...
    def advance(self, rows: int) -> None: ...
    def finish(self) -> None: ...


class NoProgress:
    def start(self, step_id: str, total: int | None, done: int) -> None:
        pass

    def advance(self, rows: int) -> None:
        pass

    def finish(self) -> None:
        pass


@dataclass
class BackfillResult:
    batches: int = 0
    rows_visited: int = 0
    rows_updated: int = 0


def fault_point(name: str) -> None:
    from .runner import fault_point as kill_here

    kill_here(name)


def estimate_rows(db: Database, table: str) -> int | None:
    """The planner's row estimate for ``table`` (no scan); None when the catalog has none."""
    try:
        if db.dialect == "postgres":
            row = db.query_one("SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)", (table,))
        else:
            bare = table.replace("`", "")
            schema, _, name = bare.rpartition(".")
            row = db.query_one(
                "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = COALESCE(%s, DATABASE()) "
                "AND TABLE_NAME = %s",
                (schema or None, name),
            )
    except Exception:
        return None
    if not row or row[0] is None or int(row[0]) < 0:
        return None
    return int(row[0])


def bounds_sql(backfill: Backfill, *, after: bool) -> str:
    """The query that finds the next batch's first and last key (and how many keys it spans)."""
    where = f" WHERE {backfill.key} > %(after)s" if after else ""
    return (
        f"SELECT MIN(k), MAX(k), COUNT(*) FROM (SELECT {backfill.key} AS k FROM {backfill.table}{where} "
        f"ORDER BY {backfill.key} LIMIT {int(backfill.batch_size)}) AS batch"
    )


def run_backfill(
    db: Database,
    store: StateStore,
    release: str,
    step_id: str,
    backfill: Backfill,
    *,
    last_key: str | None,
    batch_size: int | None,
    pause: float,
    lock_timeout: float | None,
    progress: Progress,
    retry: Callable[[Callable[[], Any]], Any],
) -> BackfillResult:
    """Run the remaining batches of ``backfill``; ``retry`` wraps each batch (lock-timeout retries)."""
    if batch_size:
        backfill = Backfill(**{**backfill.__dict__, "batch_size": batch_size})
    result = BackfillResult()
    total = estimate_rows(db, backfill.table)
    done_before = 0
    progress.start(step_id, total, done_before)
    db.set_timeouts(lock_timeout, None)
    update_sql = backfill.batch_sql()
    try:
        while True:
            holder: dict[str, Any] = {}

            def one_batch(after: str | None = last_key, holder: dict[str, Any] = holder) -> None:
                with db.transaction():
                    if after is None:
                        row = db.query_one(bounds_sql(backfill, after=False))
                    else:
                        row = db.query_one(bounds_sql(backfill, after=True), {"after": after})
                    lo, hi, count = row if row else (None, None, 0)
                    if not count:
                        holder["count"] = 0
                        return
                    changed = db.execute(update_sql, {"lo": lo, "hi": hi})
                    store.add_backfill_progress(release, step_id, str(hi), max(changed, 0))
                    holder.update(count=int(count), hi=str(hi), changed=max(changed, 0))

            retry(one_batch)
            if not holder.get("count"):
                break
            result.batches += 1
            fault_point(f"batch:{result.batches}")
            result.rows_visited += holder["count"]
            result.rows_updated += holder["changed"]
            last_key = holder["hi"]
            progress.advance(holder["count"])
            if holder["count"] < backfill.batch_size:
                break
            if pause:
                time.sleep(pause)
    finally:
        progress.finish()
    return result
