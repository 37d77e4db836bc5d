"""The traffic commands: ``switch``, ``rollback`` and ``release`` (the whole flow). Thin, like the
runner's commands (same exit codes: 0 done, 1 a step or hook failed, 2 usage, 3 refused or a
failed/rolled-back shift, 4 internal)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from .cli_run import (
    DsnOpt,
    FormatOpt,
    ReleaseOpt,
    StateOpt,
    WaitOpt,
    _check_format,
    _execute,
    _options,
    _read_plan,
    _runner,
    _say,
)

RouterOpt = Annotated[str | None, typer.Option("--router", help="cloudrun, urlmap, gateway, istio, command or local.")]
TargetOpt = Annotated[
    str | None, typer.Option("--target", help="Cloud Run service, URL map, HTTPRoute or proxy admin URL.")
]
BlueOpt = Annotated[str | None, typer.Option("--blue", help="Blue's revision, backend service or backendRef.")]
GreenOpt = Annotated[str | None, typer.Option("--green", help="Green's revision, backend service or backendRef.")]
ConfigOpt = Annotated[Path | None, typer.Option("--config", help="TOML settings file (default: pyproject.toml).")]
StepsOpt = Annotated[str | None, typer.Option("--steps", help="Green's percent per step, e.g. 10,50,100.")]
IntervalOpt = Annotated[str | None, typer.Option("--interval", help="Time at each step, e.g. 60s.")]
STAGE_HELP = (
    "Run only this stage (the next one): expand, deploy-green, verify, switch, soak, decommission-blue or contract."
)
NoGatesOpt = Annotated[bool, typer.Option("--no-gates", help="Switch without any health gate (not advised).")]
ProbeOpt = Annotated[str | None, typer.Option("--probe-url", help="Green's health URL (gate before each step).")]


def _settings(config: Path | None, **flags: Any) -> Any:
    from .traffic.config import load_traffic_settings

    return load_traffic_settings(config, **flags)


def _router(settings: Any) -> Any:
    from .traffic.registry import make_router

    return make_router(settings.router) if settings.router is not None else None


def _flow(runner: Any, settings: Any, no_gates: bool = False) -> Any:
    from .traffic.release import ReleaseFlow

    return ReleaseFlow(runner, settings, _router(settings), allow_no_gates=no_gates, say=_say)


def switch(
    to: Annotated[str, typer.Option("--to", help="green (progressive, gated) or blue (back, progressive).")] = "green",
    dsn: DsnOpt = None,
    release: ReleaseOpt = None,
    router: RouterOpt = None,
    target: TargetOpt = None,
    blue: BlueOpt = None,
    green: GreenOpt = None,
    steps: StepsOpt = None,
    interval: IntervalOpt = None,
    probe_url: ProbeOpt = None,
    no_gates: NoGatesOpt = False,
    config: ConfigOpt = None,
    wait: WaitOpt = False,
    fmt: FormatOpt = "text",
    state_schema: StateOpt = None,
) -> None:
    """Shift traffic between blue and green step by step, with a health gate before each step and an
    automatic rollback to blue when one fails; recorded in the release's state."""

    def work() -> str:
        from .run.errors import InputError
        from .traffic.release import StateRecorder
        from .traffic.switch import switch_to_blue

        _check_format(fmt)
        if to not in ("green", "blue"):
            raise InputError(f"--to must be green or blue, not {to!r}")
        settings = _settings(
            config, router=router, target=target, blue=blue, green=green, steps=steps, interval=interval,
            probe_url=probe_url,
        )  # fmt: skip
        with _runner(dsn, _options(wait=wait, state_schema=state_schema)) as runner:
            flow = _flow(runner, settings, no_gates)
            with runner.session(f"switch --to {to}"):
                rel = runner.pick_release(release, "switch")
                if to == "green":
                    flow.switch(rel.name)
                else:
                    if rel.decommissioned_at is not None:
                        from .run.errors import Refused

                        raise Refused(f"release {rel.name}: blue is decommissioned; there is nothing to go back to")
                    switch_to_blue(
                        flow._router(), settings.steps, settings.interval, StateRecorder(runner, rel.name), _say
                    )
                serving = flow._router().current()
        return _traffic_result(f"switch --to {to}", rel.name, serving, fmt)

    _execute(f"switch --to {to}", fmt, work)


