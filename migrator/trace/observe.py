"""Run statements on the scratch database and record what the server did, the way eugene's ``trace`` does.

In a transaction (the usual case), per statement or per plan step:

- **locks**: after the SQL ran and before ``COMMIT``, every relation lock (and lock on a type) this
  backend holds, from ``pg_locks``;
- **rewrite**: a table or materialized view got a new ``relfilenode`` (its rows copied to new files).
  TRUNCATE also gets new, empty files: for a TRUNCATE that is reported as ``truncated``, not as a
  rewrite;
- **indexes rebuilt**: an index of an existing table got a new ``relfilenode`` (a REINDEX, or the
  rebuild after a type change);
- **rows read**: this transaction's own statistics (``pg_stat_xact_user_tables``); a table is *read in
  full* when at least as many rows were read as it held when the release started (only observable
  with rows in it: ``--sample-rows``);
- **duration** of the SQL itself.

Then it commits: the next statement sees its effect. (The scratch database is the rollback: it is
dropped at the end, unless ``--keep``.)

Statements that cannot run in a transaction block (``CONCURRENTLY``, ``VACUUM``) run on their own,
while a second connection polls their backend's ``pg_locks``. To make the locks observable even on a
tiny table, a third connection first holds SHARE UPDATE EXCLUSIVE on the statement's table, which
every lock mode from SHARE UPDATE EXCLUSIVE up waits for; once the statement is seen waiting (or
after two seconds) it is released. Locks are then the modes seen held or requested; rows read are
not observable there (another backend's counters are flushed late).

"Existing" relations are those present when the unit under trace started (the release, or with
no ``--since`` the migration file): like the static classification, locks on objects the release
created itself are shown but not compared.
"""

from __future__ import annotations

import re
import threading
import time
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from ..facts.locks import LOCK_STRENGTH
from ..schema.live.errors import one_line

MODES = {
    "AccessShareLock": "ACCESS SHARE",
    "RowShareLock": "ROW SHARE",
    "RowExclusiveLock": "ROW EXCLUSIVE",
    "ShareUpdateExclusiveLock": "SHARE UPDATE EXCLUSIVE",
    "ShareLock": "SHARE",
    "ShareRowExclusiveLock": "SHARE ROW EXCLUSIVE",
    "ExclusiveLock": "EXCLUSIVE",
    "AccessExclusiveLock": "ACCESS EXCLUSIVE",
}
KINDS = {
    "r": "table",
    "p": "partitioned table",
    "m": "materialized view",
    "v": "view",
    "f": "foreign table",
    "i": "index",
    "I": "partitioned index",
    "type": "type",
}
TABLE_LIKE = frozenset({"r", "p", "m", "v", "f", "type"})  # compared with the static lock (indexes are not)
BLOCKER_WAIT_S = 2.0
OUTSIDE_TIMEOUT_S = 300.0

_USER_NS = "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_)'"
Q_RELATIONS = f"""
SELECT c.oid::int, CASE WHEN n.nspname = 'public' THEN c.relname::text ELSE n.nspname || '.' || c.relname END,
       c.relkind::text, c.relfilenode::int, i.indrelid::int
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_index i ON i.indexrelid = c.oid
WHERE c.relkind IN ('r', 'p', 'm', 'v', 'f', 'i', 'I') AND {_USER_NS}
"""
Q_COUNTABLE = f"""
SELECT c.oid::int, format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'm') AND c.relispopulated AND {_USER_NS}
"""
Q_TYPES = f"SELECT t.oid::int FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE {_USER_NS}"
# Type locks: enums, domains, ranges (ALTER TYPE ... ADD VALUE); not a table's row type or its array.
Q_LOCKS = """
SELECT l.locktype, l.relation::int, l.mode, l.granted, ty.oid::int, format_type(ty.oid, NULL)
FROM pg_locks l
LEFT JOIN pg_type ty ON l.locktype = 'object' AND l.classid = 'pg_type'::regclass AND ty.oid = l.objid
  AND ty.typrelid = 0 AND NOT EXISTS (SELECT 1 FROM pg_type e WHERE e.oid = ty.typelem AND e.typrelid <> 0)
WHERE l.pid = %s
"""
Q_READS = """
SELECT relid::int, coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) FROM pg_stat_xact_user_tables
WHERE coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) > 0
"""
Q_QUALIFIED = """
SELECT format('%%I.%%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = to_regclass(%s) AND c.relkind IN ('r', 'p', 'm')
"""

