"""The runner's state, kept in the target database itself (schema ``bgmigrate``; on MySQL a database
of that name): releases, their steps and an event log.

- ``releases``: one row per release (name), the plan it runs (its JSON, verified by its sha256
  when read back), its status and the traffic gates (switched, decommissioned).
- ``steps``: one row per step: status (pending, running, done, failed, undone), sha256 of its SQL,
  attempts, timings, who ran it, the last error, how many of its statements are done (steps that
  run outside a transaction resume inside the step), and a backfill's last committed key and rows.
- ``events``: what happened when, by whom: runs, retries, gates, overrides with their reason.
- ``runner``: who holds the runner lock (the lock itself is a session advisory lock).
- ``state_version``: the version of these tables. A later bgmigrate adds numbered migrations to
  :data:`MIGRATIONS` and upgrades the tables on first use; an older bgmigrate refuses tables newer
  than it knows.

Every write uses bound parameters; only the schema name (validated, then quoted) is spliced in.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .. import __version__
from ..plan.model import Plan, PlanError
from .db import Database
from .errors import InputError

STATE_VERSION = 2
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")

# type spellings per dialect: {key} text (indexable), {text} long text, {ts} timestamp, {id} serial key
_TYPES = {
    "postgres": {"key": "text", "text": "text", "ts": "timestamptz", "id": "bigint GENERATED ALWAYS AS IDENTITY"},
    "mysql": {"key": "varchar(191)", "text": "longtext", "ts": "datetime(6)", "id": "bigint AUTO_INCREMENT"},
}

MIGRATIONS: dict[int, list[str]] = {
    1: [
        """CREATE TABLE {s}.releases (
  name {key} NOT NULL PRIMARY KEY,
  plan_sha256 {key} NOT NULL,
  plan {text} NOT NULL,
  dialect {key} NOT NULL,
  status {key} NOT NULL,
  created_at {ts} NOT NULL,
  created_by {key} NOT NULL,
  updated_at {ts} NOT NULL,
  expanded_at {ts} NULL,
  switched_at {ts} NULL,
  decommissioned_at {ts} NULL,
  contracted_at {ts} NULL,
  aborted_at {ts} NULL
)""",
        """CREATE TABLE {s}.steps (
  release_name {key} NOT NULL,
  step_id {key} NOT NULL,
  position int NOT NULL,
  stage {key} NOT NULL,
  checksum {key} NOT NULL,
  status {key} NOT NULL,
  attempts int NOT NULL DEFAULT 0,
  statements_done int NOT NULL DEFAULT 0,
  backfill_last_key {text} NULL,
  backfill_rows bigint NOT NULL DEFAULT 0,
  started_at {ts} NULL,
  finished_at {ts} NULL,
  duration_ms bigint NULL,
  ran_by {key} NULL,
  error {text} NULL,
  PRIMARY KEY (release_name, step_id),
  FOREIGN KEY (release_name) REFERENCES {s}.releases (name)
)""",
        """CREATE TABLE {s}.events (
  id {id} PRIMARY KEY,
  release_name {key} NULL,
  at {ts} NOT NULL,
  kind {key} NOT NULL,
  actor {key} NOT NULL,
  detail {text} NOT NULL
)""",
        """CREATE TABLE {s}.runner (
  lock_name {key} NOT NULL PRIMARY KEY,
  holder {text} NOT NULL,
  since {ts} NOT NULL
)""",
    ],
    # the release flow's stages between expand and contract (bgmigrate release)
    2: [
        "ALTER TABLE {s}.releases ADD COLUMN deployed_at {ts} NULL",
        "ALTER TABLE {s}.releases ADD COLUMN verified_at {ts} NULL",
        "ALTER TABLE {s}.releases ADD COLUMN soaked_at {ts} NULL",
    ],
}

# release statuses
EXPANDING, EXPANDED, CONTRACTING, CONTRACTED, ABORTING, ABORTED = (
    "expanding",
    "expanded",
    "contracting",
    "contracted",
    "aborting",
    "aborted",
)
OPEN_STATUSES = (EXPANDING, EXPANDED, CONTRACTING, ABORTING)
# step statuses
PENDING, RUNNING, DONE, FAILED, UNDONE = "pending", "running", "done", "failed", "undone"


@dataclass
class StepState:
    step_id: str
    position: int
    stage: str
    checksum: str
    status: str = PENDING
    attempts: int = 0
    statements_done: int = 0
    backfill_last_key: str | None = None
    backfill_rows: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_ms: int | None = None
    ran_by: str | None = None
    error: str | None = None


@dataclass
class Release:
    name: str
    plan_sha256: str
    plan_json: str
    dialect: str
    status: str
    created_at: datetime
    created_by: str
    updated_at: datetime
    expanded_at: datetime | None = None
    switched_at: datetime | None = None
    decommissioned_at: datetime | None = None
    contracted_at: datetime | None = None
    aborted_at: datetime | None = None
    deployed_at: datetime | None = None
    verified_at: datetime | None = None
    soaked_at: datetime | None = None
    steps: dict[str, StepState] = field(default_factory=dict)

    @property
    def plan(self) -> Plan:
        try:
            return Plan.from_json(self.plan_json)
        except PlanError as err:
            raise InputError(f"the plan recorded for release {self.name} does not verify: {err}") from None

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


_RELEASE_COLS = (
    "name, plan_sha256, plan, dialect, status, created_at, created_by, updated_at, expanded_at, switched_at, "
    "decommissioned_at, contracted_at, aborted_at"
)
_RELEASE_COLS_V2 = ", deployed_at, verified_at, soaked_at"
_STEP_COLS = (
    "step_id, position, stage, checksum, status, attempts, statements_done, backfill_last_key, backfill_rows, "
    "started_at, finished_at, duration_ms, ran_by, error"
)


class StateStore:
    """Reads and writes the state tables through ``db`` (the runner's own connection)."""

    def __init__(self, db: Database, schema: str = "bgmigrate") -> None:
        if not _NAME.match(schema):
            raise InputError(f"state schema name {schema!r} is not a plain identifier (letters, digits, _)")
        self.db = db
        self.schema = schema
        q = '"' if db.dialect == "postgres" else "`"
        self.s = f"{q}{schema}{q}"
        self._version: int | None = None

    # -- creation and versioning ---------------------------------------------------------------------
    def exists(self) -> bool:
        if self.db.dialect == "postgres":
            row = self.db.query_one("SELECT to_regclass(%s) IS NOT NULL", (f'"{self.schema}".state_version',))
            return bool(row and row[0])
        row = self.db.query_one(
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME = 'state_version'",
            (self.schema,),
        )
        return bool(row and row[0])

    def version(self) -> int:
        if not self.exists():
            return 0
        row = self.db.query_one(f"SELECT MAX(version) FROM {self.s}.state_version")
        return int(row[0]) if row and row[0] is not None else 0

    def check_version(self) -> int:
        version = self.version()
        if version > STATE_VERSION:
            raise InputError(
                f"the state tables in {self.schema} are version {version}, newer than this bgmigrate knows "
                f"({STATE_VERSION}): upgrade bgmigrate"
            )
        return version

    def ensure(self) -> None:
        """Create or upgrade the state tables (call with the runner lock held)."""
        version = self.check_version()
        if version == STATE_VERSION:
            return
        types = _TYPES[self.db.dialect]
        transactional = self.db.dialect == "postgres"  # MySQL DDL commits by itself
        if version == 0:
            self.db.set_timeouts(5, 30)
            if self.db.dialect == "postgres":
                self.db.execute(f"CREATE SCHEMA IF NOT EXISTS {self.s}")
            else:
                self.db.execute(f"CREATE DATABASE IF NOT EXISTS {self.s}")
            self.db.execute(
                f"CREATE TABLE IF NOT EXISTS {self.s}.state_version "
                f"(version int NOT NULL PRIMARY KEY, applied_at {types['ts']} NOT NULL, "
                f"tool_version {types['key']} NOT NULL)"
            )
        for number in sorted(n for n in MIGRATIONS if n > version):
            statements = [sql.format(s=self.s, **types) for sql in MIGRATIONS[number]]
            if transactional:
                with self.db.transaction():
                    for sql in statements:
                        self.db.execute(sql)
                    self._record_version(number)
            else:
                for sql in statements:
                    self.db.execute(sql.replace("CREATE TABLE ", "CREATE TABLE IF NOT EXISTS ", 1))
                self._record_version(number)

    def _record_version(self, number: int) -> None:
        self._version = None
        self.db.execute(
            f"INSERT INTO {self.s}.state_version (version, applied_at, tool_version) VALUES (%s, %s, %s)",
            (number, self.db.now(), __version__),
        )

    # -- the runner lock holder ----------------------------------------------------------------------
    # ``holder`` is "who: what", then a tab and the holder's session id (backend pid / connection id),
    # so that another runner can tell the current holder's row from one left by an earlier (or killed)
    # runner, which stays until the next holder replaces it.
    def set_holder(self, lock_name: str, holder: str, session: str = "") -> None:
        text = f"{holder}\t{session}" if session else holder
        self.db.execute(f"DELETE FROM {self.s}.runner WHERE lock_name = %s", (lock_name,))
        self.db.execute(
            f"INSERT INTO {self.s}.runner (lock_name, holder, since) VALUES (%s, %s, %s)",
            (lock_name, text, self.db.now()),
        )

    def holder(self, lock_name: str) -> tuple[str, datetime, str | None] | None:
        """(who: what, since, session id or None) of the last runner that took the lock."""
        if not self.exists():
            return None
        row = self.db.query_one(f"SELECT holder, since FROM {self.s}.runner WHERE lock_name = %s", (lock_name,))
        if not row:
            return None
        text, _, session = str(row[0]).partition("\t")
        return (text, row[1], session or None)

    # -- releases --------------------------------------------------------------------------------------
    def releases(self, *, open_only: bool = False) -> list[Release]:
        if not self.exists():
            return []
        where = ""
        params: tuple[Any, ...] = ()
        if open_only:
            where = f" WHERE status IN ({', '.join(['%s'] * len(OPEN_STATUSES))})"
            params = OPEN_STATUSES
        rows = self.db.query(f"SELECT {self._cols()} FROM {self.s}.releases{where} ORDER BY created_at", params)
        return [self._with_steps(Release(*row)) for row in rows]

    def release(self, name: str) -> Release | None:
        if not self.exists():
            return None
        row = self.db.query_one(f"SELECT {self._cols()} FROM {self.s}.releases WHERE name = %s", (name,))
        return self._with_steps(Release(*row)) if row else None

    def _cols(self) -> str:
        """The release columns this database's state tables have (a read-only command may meet
        tables of an older version, which it does not upgrade)."""
        if self._version is None:
            self._version = self.version()
        return _RELEASE_COLS + (_RELEASE_COLS_V2 if self._version >= 2 else "")

    def _with_steps(self, release: Release) -> Release:
        rows = self.db.query(
            f"SELECT {_STEP_COLS} FROM {self.s}.steps WHERE release_name = %s ORDER BY position", (release.name,)
        )
        release.steps = {r[0]: StepState(*r) for r in rows}
        return release

    def create_release(self, name: str, plan: Plan, checksums: dict[str, str], actor: str) -> None:
        now = self.db.now()
        self.db.execute(
            f"INSERT INTO {self.s}.releases (name, plan_sha256, plan, dialect, status, created_at, created_by, "
            "updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (name, plan.sha256, plan.to_json(), plan.dialect, EXPANDING, now, actor, now),
        )
        self._insert_steps(name, plan, checksums)

    def replace_plan(self, name: str, plan: Plan, checksums: dict[str, str]) -> None:
        """A release none of whose steps has started takes a new plan (re-planned, re-reviewed)."""
        self.db.execute(f"DELETE FROM {self.s}.steps WHERE release_name = %s", (name,))
        self.db.execute(
            f"UPDATE {self.s}.releases SET plan_sha256 = %s, plan = %s, status = %s, updated_at = %s, "
            "aborted_at = NULL WHERE name = %s",
            (plan.sha256, plan.to_json(), EXPANDING, self.db.now(), name),
        )
        self._insert_steps(name, plan, checksums)

    def _insert_steps(self, name: str, plan: Plan, checksums: dict[str, str]) -> None:
        for position, step in enumerate(s for s in plan.steps if not s.is_gate):
            self.db.execute(
                f"INSERT INTO {self.s}.steps (release_name, step_id, position, stage, checksum, status) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                (name, step.id, position, step.stage, checksums[step.id], PENDING),
            )

    def set_release(self, name: str, **values: Any) -> None:
        allowed = {
            "status",
            "expanded_at",
            "switched_at",
            "decommissioned_at",
            "contracted_at",
            "aborted_at",
            "deployed_at",
            "verified_at",
            "soaked_at",
        }
        bad = set(values) - allowed
        if bad:
            raise ValueError(f"not release columns: {sorted(bad)}")
        values["updated_at"] = self.db.now()
        sets = ", ".join(f"{k} = %s" for k in values)
        self.db.execute(f"UPDATE {self.s}.releases SET {sets} WHERE name = %s", (*values.values(), name))

    # -- steps --------------------------------------------------------------------------------------
    def update_step(self, release: str, step_id: str, **values: Any) -> None:
        allowed = {
            "status",
            "attempts",
            "statements_done",
            "backfill_last_key",
            "backfill_rows",
            "started_at",
            "finished_at",
            "duration_ms",
            "ran_by",
            "error",
        }
        bad = set(values) - allowed
        if bad:
            raise ValueError(f"not step columns: {sorted(bad)}")
        sets = ", ".join(f"{k} = %s" for k in values)
        self.db.execute(
            f"UPDATE {self.s}.steps SET {sets} WHERE release_name = %s AND step_id = %s",
            (*values.values(), release, step_id),
        )

    def add_backfill_progress(self, release: str, step_id: str, last_key: str, rows: int) -> None:
        self.db.execute(
            f"UPDATE {self.s}.steps SET backfill_last_key = %s, backfill_rows = backfill_rows + %s "
            "WHERE release_name = %s AND step_id = %s",
            (last_key, rows, release, step_id),
        )

    def reset_steps(self, release: str) -> None:
        self.db.execute(
            f"UPDATE {self.s}.steps SET status = %s, statements_done = 0, backfill_last_key = NULL, "
            "backfill_rows = 0, error = NULL WHERE release_name = %s",
            (PENDING, release),
        )

    # -- events --------------------------------------------------------------------------------------
    def event(self, release: str | None, kind: str, actor: str, detail: str | dict[str, Any] = "") -> None:
        text = detail if isinstance(detail, str) else json.dumps(detail, sort_keys=True, default=str)
        self.db.execute(
            f"INSERT INTO {self.s}.events (release_name, at, kind, actor, detail) VALUES (%s, %s, %s, %s, %s)",
            (release, self.db.now(), kind, actor, text),
        )

    def events(self, release: str) -> list[tuple[datetime, str, str, str]]:
        if not self.exists():
            return []
        return [
            (r[0], r[1], r[2], r[3])
            for r in self.db.query(
                f"SELECT at, kind, actor, detail FROM {self.s}.events WHERE release_name = %s ORDER BY id", (release,)
            )
        ]
