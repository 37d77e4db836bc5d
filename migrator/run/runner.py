"""The runner: executes a plan's stages on a live database, one runner at a time, resumably.

``expand`` runs the expand and migrate stages (schema additions, then backfills); ``contract`` runs
the contract stage once the release is recorded as switched and blue as decommissioned; ``abort``
undoes a release's expand steps (while blue is still the only version serving); ``mark`` records
the traffic gates. Every step:

- runs with the plan's ``lock_timeout`` (never queues longer for a lock) and ``statement_timeout``
  (none for backfills and scans), and on a lock timeout or deadlock is retried with exponential
  backoff and jitter up to ``retries`` attempts (tenacity);
- in a transaction when it can, together with the state row that marks it done, so a crash leaves
  it either done and recorded or not done at all; outside one when it must (``CONCURRENTLY``, MySQL
  DDL), recording each statement as it completes, so a rerun resumes inside the step;
- is compared with the SQL recorded when the release started (sha256): a step that changed is
  refused, and a step that is done never runs again.
"""

from __future__ import annotations

import getpass
import hashlib
import os
import re
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential, wait_random

from ..facts.locks import SHARE_UPDATE_EXCLUSIVE
from ..plan.model import Plan, Step
from ..sql.split import split_statements
from .backfill import NoProgress, Progress, run_backfill
from .db import Database, ErrorKind
from .durations import format_duration, parse_duration
from .errors import InputError, Refused, StepFailed
from .state import (
    ABORTED,
    ABORTING,
    CONTRACTED,
    CONTRACTING,
    DONE,
    EXPANDED,
    EXPANDING,
    FAILED,
    PENDING,
    RUNNING,
    UNDONE,
    Release,
    StateStore,
    StepState,
)

EXPAND_STAGES = ("expand", "migrate")
_CONCURRENT_INDEX = re.compile(
    r"^\s*CREATE\s+(?:UNIQUE\s+)?INDEX\s+CONCURRENTLY\s+(?:IF\s+NOT\s+EXISTS\s+)?"
    r"(?P<name>\"(?:[^\"]|\"\")+\"|[A-Za-z_][A-Za-z0-9_$]*)"
    r"\s+ON\s+(?:ONLY\s+)?(?P<table>(?:\"(?:[^\"]|\"\")+\"|[A-Za-z_][A-Za-z0-9_$]*)"
    r"(?:\.(?:\"(?:[^\"]|\"\")+\"|[A-Za-z_][A-Za-z0-9_$]*))?)",
    re.IGNORECASE,
)


@dataclass
class RunOptions:
    lock_timeout: float | None = None  # overrides the plan's lock_timeout of every step that has one
    retries: int = 10  # attempts per step (and per backfill batch) on lock timeout or deadlock
    retry_initial: float = 0.5  # first backoff, seconds; doubles, with jitter, up to retry_max
    retry_max: float = 30.0
    batch_size: int | None = None  # overrides the plan's backfill batch size
    batch_pause: float = 0.0
    wait: bool = False  # queue behind another runner instead of exiting
    wait_poll: float = 1.0
    state_schema: str | None = None  # default: bgmigrate (PostgreSQL), bgmigrate_<database> (MySQL)
    actor: str = ""
    force: bool = False
    reason: str | None = None
    progress: Callable[[], Progress] = NoProgress


@dataclass
class StepReport:
    id: str
    stage: str
    status: str
    attempts: int = 0
    seconds: float = 0.0
    rows: int | None = None
    note: str = ""
    error: str | None = None


@dataclass
class RunReport:
    command: str
    release: str
    status: str  # the release status at the end
    steps: list[StepReport] = field(default_factory=list)
    message: str = ""


def default_actor() -> str:
    env = os.environ.get("BGMIGRATE_ACTOR")
    if env:
        return env[:180]
    try:
        user = getpass.getuser()
    except Exception:
        user = "unknown"
    return f"{user}@{socket.gethostname()} pid {os.getpid()}"[:180]


