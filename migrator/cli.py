"""The ``bgmigrate`` command line. Thin: parse options, call the library, render, exit.

Exit codes: 0 clean (or done), 1 findings at or above ``--fail-on`` (runner: a step failed), 2 usage
or input error, 3 refused by a gate or another runner (runner commands), 4 internal error.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from . import __version__

app = typer.Typer(
    name="bgmigrate",
    help="Blue-green safe database migrations: lint, plan, and run the expand and contract phases.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain usage errors and help: no boxes in CI logs, and no rich import at start-up
)

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 4


def _fail(message: str) -> typer.Exit:
    from .dsn import mask_secrets

    # the message may quote an argument, and a DSN typed where a path or a rule id goes holds a password
    sys.stderr.write(f"bgmigrate: error: {mask_secrets(message)}\n")
    return typer.Exit(EXIT_USAGE)


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"bgmigrate {__version__}\n")
        raise typer.Exit(EXIT_OK)


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    pass


@app.command()
def lint(
    paths: Annotated[list[Path], typer.Argument(help=".sql files or directories (searched recursively).")],
    dialect: Annotated[str | None, typer.Option(help="postgres (default) or mysql.")] = None,
    target_version: Annotated[
        str | None, typer.Option("--target-version", help="Server version, e.g. 15 or 8.0.29.")
    ] = None,
    format: Annotated[str | None, typer.Option("--format", "-f", help="text, json, sarif or github.")] = None,
    fail_on: Annotated[str | None, typer.Option("--fail-on", help="error (default), warning or never.")] = None,
    exclude: Annotated[list[str] | None, typer.Option("--exclude", help="Rule id to skip (repeatable).")] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="TOML settings file (default: nearest pyproject.toml).")
    ] = None,
    assume_in_transaction: Annotated[
        bool | None,
        typer.Option(
            "--assume-in-transaction/--no-assume-in-transaction",
            help="The migration runner wraps each file in a transaction.",
        ),
    ] = None,
    lock_timeout_from_runner: Annotated[
        bool | None,
        typer.Option(
            "--lock-timeout-from-runner/--no-lock-timeout-from-runner",
            help="The runner (or the database role) sets lock_timeout and statement_timeout.",
        ),
    ] = None,
    explain: Annotated[bool, typer.Option("--explain", help="Text format: also print why each rule matters.")] = False,
    statements: Annotated[
        bool, typer.Option("--statements", help="Text format: also list every statement's phase and lock.")
    ] = False,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="Last migration before the release under review (revision id or file): earlier ones are "
            "history, replayed but not reported. Default: each migration is its own release.",
        ),
    ] = None,
    schema_from: Annotated[
        str | None,
        typer.Option(
            "--schema-from",
            help="DSN of a live PostgreSQL/MySQL whose schema stands in for history that is not in view.",
        ),
    ] = None,
    use_env: Annotated[
        bool, typer.Option("--use-env", help="Alembic: render revisions through the project's env.py.")
    ] = False,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Do not read or write .bgmigrate_cache/.")] = False,
    jobs: Annotated[int | None, typer.Option("--jobs", "-j", help="Worker processes (default: automatic).")] = None,
) -> None:
    """Lint migrations: phase of every statement, lock and rewrite hazards, blue-green breakage."""
    from .config import ConfigError, build_settings
    from .lint.cache import Cache
    from .lint.catalog import CatalogError, rule_ids
    from .lint.runcache import lookup, run_key, store
    from .report.text import use_color
    from .sources import SourceError, load_sources

    overrides = {
        "dialect": dialect,
        "target_version": target_version,
        "format": format,
        "fail_on": fail_on,
        "exclude": exclude or None,
        "assume_in_transaction": assume_in_transaction,
        "lock_timeout_from_runner": lock_timeout_from_runner,
        "jobs": jobs,
        "cache": False if no_cache else None,
        "since": since,
        "schema_from": schema_from,
        "use_env": True if use_env else None,
    }
    out = sys.stdout
    try:
        settings = build_settings(config=config, overrides=overrides)
        known = rule_ids()
        unknown = [r for r in settings.exclude + list(settings.severity) if r not in known]
        if unknown:
            raise ConfigError(f"unknown rule id: {', '.join(unknown)} (see 'bgmigrate rules')")
        cache = Cache.for_settings(settings)
        sources = load_sources(paths, settings, cache=cache)
        color = use_color(out) if settings.format == "text" else False
        # A live schema can change while the files do not: no whole-run memo then.
        key = (
            None
            if settings.schema_from
            else run_key(sources, settings, f"{settings.format}|{color}|{explain}|{statements}|{settings.fail_on}")
        )
        hit = lookup(cache, key) if key else None
        if hit is not None:
            output, failed = hit
        else:
            from .lint.engine import lint_sources
            from .report import render

            base = _live_schema(settings.schema_from, settings.dialect) if settings.schema_from else None
            result = lint_sources(sources, settings, base_schema=base)
            output = render(result, settings.format, color=color, explain=explain, statements=statements)
            failed = result.failed()
            if key:
                store(cache, key, output, failed)
        cache.close()
    except (ConfigError, SourceError, CatalogError) as err:
        raise _fail(str(err)) from None
    out.write(output)
    out.flush()
    raise typer.Exit(EXIT_FINDINGS if failed else EXIT_OK)


@app.command()
def plan(
    paths: Annotated[list[Path], typer.Argument(help="Migrations: .sql files/directories or an Alembic project.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write plan.json here (default: stdout).")
    ] = None,
    markdown: Annotated[
        Path | None, typer.Option("--markdown", help="Also write the plan for review as Markdown.")
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Last migration before the release (revision id or file).")
    ] = None,
    dsn: Annotated[
        str | None,
        typer.Option("--dsn", help="Live database: its schema is the starting point, and steps get sizes."),
    ] = None,
    dialect: Annotated[str | None, typer.Option(help="postgres (default) or mysql.")] = None,
    target_version: Annotated[str | None, typer.Option("--target-version", help="Server version.")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="TOML settings file.")] = None,
    use_env: Annotated[bool, typer.Option("--use-env", help="Alembic: render through env.py.")] = False,
    trace: Annotated[
        bool,
        typer.Option(
            "--trace",
            help="Also run the steps on a scratch database (the --dsn's server, BGMIGRATE_SCRATCH_SERVER or an "
            "embedded PostgreSQL) and add the locks they took to the --markdown file.",
        ),
    ] = False,
) -> None:
    """Plan a release: expand, migrate, [deploy green], [switch], [decommission blue], contract."""
    from .config import ConfigError
    from .lint.catalog import CatalogError
    from .plan.make import make_plan
    from .plan.markdown import render as render_markdown
    from .plan.model import PlanError
    from .sources import SourceError

    try:
        built, _ = make_plan(
            paths, config=config, dialect=dialect, target_version=target_version, since=since, dsn=dsn, use_env=use_env
        )
    except (ConfigError, SourceError, CatalogError, PlanError) as err:
        raise _fail(str(err)) from None
    traced = _trace_plan(built, paths, since, dsn, config, use_env, markdown) if trace else None
    text = built.to_json()
    try:
        if output is None:
            sys.stdout.write(text)
        else:
            output.write_text(text, encoding="utf-8")
        if markdown is not None:
            markdown.write_text(render_markdown(built, trace=traced), encoding="utf-8")
    except OSError as err:
        raise _fail(f"cannot write the plan: {err.strerror or err}") from None
    if output is not None:
        steps = [s for s in built.steps if s.stage not in ("deploy-green", "switch", "decommission-blue")]
        sys.stderr.write(f"bgmigrate: plan with {len(steps)} steps written to {output} (sha256 {built.sha256[:12]})\n")
    if traced is not None and traced.failed:
        sys.stderr.write(f"bgmigrate: trace: {len(traced.findings())} finding(s), see {markdown}\n")
        raise typer.Exit(EXIT_FINDINGS)


def _trace_plan(
    built: Any,
    paths: list[Path],
    since: str | None,
    dsn: str | None,
    config: Path | None,
    use_env: bool,
    markdown: Path | None,
) -> Any:
    """plan --trace: the plan's steps on a scratch database (see migrator/trace)."""
    from .config import ConfigError
    from .dsn import mask_secrets
    from .run.errors import RunError
    from .schema.live import LiveSchemaError
    from .sources import SourceError
    from .trace.commands import ScratchOptions, trace_plan_command

    if markdown is None:
        raise _fail("--trace adds the trace to the Markdown plan: give --markdown FILE too")
    try:
        say = lambda line: sys.stderr.write(f"bgmigrate: {mask_secrets(line)}\n")  # noqa: E731
        opts = ScratchOptions(since=since, dsn=dsn, config=config, use_env=use_env, say=say)
        return trace_plan_command(built, paths, opts)
    except (RunError, ConfigError, SourceError, LiveSchemaError) as err:
        raise _fail(mask_secrets(str(err))) from None


