"""The release flow: expand → deploy green → verify → gated switch → soak → decommission blue →
contract, with its place kept in the database's state tables so an interrupted pipeline resumes
at the right stage. Each stage can also be run alone (``--stage``), in order.

- **expand**: the runner's expand and migrate stages.
- **deploy-green**: the ``deploy_green`` hook (green up beside blue, with no traffic).
- **verify**: the ``verify`` hook (smoke tests against green's own URL).
- **switch**: the progressive, gated switch; a failed gate rolls traffic back to blue, the
  release stays expanded (blue works on it), and the flow stops with exit 3.
- **soak**: green at 100 % for ``soak``, gates re-checked; a failure rolls back.
- **decommission-blue**: refused unless green serves 100 %; the ``decommission_blue`` hook;
  then blue is recorded as decommissioned.
- **contract**: refused while the router shows any way to blue (a weight, a tag) or the database
  has sessions of blue (``blue_application_name``); then the runner's contract.

Hooks get ``BGMIGRATE_RELEASE``, ``BGMIGRATE_STAGE``, ``BGMIGRATE_BLUE``, ``BGMIGRATE_GREEN`` and
``BGMIGRATE_TARGET`` in their environment (never the DSN); a hook that exits non-zero stops the
flow with exit 1, recorded, and the rerun runs that hook again.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from typing import Any

from ..dsn import command_env
from ..plan.model import Plan
from ..run.errors import InputError, Refused, StepFailed
from ..run.runner import Runner, release_name_for
from ..run.state import ABORTED, ABORTING, CONTRACTED, CONTRACTING, EXPANDED, EXPANDING, Release
from .config import TrafficSettings
from .gates import GateResult, check_green
from .router import Router, Split, TrafficError
from .switch import rollback, switch_to_green

STAGES = ("expand", "deploy-green", "verify", "switch", "soak", "decommission-blue", "contract")


class StateRecorder:
    """Traffic moves, gates and the switched mark in the release's state."""

    def __init__(self, runner: Runner, release: str) -> None:
        self.runner = runner
        self.release = release

    def shifted(self, before: Split, after: Split, reason: str) -> None:
        detail = {"from": str(before), "to": str(after), "blue": after.blue, "green": after.green, "reason": reason}
        self.event("traffic", detail)

    def switched(self, done: bool) -> None:
        store = self.runner.store
        rel = store.release(self.release)
        if rel is None:
            return
        if done and rel.switched_at is None:
            store.set_release(self.release, switched_at=self.runner.db.now())
            self.event("switched", {"by": "bgmigrate switch"})
        elif not done and rel.switched_at is not None:
            store.set_release(self.release, switched_at=None)
            self.event("unswitched", {"by": "rollback"})

    def event(self, kind: str, detail: dict[str, Any]) -> None:
        self.runner.store.event(self.release, kind, self.runner.actor, detail)


def blue_sessions(runner: Runner, application_name: str | None) -> list[str]:
    """Sessions of blue in the database (by application_name); [] when none or not configured."""
    if not application_name:
        return []
    db = runner.db
    if db.dialect == "postgres":
        rows = db.query(
            "SELECT pid, coalesce(client_addr::text, 'local'), backend_start FROM pg_stat_activity "
            "WHERE application_name = %s AND datname = current_database() AND pid <> pg_backend_pid()",
            (application_name,),
        )
    else:
        try:
            rows = db.query(
                "SELECT a.PROCESSLIST_ID, a.PROCESSLIST_HOST, a.PROCESSLIST_TIME FROM performance_schema.threads a "
                "JOIN performance_schema.session_connect_attrs c ON c.PROCESSLIST_ID = a.PROCESSLIST_ID "
                "WHERE c.ATTR_NAME = 'program_name' AND c.ATTR_VALUE = %s AND a.PROCESSLIST_ID <> CONNECTION_ID()",
                (application_name,),
            )
        except Exception:  # performance_schema off: say so rather than guess
            return [f"cannot see sessions of {application_name} (MySQL performance_schema is off)"]
    return [f"database session of {application_name}: pid {r[0]} from {r[1]} since {r[2]}" for r in rows]