def default_state_schema(db: Database) -> str:
    """``bgmigrate`` on PostgreSQL (a schema in the target database); on MySQL, where a schema is a
    database of the server, ``bgmigrate_<database>`` so that two applications' databases on one
    server keep separate state."""
    if db.dialect == "postgres" or not db.dsn.database:
        return "bgmigrate"
    return re.sub(r"[^A-Za-z0-9_]", "_", f"bgmigrate_{db.dsn.database}")[:64]


def fault_point(name: str) -> None:
    """Fault injection for the crash tests: ``BGMIGRATE_FAULT_KILL=<name>`` makes the process kill
    itself with SIGKILL there (``before:<step-id>`` as a step is about to start, ``after:<step-id>`` once
    it is recorded done, ``batch:<n>`` once the n-th backfill batch of a run committed). Nothing happens
    when the variable is unset."""
    if os.environ.get("BGMIGRATE_FAULT_KILL") == name:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


def step_checksum(step: Step) -> str:
    """sha256 of what a step runs (its SQL, its backfill, its abort SQL and its timeouts)."""
    parts = [step.sql, step.abort or "", step.lock_timeout or "", step.statement_timeout or ""]
    if step.backfill is not None:
        b = step.backfill
        parts += [b.table, b.key, b.assignments, b.condition, str(b.batch_size)]
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


def release_name_for(plan: Plan) -> str:
    """The default release name: the last source of the plan (file stem or revision)."""
    if not plan.sources:
        return plan.sha256[:12]
    last = plan.sources[-1].replace("\\", "/").rsplit("/", 1)[-1]
    stem = last.rsplit(".", 1)[0] if last.endswith((".sql", ".py")) else last
    return (stem or plan.sha256[:12])[:120]