@app.command("verify-plan")
def verify_plan(
    plan_file: Annotated[Path, typer.Argument(help="plan.json made by 'bgmigrate plan'.")],
    dsn: Annotated[
        str | None, typer.Option("--dsn", help="Also check the database is in the state the plan was made for.")
    ] = None,
) -> None:
    """Check a plan is the one that was reviewed (its sha256) and, with --dsn, made for this database."""
    from .config import ConfigError
    from .plan.model import Plan, PlanError

    try:
        text = plan_file.read_text(encoding="utf-8")
    except OSError as err:
        raise _fail(f"cannot read {plan_file}: {err.strerror or err}") from None
    try:
        loaded = Plan.from_json(text)
        if dsn:
            from .plan.expects import differences

            problems = differences(loaded.expects, _live_schema(dsn, loaded.dialect))
            if problems:
                raise PlanError(
                    "the database is not in the state the plan was made for: "
                    + "; ".join(problems[:5])
                    + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else "")
                    + ": plan again against it"
                )
    except (PlanError, ConfigError) as err:
        raise _fail(f"{plan_file}: {err}") from None
    sys.stdout.write(f"{plan_file}: ok (sha256 {loaded.sha256}, {len(loaded.steps)} steps)\n")


def _live_schema(dsn: str, dialect: str):
    from .plan.make import live_schema

    return live_schema(dsn, dialect)


