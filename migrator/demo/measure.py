"""What the demo measures: stage windows over the load generator's records, and lock waits.

Every request the load generator sends is recorded with when it was sent; a stage is a window of
that clock, and a request belongs to the stage it was sent in (a request stalled across the end of
a stage counts in the stage that stalled it). The lock sampler polls ``pg_stat_activity`` every
``interval_s`` on its own connection and records each session of the shop (``shop@blue``,
``shop@green``) waiting for a heavyweight lock: a wait is one (pid, query start) pair, and how long
it waited is the longest ``now() - query_start`` seen for it.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from ..traffic.loadgen import LoadGenerator, Summary

LOCK_WAITS_SQL = (
    "SELECT pid, query_start, extract(epoch FROM clock_timestamp() - query_start), left(query, 120) "
    "FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'shop@%' "
    "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
)


@dataclass
class LockWait:
    pid: int
    started: Any  # query_start
    first_seen: float  # monotonic
    waited_s: float
    query: str


class LockSampler:
    """A thread sampling the shop's sessions that wait for a lock, on its own connection."""

    def __init__(self, dsn: str, interval_s: float = 0.02) -> None:
        self.dsn = dsn
        self.interval_s = interval_s
        self.waits: dict[tuple[int, Any], LockWait] = {}
        self.samples = 0
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> LockSampler:
        import psycopg

        conn = psycopg.connect(self.dsn, autocommit=True, application_name="bgmigrate-demo-sampler")
        self._thread = threading.Thread(target=self._run, args=(conn,), name="lock-sampler", daemon=True)
        self._thread.start()
        return self

    def _run(self, conn: Any) -> None:
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                rows = conn.execute(LOCK_WAITS_SQL).fetchall()
                with self._lock:
                    self.samples += 1
                    for pid, started, waited, query in rows:
                        key = (pid, started)
                        seen = self.waits.get(key)
                        if seen is None:
                            self.waits[key] = LockWait(pid, started, now, float(waited or 0), " ".join(query.split()))
                        else:
                            seen.waited_s = max(seen.waited_s, float(waited or 0))
                self._stop.wait(self.interval_s)
        except Exception as err:  # the sampler is an observer: its failure must not stop the demo
            self.error = f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"
        finally:
            with contextlib.suppress(Exception):
                conn.close()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def between(self, start: float, end: float) -> list[LockWait]:
        """The waits first seen in ``[start, end)`` (monotonic seconds)."""
        with self._lock:
            return [w for w in self.waits.values() if start <= w.first_seen < end]


@dataclass
class Stage:
    name: str
    start: float  # monotonic
    end: float = 0.0
    note: str = ""


@dataclass
class StageRow:
    """One row of the comparison table."""

    half: str
    stage: str
    seconds: float
    blue: int
    green: int
    failed: int
    longest_stall_s: float
    lock_waits: int
    longest_lock_wait_s: float
    note: str = ""
    failures: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "seconds": round(self.seconds, 3),
            "requests": {"blue": self.blue, "green": self.green},
            "failed": self.failed,
            "longest_stall_ms": round(self.longest_stall_s * 1000, 1),
            "lock_waits": self.lock_waits,
            "longest_lock_wait_ms": round(self.longest_lock_wait_s * 1000, 1),
            "note": self.note,
            "failure_examples": self.failures[:3],
        }


class Timeline:
    """The stages of one half, over one load generator and one lock sampler."""

    def __init__(self, half: str, load: LoadGenerator, sampler: LockSampler | None) -> None:
        self.half = half
        self.load = load
        self.sampler = sampler
        self.t0 = time.monotonic() - load.elapsed()  # the load's clock: its records' t are from here
        self.stages: list[Stage] = []

    @contextlib.contextmanager
    def stage(self, name: str) -> Any:
        stage = Stage(name, time.monotonic())
        self.stages.append(stage)
        try:
            yield stage
        finally:
            stage.end = time.monotonic()

    def rows(self) -> list[StageRow]:
        rows = [self._row(s.name, s.start, s.end, s.note) for s in self.stages]
        if self.stages:
            first, last = self.stages[0], self.stages[-1]
            rows.append(self._row("total", first.start, last.end or time.monotonic(), ""))
        return rows

    def _row(self, name: str, start: float, end: float, note: str) -> StageRow:
        summary: Summary = self.load.summary(since=start - self.t0, until=end - self.t0)
        waits = self.sampler.between(start, end) if self.sampler else []
        return StageRow(
            half=self.half,
            stage=name,
            seconds=end - start,
            blue=summary.side("blue").requests,
            green=summary.side("green").requests,
            failed=summary.failures,
            longest_stall_s=summary.latency_max_s,
            lock_waits=len(waits),
            longest_lock_wait_s=max((w.waited_s for w in waits), default=0.0),
            note=note,
            failures=summary.failure_examples,
        )