class ReleaseFlow:
    def __init__(
        self,
        runner: Runner,
        settings: TrafficSettings,
        router: Router | None,
        *,
        allow_no_gates: bool = False,
        say: Callable[[str], None] = lambda line: None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.runner = runner
        self.settings = settings
        self.router = router
        self.allow_no_gates = allow_no_gates
        self.say = say
        self.sleep = sleep

    # -- where the release stands -------------------------------------------------------------------
    @staticmethod
    def next_stage(rel: Release | None) -> str | None:
        if rel is None or rel.status == EXPANDING:
            return "expand"
        if rel.status in (ABORTED, ABORTING):
            raise Refused(f"release {rel.name} is {rel.status}: start it again with expand")
        if rel.status == CONTRACTED:
            return None
        if rel.status == CONTRACTING or rel.decommissioned_at is not None:
            return "contract"
        for stage, at in (
            ("deploy-green", rel.deployed_at),
            ("verify", rel.verified_at),
            ("switch", rel.switched_at),
            ("soak", rel.soaked_at),
        ):
            if at is None:
                return stage
        return "decommission-blue"

    # -- running -------------------------------------------------------------------------------------
    def run(
        self, plan: Plan, name: str | None = None, *, only: str | None = None, check_schema: Any = None
    ) -> list[str]:
        """Run the remaining stages (or just ``only``, which must be the next one); the stages run."""
        name = name or release_name_for(plan)
        if only is not None and only not in STAGES:
            raise InputError(f"unknown stage {only!r} (stages: {', '.join(STAGES)})")
        done: list[str] = []
        with self.runner.session("release"):
            while True:
                rel = self.runner.store.release(name)
                stage = self.next_stage(rel)
                if stage is None:
                    if only is not None and only != "contract":
                        raise Refused(f"release {name} is contracted: stage {only} does not apply")
                    self.say(f"release {name}: contracted")
                    return done
                if only is not None and stage != only:
                    if STAGES.index(only) < STAGES.index(stage):
                        self.say(f"release {name}: stage {only} is already done")
                        return done
                    raise Refused(f"release {name}: stage {only} comes after {stage}, which has not run")
                self.say(f"release {name}: stage {stage}")
                self._stage(stage, plan, name, rel, check_schema)
                done.append(stage)
                if only is not None:
                    return done

    def _stage(self, stage: str, plan: Plan, name: str, rel: Release | None, check_schema: Any) -> None:
        store, now = self.runner.store, self.runner.db.now
        if stage == "expand":
            self.runner.expand(plan, name, check_schema=check_schema)
        elif stage == "deploy-green":
            self._hook("deploy_green", stage, name)
            store.set_release(name, deployed_at=now())
        elif stage == "verify":
            self._hook("verify", stage, name)
            store.set_release(name, verified_at=now())
        elif stage == "switch":
            self.switch(name)
        elif stage == "soak":
            self._soak(name)
            store.set_release(name, soaked_at=now())
        elif stage == "decommission-blue":
            router = self._router()
            serving = router.current()
            if serving.green != 100:
                raise Refused(f"blue cannot be decommissioned: {router.describe()} serves {serving}")
            self._hook("decommission_blue", stage, name)
            self.runner.mark("decommissioned", name)
        elif stage == "contract":
            self.runner.contract(name, preflight=self.contract_preflight)

    def _router(self) -> Router:
        if self.router is None:
            raise InputError("no traffic router configured: --router (or [tool.bgmigrate.traffic] router = ...)")
        return self.router

    def gate(self) -> GateResult:
        return check_green(self.settings.gates, self.router, self._env("gate"))

    def switch(self, name: str) -> None:
        router = self._router()
        if not self.settings.gates.any and not self.allow_no_gates:
            raise InputError(
                "no health gate configured for the switch ([tool.bgmigrate.gates] probe_url, router_health, "
                "max_error_ratio or command): add one, or pass --no-gates to switch blind"
            )
        rel = self.runner.store.release(name)
        if rel is None or rel.status != EXPANDED:
            status = rel.status if rel else "not recorded"
            raise Refused(f"release {name} is {status}: traffic moves to green only once expand has completed")
        switch_to_green(
            router,
            self.gate if self.settings.gates.any else None,
            self.settings.steps,
            self.settings.interval,
            StateRecorder(self.runner, name),
            self.say,
            self.sleep,
        )

    def _soak(self, name: str) -> None:
        seconds = self.settings.soak
        if seconds <= 0:
            return
        pause = min(max(seconds / 5, 1.0), 30.0)
        deadline = time.monotonic() + seconds
        self.say(f"soak: green at 100% for {seconds:g} s, gates every {pause:g} s")
        while True:
            self.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            if self.settings.gates.any:
                checked = self.gate()
                if not checked.ok:
                    reason = f"gate failed during the soak: {checked.failures}"
                    final = rollback(self._router(), StateRecorder(self.runner, name), reason, self.say)
                    raise TrafficError(f"{reason}; traffic rolled back: {final}")
            if time.monotonic() >= deadline:
                return

    def contract_preflight(self, rel: Release) -> list[str]:
        reasons: list[str] = []
        if self.router is not None:
            reasons += self.router.blue_exposure()
        reasons += blue_sessions(self.runner, self.settings.blue_application_name)
        return reasons

    def _env(self, stage: str, name: str | None = None) -> dict[str, str]:
        cfg = self.router.config if self.router else None
        env = {"BGMIGRATE_STAGE": stage}
        if name:
            env["BGMIGRATE_RELEASE"] = name
        for key, value in (("BLUE", cfg and cfg.blue), ("GREEN", cfg and cfg.green), ("TARGET", cfg and cfg.target)):
            if value:
                env[f"BGMIGRATE_{key}"] = str(value)
        return env

    def _hook(self, hook: str, stage: str, name: str) -> None:
        command = getattr(self.settings.hooks, hook)
        if not command:
            self.say(f"{stage}: no {hook} hook configured: nothing to run")
            self.runner.store.event(name, "hook-skipped", self.runner.actor, {"hook": hook})
            return
        self.say(f"{stage}: running the {hook} hook")
        started = time.monotonic()
        try:
            done = subprocess.run(  # the user's own command, from their configuration
                command,
                shell=True,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=self.settings.hooks.timeout,
                env=command_env(self._env(stage, name)),
            )
        except subprocess.TimeoutExpired:
            self.runner.store.event(name, "hook-failed", self.runner.actor, {"hook": hook, "error": "timeout"})
            raise StepFailed(f"the {hook} hook did not finish within {self.settings.hooks.timeout:g} s") from None
        output = self.runner.db.dsn.scrub(done.stdout)  # a hook may print a secret it found elsewhere
        for line in output.splitlines()[-40:]:
            self.say(f"  {hook}: {line}")
        detail = {"hook": hook, "exit": done.returncode, "seconds": round(time.monotonic() - started, 3)}
        if done.returncode != 0:
            self.runner.store.event(name, "hook-failed", self.runner.actor, detail)
            last = (output.strip().splitlines() or [""])[-1][:200]
            raise StepFailed(
                f"the {hook} hook exited {done.returncode}{f': {last}' if last else ''}; rerun to retry it"
            )
        self.runner.store.event(name, "hook", self.runner.actor, detail)