@app.command()
def rules(
    rule_id: Annotated[str | None, typer.Argument(help="Show one rule in full.")] = None,
    dialect: Annotated[str | None, typer.Option(help="Only rules for this dialect.")] = None,
) -> None:
    """List the rule catalog, or show one rule with its examples."""
    from .lint.catalog import load_rules
    from .report.rules_doc import render_rule, render_table

    catalog = load_rules()
    if rule_id is not None:
        match = next((r for r in catalog if r.id == rule_id), None)
        if match is None:
            raise _fail(f"unknown rule id: {rule_id} (see 'bgmigrate rules')")
        sys.stdout.write(render_rule(match))
        return
    if dialect is not None and dialect not in ("postgres", "mysql"):
        raise _fail(f"unknown dialect '{dialect}' (postgres or mysql)")
    sys.stdout.write(render_table([r for r in catalog if dialect is None or dialect in r.dialects]))


from .cli_demo import register as _register_demo  # noqa: E402
from .cli_run import register as _register_runner  # noqa: E402 - the runner's commands on the same app
from .cli_trace import register as _register_trace  # noqa: E402
from .cli_traffic import register as _register_traffic  # noqa: E402

_register_runner(app)
_register_traffic(app)
_register_trace(app)
_register_demo(app)


def _usage_errors() -> tuple[type[BaseException], ...]:
    """click's usage-error classes (typer 0.28 vendors click as ``typer._click``, earlier ones use click)."""
    found = []
    for name in ("typer._click.exceptions", "click.exceptions"):
        try:
            found.append(importlib.import_module(name).ClickException)
        except (ImportError, AttributeError):
            continue
    return tuple(found)


def main() -> None:
    usage_errors, aborts = _usage_errors(), (typer.Abort,)
    try:
        code = app(standalone_mode=False)
    except usage_errors as err:  # usage errors quote what was typed, and a misplaced DSN holds a password
        import io

        from .dsn import mask_secrets

        shown = io.StringIO()
        err.show(file=shown)  # type: ignore[attr-defined]
        sys.stderr.write(mask_secrets(shown.getvalue()))
        sys.exit(err.exit_code)  # type: ignore[attr-defined]
    except aborts:
        sys.stderr.write("Aborted!\n")
        sys.exit(1)
    except KeyboardInterrupt:
        sys.stderr.write("bgmigrate: interrupted\n")
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(EXIT_OK)
    except Exception as err:  # a bug: one clear line, never a traceback (BGMIGRATE_DEBUG=1 shows it)
        import os

        if os.environ.get("BGMIGRATE_DEBUG"):
            raise
        from .dsn import mask_secrets

        text = mask_secrets(f"{type(err).__name__}: {err}")
        sys.stderr.write(f"bgmigrate: internal error: {text} (please report this)\n")
        sys.exit(EXIT_INTERNAL)
    sys.exit(code if isinstance(code, int) else EXIT_OK)


if __name__ == "__main__":  # pragma: no cover
    main()
