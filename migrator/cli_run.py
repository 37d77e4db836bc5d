"""The runner's commands: ``expand``, ``contract``, ``status``, ``abort``, ``mark``. Thin: options in,
:mod:`migrator.run` does the work, reports out.

Exit codes: 0 done, 1 a step failed (the state table says which; a rerun resumes), 2 usage or input
error (nothing ran), 3 refused by a gate or by another runner (nothing ran), 4 internal error.
Step lines and progress go to stderr; the result (text, or JSON with ``--format json``) to stdout.
``--dsn`` may come from the environment (``BGMIGRATE_DSN``), which keeps a password out of the
process list and of CI logs; it is masked in every message either way.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

DsnOpt = Annotated[
    str | None,
    typer.Option("--dsn", envvar="BGMIGRATE_DSN", help="Target database (or BGMIGRATE_DSN). Password is masked."),
]
ReleaseOpt = Annotated[str | None, typer.Option("--release", help="Release name (default: the one in progress).")]
FormatOpt = Annotated[str, typer.Option("--format", "-f", help="text or json.")]
StateOpt = Annotated[str, typer.Option("--state-schema", help="Schema (MySQL: database) of bgmigrate's state tables.")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Print exactly what would run; change nothing.")]
LockTimeoutOpt = Annotated[
    str | None, typer.Option("--lock-timeout", help="Longest wait for a lock per attempt (default: the plan's, 2s).")
]
RetriesOpt = Annotated[int, typer.Option("--retries", min=1, help="Attempts per step on lock timeout or deadlock.")]
WaitOpt = Annotated[bool, typer.Option("--wait", help="Queue behind another runner instead of exiting (code 3).")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Override a refusing gate (needs --reason; recorded).")]
ReasonOpt = Annotated[str | None, typer.Option("--reason", help="Why --force: recorded in the state's events.")]


def _err(message: str) -> None:
    sys.stderr.write(f"bgmigrate: {message}\n")


def _say(line: str) -> None:
    sys.stderr.write(f"bgmigrate: {line}\n")
    sys.stderr.flush()


def _options(
    *,
    lock_timeout: str | None = None,
    retries: int = 10,
    batch_size: int | None = None,
    batch_pause: str | None = None,
    wait: bool = False,
    state_schema: str | None = None,
    force: bool = False,
    reason: str | None = None,
    progress: bool = False,
) -> Any:
    from .run.durations import parse_duration
    from .run.errors import InputError
    from .run.runner import RunOptions

    try:
        lock = parse_duration(lock_timeout, what="--lock-timeout")
        pause = parse_duration(batch_pause, what="--batch-pause") or 0.0
    except ValueError as err:
        raise InputError(str(err)) from None
    if lock is not None and lock <= 0:
        raise InputError("--lock-timeout must be positive: a lock wait without a limit stalls every query behind it")
    if batch_size is not None and batch_size < 1:
        raise InputError("--batch-size must be at least 1")
    if force and not (reason or "").strip():
        raise InputError("--force needs --reason '...': the override is recorded with it")
    opts = RunOptions(
        lock_timeout=lock,
        retries=retries,
        batch_size=batch_size,
        batch_pause=pause,
        wait=wait,
        state_schema=state_schema,
        force=force,
        reason=reason,
    )
    if progress:
        from .run.progress import RichProgress

        opts.progress = RichProgress
    return opts


def _check_format(fmt: str) -> None:
    from .run.errors import InputError

    if fmt not in ("text", "json"):
        raise InputError(f"unknown format {fmt!r}: text or json")


def _execute(command: str, fmt: str, work: Callable[[], str]) -> None:
    """Run ``work`` (which returns the stdout text) and map every expected failure to its exit code."""
    from .config import ConfigError
    from .lint.catalog import CatalogError
    from .plan.model import PlanError
    from .run.errors import EXIT_USAGE, RunError, StepFailed
    from .run.render import error_json
    from .sources import SourceError

    try:
        sys.stdout.write(work())
        return
    except RunError as err:
        code, message = err.exit_code, str(err)
        step = err.step_id if isinstance(err, StepFailed) else None
    except (ConfigError, SourceError, CatalogError, PlanError) as err:
        code, message, step = EXIT_USAGE, str(err), None
    from .dsn import mask_secrets

    message = mask_secrets(message)
    if fmt == "json":
        sys.stdout.write(error_json(command, code, message, step))
    kind = {1: "step failed", 2: "error", 3: "refused"}.get(code, "error")
    _err(f"{kind}: {message}")
    raise typer.Exit(code)


def _connect(dsn: str | None) -> Any:
    from .run.db import connect
    from .run.errors import InputError

    if not dsn:
        raise InputError("--dsn is required (or set BGMIGRATE_DSN)")
    return connect(dsn)


@contextmanager
def _runner(dsn: str | None, opts: Any, *, verbose: bool = True) -> Iterator[Any]:
    """A Runner on a connection to ``dsn``, closed afterwards; step lines to stderr when verbose."""
    from .run.runner import Runner

    db = _connect(dsn)
    try:
        yield Runner(db, opts, say=_say if verbose else None)
    finally:
        db.close()


def _result(report: Any, fmt: str) -> str:
    from .run.render import report_json, report_text

    return report_json(report, exit_code=0) if fmt == "json" else report_text(report)


def _contract_preflight(runner: Any, config: Path | None) -> Any:
    """With a traffic router or blue's application_name configured, contract also refuses while blue
    can still be reached (router weights or tags, database sessions of blue)."""
    from .traffic.config import load_traffic_settings

    settings = load_traffic_settings(config)
    if settings.router is None and not settings.blue_application_name:
        return None
    from .traffic.registry import make_router
    from .traffic.release import ReleaseFlow

    router = make_router(settings.router) if settings.router is not None else None
    return ReleaseFlow(runner, settings, router).contract_preflight


def _read_plan(path: Path) -> Any:
    from .plan.model import Plan, PlanError

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise PlanError(f"cannot read {path}: {getattr(err, 'strerror', None) or err}") from None
    try:
        return Plan.from_json(text)
    except PlanError as err:
        raise PlanError(f"{path}: {err}") from None


def expand(
    sources: Annotated[
        list[Path] | None, typer.Argument(help="Migrations to plan and run (instead of --plan).", show_default=False)
    ] = None,
    plan_file: Annotated[Path | None, typer.Option("--plan", help="plan.json made by 'bgmigrate plan'.")] = None,
    dsn: DsnOpt = None,
    release: ReleaseOpt = None,
    since: Annotated[str | None, typer.Option("--since", help="SOURCE: last migration before the release.")] = None,
    dialect: Annotated[str | None, typer.Option(help="SOURCE: postgres or mysql.")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="SOURCE: TOML settings file.")] = None,
    lock_timeout: LockTimeoutOpt = None,
    retries: RetriesOpt = 10,
    batch_size: Annotated[int | None, typer.Option("--batch-size", help="Rows per backfill batch.")] = None,
    batch_pause: Annotated[str | None, typer.Option("--batch-pause", help="Pause between batches, e.g. 50ms.")] = None,
    wait: WaitOpt = False,
    dry_run: DryRunOpt = False,
    fmt: FormatOpt = "text",
    state_schema: StateOpt = None,
    force: ForceOpt = False,
    reason: ReasonOpt = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Backfill progress bar on stderr.")] = True,
) -> None:
    """Run the expand and migrate stages (schema additions, then backfills) before green is deployed."""

    def work() -> str:
        from .plan.expects import differences
        from .plan.make import live_schema, make_plan
        from .run.errors import InputError
        from .run.render import dry_run_script
        from .run.runner import EXPAND_STAGES, release_name_for

        _check_format(fmt)
        if bool(sources) == bool(plan_file):
            raise InputError("give either --plan plan.json or the migration SOURCE paths, not both or neither")
        opts = _options(
            lock_timeout=lock_timeout,
            retries=retries,
            batch_size=batch_size,
            batch_pause=batch_pause,
            wait=wait,
            state_schema=state_schema,
            force=force,
            reason=reason,
            progress=progress and fmt == "text",
        )
        if plan_file is not None:
            plan = _read_plan(plan_file)
        else:
            plan, _ = make_plan(list(sources or []), config=config, dialect=dialect, since=since, dsn=dsn)
        name = release or release_name_for(plan)
        if dry_run:
            rel = None
            if dsn:
                with _runner(dsn, opts, verbose=False) as runner:
                    rel = runner.status_of(name)
            return dry_run_script(
                plan,
                EXPAND_STAGES,
                rel,
                command="expand",
                release_name=name,
                lock_timeout=opts.lock_timeout,
                batch_size=opts.batch_size,
            )
        with _runner(dsn, opts) as runner:
            report = runner.expand(
                plan, name, check_schema=lambda p: differences(p.expects, live_schema(dsn or "", p.dialect))
            )
        return _result(report, fmt)

    _execute("expand", fmt, work)


def contract(
    dsn: DsnOpt = None,
    release: ReleaseOpt = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="TOML settings (traffic router, blue_application_name).")
    ] = None,
    plan_file: Annotated[
        Path | None, typer.Option("--plan", help="Refuse unless the release was expanded with this plan.")
    ] = None,
    lock_timeout: LockTimeoutOpt = None,
    retries: RetriesOpt = 10,
    wait: WaitOpt = False,
    dry_run: DryRunOpt = False,
    fmt: FormatOpt = "text",
    state_schema: StateOpt = None,
    force: ForceOpt = False,
    reason: ReasonOpt = None,
) -> None:
    """Run the contract stage: only once the release is switched and blue is decommissioned."""

    def work() -> str:
        from .run.render import dry_run_script

        _check_format(fmt)
        opts = _options(
            lock_timeout=lock_timeout, retries=retries, wait=wait, state_schema=state_schema, force=force, reason=reason
        )
        plan = _read_plan(plan_file) if plan_file else None
        with _runner(dsn, opts) as runner:
            if dry_run:
                rel = runner.pick_release(release, "contract", plan)
                gates = [
                    g for g, at in (("switched", rel.switched_at), ("decommissioned", rel.decommissioned_at)) if not at
                ]
                notes = (
                    [f"the release is not recorded as {' and '.join(gates)}: contract would be refused"]
                    if gates
                    else []
                )
                return dry_run_script(
                    rel.plan, ("contract",), rel, command="contract", release_name=rel.name,
                    lock_timeout=opts.lock_timeout, notes=notes,
                )  # fmt: skip
            report = runner.contract(release, plan, preflight=_contract_preflight(runner, config))
        return _result(report, fmt)

    _execute("contract", fmt, work)


def abort(
    dsn: DsnOpt = None,
    release: ReleaseOpt = None,
    lock_timeout: LockTimeoutOpt = None,
    retries: RetriesOpt = 10,
    wait: WaitOpt = False,
    dry_run: DryRunOpt = False,
    fmt: FormatOpt = "text",
    state_schema: StateOpt = None,
) -> None:
    """Undo a release's expand steps in reverse order (only while it is not switched)."""

    def work() -> str:
        from .run.render import dry_run_script
        from .run.runner import EXPAND_STAGES

        _check_format(fmt)
        opts = _options(lock_timeout=lock_timeout, retries=retries, wait=wait, state_schema=state_schema)
        with _runner(dsn, opts) as runner:
            if dry_run:
                rel = runner.pick_release(release, "abort", None)
                return dry_run_script(
                    rel.plan, EXPAND_STAGES, rel, command="abort", release_name=rel.name,
                    lock_timeout=opts.lock_timeout, undo=True,
                )  # fmt: skip
            report = runner.abort(release)
        return _result(report, fmt)

    _execute("abort", fmt, work)


