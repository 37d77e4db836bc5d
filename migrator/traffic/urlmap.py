"""The URL map router: weighted backend services of a global external Application Load Balancer.

Through ``google.cloud.compute_v1`` (REST). ``target`` is the URL map (a name, or
``projects/P/global/urlMaps/NAME``), ``blue``/``green`` backend services (names or URLs) of ``project``;
``options.path_matcher`` picks the route to shift: that path matcher's default route instead of the
URL map's own default route.

- :meth:`UrlMapRouter.current` reads ``weightedBackendServices`` of that route (weights 0..1000,
  proportional) as percents, or its ``defaultService`` as 100% to that side. A backend that is neither
  blue nor green, a redirect, or all weights 0 is an error naming it.
- :meth:`UrlMapRouter.set_split` writes the weights (percent x 10, both entries kept, 0 for a side at 0;
  ``defaultService`` cleared) with ``update`` (PUT: the whole resource as read, so only the route's
  weights change and nothing depends on how PATCH treats a cleared field), sends the fingerprint, waits
  for the operation with its own ``GlobalOperationsClient`` (the ``ExtendedOperation`` that ``update()``
  returns polls through an internal client that ignores ``client_options``), checks the operation's
  ``error``, re-reads and verifies. A stale fingerprint (412) is retried only when the route's traffic is
  still what was read (someone changed something else); changed traffic is refused, never overwritten.
  The same holds across calls: a split that differs from the one this router last read is refused (call
  :meth:`UrlMapRouter.current` to accept what is there now).
- :meth:`UrlMapRouter.health` asks ``BackendServices.getHealth`` for every group of each side's backend
  service: healthy when every instance reports ``HEALTHY``; ``None`` when the backend service has no
  health check (serverless NEGs: the load balancer has no view).
- :meth:`UrlMapRouter.blue_exposure` lists every place of the map that can still send requests to blue:
  default services, weights > 0 and request mirrors, in the default route, every path matcher, path rule
  and route rule (unreachable path matchers included).
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

from .gcp import api_error, client_kwargs
from .router import SIDES, Router, RouterConfig, SideHealth, Split, TrafficError

API_ROOT = "https://www.googleapis.com/compute/v1/"
WEIGHT_PER_PERCENT = 10  # weights are 0..1000; percent x 10 keeps them exact and in range
STALE_RETRIES = 3  # 412s in a row (each after a re-read showing traffic untouched) before giving up
_MAP_URL = re.compile(r"(?:^|/)projects/(?P<project>[^/]+)/global/urlMaps/(?P<name>[^/]+)$")
_SERVICE_URL = re.compile(
    r"(?:^|/)(?:projects/(?P<project>[^/]+)/)?global/(?P<kind>backendServices|backendBuckets)/(?P<name>[^/?#]+)$"
)


def _compute() -> tuple[Any, Any]:
    """``google.cloud.compute_v1`` and ``google.api_core.exceptions``, or a TrafficError saying what to install."""
    try:
        from google.api_core import exceptions
        from google.cloud import compute_v1
    except ImportError as err:
        raise TrafficError(
            f"the urlmap router needs google-cloud-compute: pip install 'bgmigrate[gcp]' ({err})"
        ) from err
    return compute_v1, exceptions


def _key(value: str, project: str) -> str:
    """A backend reference as ``projects/P/global/backendServices/NAME`` (names, partial and full URLs
    alike); anything else (regional services, unknown forms) as given."""
    value = value.strip()
    if "/" not in value:
        return f"projects/{project}/global/backendServices/{value}"
    match = _SERVICE_URL.search(value)
    if match is None:
        return value
    return f"projects/{match['project'] or project}/global/{match['kind']}/{match['name']}"


def _url(key: str) -> str:
    return key if key.startswith(("https://", "http://")) else API_ROOT + key


def _short(key: str) -> str:
    return key.rsplit("/", 1)[-1] if "/global/backendServices/" in key else key


@dataclass(frozen=True)
class _Route:
    """What one route (the URL map's or a path matcher's default) sends where."""

    label: str  # "the default route" | "path matcher 'api'"
    default_service: str | None  # key
    weighted: tuple[tuple[str, int], ...]  # (key, weight) as listed
    redirect: bool

    def signature(self) -> tuple[Any, ...]:
        return (self.default_service, tuple(sorted(self.weighted)), self.redirect)

    def text(self) -> str:
        if self.redirect:
            return "a redirect"
        if self.weighted:
            return ", ".join(f"{_short(k)} weight {w}" for k, w in self.weighted)
        return f"default service {_short(self.default_service)}" if self.default_service else "no backend"


class UrlMapRouter(Router):
    kind = "urlmap"

    def __init__(self, config: RouterConfig) -> None:
        super().__init__(config)
        config.require("target", "blue", "green")
        target = str(config.target)
        match = _MAP_URL.search(target)
        self.url_map = match["name"] if match else target
        project = config.project or config.options.get("project") or (match["project"] if match else None)
        if not project:
            raise TrafficError("the urlmap router needs project (flags or [tool.bgmigrate.traffic])")
        self.project = str(project)
        self.path_matcher: str | None = config.options.get("path_matcher") or None
        self.keys = {"blue": _key(str(config.blue), self.project), "green": _key(str(config.green), self.project)}
        if self.keys["blue"] == self.keys["green"]:
            raise TrafficError(f"blue and green are the same backend service ({self.keys['blue']})")
        self._clients: dict[str, Any] = {}
        # the route's traffic as this router last read it (and what it wrote, when the operation's end is unknown)
        self._baseline: set[tuple[Any, ...]] = set()

    # ---- the Router interface ----------------------------------------------------------------------------

    def describe(self) -> str:
        return f"URL map projects/{self.project}/global/urlMaps/{self.url_map}"

    def current(self) -> Split:
        url_map = self._get("read the traffic split")
        route = self._route(url_map)
        split = self._split(route)
        self._baseline = {route.signature()}
        return split

    def set_split(self, split: Split) -> Split:
        compute_v1, exceptions = _compute()

        deadline = time.monotonic() + self.config.timeout_s
        action = f"shift traffic to {split}"
        url_map = self._get(action)
        route = self._route(url_map)
        before = self._split(route)  # refuses a third backend, a redirect, all weights 0
        seen = route.signature()
        if self._baseline and seen not in self._baseline:
            raise self._changed(action, route, "since this router last read it")
        for attempt in range(STALE_RETRIES + 1):
            if self._serves(route, split):
                break
            body = self._with_split(url_map, split)
            try:
                request = compute_v1.UpdateUrlMapRequest(
                    project=self.project, url_map=self.url_map, url_map_resource=body, request_id=str(uuid.uuid4())
                )
                operation = self._client("urls").update_unary(
                    request=request, timeout=self._remaining(deadline, action)
                )
            except exceptions.PreconditionFailed as err:
                if attempt == STALE_RETRIES:
                    raise api_error(err, self.describe(), action) from err
                url_map = self._get(action)  # a newer fingerprint: retry only if the traffic is untouched
                route = self._route(url_map)
                if route.signature() != seen:
                    raise self._changed(action, route, "while shifting") from None
                continue
            except exceptions.NotFound as err:  # the map was read a moment ago: a reference is unknown
                raise TrafficError(
                    f"{self.describe()}: cannot {action}: {self._message(err)} "
                    f"(check blue {self.config.blue} and green {self.config.green}); traffic stays at {before}"
                ) from err
            except exceptions.GoogleAPICallError as err:
                raise api_error(err, self.describe(), action) from err
            try:
                self._wait(operation, deadline, action)
            except TrafficError:  # a timeout may still apply later: that state is ours, not someone else's
                self._baseline = {seen, self._route(body).signature()}
                raise
            break
        after = self._route(self._get(f"verify the shift to {split}"))
        got = self._split(after)
        self._baseline = {after.signature()}
        if got != split:
            raise TrafficError(f"{self.describe()}: asked for {split}, but {after.label} now serves {got}")
        return got

    def health(self) -> dict[str, SideHealth]:
        return {side: self._side_health(side) for side in SIDES}

    def blue_exposure(self) -> list[str]:
        url_map = self._get("look for routes to blue")
        blue = self.keys["blue"]
        found: list[str] = []

        def visit(holder: Any, label: str, default: bool) -> None:
            service_field = "default_service" if default else "service"
            action_field = "default_route_action" if default else "route_action"
            service = getattr(holder, service_field, "")
            if service and _key(service, self.project) == blue:
                found.append(f"{self.describe()}: {label} sends all its requests to blue ({self.config.blue})")
            if action_field in holder:
                action = getattr(holder, action_field)
                entries = [(_key(e.backend_service, self.project), e.weight) for e in action.weighted_backend_services]
                total = sum(w for _, w in entries)
                for key, weight in entries:
                    if key == blue and weight > 0:
                        found.append(
                            f"{self.describe()}: {label} sends weight {weight} of {total} to blue ({self.config.blue})"
                        )
                mirror = action.request_mirror_policy.backend_service if "request_mirror_policy" in action else ""
                if mirror and _key(mirror, self.project) == blue:
                    found.append(f"{self.describe()}: {label} mirrors its requests to blue ({self.config.blue})")

        visit(url_map, "the default route", True)
        for matcher in url_map.path_matchers:
            visit(matcher, f"path matcher '{matcher.name}'", True)
            for rule in matcher.path_rules:
                visit(rule, f"path matcher '{matcher.name}' path rule {', '.join(rule.paths)}", False)
            for i, rule in enumerate(matcher.route_rules):
                name = f"priority {rule.priority}" if "priority" in rule else f"#{i}"
                visit(rule, f"path matcher '{matcher.name}' route rule {name}", False)
        return found

    # ---- reading -----------------------------------------------------------------------------------------

    def _client(self, which: str) -> Any:
        client = self._clients.get(which)
        if client is None:
            compute_v1, _ = _compute()
            cls = {
                "urls": compute_v1.UrlMapsClient,
                "ops": compute_v1.GlobalOperationsClient,
                "backends": compute_v1.BackendServicesClient,
            }[which]
            try:
                client = cls(**client_kwargs(self.config))
            except Exception as err:  # google.auth.exceptions.DefaultCredentialsError and friends
                raise TrafficError(f"{self.describe()}: no Google API client: {err}") from err
            self._clients[which] = client
        return client

    def _remaining(self, deadline: float, action: str) -> float:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TrafficError(
                f"timed out after {self.config.timeout_s:g}s while trying to {action} on {self.describe()}"
            )
        return remaining

    def _get(self, action: str) -> Any:
        _, exceptions = _compute()

        try:
            return self._client("urls").get(
                project=self.project, url_map=self.url_map, timeout=min(self.config.timeout_s, 60.0)
            )
        except exceptions.GoogleAPICallError as err:
            raise api_error(err, self.describe(), action) from err

    def _holder(self, url_map: Any) -> tuple[Any, str]:
        if not self.path_matcher:
            return url_map, "the default route"
        for matcher in url_map.path_matchers:
            if matcher.name == self.path_matcher:
                return matcher, f"path matcher '{matcher.name}'"
        names = ", ".join(m.name for m in url_map.path_matchers) or "none"
        raise TrafficError(f"{self.describe()} has no path matcher '{self.path_matcher}' (it has: {names})")

    def _route(self, url_map: Any) -> _Route:
        holder, label = self._holder(url_map)
        weighted: tuple[tuple[str, int], ...] = ()
        if "default_route_action" in holder:
            weighted = tuple(
                (_key(e.backend_service, self.project), int(e.weight))
                for e in holder.default_route_action.weighted_backend_services
            )
        service = holder.default_service or None
        return _Route(
            label=label,
            default_service=_key(service, self.project) if service else None,
            weighted=weighted,
            redirect="default_url_redirect" in holder,
        )

    def _side(self, key: str, route: _Route, weight: int | None = None) -> str:
        for side in SIDES:
            if self.keys[side] == key:
                return side
        what = f"weight {weight}" if weight is not None else "its requests"
        raise TrafficError(
            f"{self.describe()}: {route.label} sends {what} to {key}, which is neither blue "
            f"({self.config.blue}) nor green ({self.config.green}); refusing to touch a split it does not own"
        )

    def _weights(self, route: _Route) -> dict[str, int]:
        if route.redirect and not route.weighted and not route.default_service:
            raise TrafficError(f"{self.describe()}: {route.label} redirects; it sends nothing to blue or green")
        weights = dict.fromkeys(SIDES, 0)
        if route.weighted:
            for key, weight in route.weighted:
                weights[self._side(key, route, weight)] += weight
        elif route.default_service:
            weights[self._side(route.default_service, route)] = 1
        else:
            raise TrafficError(f"{self.describe()}: {route.label} has no default service and no weights")
        return weights

    def _split(self, route: _Route) -> Split:
        weights = self._weights(route)
        total = weights["blue"] + weights["green"]
        if total == 0:
            raise TrafficError(f"{self.describe()}: {route.label} has every weight at 0 ({route.text()})")
        blue = round(100 * weights["blue"] / total)
        if weights["blue"] and blue == 0:  # a weight above 0 never reads as 0% (or as 100% for the other)
            blue = 1
        if weights["green"] and blue == 100:
            blue = 99
        return Split(blue=blue, green=100 - blue)

    def _serves(self, route: _Route, split: Split) -> bool:
        """The route already sends exactly ``split`` (proportions, not rounded percents)."""
        weights = self._weights(route)
        return weights["blue"] * split.green == weights["green"] * split.blue

    def _changed(self, action: str, route: _Route, when: str) -> TrafficError:
        try:
            now = str(self._split(route))
        except TrafficError:
            now = route.text()
        return TrafficError(
            f"{self.describe()} was changed by someone else {when} (trying to {action}): {route.label} now "
            f"serves {now}; not overwritten (run again once that change is understood)"
        )

    # ---- writing -----------------------------------------------------------------------------------------

    def _with_split(self, url_map: Any, split: Split) -> Any:
        compute_v1, _ = _compute()

        body = compute_v1.UrlMap(url_map)  # a copy: the whole resource as read, fingerprint included
        holder, _ = self._holder(body)
        action = holder.default_route_action
        existing = {_key(e.backend_service, self.project): e for e in action.weighted_backend_services}
        entries = []
        for side, percent in (("blue", split.blue), ("green", split.green)):
            entry = compute_v1.WeightedBackendService(
                backend_service=_url(self.keys[side]), weight=percent * WEIGHT_PER_PERCENT
            )
            old = existing.get(self.keys[side])
            if old is not None and "header_action" in old:
                entry.header_action = old.header_action
            entries.append(entry)
        holder.default_service = None  # excludes defaultRouteAction.weightedBackendServices
        action.weighted_backend_services = entries
        holder.default_route_action = action
        return body

    def _wait(self, operation: Any, deadline: float, action: str) -> None:
        """Until the operation is DONE, with our own GlobalOperationsClient (see the module doc)."""
        compute_v1, exceptions = _compute()

        done = compute_v1.Operation.Status.DONE
        pause = 0.05
        while operation.status != done:
            still = f"{action} (operation {operation.name} still {operation.status.name})"
            remaining = self._remaining(deadline, still)
            started = time.monotonic()
            try:
                operation = self._client("ops").wait(
                    project=self.project, operation=operation.name, timeout=min(remaining, 150.0)
                )
            except exceptions.GoogleAPICallError as err:
                raise api_error(err, self.describe(), f"wait for operation {operation.name} to {action}") from err
            if operation.status != done and time.monotonic() - started < 1.0:
                time.sleep(min(pause, max(deadline - time.monotonic(), 0)))  # wait returned early: back off
                pause = min(pause * 2, 2.0)
        errors = list(operation.error.errors) if "error" in operation else []
        status = operation.http_error_status_code if "http_error_status_code" in operation else 0
        if errors or status >= 400:
            detail = "; ".join(f"{e.code}: {e.message}" if e.code else e.message for e in errors)
            detail = detail or operation.http_error_message or "no detail"
            where = self._where_now()
            raise TrafficError(
                f"{self.describe()}: operation {operation.name} to {action} failed: {detail}"
                + (f" (HTTP {status})" if status else "")
                + where
            )

    def _where_now(self) -> str:
        try:
            route = self._route(self._get("read the split after a failed operation"))
            return f"; {route.label} serves {self._split(route)}"
        except TrafficError:
            return ""

    @staticmethod
    def _message(err: BaseException) -> str:
        return " ".join(str(getattr(err, "message", None) or err).split())

    # ---- health -----------------------------------------------------------------------------------------

    def _side_health(self, side: str) -> SideHealth:
        compute_v1, exceptions = _compute()

        key = self.keys[side]
        match = _SERVICE_URL.search(key)
        if match is None or match["kind"] != "backendServices":
            return SideHealth(side, None, f"{key} is not a global backend service; no health to read")
        project, name = match["project"], match["name"]
        resource = f"backend service projects/{project}/global/backendServices/{name} ({side})"
        client = self._client("backends")
        timeout = min(self.config.timeout_s, 60.0)
        try:
            service = client.get(project=project, backend_service=name, timeout=timeout)
            if not service.backends:
                return SideHealth(side, False, f"{resource} has no backends")
            if not service.health_checks:
                return SideHealth(
                    side, None, f"{resource} has no health check (serverless or internet NEG): the LB reports none"
                )
            counts: dict[str, int] = {}
            bad: list[str] = []
            for backend in service.backends:
                result = client.get_health(
                    project=project,
                    backend_service=name,
                    resource_group_reference_resource=compute_v1.ResourceGroupReference(group=backend.group),
                    timeout=timeout,
                )
                group = backend.group.rsplit("/", 1)[-1]
                if not result.health_status:
                    bad.append(f"group {group} reports no instances")
                for status in result.health_status:
                    state = status.health_state or "UNDEFINED_HEALTH_STATE"
                    counts[state] = counts.get(state, 0) + 1
                    if state != "HEALTHY":
                        member = (status.instance or status.ip_address or "?").rsplit("/", 1)[-1]
                        bad.append(f"{member} {state} (group {group})")
        except exceptions.GoogleAPICallError as err:
            raise api_error(err, resource, "read its health") from err
        total = sum(counts.values())
        summary = f"{counts.get('HEALTHY', 0)}/{total} instances HEALTHY"
        if bad:
            shown = "; ".join(bad[:5]) + (f"; and {len(bad) - 5} more" if len(bad) > 5 else "")
            return SideHealth(side, False, f"{resource}: {summary}: {shown}")
        return SideHealth(side, True, f"{resource}: {summary}")