_OUTSIDE = re.compile(
    r"^\s*(VACUUM|CREATE\s+DATABASE|DROP\s+DATABASE|ALTER\s+SYSTEM|CREATE\s+TABLESPACE|DROP\s+TABLESPACE|"
    r"REINDEX\s+(SYSTEM|DATABASE))\b",
    re.IGNORECASE,
)
_CONCURRENTLY = re.compile(r"\bCONCURRENTLY\b", re.IGNORECASE)
_REFRESH = re.compile(r"^\s*REFRESH\b", re.IGNORECASE)


def needs_own_transaction(sql: str) -> bool:
    """Statements PostgreSQL refuses inside a transaction block (REFRESH ... CONCURRENTLY is not one)."""
    return bool(_OUTSIDE.match(sql) or (_CONCURRENTLY.search(sql) and not _REFRESH.match(sql)))


@dataclass
class LockSeen:
    relation: str
    kind: str  # table | partitioned table | view | materialized view | index | type | ...
    mode: str
    existing: bool
    granted: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "relation": self.relation,
            "kind": self.kind,
            "mode": self.mode,
            "existing": self.existing,
            "granted": self.granted,
        }


@dataclass
class Observation:
    in_transaction: bool = True
    status: str = "ok"  # ok | failed
    locks: list[LockSeen] = field(default_factory=list)
    rewritten: list[str] = field(default_factory=list)
    truncated: list[str] = field(default_factory=list)
    indexes_rebuilt: list[tuple[str, str]] = field(default_factory=list)  # (index, table)
    rows_read: dict[str, int] = field(default_factory=dict)
    full_reads: list[str] = field(default_factory=list)
    scans_observable: bool = True
    duration_ms: float | None = None
    error: str | None = None
    sqlstate: str | None = None
    notes: list[str] = field(default_factory=list)

    def lock_on(self, relation: str) -> str | None:
        modes = [lk.mode for lk in self.locks if lk.relation == relation]
        return max(modes, key=LOCK_STRENGTH.__getitem__, default=None)

    def table_locks(self) -> list[LockSeen]:
        """The locks on existing table-like relations (or types): the ones compared with the rule table."""
        return [lk for lk in self.locks if lk.existing and lk.kind in {KINDS[k] for k in TABLE_LIKE}]

    def strongest(self) -> tuple[str | None, list[str]]:
        """The strongest mode on an existing table-like relation (or type), and where it was taken."""
        modes = self.table_locks()
        top = max((lk.mode for lk in modes), key=LOCK_STRENGTH.__getitem__, default=None)
        return top, sorted({lk.relation for lk in modes if lk.mode == top})

    @property
    def effect(self) -> str:
        if self.rewritten:
            return "rewrite"
        if self.indexes_rebuilt or self.full_reads:
            return "scan"
        return "none"

    def to_json(self) -> dict[str, Any]:
        top, where = self.strongest()
        return {
            "in_transaction": self.in_transaction,
            "status": self.status,
            "lock": top,
            "lock_on": where,
            "locks": [lk.to_json() for lk in self.locks],
            "effect": self.effect,
            "rewritten": self.rewritten,
            "truncated": self.truncated,
            "indexes_rebuilt": [{"index": i, "table": t} for i, t in self.indexes_rebuilt],
            "rows_read": self.rows_read,
            "read_in_full": self.full_reads,
            "scans_observable": self.scans_observable,
            "duration_ms": self.duration_ms,
            "error": self.error,
            "notes": self.notes,
        }


Snapshot = dict[int, tuple[str, str, int, int | None]]  # oid -> (name, relkind, relfilenode, index's table oid)


