"""``bgmigrate trace`` and ``bgmigrate compat``: the dynamic proofs, on a scratch database. Thin: options
in, :mod:`migrator.trace` does the work, reports out.

Exit codes: 0 nothing to report, 1 findings (``trace-mismatch``, a statement that fails, a blue query
the release breaks, ...), 2 usage or input error (nothing was created, or the scratch database was
dropped again; the database behind ``--dsn`` is only ever read), 4 internal error. Progress lines go
to stderr; the result (text, or JSON with ``--format json``) to stdout. Connection strings are masked
in every message.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

SourcesArg = Annotated[
    list[Path], typer.Argument(help="Migrations: .sql files/directories or an Alembic project.", show_default=False)
]
SinceOpt = Annotated[
    str | None,
    typer.Option("--since", help="Last migration before the release (revision id or file): earlier ones are history."),
]
DsnOpt = Annotated[
    str | None,
    typer.Option(
        "--dsn",
        envvar="BGMIGRATE_DSN",
        help="Target database (or BGMIGRATE_DSN): only read, by pg_dump --schema-only; the scratch database is "
        "created on its server. Without it the history before --since is replayed.",
    ),
]
ScratchOpt = Annotated[
    str | None,
    typer.Option(
        "--scratch-server",
        envvar="BGMIGRATE_SCRATCH_SERVER",
        help="PostgreSQL where the scratch database is created (default: the --dsn's server, else an embedded one).",
    ),
]
SampleOpt = Annotated[
    int, typer.Option("--sample-rows", min=0, help="Generated rows per table in the scratch database.")
]
KeepOpt = Annotated[bool, typer.Option("--keep", help="Keep the scratch database (with the release applied).")]
FormatOpt = Annotated[str, typer.Option("--format", "-f", help="text or json.")]
ConfigOpt = Annotated[Path | None, typer.Option("--config", help="TOML settings file.")]
UseEnvOpt = Annotated[bool, typer.Option("--use-env", help="Alembic: render through env.py.")]


def _say(line: str) -> None:
    from .dsn import mask_secrets

    sys.stderr.write(f"bgmigrate: {mask_secrets(line)}\n")
    sys.stderr.flush()


def _execute(command: str, fmt: str, work: Callable[[], tuple[str, bool]]) -> None:
    """Run ``work`` (the stdout text and whether it found something) and map failures to exit codes."""
    from .config import ConfigError
    from .dsn import mask_secrets
    from .lint.catalog import CatalogError
    from .plan.model import PlanError
    from .run.errors import EXIT_USAGE, RunError
    from .run.render import error_json
    from .schema.live import LiveSchemaError
    from .sources import SourceError

    try:
        if fmt not in ("text", "json"):
            raise ConfigError(f"unknown format {fmt!r}: text or json")
        text, failed = work()
    except RunError as err:
        code, message = err.exit_code, str(err)
    except (ConfigError, SourceError, CatalogError, PlanError, LiveSchemaError) as err:
        code, message = EXIT_USAGE, str(err)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
        raise typer.Exit(1 if failed else 0)
    message = mask_secrets(message)
    if fmt == "json":
        sys.stdout.write(error_json(command, code, message))
    sys.stderr.write(f"bgmigrate: error: {message}\n")
    raise typer.Exit(code)


def _scratch_options(
    since: str | None,
    dsn: str | None,
    scratch_server: str | None,
    sample_rows: int,
    keep: bool,
    config: Path | None,
    use_env: bool,
) -> Any:
    """The options trace and compat share (the release and the scratch database)."""
    from .trace.commands import ScratchOptions

    return ScratchOptions(since, dsn, scratch_server, sample_rows, keep, config, use_env, _say)


def trace(
    sources: SourcesArg,
    since: SinceOpt = None,
    dsn: DsnOpt = None,
    scratch_server: ScratchOpt = None,
    sample_rows: SampleOpt = 0,
    keep: KeepOpt = False,
    fmt: FormatOpt = "text",
    config: ConfigOpt = None,
    use_env: UseEnvOpt = False,
) -> None:
    """Run the release on a scratch database: the locks each statement takes, rewrites, rebuilt indexes,
    durations; and where that is worse than the rule table says (trace-mismatch)."""

    def work() -> tuple[str, bool]:
        from .trace.commands import trace_command
        from .trace.render import trace_json, trace_text

        opts = _scratch_options(since, dsn, scratch_server, sample_rows, keep, config, use_env)
        report = trace_command(list(sources), opts)
        return (trace_json(report) if fmt == "json" else trace_text(report)), report.failed

    _execute("trace", fmt, work)


def compat(
    sources: SourcesArg,
    blue_queries: Annotated[
        Path | None, typer.Option("--blue-queries", help="Blue's SQL queries, one per statement ($1, %s, :name).")
    ] = None,
    green_queries: Annotated[
        Path | None, typer.Option("--green-queries", help="Green's SQL queries: must work on the expanded schema.")
    ] = None,
    blue_from_pg_stat_statements: Annotated[
        str | None,
        typer.Option(
            "--blue-queries-from-pg-stat-statements",
            help="DSN of a database whose pg_stat_statements holds blue's queries (read only).",
        ),
    ] = None,
    as_written: Annotated[
        bool,
        typer.Option(
            "--as-written",
            help="Apply every release statement in file order (default: the plan's expand and migrate steps).",
        ),
    ] = False,
    since: SinceOpt = None,
    dsn: DsnOpt = None,
    scratch_server: ScratchOpt = None,
    sample_rows: SampleOpt = 0,
    keep: KeepOpt = False,
    fmt: FormatOpt = "text",
    config: ConfigOpt = None,
    use_env: UseEnvOpt = False,
) -> None:
    """Prove blue's queries survive the release's expand (PREPARE + generic plan after every step), and
    that green's work on the expanded schema; statically, that nothing blue uses is removed before
    blue is decommissioned."""

    def work() -> tuple[str, bool]:
        from .trace.commands import compat_command
        from .trace.render import compat_json, compat_text

        report = compat_command(
            list(sources),
            _scratch_options(since, dsn, scratch_server, sample_rows, keep, config, use_env),
            blue_queries=blue_queries,
            green_queries=green_queries,
            blue_from_pg_stat_statements=blue_from_pg_stat_statements,
            as_written=as_written,
        )
        return (compat_json(report) if fmt == "json" else compat_text(report)), report.failed

    _execute("compat", fmt, work)


def register(app: typer.Typer) -> None:
    for fn in (trace, compat):
        app.command(fn.__name__)(fn)