def rollback(
    dsn: DsnOpt = None,
    release: ReleaseOpt = None,
    router: RouterOpt = None,
    target: TargetOpt = None,
    blue: BlueOpt = None,
    green: GreenOpt = None,
    config: ConfigOpt = None,
    wait: WaitOpt = False,
    fmt: FormatOpt = "text",
    state_schema: StateOpt = None,
) -> None:
    """Put 100% of the traffic back on blue at once (recorded; the release is no longer switched)."""

    def work() -> str:
        from .run.errors import Refused
        from .traffic.release import StateRecorder
        from .traffic.switch import rollback as roll_back

        _check_format(fmt)
        settings = _settings(config, router=router, target=target, blue=blue, green=green)
        with _runner(dsn, _options(wait=wait, state_schema=state_schema)) as runner:
            flow = _flow(runner, settings)
            with runner.session("rollback"):
                rel = runner.pick_release(release, "rollback")
                if rel.decommissioned_at is not None:
                    raise Refused(f"release {rel.name}: blue is decommissioned; there is nothing to roll back to")
                serving = roll_back(flow._router(), StateRecorder(runner, rel.name), "bgmigrate rollback", _say)
        return _traffic_result("rollback", rel.name, serving, fmt)

    _execute("rollback", fmt, work)


def release(
    sources: Annotated[
        list[Path] | None, typer.Argument(help="Migrations to plan and run (instead of --plan).", show_default=False)
    ] = None,
    plan_file: Annotated[Path | None, typer.Option("--plan", help="plan.json made by 'bgmigrate plan'.")] = None,
    dsn: DsnOpt = None,
    release_name: ReleaseOpt = None,
    since: Annotated[str | None, typer.Option("--since", help="SOURCE: last migration before the release.")] = None,
    stage: Annotated[str | None, typer.Option("--stage", help=STAGE_HELP)] = None,
    router: RouterOpt = None,
    target: TargetOpt = None,
    blue: BlueOpt = None,
    green: GreenOpt = None,
    steps: StepsOpt = None,
    interval: IntervalOpt = None,
    probe_url: ProbeOpt = None,
    no_gates: NoGatesOpt = False,
    soak: Annotated[str | None, typer.Option("--soak", help="Green at 100% this long before blue goes.")] = None,
    config: ConfigOpt = None,
    lock_timeout: Annotated[str | None, typer.Option("--lock-timeout", help="Longest wait for a lock.")] = None,
    wait: WaitOpt = False,
    fmt: FormatOpt = "text",
    state_schema: StateOpt = None,
) -> None:
    """The whole release: expand, deploy green, verify, gated switch, soak, decommission blue, contract.
    Resumes at the right stage after an interruption (state in the database)."""

    def work() -> str:
        from .plan.expects import differences
        from .plan.make import live_schema, make_plan
        from .run.errors import InputError

        _check_format(fmt)
        if bool(sources) == bool(plan_file):
            raise InputError("give either --plan plan.json or the migration SOURCE paths, not both or neither")
        settings = _settings(
            config, router=router, target=target, blue=blue, green=green, steps=steps, interval=interval,
            probe_url=probe_url, soak=soak,
        )  # fmt: skip
        plan = (
            _read_plan(plan_file)
            if plan_file
            else make_plan(list(sources or []), config=config, since=since, dsn=dsn)[0]
        )
        opts = _options(lock_timeout=lock_timeout, wait=wait, state_schema=state_schema, progress=fmt == "text")
        with _runner(dsn, opts) as runner:
            flow = _flow(runner, settings, no_gates)
            ran = flow.run(
                plan,
                release_name,
                only=stage,
                check_schema=lambda p: differences(p.expects, live_schema(dsn or "", p.dialect)),
            )
            rel = runner.store.release(release_name or _release_name(plan))
        status = rel.status if rel else "unknown"
        if fmt == "json":
            data = {"version": 1, "command": "release", "release": rel.name if rel else None, "status": status,
                    "stages": ran, "exit_code": 0, "error": None}  # fmt: skip
            return json.dumps(data, indent=2) + "\n"
        return f"release {rel.name if rel else '?'}: {status} (stages run: {', '.join(ran) or 'none'})\n"

    _execute("release", fmt, work)


def _release_name(plan: Any) -> str:
    from .run.runner import release_name_for

    return release_name_for(plan)


def _traffic_result(command: str, name: str, serving: Any, fmt: str) -> str:
    if fmt == "json":
        shown = {"blue": serving.blue, "green": serving.green} if hasattr(serving, "blue") else str(serving)
        data = {"version": 1, "command": command, "release": name, "exit_code": 0, "error": None, "serving": shown}
        return json.dumps(data, indent=2) + "\n"
    return f"release {name}: serving {serving}\n"


def register(app: typer.Typer) -> None:
    app.command("switch")(switch)
    app.command("rollback")(rollback)
    app.command("release")(release)
