"""Settings: defaults, then ``[tool.bgmigrate]`` (nearest pyproject.toml or ``--config``), then options."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DIALECTS = ("postgres", "mysql")
FORMATS = ("text", "json", "sarif", "github")
FAIL_ON = ("error", "warning", "never")
DEFAULT_VERSION = {"postgres": "15", "mysql": "8.0"}
LATEST = 999  # a target version without minor/patch means the newest release of that line


class ConfigError(Exception):
    """Bad settings: reported as one line, exit code 2."""


@dataclass
class Settings:
    dialect: str = "postgres"
    target_version: str | None = None
    format: str = "text"
    fail_on: str = "error"
    exclude: list[str] = field(default_factory=list)
    severity: dict[str, str] = field(default_factory=dict)
    assume_in_transaction: bool = False
    lock_timeout_from_runner: bool = False
    cache: bool = True
    cache_dir: str | None = None
    jobs: int = 0  # 0: automatic
    since: str | None = None  # last migration before the release under review
    schema_from: str | None = None  # DSN of a live database whose schema replaces replayed history
    use_env: bool = False  # Alembic: render revisions through the project's env.py
    config_path: str | None = None

    @property
    def version(self) -> tuple[int, int, int]:
        key = (self.dialect, self.target_version)
        cached = self.__dict__.get("_version")
        if cached is None or cached[0] != key:
            from .lint.rule import parse_version

            cached = (key, parse_version(self.target_version or DEFAULT_VERSION[self.dialect], missing=LATEST))
            self.__dict__["_version"] = cached
        return cached[1]

    @property
    def version_text(self) -> str:
        return self.target_version or DEFAULT_VERSION[self.dialect]

    def fingerprint(self) -> str:
        """The settings that change lint results (not output format or cache location)."""
        return "|".join(
            [
                self.dialect,
                ".".join(map(str, self.version)),
                ",".join(sorted(self.exclude)),
                ",".join(f"{k}={v}" for k, v in sorted(self.severity.items())),
                str(self.assume_in_transaction),
                str(self.lock_timeout_from_runner),
                self.since or "",
                str(self.use_env),
            ]
        )


# sub-tables of [tool.bgmigrate] with their own readers: the traffic switch and the release flow
SECTIONS = frozenset({"traffic", "gates", "hooks", "release"})
_KEYS = {f.name.replace("_", "-"): f.name for f in fields(Settings) if f.name != "config_path"}
_KEYS.update({f.name: f.name for f in fields(Settings) if f.name != "config_path"})


def find_pyproject(start: Path) -> Path | None:
    for directory in (start, *start.parents):
        candidate = directory / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except PermissionError:
        raise ConfigError(f"config file not readable: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"config path is a directory: {path}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"invalid TOML in {path}: {err}") from None


def load_file_settings(config: Path | None, cwd: Path) -> tuple[dict[str, Any], Path | None]:
    """Return the raw bgmigrate table and the file it came from."""
    if config is not None:
        data = _read_toml(config)
        if "tool" in data and isinstance(data["tool"], dict) and "bgmigrate" in data["tool"]:
            return data["tool"]["bgmigrate"], config
        if config.name == "pyproject.toml":
            return {}, config
        return data, config
    found = find_pyproject(cwd)
    if found is None:
        return {}, None
    data = _read_toml(found)
    table = data.get("tool", {}).get("bgmigrate", {}) if isinstance(data.get("tool"), dict) else {}
    return table if isinstance(table, dict) else {}, found


def _coerce(name: str, value: Any, source: str) -> Any:
    def bad(expected: str) -> ConfigError:
        return ConfigError(f"{source}: '{name}' must be {expected}, got {value!r}")

    if name in ("assume_in_transaction", "lock_timeout_from_runner", "cache", "use_env"):
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if name == "exclude":
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise bad("a list of rule ids")
        return list(value)
    if name == "severity":
        if not isinstance(value, dict) or not all(v in ("error", "warning", "off") for v in value.values()):
            raise bad('a table of rule = "error" | "warning" | "off"')
        return dict(value)
    if name == "jobs":
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise bad("a non-negative integer")
        return value
    if name == "target_version":
        if isinstance(value, (int, float)):
            value = str(value)
        if not isinstance(value, str) or not value.replace(".", "").isdigit():
            raise bad('a version such as "15" or "8.0.29"')
        return value
    if not isinstance(value, str):
        raise bad("a string")
    allowed = {"dialect": DIALECTS, "format": FORMATS, "fail_on": FAIL_ON}.get(name)
    if allowed and value not in allowed:
        raise bad("one of " + ", ".join(allowed))
    return value


def build_settings(
    config: Path | None = None,
    cwd: Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> Settings:
    cwd = cwd or Path.cwd()
    raw, source_path = load_file_settings(config, cwd)
    source = str(source_path) if source_path else "settings"
    settings = Settings(config_path=str(source_path) if source_path else None)
    for key, value in raw.items():
        if key in SECTIONS:  # read by their own modules (migrator/traffic/config.py)
            continue
        name = _KEYS.get(key)
        if name is None:
            known = ", ".join(sorted(k for k in _KEYS if "_" not in k))
            raise ConfigError(f"{source}: unknown setting '{key}' (known: {known})")
        setattr(settings, name, _coerce(name, value, source))
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        if key == "exclude":
            settings.exclude = [*settings.exclude, *value]
            continue
        setattr(settings, key, _coerce(key, value, "command line"))
    settings.version  # noqa: B018 - validates target_version now
    return settings
