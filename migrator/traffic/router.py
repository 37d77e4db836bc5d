"""The one small interface every traffic router implements, and the values it speaks in.

A router addresses one resource (a Cloud Run service, a URL map, an HTTPRoute, a local proxy) and
two sides of it: ``blue`` (the version serving now) and ``green`` (the new one). It can:

- read the split that is really serving (:meth:`Router.current`);
- set a split and wait until it serves (:meth:`Router.set_split`: the long-running operation done,
  the status re-read and checked), with optimistic concurrency where the API has it (etag,
  fingerprint, resourceVersion): a concurrent change is reported, never overwritten;
- report each side's health as the platform sees it (:meth:`Router.health`);
- say how blue could still receive traffic (:meth:`Router.blue_exposure`: a weight, a tag URL, a
  route rule), which the contract gate refuses on.

Every failure is a :class:`TrafficError` (exit 3) whose message names the resource; the router
leaves traffic where it was when a change is refused.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from ..run.errors import EXIT_REFUSED, RunError

SIDES = ("blue", "green")


class TrafficError(RunError):
    """A shift was refused or failed (unknown resource, missing permission, stale version, an
    operation that failed or timed out, bad weights). Exit code 3."""

    exit_code = EXIT_REFUSED


@dataclass(frozen=True)
class Split:
    """Percent of traffic per side; always sums to 100."""

    blue: int
    green: int

    def __post_init__(self) -> None:
        for side, value in (("blue", self.blue), ("green", self.green)):
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 100:
                raise TrafficError(f"{side} weight must be a whole percent from 0 to 100, not {value!r}")
        if self.blue + self.green != 100:
            raise TrafficError(f"weights must sum to 100: blue {self.blue} + green {self.green}")

    @classmethod
    def green_percent(cls, percent: int) -> Split:
        return cls(blue=100 - percent, green=percent)

    def __str__(self) -> str:
        return f"blue {self.blue}% / green {self.green}%"


@dataclass(frozen=True)
class SideHealth:
    side: str  # blue | green
    healthy: bool | None  # None: the platform does not say
    detail: str = ""


@dataclass
class RouterConfig:
    """Where a router points. ``target``: the service / URL map / HTTPRoute / proxy admin URL;
    ``blue`` / ``green``: revisions, backend services or backendRef names; ``options``: the rest of
    the router's table (project, region, namespace, path_matcher, commands, ...)."""

    kind: str
    target: str | None = None
    blue: str | None = None
    green: str | None = None
    project: str | None = None
    region: str | None = None
    api_endpoint: str | None = None  # tests: a local emulator (also BGMIGRATE_GCP_API_ENDPOINT)
    anonymous: bool = False  # tests: no credentials (also BGMIGRATE_GCP_ANONYMOUS=1)
    timeout_s: float = 300.0  # longest wait for one operation
    options: dict[str, Any] = field(default_factory=dict)

    def require(self, *names: str) -> None:
        missing = [n for n in names if not getattr(self, n, None) and not self.options.get(n)]
        if missing:
            flags = ", ".join(f"--{n}" if n in ("target", "blue", "green") else n for n in missing)
            raise TrafficError(f"the {self.kind} router needs {flags} (flags or [tool.bgmigrate.traffic])")


class Router(ABC):
    kind: str = ""

    def __init__(self, config: RouterConfig) -> None:
        self.config = config

    @abstractmethod
    def describe(self) -> str:
        """The resource, as messages name it (e.g. ``Cloud Run service projects/p/locations/l/services/s``)."""

    @abstractmethod
    def current(self) -> Split:
        """The split serving now (the platform's status, not what was last asked for)."""

    @abstractmethod
    def set_split(self, split: Split) -> Split:
        """Apply ``split``, wait until it serves, and return the split read back."""

    def health(self) -> dict[str, SideHealth]:
        """Each side's health as the platform reports it (empty: the platform has no view)."""
        return {}

    def blue_exposure(self) -> list[str]:
        """Every way blue can still receive traffic (weights, tags, route rules); [] when none."""
        split = self.current()
        return [f"{self.describe()} sends {split.blue}% to blue ({self.config.blue})"] if split.blue else []
