"""The ``local`` router: the weighted reverse proxy of :mod:`migrator.traffic.local_proxy`.

Configuration (``[tool.bgmigrate.traffic]`` or flags)::

    kind = "local"
    target = "http://127.0.0.1:8090"      # the proxy's admin base URL (its --admin, or its --listen)
    blue = "http://127.0.0.1:8001"        # the upstreams, for health; default: what the proxy says
    green = "http://127.0.0.1:8002"
    health_path = "/health"               # options
    http_timeout_s = 5

The split is read and set through the admin API: a set is conditional on the weights read just
before it (``If-Match``, so a concurrent change is reported, never overwritten) and read back
afterwards. Health is ``GET {upstream}{health_path}``: 2xx is healthy, anything else (or no answer)
is not. Every failure is a :class:`TrafficError` naming the proxy.
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from typing import Any

from .local_proxy import ADMIN_PREFIX
from .router import SIDES, Router, RouterConfig, SideHealth, Split, TrafficError

DEFAULT_HEALTH_PATH = "/health"
DEFAULT_TIMEOUT_S = 5.0


class LocalRouter(Router):
    kind = "local"

    def __init__(self, config: RouterConfig) -> None:
        super().__init__(config)
        config.require("target")
        base = str(config.target).rstrip("/")
        if base.endswith(ADMIN_PREFIX):
            base = base[: -len(ADMIN_PREFIX)]
        if not base.startswith(("http://", "https://")):
            raise TrafficError(
                f"the local router's target must be the proxy's admin URL (http://HOST:PORT), not {base!r}"
            )
        self.admin = base
        self.timeout_s = float(config.options.get("http_timeout_s", DEFAULT_TIMEOUT_S))
        self.health_path = str(config.options.get("health_path", DEFAULT_HEALTH_PATH))
        if not self.health_path.startswith("/"):
            self.health_path = "/" + self.health_path
        self._proxy_config: dict[str, Any] | None = None

    def describe(self) -> str:
        return f"local proxy {self.admin}"

    # ---- the admin API ---------------------------------------------------------------------------

    def _call(
        self, method: str, resource: str, action: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any, Any]:
        """``(status, JSON body, headers)`` of a 2xx answer; anything else is a TrafficError."""
        url = f"{self.admin}{ADMIN_PREFIX}/{resource}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method, headers={"Accept": "application/json"})
        if data is not None:
            request.add_header("Content-Type", "application/json")
        for key, value in (headers or {}).items():
            request.add_header(key, value)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return response.status, _json_body(response.read()), response.headers
        except urllib.error.HTTPError as err:
            payload = _json_body(err.read())
            message = payload.get("error") if isinstance(payload, dict) else None
            if err.code == 412:
                raise TrafficError(
                    f"{self.describe()} was changed by someone else while trying to {action} (stale version): "
                    f"{message or err.reason}"
                ) from None
            raise TrafficError(f"{self.describe()}: cannot {action}: HTTP {err.code} {message or err.reason}") from None
        except (urllib.error.URLError, OSError, ValueError) as err:
            reason = _reason(err)
            hint = " (is the proxy running?)" if reason == "connection refused" else ""
            raise TrafficError(f"{self.describe()}: cannot {action}: {reason}{hint}") from None

    def _read(self) -> tuple[Split, str | None]:
        _status, payload, headers = self._call("GET", "weights", "read the weights")
        return self._split(payload, "read the weights"), headers.get("ETag")

    def _split(self, payload: Any, action: str) -> Split:
        if (
            not isinstance(payload, dict)
            or not isinstance(payload.get("blue"), int)
            or not isinstance(payload.get("green"), int)
        ):
            raise TrafficError(f"{self.describe()}: cannot {action}: unexpected answer {payload!r}")
        return Split(blue=payload["blue"], green=payload["green"])

    def current(self) -> Split:
        return self._read()[0]

    def set_split(self, split: Split) -> Split:
        _before, etag = self._read()
        headers = {"If-Match": etag} if etag else {}
        action = f"set {split}"
        self._call("PUT", "weights", action, body={"blue": split.blue, "green": split.green}, headers=headers)
        after = self.current()
        if after != split:
            raise TrafficError(f"{self.describe()}: asked for {split} but it serves {after}")
        return after

    # ---- health ----------------------------------------------------------------------------------

    def upstream(self, side: str) -> str:
        """The side's upstream URL: the configured one, else the one the proxy forwards to."""
        configured = getattr(self.config, side)
        if configured:
            return str(configured).rstrip("/")
        if self._proxy_config is None:
            _status, payload, _headers = self._call("GET", "config", "read the upstreams")
            if not isinstance(payload, dict):
                raise TrafficError(f"{self.describe()}: cannot read the upstreams: unexpected answer {payload!r}")
            self._proxy_config = payload
        url = self._proxy_config.get(side)
        if not url:
            raise TrafficError(f"{self.describe()}: the proxy names no {side} upstream")
        return str(url).rstrip("/")

    def health(self) -> dict[str, SideHealth]:
        return {side: self._side_health(side) for side in SIDES}

    def _side_health(self, side: str) -> SideHealth:
        url = self.upstream(side) + self.health_path
        try:
            with urllib.request.urlopen(url, timeout=self.timeout_s) as response:
                status = response.status
        except urllib.error.HTTPError as err:
            status = err.code
        except (urllib.error.URLError, OSError, ValueError) as err:
            return SideHealth(side, False, f"GET {url}: {_reason(err)}")
        return SideHealth(side, 200 <= status < 300, f"GET {url}: HTTP {status}")


def _json_body(data: bytes) -> Any:
    try:
        return json.loads(data.decode("utf-8")) if data else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None


def _reason(err: BaseException) -> str:
    reason: Any = err.reason if isinstance(err, urllib.error.URLError) else err
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, TimeoutError | socket.timeout):
        return "timed out"
    text = str(reason) or type(reason).__name__
    return " ".join(text.split())