class Runner:
    """Runs plans on ``db``; ``say`` receives one line per thing done (the CLI prints them)."""

    def __init__(self, db: Database, options: RunOptions | None = None, say: Callable[[str], None] | None = None):
        self.db = db
        self.opts = options or RunOptions()
        self.actor = self.opts.actor or default_actor()
        schema = self.opts.state_schema or default_state_schema(db)
        self.store = StateStore(db, schema)
        # PostgreSQL advisory locks belong to one database; MySQL's GET_LOCK names are server-wide
        scope = "" if db.dialect == "postgres" else f"{db.dsn.database or ''}:"
        self.lock_name = f"bgmigrate:{scope}{schema}"[:64]
        self.say = say or (lambda line: None)

    # -- the runner lock ----------------------------------------------------------------------------
    @contextmanager
    def session(self, command: str) -> Iterator[None]:
        """Hold the runner lock (and the state tables, created or upgraded) for one command."""
        with self.database_errors(command):
            self.store.check_version()
            waited = False
            while not self.db.try_lock(self.lock_name):
                holder = self._holder_text()
                if not self.opts.wait:
                    raise Refused(
                        f"another bgmigrate runner is working on this database: {holder}; rerun with --wait to queue"
                    )
                if not waited:
                    self.say(f"waiting for the runner lock, held by {holder}")
                    waited = True
                time.sleep(self.opts.wait_poll)
            try:
                try:
                    self.store.ensure()
                except Exception as err:
                    if not self.db.is_driver_error(err):
                        raise
                    raise InputError(
                        f"cannot create or upgrade bgmigrate's state tables in {self.store.schema!r} "
                        f"({self.db.describe(err)}): grant the runner's role CREATE on the database, or "
                        "pick a schema it may create with --state-schema"
                    ) from None
                self.store.set_holder(self.lock_name, f"{self.actor}: bgmigrate {command}", self.db.session_id())
                yield
            finally:
                with suppress(Exception):
                    self.db.unlock(self.lock_name)

    @contextmanager
    def database_errors(self, command: str) -> Iterator[None]:
        """A driver error outside a step (reading or writing the state, taking the lock) is one
        masked line, exit 1 (the state says where the release stands; a rerun resumes), never a
        traceback."""
        try:
            yield
        except Exception as err:
            if isinstance(err, (InputError, Refused, StepFailed)) or not self.db.is_driver_error(err):
                raise
            kind = self.db.error_kind(err)
            if kind == ErrorKind.PERMISSION:
                raise InputError(
                    f"{command}: the runner's role may not use bgmigrate's state tables in {self.store.schema!r}: "
                    f"{self.db.describe(err)}"
                ) from None
            raise StepFailed(
                f"{command}: {kind.value} while reading or writing bgmigrate's state: {self.db.describe(err)}; "
                "the state tables say where the release stands (bgmigrate status); rerun to resume"
            ) from None

    def _holder_text(self, settle: float = 2.0) -> str:
        """Who holds the runner lock: the runner's own record (actor, command, since when) and the
        server's view of its session. A runner records itself just after it takes the lock, so a record
        not (yet) from the session holding the lock is waited for up to ``settle`` seconds, and never
        shown as the holder: it names an earlier runner."""
        deadline = time.monotonic() + settle
        holder_id = session = recorded = None
        current = False
        while True:
            try:
                holder_id = self.db.lock_holder_id(self.lock_name)
                session = self.db.lock_holder_session(self.lock_name)
                recorded = self.store.holder(self.lock_name)
                # a record without a session id comes from an older bgmigrate: taken as it is
                current = recorded is not None and (recorded[2] is None or recorded[2] == holder_id)
                if current or holder_id is None:
                    break
            except Exception:  # e.g. the holder is creating the state tables right now
                recorded, current = None, False
            if time.monotonic() >= deadline:
                break
            time.sleep(0.02)
        parts = []
        if recorded and current:
            parts.append(f"{recorded[0]} since {recorded[1]:%Y-%m-%d %H:%M:%S}")
        if session:
            parts.append(session)
        return "; ".join(parts) or "(holder unknown)"

    # -- picking the release ------------------------------------------------------------------------
    def status_of(self, name: str) -> Release | None:
        """The recorded state of release ``name`` (read only: no lock, nothing created)."""
        self.store.check_version()
        return self.store.release(name)

    def pick_release(self, name: str | None, command: str, plan: Plan | None = None) -> Release:
        """The release a command acts on: ``name``, else the plan's, else the one in progress."""
        self.store.check_version()
        if name is None and plan is not None and self.store.release(release_name_for(plan)):
            name = release_name_for(plan)
        return self._open_release(name, command)

    def _open_release(self, name: str | None, command: str) -> Release:
        if name:
            rel = self.store.release(name)
            if rel is None:
                raise Refused(f"no release named {name} is recorded in this database")
            return rel
        open_releases = self.store.releases(open_only=True)
        if not open_releases:
            raise Refused(f"nothing to {command}: no release in progress is recorded in this database")
        if len(open_releases) > 1:
            names = ", ".join(r.name for r in open_releases)
            raise InputError(f"several releases are in progress ({names}): name one with --release")
        return open_releases[0]

    # -- expand ------------------------------------------------------------------------------------
    def expand(
        self, plan: Plan, name: str | None = None, *, check_schema: Callable[[Plan], list[str]] | None = None
    ) -> RunReport:
        name = name or release_name_for(plan)
        if plan.dialect != self.db.dialect:
            raise InputError(f"the plan is for {plan.dialect} but the database is {self.db.dialect}")
        checksums = {s.id: step_checksum(s) for s in plan.steps if not s.is_gate}
        with self.session("expand"):
            rel = self.store.release(name)
            others = [r for r in self.store.releases(open_only=True) if r.name != name]
            if others:
                pending = ", ".join(f"{r.name} ({r.status})" for r in others)
                self._override(
                    name, f"release {pending} is still in progress (its contract has not run): finish or abort it first"
                )
            if rel is None:
                self._check_schema(plan, check_schema)
                self.store.create_release(name, plan, checksums, self.actor)
                self.store.event(name, "expand-started", self.actor, {"plan_sha256": plan.sha256})
            else:
                rel = self._reconcile(rel, plan, checksums, check_schema)
            rel = self.store.release(name)
            assert rel is not None
            if rel.status == EXPANDED:
                self.say(f"release {name}: already expanded")
                return RunReport("expand", name, rel.status, message="already expanded")
            if rel.status not in (EXPANDING,):
                raise Refused(f"release {name} is {rel.status}: expand does not apply")
            report = RunReport("expand", name, EXPANDING)
            self._run_stage(rel, plan, EXPAND_STAGES, report)
            stamped = self._complete(name, plan, "expand", status=EXPANDED, expanded_at=self.db.now())
            if stamped:
                self.say(f"alembic_version stamped at {', '.join(stamped)} (the expand branch)")
            report.status = EXPANDED
            return report

    def _check_schema(self, plan: Plan, check: Callable[[Plan], list[str]] | None) -> None:
        if check is None:
            return
        problems = check(plan)
        if problems:
            shown = "; ".join(problems[:5]) + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else "")
            raise Refused(f"the database is not in the state the plan was made for: {shown}; plan again against it")

    def _reconcile(
        self, rel: Release, plan: Plan, checksums: dict[str, str], check: Callable[[Plan], list[str]] | None
    ) -> Release:
        started = [s for s in rel.steps.values() if s.status != PENDING]
        if rel.plan_sha256 != plan.sha256:
            if rel.status in (CONTRACTING, CONTRACTED):
                raise Refused(f"release {rel.name} was already contracted with another plan ({rel.plan_sha256[:12]})")
            changed = [s.step_id for s in started if s.status != UNDONE and checksums.get(s.step_id) != s.checksum]
            if changed and rel.status != ABORTED:
                raise Refused(
                    f"release {rel.name} was started with plan {rel.plan_sha256[:12]}; this plan ({plan.sha256[:12]}) "
                    f"changes step {changed[0]}, which already ran: a step that ran is never replaced"
                )
            if started and rel.status != ABORTED:
                raise Refused(
                    f"release {rel.name} was started with plan {rel.plan_sha256[:12]}, not {plan.sha256[:12]}: "
                    "resume it with the plan it started with"
                )
            self._check_schema(plan, check)
            self.store.replace_plan(rel.name, plan, checksums)
            self.store.event(rel.name, "plan-replaced", self.actor, {"plan_sha256": plan.sha256})
            return rel
        for s in rel.steps.values():
            if checksums.get(s.step_id) != s.checksum:
                raise Refused(
                    f"step {s.step_id} of release {rel.name}: its SQL differs from the SQL recorded when it started"
                )
        if rel.status == ABORTED:
            self._check_schema(plan, check)
            self.store.reset_steps(rel.name)
            self.store.set_release(rel.name, status=EXPANDING, aborted_at=None)
            self.store.event(rel.name, "expand-restarted", self.actor, "after an abort")
        elif rel.status in (CONTRACTING, CONTRACTED, ABORTING):
            raise Refused(f"release {rel.name} is {rel.status}: expand does not apply")
        return rel

    # -- contract ----------------------------------------------------------------------------------
    def contract(
        self,
        name: str | None = None,
        plan: Plan | None = None,
        *,
        preflight: Callable[[Release], list[str]] | None = None,
    ) -> RunReport:
        """Run the contract stage. ``preflight`` returns the ways blue can still be reached (router
        weights or tags, database sessions of blue); any refuses the contract like a missing gate."""
        with self.session("contract"):
            rel = self.pick_release(name, "contract", plan)
            if plan is not None and plan.sha256 != rel.plan_sha256:
                raise Refused(
                    f"release {rel.name} was expanded with plan {rel.plan_sha256[:12]}, not {plan.sha256[:12]}: "
                    "the contract that runs must be the one reviewed with the expand"
                )
            if rel.status == CONTRACTED:
                self.say(f"release {rel.name}: already contracted")
                return RunReport("contract", rel.name, rel.status, message="already contracted")
            if rel.status not in (EXPANDED, CONTRACTING):
                left = [s.step_id for s in rel.steps.values() if s.stage in EXPAND_STAGES and s.status != DONE]
                detail = f" (not done: {', '.join(left)})" if left and rel.status == EXPANDING else ""
                raise Refused(f"release {rel.name} is {rel.status}{detail}: contract runs only after expand completes")
            missing = [
                g for g, at in (("switched", rel.switched_at), ("decommissioned", rel.decommissioned_at)) if at is None
            ]
            if missing:
                self._override(
                    rel.name,
                    f"release {rel.name} is not recorded as {' and '.join(missing)}: contract removes what blue still "
                    f"uses (record the gates with 'bgmigrate mark switched' / 'bgmigrate mark decommissioned')",
                )
            exposure = preflight(rel) if preflight is not None and rel.status != CONTRACTING else []
            if exposure:
                self._override(
                    rel.name,
                    f"release {rel.name}: blue can still be reached, and contract removes what it uses: "
                    + "; ".join(exposure),
                )
            loaded = rel.plan
            for s in rel.steps.values():
                if s.status == DONE:
                    continue
                step = next((p for p in loaded.steps if p.id == s.step_id), None)
                if step is None or step_checksum(step) != s.checksum:
                    raise Refused(f"step {s.step_id} of release {rel.name}: its SQL differs from the SQL recorded")
            if rel.status != CONTRACTING:
                self.store.set_release(rel.name, status=CONTRACTING)
                self.store.event(rel.name, "contract-started", self.actor)
            report = RunReport("contract", rel.name, CONTRACTING)
            self._run_stage(self.store.release(rel.name) or rel, loaded, ("contract",), report)
            stamped = self._complete(rel.name, loaded, "contract", status=CONTRACTED, contracted_at=self.db.now())
            if stamped:
                self.say(f"alembic_version stamped at {', '.join(stamped)}")
            report.status = CONTRACTED
            return report

    def _override(self, release: str, refusal: str) -> None:
        if not self.opts.force:
            raise Refused(refusal + "; --force --reason '...' overrides")
        if not (self.opts.reason or "").strip():
            raise InputError("--force needs --reason '...': the override is recorded with it")
        self.store.event(release, "forced", self.actor, {"refusal": refusal, "reason": self.opts.reason})
        self.say(f"forced past a gate: {refusal} (reason recorded: {self.opts.reason})")

    # -- gates -------------------------------------------------------------------------------------
    def mark(self, gate: str, name: str | None = None) -> RunReport:
        if gate not in ("switched", "decommissioned"):
            raise InputError(f"unknown gate {gate!r}: switched or decommissioned")
        with self.session(f"mark {gate}"):
            rel = self._release_to_mark(name, gate)
            recorded = rel.switched_at if gate == "switched" else rel.decommissioned_at
            if rel.status == CONTRACTED and recorded is not None:  # a pipeline's hook retried after contract
                self.say(f"release {rel.name}: already {gate} (and contracted)")
                return RunReport(f"mark {gate}", rel.name, rel.status, message=f"already {gate}")
            if rel.status != EXPANDED and rel.status != CONTRACTING:
                raise Refused(f"release {rel.name} is {rel.status}: it can be marked {gate} only once expand completes")
            if gate == "switched":
                if rel.switched_at is None:
                    self.store.set_release(rel.name, switched_at=self.db.now())
                    self.store.event(rel.name, "switched", self.actor, "recorded by bgmigrate mark")
            else:
                if rel.switched_at is None:
                    raise Refused(f"release {rel.name} is not recorded as switched: mark it switched first")
                if rel.decommissioned_at is None:
                    self.store.set_release(rel.name, decommissioned_at=self.db.now())
                    self.store.event(rel.name, "decommissioned", self.actor, "recorded by bgmigrate mark")
            self.say(f"release {rel.name}: {gate}")
            return RunReport(f"mark {gate}", rel.name, rel.status)

    def _release_to_mark(self, name: str | None, gate: str) -> Release:
        """The release in progress; with none in progress, the latest release when it is contracted
        (marking it again is a no-op: a pipeline's hook retried after contract)."""
        if name is None and not self.store.releases(open_only=True):
            latest = self.store.releases()[-1:]
            if latest and latest[0].status == CONTRACTED:
                return latest[0]
        return self._open_release(name, f"mark {gate}")

    # -- abort -------------------------------------------------------------------------------------
    def abort(self, name: str | None = None) -> RunReport:
        with self.session("abort"):
            rel = self._open_release(name, "abort")
            if rel.status == ABORTED:
                return RunReport("abort", rel.name, ABORTED, message="already aborted")
            if rel.switched_at is not None or rel.status in (CONTRACTING, CONTRACTED):
                raise Refused(
                    f"release {rel.name} is already switched to green ({rel.status}): abort undoes expand only while "
                    "blue is the version serving; shift traffic back to blue first, then abort"
                )
            loaded = rel.plan
            by_id = {s.id: s for s in loaded.steps}
            to_undo = [
                s
                for s in sorted(rel.steps.values(), key=lambda s: s.position, reverse=True)
                if s.stage in EXPAND_STAGES and _applied(s, by_id[s.step_id])
            ]
            missing = [s.step_id for s in to_undo if s.stage == "expand" and not by_id[s.step_id].abort]
            if missing:
                raise Refused(
                    f"release {rel.name} cannot be aborted automatically: step(s) {', '.join(missing)} have no abort "
                    "SQL in the plan; undo them by hand"
                )
            self.store.set_release(rel.name, status=ABORTING)
            self.store.event(rel.name, "abort-started", self.actor)
            report = RunReport("abort", rel.name, ABORTING)
            for st in to_undo:
                step = by_id[st.step_id]
                if step.abort:
                    self._execute_step(rel.name, step, st, report, undo=True)
                else:
                    self.store.update_step(rel.name, st.step_id, status=UNDONE)
                    report.steps.append(StepReport(st.step_id, st.stage, UNDONE, note="data only: nothing to undo"))
            restored = self._complete(rel.name, loaded, "abort", status=ABORTED, aborted_at=self.db.now())
            if restored:
                self.say(f"alembic_version back at {', '.join(restored)}")
            report.status = ABORTED
            return report

    def _complete(self, name: str, plan: Plan, stage: str, **values: Any) -> list[str]:
        """Record the release's new status (and event) in one transaction with the Alembic stamp
        of that stage, if the plan has one; the revisions stamped."""
        from .alembic_stamp import stamp

        def record() -> None:
            self.store.set_release(name, **values)
            self.store.event(name, values["status"], self.actor)

        retry = self._retrying("alembic_version", name, step=False)
        return stamp(self.db, plan, stage, record, lock_timeout=self.opts.lock_timeout, retry=retry)

    # -- running steps ------------------------------------------------------------------------------
    def _run_stage(self, rel: Release, plan: Plan, stages: tuple[str, ...], report: RunReport) -> None:
        for step in plan.steps:
            if step.is_gate or step.stage not in stages:
                continue
            st = rel.steps[step.id]
            if st.status == DONE:
                report.steps.append(StepReport(step.id, step.stage, DONE, st.attempts, note="already done"))
                continue
            self._execute_step(rel.name, step, st, report)

    def _lock_timeout(self, step: Step) -> float | None:
        """The plan's lock_timeout, or --lock-timeout for steps whose lock stalls reads or writes
        (a SHARE UPDATE EXCLUSIVE wait stalls no query: it keeps the plan's longer timeout)."""
        if step.lock_timeout is None:
            return None
        if self.opts.lock_timeout is not None and step.lock != SHARE_UPDATE_EXCLUSIVE:
            return self.opts.lock_timeout
        return parse_duration(step.lock_timeout, what=f"{step.id} lock_timeout")

    def _execute_step(self, release: str, step: Step, st: StepState, report: RunReport, *, undo: bool = False) -> None:
        fault_point(f"before:{step.id}")
        sql = (step.abort or "") if undo else step.sql
        statements = [s.sql for s in split_statements(sql, self.db.dialect) if s.sql.strip()]
        lock_timeout = self._lock_timeout(step)
        statement_timeout = parse_duration(step.statement_timeout, what=f"{step.id} statement_timeout")
        transactional = step.transactional and not any(_needs_autocommit(s, self.db.dialect) for s in statements)
        resumed = st.status in (RUNNING, FAILED) and st.statements_done > 0 and not undo
        interrupted_at = st.statements_done if st.status == RUNNING and not undo else None
        started = time.monotonic()
        attempts = st.attempts
        verb = "undo" if undo else "run"
        rows: int | None = None
        self.say(
            f"{step.id} ({step.stage}{', ' + step.recipe if step.recipe else ''}): {verb}"
            + (" (resuming)" if resumed else "")
        )

        def attempt() -> None:
            nonlocal attempts, rows
            attempts += 1
            self.store.update_step(
                release,
                step.id,
                status=RUNNING,
                attempts=attempts,
                started_at=self.db.now(),
                ran_by=self.actor,
                error=None,
            )
            if step.backfill is not None and not undo:
                current = self.store.release(release)
                state = current.steps[step.id] if current else st
                result = run_backfill(
                    self.db,
                    self.store,
                    release,
                    step.id,
                    step.backfill,
                    last_key=state.backfill_last_key,
                    batch_size=self.opts.batch_size,
                    pause=self.opts.batch_pause,
                    lock_timeout=lock_timeout,
                    progress=self.opts.progress(),
                    retry=self._retrying(step.id, release),
                )
                rows = result.rows_updated
                self._finish(release, step, started, undo)
            elif transactional:
                self.db.set_timeouts(lock_timeout, statement_timeout)
                with self.db.transaction():
                    for text in statements:
                        self.db.execute(text)
                    self._finish(release, step, started, undo)
            else:
                current = self.store.release(release)
                done = 0 if undo else (current.steps[step.id].statements_done if current else 0)
                for index in range(done, len(statements)):
                    text = statements[index]
                    self.db.set_timeouts(lock_timeout, statement_timeout)
                    if self._already_built(text):
                        self.say(f"{step.id}: index of statement {index + 1} already built (valid): not built again")
                    else:
                        self._run_outside_transaction(text, step, recover=index == interrupted_at)
                    self.store.update_step(release, step.id, statements_done=index + 1)
                self._finish(release, step, started, undo)

        # a backfill retries each batch itself (a lock timeout loses one batch, not the step)
        retry = self._retrying(step.id, release) if step.backfill is None or undo else (lambda fn: fn())
        try:
            retry(attempt)
        except Exception as err:
            self._failed(release, step, err, attempts, started, lock_timeout)
        fault_point(f"after:{step.id}")
        seconds = time.monotonic() - started
        status = UNDONE if undo else DONE
        note = f"{rows:,} rows" if rows is not None else ""
        report.steps.append(StepReport(step.id, step.stage, status, attempts, round(seconds, 3), rows, note))
        retry_note = f" after {attempts} attempts" if attempts - st.attempts > 1 else ""
        self.say(f"{step.id}: {status} in {format_duration(seconds)}{retry_note}{f' ({note})' if note else ''}")

    def _finish(self, release: str, step: Step, started: float, undo: bool) -> None:
        self.store.update_step(
            release,
            step.id,
            status=UNDONE if undo else DONE,
            finished_at=self.db.now(),
            duration_ms=int((time.monotonic() - started) * 1000),
        )

    def _retrying(self, label: str, release: str, *, step: bool = True) -> Callable[[Callable[[], Any]], Any]:
        def before_sleep(state: RetryCallState) -> None:
            err = state.outcome.exception() if state.outcome else None
            wait = state.next_action.sleep if state.next_action else 0
            kind = self.db.error_kind(err) if err else ErrorKind.OTHER
            text = self.db.describe(err) if err else ""
            self.say(f"{label}: {kind.value} on attempt {state.attempt_number}; retrying in {wait:.1f} s")
            try:
                if step:
                    self.store.update_step(release, label, error=f"attempt {state.attempt_number}: {text}"[:2000])
                self.store.event(
                    release, "retry", self.actor, {"step": label, "attempt": state.attempt_number, "error": text}
                )
            except Exception:
                pass

        retrying = Retrying(
            stop=stop_after_attempt(max(1, self.opts.retries)),
            wait=wait_exponential(multiplier=self.opts.retry_initial, max=self.opts.retry_max)
            + wait_random(0, self.opts.retry_initial),  # exponential backoff with jitter
            retry=retry_if_exception(lambda e: self.db.is_driver_error(e) and self.db.error_kind(e).retryable),
            before_sleep=before_sleep,
            reraise=True,
        )
        return lambda fn: retrying(fn)

    def _failed(
        self, release: str, step: Step, err: BaseException, attempts: int, started: float, lock_timeout: float | None
    ) -> None:
        if not self.db.is_driver_error(err):
            raise err
        kind = self.db.error_kind(err)
        text = self.db.describe(err)
        if kind == ErrorKind.LOCK_TIMEOUT:
            who = self.db.blockers(step.table) if kind == ErrorKind.LOCK_TIMEOUT else ""
            message = (
                f"{step.id}: could not take the {step.lock or 'needed'} lock"
                f"{f' on {step.table}' if step.table else ''} within {format_duration(lock_timeout or 0)} "
                f"in {attempts} attempts over {format_duration(time.monotonic() - started)}"
                f"{f'; holding locks on it now: {who}' if who else ''}. Nothing waited longer than the lock timeout; "
                "rerun when the blocking transactions are gone (or raise --retries)"
            )
        elif kind == ErrorKind.CONNECTION:
            message = f"{step.id}: lost the connection to the database ({text}); rerun to resume"
        else:
            message = f"{step.id}: {kind.value}: {text}"
        try:
            self.store.update_step(release, step.id, status=FAILED, error=message[:4000], finished_at=self.db.now())
            self.store.event(release, "step-failed", self.actor, {"step": step.id, "error": message})
        except Exception:  # the connection is gone: the step stays 'running', which a rerun handles
            pass
        raise StepFailed(message, step_id=step.id) from None

    def _run_outside_transaction(self, text: str, step: Step, *, recover: bool) -> None:
        index = _CONCURRENT_INDEX.match(text) if self.db.dialect == "postgres" else None
        if index:
            self._drop_invalid_index(index.group("name"), index.group("table"), step)
        try:
            self.db.execute(text)
        except Exception as err:
            if (
                recover
                and self.db.is_driver_error(err)
                and self.db.error_kind(err) in (ErrorKind.EXISTS, ErrorKind.MISSING)
            ):
                self.say(f"{step.id}: the interrupted run had already applied this statement ({self.db.describe(err)})")
                return
            if index and self.db.is_driver_error(err) and self.db.error_kind(err).retryable:
                self._drop_invalid_index(index.group("name"), index.group("table"), step)
            raise

    def _index_state(self, name: str, table: str) -> bool | None:
        """True: a valid index ``name`` exists next to ``table``; False: an INVALID one; None: none."""
        schema = table.rsplit(".", 1)[0] if "." in table else None
        qualified = f"{schema}.{name}" if schema else name
        row = self.db.query_one(
            "SELECT i.indisvalid FROM pg_index i WHERE i.indexrelid = to_regclass(%s)", (qualified,)
        )
        return None if row is None else bool(row[0])

    def _already_built(self, text: str) -> bool:
        index = _concurrent_index(text, self.db.dialect)
        return bool(index and self._index_state(*index) is True)

    def _drop_invalid_index(self, name: str, table: str, step: Step) -> None:
        if self._index_state(name, table) is False:
            schema = table.rsplit(".", 1)[0] + "." if "." in table else ""
            self.say(f"{step.id}: dropping the INVALID index {schema}{name} left by a failed build before retrying")
            self.db.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {schema}{name}")

    # -- status ------------------------------------------------------------------------------------
    def status(self, name: str | None = None) -> list[Release]:
        with self.database_errors("status"):
            return self._status(name)

    def _status(self, name: str | None) -> list[Release]:
        self.store.check_version()
        if name:
            rel = self.store.release(name)
            if rel is None:
                raise Refused(f"no release named {name} is recorded in this database")
            return [rel]
        return self.store.releases()


def _concurrent_index(text: str, dialect: str) -> tuple[str, str] | None:
    if dialect != "postgres":
        return None
    m = _CONCURRENT_INDEX.match(text)
    return (m.group("name"), m.group("table")) if m else None


def _needs_autocommit(sql: str, dialect: str) -> bool:
    if dialect != "postgres":
        return False
    return bool(re.search(r"\bCONCURRENTLY\b|^\s*VACUUM\b|^\s*ALTER\s+SYSTEM\b", sql, re.IGNORECASE))


def _applied(state: StepState, step: Step) -> bool:
    """Has the step (perhaps partly) changed the database?"""
    if state.status == DONE:
        return True
    if state.status in (PENDING, UNDONE):
        return False
    if step.transactional:  # a failed or interrupted transaction was rolled back
        return step.backfill is not None and state.backfill_rows > 0
    return state.status in (RUNNING, FAILED) or state.statements_done > 0  # abort SQL is idempotent (IF EXISTS)
