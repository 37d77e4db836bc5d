"""The traffic switch's and release flow's configuration: ``[tool.bgmigrate.traffic]``, ``.gates``,
``.hooks`` and ``.release`` in ``pyproject.toml`` (or the same tables at the top of a
``bgmigrate.toml`` given with ``--config``); command-line flags override them.

```toml
[tool.bgmigrate.traffic]
router = "cloudrun"            # cloudrun | urlmap | gateway | istio | command | local
target = "shop"                # Cloud Run service / URL map / HTTPRoute / local proxy admin URL
blue = "shop-00041-abc"        # revisions, backend services or backendRef names
green = "shop-00042-def"
project = "my-project"
region = "europe-west1"
steps = [10, 50, 100]          # green's percent at each step of a switch
interval = "60s"               # time at each step before the next gate
timeout = "5min"               # longest wait for one platform operation
# any other key is the router's own (namespace, path_matcher, get / set commands, health_path, ...)

[tool.bgmigrate.gates]         # checked before every step; a failure rolls traffic back to blue
probe_url = "https://green---shop-abc.a.run.app/health"
probe_timeout = "5s"
probe_successes = 3            # consecutive 2xx answers needed
router_health = true           # the platform's view of green (revision Ready, backend health)
max_error_ratio = 0.01         # Cloud Run: 5xx / all requests of green's revision (Cloud Monitoring)
error_window = "5min"
command = "./scripts/green-ok.sh"   # exit 0 = healthy

[tool.bgmigrate.hooks]         # shell commands the release flow runs (BGMIGRATE_* variables set)
deploy_green = "gcloud run deploy shop --image ... --no-traffic --tag green"
verify = "./scripts/smoke.sh"
decommission_blue = "gcloud run services update-traffic shop --remove-tags blue"
timeout = "15min"

[tool.bgmigrate.release]
soak = "10min"                 # green at 100 % this long (gates re-checked) before blue goes
blue_application_name = "shop@blue"   # contract refuses while the database has sessions of blue
```
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import ConfigError, load_file_settings
from ..run.durations import parse_duration
from .router import RouterConfig

ROUTERS = ("cloudrun", "urlmap", "gateway", "istio", "command", "local")
_TRAFFIC_KEYS = {"router", "target", "blue", "green", "project", "region", "api_endpoint", "anonymous", "timeout"}
_SWITCH_KEYS = {"steps", "interval"}


@dataclass
class GateSettings:
    probe_url: str | None = None
    probe_timeout: float = 5.0
    probe_successes: int = 3
    router_health: bool = False
    max_error_ratio: float | None = None
    error_window: float = 300.0
    command: str | None = None

    @property
    def any(self) -> bool:
        return bool(self.probe_url or self.router_health or self.max_error_ratio is not None or self.command)


@dataclass
class HookSettings:
    deploy_green: str | None = None
    verify: str | None = None
    decommission_blue: str | None = None
    timeout: float = 900.0


@dataclass
class TrafficSettings:
    router: RouterConfig | None
    steps: list[int] = field(default_factory=lambda: [10, 50, 100])
    interval: float = 60.0
    gates: GateSettings = field(default_factory=GateSettings)
    hooks: HookSettings = field(default_factory=HookSettings)
    soak: float = 0.0
    blue_application_name: str | None = None
    source: str = "settings"


def _table(raw: dict[str, Any], name: str, source: str) -> dict[str, Any]:
    value = raw.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: [tool.bgmigrate.{name}] must be a table")
    return dict(value)


def _duration(value: Any, what: str, source: str) -> float:
    try:
        seconds = parse_duration(value, what=what)
    except ValueError as err:
        raise ConfigError(f"{source}: {err}") from None
    if seconds is None:
        raise ConfigError(f"{source}: {what} must be a duration")
    return seconds


def parse_steps(value: Any, source: str = "command line") -> list[int]:
    """``[10, 50, 100]`` or ``"10,50,100"``: increasing whole percents ending at 100."""
    if isinstance(value, str):
        try:
            value = [int(v) for v in value.replace(" ", "").split(",") if v]
        except ValueError:
            raise ConfigError(f"{source}: steps must be whole percents like 10,50,100, not {value!r}") from None
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        raise ConfigError(f"{source}: steps must be a list of whole percents like [10, 50, 100]")
    if any(not 0 < v <= 100 for v in value) or value != sorted(set(value)) or value[-1] != 100:
        raise ConfigError(f"{source}: steps must increase, each from 1 to 100, and end at 100 (got {value})")
    return value


def load_traffic_settings(config: Path | None = None, cwd: Path | None = None, **flags: Any) -> TrafficSettings:
    """The settings from the file, with ``flags`` (router, target, blue, green, steps, interval,
    probe_url, soak, ...) winning when not None."""
    raw, path = load_file_settings(config, cwd or Path.cwd())
    source = str(path) if path else "settings"
    traffic = _table(raw, "traffic", source)
    gates_raw = _table(raw, "gates", source)
    hooks_raw = _table(raw, "hooks", source)
    release_raw = _table(raw, "release", source)

    for key in ("router", "target", "blue", "green"):
        if flags.get(key) is not None:
            traffic[key] = flags[key]
    kind = traffic.get("router")
    router: RouterConfig | None = None
    if kind is not None:
        if kind not in ROUTERS:
            raise ConfigError(f"{source}: unknown router {kind!r} (known: {', '.join(ROUTERS)})")
        options = {k: v for k, v in traffic.items() if k not in _TRAFFIC_KEYS | _SWITCH_KEYS}
        router = RouterConfig(
            kind=kind,
            target=_text(traffic.get("target"), "target", source),
            blue=_text(traffic.get("blue"), "blue", source),
            green=_text(traffic.get("green"), "green", source),
            project=_text(traffic.get("project"), "project", source),
            region=_text(traffic.get("region"), "region", source),
            api_endpoint=_text(traffic.get("api_endpoint"), "api_endpoint", source),
            anonymous=bool(traffic.get("anonymous", False)),
            timeout_s=_duration(traffic.get("timeout", "5min"), "timeout", source),
            options=options,
        )
    settings = TrafficSettings(router=router, source=source)
    steps = flags.get("steps") if flags.get("steps") is not None else traffic.get("steps")
    if steps is not None:
        settings.steps = parse_steps(steps, source if flags.get("steps") is None else "--steps")
    interval = flags.get("interval") if flags.get("interval") is not None else traffic.get("interval")
    if interval is not None:
        settings.interval = _duration(interval, "interval", source)

    gates = settings.gates
    known_gates = {"probe_url", "probe_timeout", "probe_successes", "router_health", "max_error_ratio"}
    _unknown(gates_raw, known_gates | {"error_window", "command"}, "gates", source)
    gates.probe_url = _text(flags.get("probe_url") or gates_raw.get("probe_url"), "probe_url", source)
    gates.probe_timeout = _duration(gates_raw.get("probe_timeout", 5), "probe_timeout", source)
    successes = gates_raw.get("probe_successes", 3)
    if not isinstance(successes, int) or isinstance(successes, bool) or successes < 1:
        raise ConfigError(f"{source}: probe_successes must be a whole number of at least 1, not {successes!r}")
    gates.probe_successes = successes
    gates.router_health = bool(gates_raw.get("router_health", False))
    ratio = gates_raw.get("max_error_ratio")
    if ratio is not None and (not isinstance(ratio, (int, float)) or not 0 <= ratio <= 1):
        raise ConfigError(f"{source}: max_error_ratio must be a number from 0 to 1")
    gates.max_error_ratio = float(ratio) if ratio is not None else None
    gates.error_window = _duration(gates_raw.get("error_window", 300), "error_window", source)
    gates.command = _text(gates_raw.get("command"), "gates.command", source)

    hooks = settings.hooks
    _unknown(hooks_raw, {"deploy_green", "verify", "decommission_blue", "timeout"}, "hooks", source)
    for key in ("deploy_green", "verify", "decommission_blue"):
        value = flags.get(f"hook_{key}") or hooks_raw.get(key)
        setattr(hooks, key, _text(value, f"hooks.{key}", source))
    hooks.timeout = _duration(hooks_raw.get("timeout", 900), "hooks.timeout", source)

    _unknown(release_raw, {"soak", "blue_application_name"}, "release", source)
    soak = flags.get("soak") if flags.get("soak") is not None else release_raw.get("soak", 0)
    settings.soak = _duration(soak, "soak", source)
    settings.blue_application_name = _text(
        flags.get("blue_application_name") or release_raw.get("blue_application_name"), "blue_application_name", source
    )
    return settings


def _text(value: Any, what: str, source: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{source}: {what} must be a non-empty string")
    return value


def _unknown(table: dict[str, Any], known: set[str], name: str, source: str) -> None:
    extra = sorted(set(table) - known)
    if extra:
        raise ConfigError(f"{source}: unknown key(s) in [tool.bgmigrate.{name}]: {', '.join(extra)}")
