"""The library form of ``bgmigrate trace``, ``bgmigrate compat`` and ``bgmigrate plan --trace``.

Order matters for "nothing changed on a bad input": migrations, query files and pg_stat_statements
are read, and pg_dump is found, before any scratch database exists.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..run.errors import InputError
from .compat import CompatReport, run_compat, steps_as_written, steps_from_plan
from .queries import Query, queries_from_pg_stat_statements, read_query_file
from .scratch import ScratchDatabase, scratch_database
from .tracing import TraceReport, trace_plan, trace_release

if TYPE_CHECKING:
    from ..config import Settings
    from ..plan.model import Plan
    from ..schema.model import Schema
    from ..sources.model import SourceFile

SCRATCH_ENV = "BGMIGRATE_SCRATCH_SERVER"
Say = Callable[[str], None] | None


def _sources(
    paths: list[Path], *, since: str | None, config: Path | None, use_env: bool
) -> tuple[Settings, list[SourceFile], int]:
    from ..config import build_settings
    from ..lint.cache import Cache
    from ..lint.engine import release_start
    from ..sources import load_sources

    settings = build_settings(config=config, overrides={"since": since, "use_env": True if use_env else None})
    if settings.dialect != "postgres":
        raise InputError(f"trace and compat run on PostgreSQL only (the dialect is {settings.dialect})")
    cache = Cache.for_settings(settings)
    try:
        sources = load_sources(paths, settings, cache=cache)
    finally:
        cache.close()
    if not sources:
        raise InputError("no migrations found in " + ", ".join(str(p) for p in paths))
    return settings, sources, release_start(sources, settings.since)


def _live(conninfo: str) -> Schema:
    from ..schema.live import LiveSchemaError, load_live_schema

    try:
        return load_live_schema(conninfo)
    except LiveSchemaError as err:
        raise InputError(f"reading the scratch database's schema failed: {err}") from None


@dataclass
class ScratchOptions:
    """What trace and compat share: the release (sources, ``since``) and the scratch database."""

    since: str | None = None
    dsn: str | None = None
    scratch_server: str | None = None
    sample_rows: int = 0
    keep: bool = False
    config: Path | None = None
    use_env: bool = False
    say: Say = None

    @contextmanager
    def scratch(self, paths: list[Path]) -> Iterator[tuple[Settings, list[SourceFile], ScratchDatabase]]:
        """Read the release, then a scratch database with the schema before it (the DSN's, or the
        history replayed): (settings, sources, database)."""
        settings, sources, boundary = _sources(paths, since=self.since, config=self.config, use_env=self.use_env)
        history = [] if self.dsn else sources[:boundary]
        with scratch_database(
            dsn=self.dsn,
            scratch_server=self.scratch_server,
            history=history,
            sample_rows=self.sample_rows,
            keep=self.keep,
            say=self.say,
        ) as db:
            yield settings, sources, db


def trace_command(paths: list[Path], opts: ScratchOptions) -> TraceReport:
    from ..lint.engine import lint_sources

    with opts.scratch(paths) as (settings, sources, db):
        settings.target_version = str(db.major)  # classify for the server the statements really run on
        base = _live(db.conninfo) if opts.dsn else None
        result = lint_sources(sources, settings, base_schema=base)
        return trace_release(result, db)


def compat_command(
    paths: list[Path],
    opts: ScratchOptions,
    *,
    blue_queries: Path | None = None,
    green_queries: Path | None = None,
    blue_from_pg_stat_statements: str | None = None,
    as_written: bool = False,
) -> CompatReport:
    from ..lint.engine import lint_sources
    from ..plan.make import make_plan

    if blue_queries is None and not blue_from_pg_stat_statements:
        raise InputError("give blue's queries: --blue-queries FILE or --blue-queries-from-pg-stat-statements DSN")
    blue: list[Query] = read_query_file(blue_queries) if blue_queries is not None else []
    green: list[Query] = read_query_file(green_queries) if green_queries is not None else []
    left_out = 0
    if blue_from_pg_stat_statements:
        recorded, left_out = queries_from_pg_stat_statements(blue_from_pg_stat_statements)
        blue += recorded
    with opts.scratch(paths) as (settings, sources, db):
        base = _live(db.conninfo)
        if as_written:
            settings.target_version = str(db.major)
            result = lint_sources(sources, settings, base_schema=base if opts.dsn else None)
            steps = steps_as_written(result)
        else:
            plan, _ = make_plan(
                paths,
                config=opts.config,
                target_version=str(db.major),
                since=opts.since,
                dsn=db.conninfo if opts.dsn else None,
                use_env=opts.use_env,
            )
            steps = steps_from_plan(plan)
        report = run_compat(db, steps, base, blue, green, mode="as-written" if as_written else "plan")
    report.left_out = left_out
    return report


def trace_plan_command(plan: Plan, paths: list[Path], opts: ScratchOptions) -> TraceReport:
    """``bgmigrate plan --trace``: the plan's steps on a scratch database (the --dsn's server, or
    ``BGMIGRATE_SCRATCH_SERVER``, or the embedded PostgreSQL)."""
    if plan.dialect != "postgres":
        raise InputError("--trace runs on PostgreSQL only")
    if opts.scratch_server is None:
        opts.scratch_server = os.environ.get(SCRATCH_ENV) or None
    with opts.scratch(paths) as (_settings, _sources, db):
        return trace_plan(plan, db)
