"""The demo's two halves, on two scratch databases of one PostgreSQL, under the same load.

**bgmigrate**: blue serves the shop's mix (create, read back, change, read back, health) through
the local weighted proxy; bgmigrate lints and plans ``0002_release.sql`` and runs the release with
its library, stage by stage (:class:`~migrator.traffic.release.ReleaseFlow`, the ``local`` router):
expand (with the rename's batched backfill), deploy green (the demo starts green's process), verify
(a hook: a smoke request to green), the gated switch (10 %, 50 %, 100 %, green's ``/health`` probed
before each step), soak, decommission blue (the demo stops blue's process; contract then checks
that no ``shop@blue`` session is left) and contract.

**naive**: the same release SQL as written, sent in one go (one implicit transaction) while blue
serves; then green is deployed and traffic switched with the same steps, and blue stopped.

Every process, proxy, thread, connection, database and server the demo starts is stopped, closed
or dropped on the way out, also on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import shlex
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..traffic.loadgen import EXAMPLE_APP_MIX, LoadGenerator
from .apps import App, free_port
from .measure import LockSampler, StageRow, Timeline
from .setup import BASE_SQL, RELEASE_SQL, DemoError, Server, find_checkout, load_base, scratch_names, start_server

HALVES = ("bgmigrate", "naive")
SWITCH_STEPS = [10, 50, 100]
SILENT = ("hook configured: nothing to run",)  # the demo does the deploy and the decommission itself


@dataclass
class DemoOptions:
    dsn: str | None = None  # None: an embedded PostgreSQL (pgserver)
    rows: int = 500_000  # customers in the table before the release
    clients: int = 4  # load generator threads
    step_seconds: float = 2.0  # baseline, each switch step, the soak, the tail
    think_s: float = 0.02  # pause between two requests of one client
    checkout: Path | None = None  # the directory holding examples/app
    batch_size: int | None = None  # backfill batch size (default: the plan's)


@dataclass
class DemoResult:
    server: str
    checkout: str
    options: DemoOptions
    rows: list[StageRow] = field(default_factory=list)
    lint: str = ""
    plan: str = ""
    release_status: str = ""
    naive_error: str | None = None
    sampler_errors: list[str] = field(default_factory=list)
    app_errors: dict[str, str] = field(default_factory=dict)  # half -> the first database error in an app's log
    databases: list[str] = field(default_factory=list)  # the scratch databases (dropped at the end)
    pids: list[int] = field(default_factory=list)  # the shop's processes (stopped at the end)

    def total(self, half: str) -> StageRow | None:
        return next((r for r in self.rows if r.half == half and r.stage == "total"), None)

    @property
    def exit_code(self) -> int:
        """0 when the bgmigrate half ran to the end with zero failed requests."""
        total = self.total("bgmigrate")
        return 0 if total is not None and total.failed == 0 and self.release_status == "contracted" else 1


class _Demo:
    def __init__(self, options: DemoOptions, say: Callable[[str], None]) -> None:
        self.opts = options
        self.say = say
        self.stack = contextlib.ExitStack()
        self.checkout = find_checkout(options.checkout)
        self.workdir = Path(self.stack.enter_context(tempfile.TemporaryDirectory(prefix="bgmigrate-demo-")))
        self.release_sql = (self.checkout / RELEASE_SQL).read_text(encoding="utf-8")
        self.pids: list[int] = []  # every shop process started

    # -- pieces ------------------------------------------------------------------------------------
    def _stage_set(self, half: contextlib.ExitStack, dsn: str) -> tuple[App, App, Any, LockSampler, LoadGenerator]:
        """Blue started, green ready to start, the proxy in front of them (100 % blue), the lock
        sampler and the load; each stopped when ``half`` closes (the load first, blue last)."""
        from ..traffic.local_proxy import LocalProxy

        blue = App(self.checkout, "blue", dsn, free_port(), self.workdir)
        half.callback(blue.stop)
        green = App(self.checkout, "green", dsn, free_port(), self.workdir)
        half.callback(green.stop)
        blue.start()
        self.pids.append(blue.pid or 0)
        self.say(f"blue (v1) serving at {blue.url} (pid {blue.pid})")
        proxy = LocalProxy(blue.url, green.url, weights=(100, 0), admin=("127.0.0.1", 0)).start()
        half.callback(proxy.stop, 2.0)
        sampler = LockSampler(dsn).start()
        half.callback(sampler.stop)
        load = LoadGenerator(proxy.url, EXAMPLE_APP_MIX, clients=self.opts.clients, think_s=self.opts.think_s)
        load.start()
        half.callback(load.stop, 10)
        self.say(f"load: {self.opts.clients} clients through the local proxy {proxy.url} (blue 100% / green 0%)")
        return blue, green, proxy, sampler, load

    def _pause(self) -> None:
        time.sleep(self.opts.step_seconds)

    def _relay(self, prefix: str) -> Callable[[str], None]:
        def relay(line: str) -> None:
            if not any(s in line for s in SILENT):
                self.say(f"  {prefix}{line}")

        return relay

    # -- the whole demo -----------------------------------------------------------------------------
    def run(self) -> DemoResult:
        with self.stack:
            server = start_server(self.opts.dsn, self.say)
            self.stack.callback(server.close)
            self.say(f"PostgreSQL: {server.shown}")
            result = DemoResult(server.shown, str(self.checkout), self.opts)
            release_db, naive_db = scratch_names()
            result.databases = [release_db, naive_db]
            result.pids = self.pids
            self.say(f"scratch databases: {release_db}, {naive_db}")
            self.say(f"loading blue's schema ({BASE_SQL}) and {self.opts.rows:,} customers")
            release_dsn = server.create_database(release_db)
            load_base(release_dsn, self.checkout, self.opts.rows)
            try:  # a copy is quicker than a second load; it fails when something is connected to the template
                naive_dsn = server.create_database(naive_db, template=release_db)
            except DemoError:
                naive_dsn = server.create_database(naive_db)
                load_base(naive_dsn, self.checkout, self.opts.rows)
            self.say("")
            self.say(f"== bgmigrate: the release of {RELEASE_SQL}, under load, with bgmigrate ==")
            self._bgmigrate_half(release_dsn, result)
            self.say("")
            self.say(f"== naive: the same {RELEASE_SQL.name} as written, in one go, under the same load ==")
            self._naive_half(naive_dsn, result)
            self.say("")
            return result

    # -- bgmigrate's half -----------------------------------------------------------------------------
    def _bgmigrate_half(self, dsn: str, result: DemoResult) -> None:
        with contextlib.ExitStack() as half:
            blue, green, proxy, sampler, load = self._stage_set(half, dsn)
            timeline = Timeline("bgmigrate", load, sampler)
            self._release(half, dsn, blue, green, proxy, timeline, result)
        self._finish(timeline, sampler, result, (blue, green))

    def _release(
        self,
        half: contextlib.ExitStack,
        dsn: str,
        blue: App,
        green: App,
        proxy: Any,
        timeline: Timeline,
        result: DemoResult,
    ) -> None:
        from ..plan.expects import differences
        from ..plan.make import live_schema, make_plan
        from ..run.db import connect
        from ..run.runner import Runner, RunOptions, release_name_for
        from ..traffic.config import GateSettings, HookSettings, TrafficSettings
        from ..traffic.registry import make_router
        from ..traffic.release import STAGES, ReleaseFlow
        from ..traffic.router import RouterConfig, Split

        config = self.workdir / "bgmigrate.toml"
        config.write_text('dialect = "postgres"\ncache = false\n', encoding="utf-8")
        migrations = self.checkout / RELEASE_SQL.parent

        with timeline.stage("baseline"):
            self._pause()
        with timeline.stage("lint") as stage:
            stage.note = result.lint = self._lint(config, migrations)
            self.say(f"lint: {result.lint}")
        with timeline.stage("plan") as stage:
            plan, _settings = make_plan([migrations], config=config, since="0001_base.sql", dsn=dsn)
            counts: dict[str, int] = {}
            for step in plan.steps:
                if not step.is_gate:
                    counts[step.stage] = counts.get(step.stage, 0) + 1
            stage.note = result.plan = ", ".join(f"{n} {s}" for s, n in counts.items()) + " steps"
            self.say(f"plan: {result.plan} (sha256 {plan.sha256[:12]})")

        verify = (
            f'{shlex.quote(sys.executable)} -c "import urllib.request as u; '
            f"u.urlopen('{green.url}/customers?plan=free&limit=5', timeout=5); print('green answers')\""
        )
        settings = TrafficSettings(
            router=RouterConfig(kind="local", target=proxy.admin_url, blue=blue.url, green=green.url),
            steps=list(SWITCH_STEPS),
            interval=self.opts.step_seconds,
            gates=GateSettings(probe_url=f"{green.url}/health", probe_timeout=2.0, probe_successes=2),
            hooks=HookSettings(verify=verify, timeout=60.0),
            soak=self.opts.step_seconds,
            blue_application_name="shop@blue",
        )
        db = connect(dsn, application_name="bgmigrate-demo")
        half.callback(db.close)
        runner = Runner(
            db, RunOptions(batch_size=self.opts.batch_size, actor="bgmigrate demo"), say=self._relay("runner: ")
        )
        router = make_router(settings.router)  # type: ignore[arg-type]
        flow = ReleaseFlow(runner, settings, router, say=self._relay(""))
        name = release_name_for(plan)

        def check(p: Any) -> list[str]:
            return differences(p.expects, live_schema(dsn, p.dialect))

        for stage_name in STAGES:
            with timeline.stage(stage_name) as stage:
                if stage_name == "deploy-green":
                    green.start()
                    result.pids.append(green.pid or 0)
                    if not green.wait_healthy():
                        raise DemoError(f"green did not become healthy at {green.url}/health")
                    self.say(f"  green (v2) started at {green.url} (pid {green.pid}), /health 200")
                elif stage_name == "decommission-blue":
                    serving = router.current()
                    if serving != Split(0, 100):
                        raise DemoError(f"blue cannot go: the proxy serves {serving}")
                    blue.stop()
                    self.say(f"  blue stopped (pid {blue.pid}); its database sessions are closed")
                flow.run(plan, name, only=stage_name, check_schema=check)
                if stage_name == "expand":
                    stage.note = self._expand_note(runner, name)
        with timeline.stage("after"):
            self._pause()
        rel = runner.store.release(name)
        result.release_status = rel.status if rel else "unknown"

    def _lint(self, config: Path, migrations: Path) -> str:
        from ..config import build_settings
        from ..lint.engine import lint_sources
        from ..sources import load_sources

        settings = build_settings(config=config, overrides={"since": "0001_base.sql"})
        found = lint_sources(load_sources([migrations], settings), settings).findings
        rules = sorted({f.rule for f in found if f.severity == "error"})
        errors = sum(1 for f in found if f.severity == "error")
        return f"{len(found)} findings, {errors} errors ({', '.join(rules)})"

    @staticmethod
    def _expand_note(runner: Any, name: str) -> str:
        rel = runner.store.release(name)
        if rel is None:
            return ""
        steps = [s for s in rel.steps.values() if s.stage in ("expand", "migrate")]
        rows = sum(s.backfill_rows for s in steps)
        return f"{len(steps)} steps, {rows:,} rows backfilled"

    # -- the naive half -----------------------------------------------------------------------------
    def _naive_half(self, dsn: str, result: DemoResult) -> None:
        with contextlib.ExitStack() as half:
            blue, green, proxy, sampler, load = self._stage_set(half, dsn)
            timeline = Timeline("naive", load, sampler)
            try:
                self._naive_release(dsn, blue, green, proxy, timeline, result)
            except Exception as err:  # the naive half failing is a result too: report it with what was measured
                result.naive_error = result.naive_error or f"{type(err).__name__}: {' '.join(str(err).split())[:300]}"
                self.say(f"  the naive release stopped: {result.naive_error}")
        self._finish(timeline, sampler, result, (blue, green))

    def _naive_release(
        self, dsn: str, blue: App, green: App, proxy: Any, timeline: Timeline, result: DemoResult
    ) -> None:
        import psycopg

        with timeline.stage("baseline"):
            self._pause()
        with timeline.stage("migrate") as stage:
            self.say(f"  running {RELEASE_SQL.name} in one go (rename, required column, index, drop)")
            started = time.monotonic()
            try:
                with psycopg.connect(dsn, autocommit=True, application_name="naive-migration") as conn:
                    conn.execute(self.release_sql)  # several statements, no parameters: one implicit transaction
                stage.note = f"{RELEASE_SQL.name} in {time.monotonic() - started:.2f} s"
            except psycopg.Error as err:
                result.naive_error = " ".join(str(err).split())[:300]
                stage.note = f"failed: {result.naive_error}"
            self.say(f"  {stage.note}")
        with timeline.stage("deploy-green"):
            green.start()
            result.pids.append(green.pid or 0)
            healthy = green.wait_healthy()
            health = "200" if healthy else "failing"
            self.say(f"  green (v2) started at {green.url} (pid {green.pid}), /health {health}")
        with timeline.stage("switch"):
            for percent in SWITCH_STEPS:
                proxy.set_weights(100 - percent, percent)
                self.say(f"  proxy: now serving blue {100 - percent}% / green {percent}%")
                if percent < 100:
                    self._pause()
        with timeline.stage("decommission-blue"):
            blue.stop()
            self.say(f"  blue stopped (pid {blue.pid})")
        with timeline.stage("after"):
            self._pause()

    @staticmethod
    def _finish(timeline: Timeline, sampler: LockSampler, result: DemoResult, apps: tuple[App, ...]) -> None:
        result.rows += timeline.rows()
        if sampler.error:
            result.sampler_errors.append(f"{timeline.half}: {sampler.error}")
        for app in apps:
            error = app.first_error()
            if error:
                result.app_errors[timeline.half] = f"{app.version}'s log: {error}"
                break


def run_demo(options: DemoOptions, say: Callable[[str], None] = lambda line: None) -> DemoResult:
    """Run both halves; raises DemoError (setup), RunError (bgmigrate's half failed) or KeyboardInterrupt,
    always after stopping everything it started."""
    if options.rows < 0 or options.clients < 1 or options.step_seconds < 0:
        raise DemoError("--rows must be 0 or more, --clients at least 1, --step-seconds 0 or more")
    return _Demo(options, say).run()


__all__ = ["HALVES", "DemoError", "DemoOptions", "DemoResult", "Server", "run_demo"]
