"""Health gates: is green fit to take more traffic? Checked before every step of a switch and during
the soak. Each configured check must pass:

- ``probe_url``: ``probe_successes`` consecutive 2xx answers, each within ``probe_timeout``;
- ``router_health``: the platform's own view of green (Cloud Run revision Ready, load balancer
  backend health, Service endpoints ready; unknown counts as a failure);
- ``max_error_ratio``: green's 5xx share of requests over ``error_window`` from Cloud Monitoring
  (Cloud Run routers); no requests yet counts as passing;
- ``command``: a shell command that exits 0.
"""

from __future__ import annotations

import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

from ..dsn import command_env, mask_secrets
from .config import GateSettings
from .router import Router


@dataclass
class GateResult:
    checks: list[tuple[str, bool, str]] = field(default_factory=list)  # (check, passed, detail)

    @property
    def ok(self) -> bool:
        return all(passed for _, passed, _ in self.checks)

    @property
    def detail(self) -> str:
        return "; ".join(f"{name}: {'ok' if passed else 'FAILED'} ({text})" for name, passed, text in self.checks)

    @property
    def failures(self) -> str:
        return "; ".join(f"{name}: {text}" for name, passed, text in self.checks if not passed)


def check_green(settings: GateSettings, router: Router | None, env: dict[str, str] | None = None) -> GateResult:
    result = GateResult()
    if settings.probe_url:
        result.checks.append(("probe", *probe(settings.probe_url, settings.probe_timeout, settings.probe_successes)))
    if settings.router_health:
        result.checks.append(("router health", *_router_health(router)))
    if settings.max_error_ratio is not None:
        result.checks.append(("error ratio", *_error_ratio(router, settings)))
    if settings.command:
        result.checks.append(("command", *_command(settings.command, env)))
    return result


def probe(url: str, timeout: float, successes: int, pause: float = 0.2) -> tuple[bool, str]:
    for attempt in range(1, max(1, successes) + 1):
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                status = response.status
        except urllib.error.HTTPError as err:
            return False, f"{url} answered {err.code} on probe {attempt}"
        except (urllib.error.URLError, OSError, TimeoutError) as err:
            reason = getattr(err, "reason", err)
            return False, f"{url} did not answer on probe {attempt}: {reason}"
        if not 200 <= status < 300:
            return False, f"{url} answered {status} on probe {attempt}"
        if attempt < successes:
            time.sleep(pause)
    return True, f"{successes} x 2xx from {url}"


def _router_health(router: Router | None) -> tuple[bool, str]:
    if router is None:
        return False, "no router configured"
    try:
        green = router.health().get("green")
    except Exception as err:  # a gate that cannot be read fails
        return False, f"cannot read {router.describe()}: {err}"
    if green is None or green.healthy is None:
        return False, f"{router.describe()} does not report green's health"
    return bool(green.healthy), green.detail or ("healthy" if green.healthy else "unhealthy")


def _error_ratio(router: Router | None, settings: GateSettings) -> tuple[bool, str]:
    if router is None or router.kind != "cloudrun":
        return False, "max_error_ratio needs the cloudrun router (Cloud Monitoring request counts per revision)"
    from .monitoring import error_ratio

    try:
        ratio = error_ratio(
            router.config, service=router.config.target or "", revision=router.config.green or "",
            window_s=int(settings.error_window),
        )  # fmt: skip
    except Exception as err:
        return False, f"cannot read green's error ratio from Cloud Monitoring: {err}"
    limit = settings.max_error_ratio or 0.0
    if ratio is None:
        return True, "no requests to green yet"
    return ratio <= limit, f"{ratio:.2%} of green's requests failed (limit {limit:.2%})"


def _command(command: str, env: dict[str, str] | None) -> tuple[bool, str]:
    try:
        done = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=300, env=command_env(env))
    except subprocess.TimeoutExpired:
        return False, f"{command!r} did not finish within 300 s"
    last = mask_secrets((done.stdout.strip().splitlines() or done.stderr.strip().splitlines() or [""])[-1][:200])
    return done.returncode == 0, f"{command!r} exited {done.returncode}" + (f": {last}" if last else "")