def status(
    dsn: DsnOpt = None,
    release: ReleaseOpt = None,
    fmt: FormatOpt = "text",
    state_schema: StateOpt = None,
) -> None:
    """Show the releases recorded in the database: their stage, gates and every step's state."""

    def work() -> str:
        from .run.render import status_json, status_text

        _check_format(fmt)
        with _runner(dsn, _options(state_schema=state_schema), verbose=False) as runner:
            releases = runner.status(release)
            if fmt == "json":
                return status_json(releases, {r.name: runner.store.events(r.name) for r in releases})
            return status_text(releases)

    _execute("status", fmt, work)


def mark(
    gate: Annotated[str, typer.Argument(help="switched (traffic is on green) or decommissioned (blue is gone).")],
    dsn: DsnOpt = None,
    release: ReleaseOpt = None,
    wait: WaitOpt = False,
    fmt: FormatOpt = "text",
    state_schema: StateOpt = None,
) -> None:
    """Record a traffic gate passed outside bgmigrate (a pipeline's own switch or blue's shutdown)."""

    def work() -> str:
        from .run.render import report_json

        _check_format(fmt)
        with _runner(dsn, _options(wait=wait, state_schema=state_schema)) as runner:
            report = runner.mark(gate, release)
        return report_json(report, exit_code=0) if fmt == "json" else f"release {report.release}: {gate}\n"

    _execute(f"mark {gate}", fmt, work)


def register(app: typer.Typer) -> None:
    for fn in (expand, contract, status, abort, mark):
        app.command(fn.__name__)(fn)
