"""Make a plan from migration sources: load them, lint the release (keeping its history), plan it.

The library form of ``bgmigrate plan``, also used by ``bgmigrate expand SOURCE`` (which plans and
runs in one go). With a DSN the live database's schema is the starting point and steps get sizes.
"""

from __future__ import annotations

from pathlib import Path

from ..config import ConfigError, Settings, build_settings
from ..schema.model import Schema
from .model import Plan


def live_schema(dsn: str, dialect: str) -> Schema:
    """The schema of a live database; any failure is a ConfigError with the password masked."""
    from ..schema.live import LiveSchemaError, load_live_schema

    try:
        schema = load_live_schema(dsn)
    except LiveSchemaError as err:
        raise ConfigError(str(err)) from None
    live_dialect = (schema.source or {}).get("dialect")
    if live_dialect and live_dialect != dialect:
        raise ConfigError(
            f"--schema-from is a {live_dialect} database but the dialect is {dialect}: add --dialect {live_dialect}"
        )
    return schema


def make_plan(
    paths: list[Path],
    *,
    config: Path | None = None,
    dialect: str | None = None,
    target_version: str | None = None,
    since: str | None = None,
    dsn: str | None = None,
    use_env: bool = False,
) -> tuple[Plan, Settings]:
    """The sealed plan of the release in ``paths``. Raises ConfigError, SourceError, CatalogError or
    PlanError (each one clear line, exit 2 in the CLI)."""
    from ..lint.cache import Cache
    from ..lint.engine import lint_sources
    from ..sources import load_sources
    from .builder import build_plan

    overrides = {
        "dialect": dialect,
        "target_version": target_version,
        "since": since,
        "schema_from": dsn,
        "use_env": True if use_env else None,
    }
    settings = build_settings(config=config, overrides=overrides)
    cache = Cache.for_settings(settings)
    try:
        sources = load_sources(paths, settings, cache=cache)
    finally:
        cache.close()
    live = live_schema(dsn, settings.dialect) if dsn else None
    result = lint_sources(sources, settings, base_schema=live, keep_history=True)
    return build_plan(result, settings, sizes=live, sources=sources), settings