def _error(err: BaseException) -> tuple[str, str | None]:
    diag = getattr(err, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    return primary or one_line(err), getattr(err, "sqlstate", None)


class Tracer:
    """Two connections to the scratch database: one runs the SQL, the other watches it."""

    def __init__(self, scratch: Any) -> None:
        self.scratch = scratch
        self.conn = scratch.connect()
        self.watch = scratch.connect()
        self.existing: set[int] = set()
        self.existing_types: set[int] = set()
        self.rows: dict[int, int] = {}

    def close(self) -> None:
        for conn in (self.conn, self.watch):
            with suppress(Exception):  # closing is best effort
                conn.close()

    # -- state ----------------------------------------------------------------------------------------------
    def snapshot(self, conn: Any | None = None) -> Snapshot:
        rows = (conn or self.watch).execute(Q_RELATIONS).fetchall()
        return {oid: (name, kind, node, table) for oid, name, kind, node, table in rows}

    def mark_existing(self) -> None:
        """What exists now is what the following statements are compared on (the start of a unit)."""
        self.existing = set(self.snapshot())
        self.existing_types = {oid for (oid,) in self.watch.execute(Q_TYPES).fetchall()}
        self.rows = {}
        for oid, qualified in self.watch.execute(Q_COUNTABLE).fetchall():
            row = self.watch.execute(f"SELECT count(*) FROM {qualified}").fetchone()
            self.rows[oid] = int(row[0]) if row else 0

    def execute(self, sql: str) -> str | None:
        """Run session SQL (SET, RESET) without observing it; the error message when it failed."""
        import psycopg

        try:
            self.conn.execute(sql)
        except psycopg.Error as err:
            return _error(err)[0]
        return None

    # -- running -------------------------------------------------------------------------------------------
    def run(
        self, statements: list[str], *, transactional: bool | None = None, table: str | None = None, op: str = ""
    ) -> Observation:
        if transactional is None:
            transactional = not any(needs_own_transaction(s) for s in statements)
        if transactional:
            obs = self._in_transaction(statements, op)
            if obs.sqlstate != "25001":  # active_sql_transaction: "cannot run inside a transaction block"
                return obs
        return self._outside(statements, table, op)

    def _in_transaction(self, statements: list[str], op: str) -> Observation:
        import psycopg

        conn = self.conn
        before = self.snapshot()
        obs = Observation(in_transaction=True)
        conn.execute("BEGIN")
        try:
            # PostgreSQL 15+ keeps earlier transactions' unflushed counts in the "xact" view: diff them
            reads0 = dict(conn.execute(Q_READS).fetchall())
            started = time.perf_counter()
            for sql in statements:
                conn.execute(sql)
            obs.duration_ms = round((time.perf_counter() - started) * 1000, 3)
            locks = conn.execute(Q_LOCKS, (conn.info.backend_pid,)).fetchall()
            reads = {oid: n - reads0.get(oid, 0) for oid, n in conn.execute(Q_READS).fetchall()}
            after = self.snapshot(conn)
            conn.execute("COMMIT")
        except psycopg.Error as err:
            obs.status = "failed"
            obs.error, obs.sqlstate = _error(err)
            with suppress(psycopg.Error):
                conn.execute("ROLLBACK")
            return obs
        self._record_locks(obs, locks, before, after)
        self._record_files(obs, before, after, op)
        for oid, n in reads.items():
            if n > 0 and oid in self.existing and oid in before:
                name = before[oid][0]
                obs.rows_read[name] = int(n)
                if self.rows.get(oid, 0) > 0 and n >= self.rows[oid]:
                    obs.full_reads.append(name)
        return obs

    def _outside(self, statements: list[str], table: str | None, op: str) -> Observation:
        import psycopg

        obs = Observation(in_transaction=False, scans_observable=False)
        obs.notes.append(
            "cannot run in a transaction: ran on its own, its locks observed from a second connection while it ran"
        )
        before = self.snapshot()
        blocker = self._block(table)
        pid = self.conn.info.backend_pid
        failure: list[BaseException] = []
        timing: list[float] = []

        def run() -> None:
            try:
                started = time.perf_counter()
                for sql in statements:
                    self.conn.execute(sql)
                timing.append(time.perf_counter() - started)
            except BaseException as err:  # reported by the main thread
                failure.append(err)

        seen: dict[tuple[str, int | None, str], bool] = {}
        type_names: dict[int, str] = {}
        waited = False
        thread = threading.Thread(target=run, daemon=True)
        started = time.monotonic()
        try:
            thread.start()
            while thread.is_alive() and time.monotonic() - started < OUTSIDE_TIMEOUT_S:
                rows = self.watch.execute(Q_LOCKS, (pid,)).fetchall()
                for locktype, relation, mode, granted, type_oid, type_name in rows:
                    if mode not in MODES:
                        continue
                    if locktype == "relation":
                        key = ("relation", relation, MODES[mode])
                    elif type_oid is not None:
                        key = ("type", type_oid, MODES[mode])
                        type_names[type_oid] = type_name
                    else:
                        continue
                    seen[key] = seen.get(key, False) or bool(granted)
                if blocker is not None and (
                    any(not granted for *_x, granted, _t, _n in rows) or time.monotonic() - started > BLOCKER_WAIT_S
                ):
                    waited = waited or any(not granted for *_x, granted, _t, _n in rows)
                    blocker.rollback()
                    blocker.close()
                    blocker = None
                time.sleep(0.001)
        finally:
            if blocker is not None:
                blocker.rollback()
                blocker.close()
            thread.join(OUTSIDE_TIMEOUT_S)
        if thread.is_alive():
            obs.status = "failed"
            obs.error = f"still running after {OUTSIDE_TIMEOUT_S:g} s"
            return obs
        if failure:
            obs.status = "failed"
            err = failure[0]
            obs.error, obs.sqlstate = _error(err) if isinstance(err, psycopg.Error) else (one_line(err), None)
            return obs
        obs.duration_ms = round(timing[0] * 1000, 3) if timing else None
        after = self.snapshot()
        rows_seen = [
            (kind, oid, mode, granted, type_names.get(oid) if kind == "type" else None)
            for (kind, oid, mode), granted in seen.items()
        ]
        self._record_seen(obs, rows_seen, before, after)
        self._record_files(obs, before, after, op)
        if not obs.locks:
            obs.notes.append("no lock was seen: it finished between two observations")
        elif table and not waited:
            obs.notes.append("it did not wait for the held SHARE UPDATE EXCLUSIVE lock: weaker locks may be missing")
        return obs

    def _block(self, table: str | None) -> Any:
        """A connection holding SHARE UPDATE EXCLUSIVE on ``table`` (None when there is no such table)."""
        import psycopg

        if not table:
            return None
        try:
            row = self.watch.execute(Q_QUALIFIED, (table,)).fetchone()
        except psycopg.Error:
            return None
        if row is None:
            return None
        conn = self.scratch.connect()
        try:
            conn.autocommit = False
            conn.execute(f"LOCK TABLE {row[0]} IN SHARE UPDATE EXCLUSIVE MODE")
        except psycopg.Error:  # then it is only polled
            conn.close()
            return None
        return conn

    # -- what changed ----------------------------------------------------------------------------------------
    def _record_locks(self, obs: Observation, rows: list[tuple[Any, ...]], before: Snapshot, after: Snapshot) -> None:
        flat = []
        for locktype, relation, mode, granted, type_oid, type_name in rows:
            if mode not in MODES:
                continue
            if locktype == "relation":
                flat.append(("relation", relation, MODES[mode], bool(granted), None))
            elif type_oid is not None:
                flat.append(("type", type_oid, MODES[mode], bool(granted), type_name))
        self._record_seen(obs, flat, before, after)

    def _record_seen(self, obs: Observation, rows: list[tuple[Any, ...]], before: Snapshot, after: Snapshot) -> None:
        out: dict[tuple[str, str], LockSeen] = {}
        for kind, oid, mode, granted, type_name in rows:
            if kind == "type":
                if not type_name or oid < 16384:  # a built-in type
                    continue
                lock = LockSeen(type_name, "type", mode, oid in self.existing_types, granted)
            else:
                rel = before.get(oid) or after.get(oid)
                if rel is None:  # a catalog or another session's relation
                    continue
                lock = LockSeen(rel[0], KINDS.get(rel[1], rel[1]), mode, oid in self.existing, granted)
            key = (lock.relation, lock.mode)
            if key not in out or (granted and not out[key].granted):
                out[key] = lock
        obs.locks = sorted(out.values(), key=lambda lk: (lk.relation, -LOCK_STRENGTH[lk.mode]))

    def _record_files(self, obs: Observation, before: Snapshot, after: Snapshot, op: str) -> None:
        changed: set[int] = set()
        for oid, (name, kind, node, _table) in before.items():
            now = after.get(oid)
            if now is None or oid not in self.existing or kind not in ("r", "m") or now[2] == node:
                continue
            changed.add(oid)
            if op == "truncate":  # new, empty files: not a copy
                obs.truncated.append(name)
            else:
                obs.rewritten.append(name)
        truncated = {oid for oid in changed if before[oid][0] in obs.truncated}
        # an index rebuilt by ALTER COLUMN TYPE is dropped and created again: a new oid, the same name and table
        new_indexes = {(v[0], v[3]) for oid, v in after.items() if v[1] == "i" and oid not in before}
        for oid, (name, kind, node, table) in before.items():
            if oid not in self.existing or kind != "i" or table in truncated:
                continue
            now = after.get(oid)
            if (now is None and (name, table) not in new_indexes) or (now is not None and now[2] == node):
                continue
            owner = before.get(table or 0)
            obs.indexes_rebuilt.append((name, owner[0] if owner else "?"))
        obs.rewritten.sort()
        obs.truncated.sort()
        obs.indexes_rebuilt.sort()
