"""A Compute Engine v1 REST emulator for the URL map router: the real ``google-cloud-compute`` clients talk
to it unchanged (``client_options.api_endpoint = emulator.endpoint``, anonymous credentials).

What it serves, on ``127.0.0.1:<free port>`` (a threaded ``http.server``), with the real API's shapes:

- ``GET /compute/v1/projects/{p}/global/urlMaps/{name}``: the URL map, references as full URLs, its
  ``fingerprint``.
- ``PUT`` (``update``, full replace) and ``PATCH`` (``patch``, JSON merge patch: objects merged, lists
  replaced whole, ``null`` removes) on the same path. Both need the current ``fingerprint`` in the body
  (missing or stale: **412** ``conditionNotMet``, as the API documents). The write is validated first
  (**404** ``notFound`` for a backend service that does not exist, **400** ``invalid`` for a weight
  outside 0..1000, weights that are all 0, ``defaultService`` together with
  ``defaultRouteAction.weightedBackendServices`` or ``defaultUrlRedirect`` at one level, a host rule
  naming no path matcher, an empty or bare-name reference) and then answered with an ``Operation``
  (``PENDING``). The change is applied, and the fingerprint changed, only when the operation
  reaches ``DONE``; a second write while one is pending gets **400** ``resourceNotReady``.
- ``GET .../global/operations/{op}`` and ``POST .../global/operations/{op}/wait``: each poll moves the
  operation one step (``PENDING`` -> ``RUNNING`` -> ``DONE`` with the default ``polls_to_done=2``).
  :meth:`ComputeEmulator.fail_operations` makes the next operations end ``DONE`` with ``error`` and
  ``httpErrorStatusCode`` set, and the change not applied; :meth:`ComputeEmulator.finish_operations`
  brings every pending operation to ``DONE`` at once (the API finishing after a client gave up).
- ``GET .../global/backendServices/{bs}`` and ``POST .../global/backendServices/{bs}/getHealth``
  (body ``{"group": URL}``): per-instance ``healthState`` as set with :meth:`ComputeEmulator.set_health`.

Errors have Compute's JSON shape (``{"error": {"code", "message", "errors": [{"reason", ...}]}}``), which
``google.api_core.exceptions.from_http_response`` maps to ``PreconditionFailed``, ``NotFound``,
``Forbidden``... Faults: :meth:`deny` (403 for a permission, e.g. ``compute.urlMaps.update``),
:meth:`fail_next` (any status on the next matching calls), :meth:`before_next` (a callback run before the
next matching call: a concurrent edit between a router's read and its write). Every call is logged in
:attr:`ComputeEmulator.calls`. State lives as the API's JSON (camelCase dicts) and survives across calls.

    with ComputeEmulator() as emu:
        emu.seed_blue_green()                      # backend services blue + green, URL map web-map -> blue
        router = UrlMapRouter(router_config(emu))  # the RouterConfig pointed at the emulator
"""

from __future__ import annotations

import base64
import copy
import itertools
import json
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from migrator.traffic.router import RouterConfig

API = "https://www.googleapis.com/compute/v1/"  # how the real API writes references and selfLinks
PREFIX = "/compute/v1/projects/(?P<project>[^/]+)/global/"
_ROUTES: list[tuple[str, re.Pattern[str], str, str]] = [
    # method, path, handler, the permission the call needs
    ("GET", re.compile(PREFIX + r"urlMaps/(?P<name>[^/]+)$"), "_get_url_map", "compute.urlMaps.get"),
    ("PUT", re.compile(PREFIX + r"urlMaps/(?P<name>[^/]+)$"), "_write_url_map", "compute.urlMaps.update"),
    ("PATCH", re.compile(PREFIX + r"urlMaps/(?P<name>[^/]+)$"), "_write_url_map", "compute.urlMaps.update"),
    ("GET", re.compile(PREFIX + r"operations/(?P<name>[^/]+)$"), "_poll_operation", "compute.globalOperations.get"),
    (
        "POST",
        re.compile(PREFIX + r"operations/(?P<name>[^/]+)/wait$"),
        "_poll_operation",
        "compute.globalOperations.get",
    ),
    (
        "GET",
        re.compile(PREFIX + r"backendServices/(?P<name>[^/]+)$"),
        "_get_backend_service",
        "compute.backendServices.get",
    ),
    (
        "POST",
        re.compile(PREFIX + r"backendServices/(?P<name>[^/]+)/getHealth$"),
        "_get_health",
        "compute.backendServices.get",
    ),
]
_REF = re.compile(
    r"^(?:https://(?:www|compute)\.googleapis\.com/compute/v1/)?(?:projects/(?P<project>[^/]+)/)?"
    r"global/(?P<kind>backendServices|backendBuckets)/(?P<name>[a-z]([-a-z0-9]*[a-z0-9])?)$"
)
_STATUS_TEXT = {
    400: "BAD REQUEST",
    403: "FORBIDDEN",
    404: "NOT FOUND",
    409: "CONFLICT",
    412: "PRECONDITION FAILED",
    429: "TOO MANY REQUESTS",
    500: "INTERNAL SERVER ERROR",
    503: "SERVICE UNAVAILABLE",
}
_OUTPUT_ONLY = ("kind", "id", "creationTimestamp", "selfLink", "fingerprint")


class ApiError(Exception):
    """An error answer in Compute's JSON shape."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "code": self.code,
                "message": self.message,
                "errors": [{"message": self.message, "domain": "global", "reason": self.reason}],
            }
        }


@dataclass(frozen=True)
class Call:
    """One request as it arrived, and the status it was answered with."""

    method: str
    path: str
    query: str
    body: Any
    status: int


@dataclass
class _Fault:
    method: str | None
    path_contains: str
    count: int
    code: int = 0
    reason: str = ""
    message: str = ""
    callback: Callable[[ComputeEmulator], None] | None = None

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and self.path_contains in path


@dataclass
class _Operation:
    body: dict[str, Any]
    polls_left: int
    apply: Callable[[], None] | None  # what DONE does (None: a failed operation)
    error: dict[str, Any] | None = None


@dataclass
class _BackendService:
    body: dict[str, Any]
    health: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # group URL -> instances


def _fingerprint() -> str:
    return base64.b64encode(os.urandom(8)).decode()


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000-00:00", time.gmtime())


class ComputeEmulator:
    """The emulator; a context manager that serves while open. ``endpoint`` is ``http://127.0.0.1:PORT``."""

    def __init__(self, project: str = "bg-project", *, polls_to_done: int = 2, zone: str = "europe-west1-b") -> None:
        self.project = project
        self.zone = zone
        self.polls_to_done = polls_to_done
        self.calls: list[Call] = []
        self.url_maps: dict[tuple[str, str], dict[str, Any]] = {}
        self.backend_services: dict[tuple[str, str], _BackendService] = {}
        self.backend_buckets: set[tuple[str, str]] = set()
        self.operations: dict[tuple[str, str], _Operation] = {}
        self._pending: dict[tuple[str, str], str] = {}  # URL map -> its pending operation
        self._denied: set[str] = set()
        self._faults: list[_Fault] = []
        self._op_failures: list[dict[str, Any]] = []
        self._ids = itertools.count(1000)
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle ---------------------------------------------------------------------------------

    def __enter__(self) -> ComputeEmulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        emulator = self

        class Handler(_Handler):
            pass

        Handler.emulator = emulator
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="compute-emulator", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def endpoint(self) -> str:
        assert self._server is not None, "the emulator is not running"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # ---- resources -----------------------------------------------------------------------------------

    def url(self, kind: str, name: str, project: str | None = None) -> str:
        """The full URL the API writes, e.g. ``url("backendServices", "blue")``."""
        return f"{API}projects/{project or self.project}/global/{kind}/{name}"

    def add_backend_service(
        self,
        name: str,
        *,
        groups: int = 1,
        instances: int = 2,
        health_checks: bool = True,
        neg: bool = False,
        project: str | None = None,
    ) -> str:
        """A backend service with ``groups`` instance groups of ``instances`` HEALTHY instances each
        (``neg=True``: serverless NEGs, no health check and no instances, like Cloud Run behind the LB).
        Returns its URL."""
        project = project or self.project
        backends, health = [], {}
        for g in range(groups):
            if neg:
                group = f"{API}projects/{project}/regions/europe-west1/networkEndpointGroups/{name}-neg-{g}"
            else:
                group = f"{API}projects/{project}/zones/{self.zone}/instanceGroups/{name}-ig-{g}"
                health[group] = [
                    {
                        "instance": f"{API}projects/{project}/zones/{self.zone}/instances/{name}-{g}-{i}",
                        "ipAddress": f"10.{len(self.backend_services) % 250}.{g}.{i + 2}",
                        "port": 8080,
                        "healthState": "HEALTHY",
                    }
                    for i in range(instances)
                ]
            backends.append({"group": group, "balancingMode": "RATE" if neg else "UTILIZATION"})
        body: dict[str, Any] = {
            "kind": "compute#backendService",
            "id": str(next(self._ids)),
            "creationTimestamp": _now(),
            "name": name,
            "selfLink": self.url("backendServices", name, project),
            "backends": backends,
            "protocol": "HTTPS" if neg else "HTTP",
            "loadBalancingScheme": "EXTERNAL_MANAGED",
            "fingerprint": _fingerprint(),
        }
        if health_checks and not neg:
            body["healthChecks"] = [f"{API}projects/{project}/global/healthChecks/{name}-hc"]
        with self._lock:
            self.backend_services[(project, name)] = _BackendService(body, health)
        return body["selfLink"]

    def add_backend_bucket(self, name: str, project: str | None = None) -> str:
        with self._lock:
            self.backend_buckets.add((project or self.project, name))
        return self.url("backendBuckets", name, project)

    def set_health(self, backend: str, state: str, *, instance: int | None = 0, group: int = 0) -> None:
        """Set ``healthState`` (HEALTHY / UNHEALTHY / UNDEFINED_HEALTH_STATE... ) of one instance of a backend
        service's group (``instance=None``: all of that group's instances)."""
        with self._lock:
            service = self.backend_services[(self.project, backend)]
            members = list(service.health.values())[group]
            for i, member in enumerate(members):
                if instance is None or i == instance:
                    member["healthState"] = state

    def add_url_map(self, name: str, body: dict[str, Any] | None = None, *, project: str | None = None) -> dict:
        """A URL map from ``body`` (the API's JSON, references in any form the API accepts), validated and
        normalized like a write. Returns the stored copy."""
        project = project or self.project
        resource = self._normalized(project, {"name": name, **copy.deepcopy(body or {})})
        resource.update(
            {
                "kind": "compute#urlMap",
                "id": str(next(self._ids)),
                "creationTimestamp": _now(),
                "name": name,
                "selfLink": self.url("urlMaps", name, project),
                "fingerprint": _fingerprint(),
            }
        )
        with self._lock:
            self.url_maps[(project, name)] = resource
        return copy.deepcopy(resource)

    def url_map(self, name: str, project: str | None = None) -> dict[str, Any]:
        """A copy of the stored URL map."""
        with self._lock:
            return copy.deepcopy(self.url_maps[(project or self.project, name)])

    def edit_url_map(self, name: str, change: Callable[[dict[str, Any]], None], project: str | None = None) -> dict:
        """Someone else's edit (the console, another pipeline): ``change`` mutates the JSON in place; the
        result is validated and stored at once with a new fingerprint. Returns the stored copy."""
        key = (project or self.project, name)
        with self._lock:
            resource = copy.deepcopy(self.url_maps[key])
            change(resource)
            stored = self._normalized(key[0], resource)
            for k in _OUTPUT_ONLY:
                stored[k] = self.url_maps[key][k]
            stored["fingerprint"] = _fingerprint()
            self.url_maps[key] = stored
            return copy.deepcopy(stored)

    def seed_blue_green(self, url_map: str = "web-map", **url_map_body: Any) -> dict[str, Any]:
        """Backend services ``blue`` and ``green`` (one instance group of two HEALTHY instances each) and a
        URL map whose default service is blue (``url_map_body`` replaces that body)."""
        self.add_backend_service("blue")
        self.add_backend_service("green")
        return self.add_url_map(url_map, url_map_body or {"defaultService": self.url("backendServices", "blue")})

    # ---- faults ---------------------------------------------------------------------------------------

    def deny(self, *permissions: str) -> None:
        """Answer 403 to every call that needs one of ``permissions`` (e.g. ``compute.urlMaps.update``)."""
        with self._lock:
            self._denied.update(permissions)

    def allow(self, *permissions: str) -> None:
        with self._lock:
            self._denied.difference_update(permissions)

    def fail_next(
        self,
        method: str | None,
        path_contains: str,
        code: int,
        message: str = "injected failure",
        *,
        reason: str = "backendError",
        count: int = 1,
    ) -> None:
        """Answer the next ``count`` matching calls with ``code``."""
        with self._lock:
            self._faults.append(_Fault(method, path_contains, count, code, reason, message))

    def before_next(
        self, method: str | None, path_contains: str, callback: Callable[[ComputeEmulator], None], *, count: int = 1
    ) -> None:
        """Run ``callback(emulator)`` before handling the next ``count`` matching calls (e.g. a concurrent
        :meth:`edit_url_map` between a client's GET and its PUT)."""
        with self._lock:
            self._faults.append(_Fault(method, path_contains, count, callback=callback))

    def fail_operations(
        self,
        count: int = 1,
        *,
        code: str = "RESOURCE_NOT_READY",
        message: str = "The resource is not ready",
        http_status: int = 400,
    ) -> None:
        """The next ``count`` operations end DONE with this error; their change is not applied."""
        with self._lock:
            for _ in range(count):
                self._op_failures.append(
                    {
                        "error": {"errors": [{"code": code, "message": message}]},
                        "httpErrorStatusCode": http_status,
                        "httpErrorMessage": _STATUS_TEXT.get(http_status, "ERROR"),
                    }
                )

    def finish_operations(self) -> None:
        """Bring every pending operation to DONE now, as if the API had finished it in the background."""
        with self._lock:
            for operation in list(self.operations.values()):
                while operation.body["status"] != "DONE":
                    self._advance(operation)

    # ---- the log ----------------------------------------------------------------------------------------

    def calls_to(self, method: str | None = None, path_contains: str = "") -> list[Call]:
        with self._lock:
            return [c for c in self.calls if (method is None or c.method == method) and path_contains in c.path]

    def writes(self, url_map: str = "") -> list[Call]:
        """The PUT/PATCH calls (to ``url_map`` when given), answered or not."""
        return [c for c in self.calls_to(path_contains=f"/urlMaps/{url_map}") if c.method in ("PUT", "PATCH")]

    # ---- request handling ---------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: str, body: Any) -> tuple[int, dict[str, Any]]:
        for route_method, pattern, handler, permission in _ROUTES:  # noqa: B007 - used after the loop
            match = pattern.match(path)
            if match and route_method == method:
                break
        else:
            return 404, ApiError(404, "notFound", f"no such method: {method} {path}").body()
        self._run_callbacks(method, path)
        try:
            with self._lock:
                injected = self._injected(method, path)
                if injected:
                    raise injected
                args = match.groupdict()
                if permission in self._denied:
                    resource = f"projects/{args['project']}/global/{permission.split('.')[1]}/{args['name']}"
                    raise ApiError(403, "forbidden", f"Required '{permission}' permission for '{resource}'")
                return 200, getattr(self, handler)(method, args["project"], args["name"], body)
        except ApiError as err:
            return err.code, err.body()

    def _run_callbacks(self, method: str, path: str) -> None:
        with self._lock:
            due = [f for f in self._faults if f.callback and f.count > 0 and f.matches(method, path)]
            for fault in due:
                fault.count -= 1
            self._faults = [f for f in self._faults if f.count > 0]
        for fault in due:  # outside the lock's bookkeeping; the callback takes it again as needed
            assert fault.callback is not None
            fault.callback(self)

    def _injected(self, method: str, path: str) -> ApiError | None:
        for fault in self._faults:
            if fault.callback is None and fault.count > 0 and fault.matches(method, path):
                fault.count -= 1
                self._faults = [f for f in self._faults if f.count > 0]
                return ApiError(fault.code, fault.reason, fault.message)
        return None

    def _not_found(self, project: str, kind: str, name: str) -> ApiError:
        return ApiError(404, "notFound", f"The resource 'projects/{project}/global/{kind}/{name}' was not found")

    def _get_url_map(self, method: str, project: str, name: str, body: Any) -> dict[str, Any]:
        if (project, name) not in self.url_maps:
            raise self._not_found(project, "urlMaps", name)
        return copy.deepcopy(self.url_maps[(project, name)])

    def _write_url_map(self, method: str, project: str, name: str, body: Any) -> dict[str, Any]:
        key = (project, name)
        if key not in self.url_maps:
            raise self._not_found(project, "urlMaps", name)
        if not isinstance(body, dict):
            raise ApiError(400, "parseError", "This API does not support parsing form-encoded input.")
        stored = self.url_maps[key]
        pending = self._pending.get(key)
        if pending and self.operations[(project, pending)].body["status"] != "DONE":
            raise ApiError(
                400,
                "resourceNotReady",
                f"The resource 'projects/{project}/global/urlMaps/{name}' is not ready",
            )
        sent = body.get("fingerprint")
        if not sent or sent != stored["fingerprint"]:
            raise ApiError(
                412,
                "conditionNotMet",
                "Invalid fingerprint." if sent else "Required field 'fingerprint' not specified.",
            )
        if body.get("name", name) != name:
            raise ApiError(400, "invalid", f"Invalid value for field 'resource.name': '{body['name']}'.")
        if method == "PATCH":
            resource = _merge_patch(copy.deepcopy(stored), body)
        else:
            resource = copy.deepcopy(body)
        for k in _OUTPUT_ONLY:
            resource.pop(k, None)
        resource = self._normalized(project, resource)
        for k in _OUTPUT_ONLY:
            resource[k] = stored[k]
        resource["fingerprint"] = _fingerprint()

        def apply() -> None:
            self.url_maps[key] = resource

        op = self._start_operation(project, "patch" if method == "PATCH" else "update", stored, apply)
        if op["status"] != "DONE":
            self._pending[key] = op["name"]
        return op

    def _start_operation(
        self, project: str, op_type: str, target: dict[str, Any], apply: Callable[[], None]
    ) -> dict[str, Any]:
        name = f"operation-{int(time.time() * 1000)}-{os.urandom(6).hex()}"
        body = {
            "kind": "compute#operation",
            "id": str(next(self._ids)),
            "name": name,
            "operationType": op_type,
            "targetLink": target["selfLink"],
            "targetId": target["id"],
            "status": "PENDING",
            "user": "bgmigrate-tests@example.iam.gserviceaccount.com",
            "progress": 0,
            "insertTime": _now(),
            "selfLink": self.url("operations", name, project),
        }
        failure = self._op_failures.pop(0) if self._op_failures else None
        operation = _Operation(body, max(self.polls_to_done, 1), None if failure else apply, failure)
        self.operations[(project, name)] = operation
        if self.polls_to_done <= 0:
            self._advance(operation)
        return copy.deepcopy(body)

    def _advance(self, operation: _Operation) -> None:
        """One poll: RUNNING while polls are left, then DONE (the change applied, or the injected error)."""
        body = operation.body
        if body["status"] == "DONE":
            return
        operation.polls_left = max(operation.polls_left - 1, 0)
        if operation.polls_left > 0:
            body.update(status="RUNNING", progress=50)
            body.setdefault("startTime", _now())
            return
        body.update(status="DONE", progress=100, endTime=_now())
        body.setdefault("startTime", body["endTime"])
        if operation.error:
            body.update(operation.error)
        elif operation.apply is not None:
            operation.apply()
        self._pending = {k: v for k, v in self._pending.items() if v != body["name"]}

    def _poll_operation(self, method: str, project: str, name: str, body: Any) -> dict[str, Any]:
        operation = self.operations.get((project, name))
        if operation is None:
            raise self._not_found(project, "operations", name)
        self._advance(operation)
        return copy.deepcopy(operation.body)

    def _service(self, project: str, name: str) -> _BackendService:
        service = self.backend_services.get((project, name))
        if service is None:
            raise self._not_found(project, "backendServices", name)
        return service

    def _get_backend_service(self, method: str, project: str, name: str, body: Any) -> dict[str, Any]:
        return copy.deepcopy(self._service(project, name).body)

    def _get_health(self, method: str, project: str, name: str, body: Any) -> dict[str, Any]:
        service = self._service(project, name)
        group = (body or {}).get("group") if isinstance(body, dict) else None
        groups = [b["group"] for b in service.body.get("backends", [])]
        if not group or _canonical(group) not in groups:
            raise ApiError(
                400,
                "invalid",
                f"Invalid value for field 'resource.group': '{group}'. "
                f"Resource is not a backend of 'projects/{project}/global/backendServices/{name}'.",
            )
        statuses = service.health.get(_canonical(group), [])
        result: dict[str, Any] = {"kind": "compute#backendServiceGroupHealth"}
        if statuses:
            result["healthStatus"] = copy.deepcopy(statuses)
        return result

    # ---- validation -------------------------------------------------------------------------------------

    def _normalized(self, project: str, resource: dict[str, Any]) -> dict[str, Any]:
        """``resource`` validated like the API does, references rewritten as full URLs."""
        resource = copy.deepcopy(resource)
        _check_route(self, project, resource, "resource", "default", top=True)
        matchers = resource.get("pathMatchers") or []
        names = set()
        for i, matcher in enumerate(matchers):
            where = f"resource.pathMatchers[{i}]"
            if not matcher.get("name"):
                raise ApiError(400, "required", f"Required field '{where}.name' not specified")
            names.add(matcher["name"])
            _check_route(self, project, matcher, where, "default", top=True)
            for j, rule in enumerate(matcher.get("pathRules") or []):
                if not rule.get("paths"):
                    raise ApiError(400, "required", f"Required field '{where}.pathRules[{j}].paths' not specified")
                _check_route(self, project, rule, f"{where}.pathRules[{j}]", "", top=False)
            for j, rule in enumerate(matcher.get("routeRules") or []):
                _check_route(self, project, rule, f"{where}.routeRules[{j}]", "", top=False)
        for i, host_rule in enumerate(resource.get("hostRules") or []):
            if host_rule.get("pathMatcher") not in names:
                raise ApiError(
                    400,
                    "invalid",
                    f"Invalid value for field 'resource.hostRules[{i}].pathMatcher': "
                    f"'{host_rule.get('pathMatcher')}'. No path matcher of that name.",
                )
        return resource

    def _resolve(self, project: str, value: Any, field_name: str) -> str:
        if not isinstance(value, str) or not value:
            raise ApiError(400, "invalid", f"Invalid value for field '{field_name}': '{value}'. The URL is malformed.")
        match = _REF.match(value)
        if match is None:
            raise ApiError(400, "invalid", f"Invalid value for field '{field_name}': '{value}'. The URL is malformed.")
        ref_project, kind, name = match["project"] or project, match["kind"], match["name"]
        known = (
            (ref_project, name) in self.backend_services
            if kind == "backendServices"
            else (ref_project, name) in self.backend_buckets
        )
        if not known:
            raise self._not_found(ref_project, kind, name)
        return f"{API}projects/{ref_project}/global/{kind}/{name}"


def _check_route(
    emu: ComputeEmulator, project: str, holder: dict[str, Any], where: str, prefix: str, top: bool
) -> None:
    """Validate one level (URL map, path matcher, path rule, route rule): its service, route action
    weights and redirect, which exclude one another."""
    service_key = "defaultService" if prefix else "service"
    action_key = "defaultRouteAction" if prefix else "routeAction"
    redirect_key = "defaultUrlRedirect" if prefix else "urlRedirect"
    service = holder.get(service_key)
    if service is not None:
        holder[service_key] = emu._resolve(project, service, f"{where}.{service_key}")
    action = holder.get(action_key) or {}
    weighted = action.get("weightedBackendServices") or []
    total = 0
    for k, entry in enumerate(weighted):
        field_name = f"{where}.{action_key}.weightedBackendServices[{k}]"
        entry["backendService"] = emu._resolve(project, entry.get("backendService"), f"{field_name}.backendService")
        weight = entry.get("weight")
        if not isinstance(weight, int) or isinstance(weight, bool) or not 0 <= weight <= 1000:
            raise ApiError(
                400,
                "invalid",
                f"Invalid value for field '{field_name}.weight': '{weight}'. Must be between 0 and 1000.",
            )
        total += weight
    if weighted and total == 0:
        raise ApiError(
            400,
            "invalid",
            f"Invalid value for field '{where}.{action_key}.weightedBackendServices': "
            "the weights of the weighted backend services are all 0.",
        )
    set_fields = [
        k for k, present in ((service_key, service), (f"{action_key}.weightedBackendServices", weighted)) if present
    ]
    if holder.get(redirect_key):
        set_fields.append(redirect_key)
    if len(set_fields) > 1:
        raise ApiError(
            400,
            "invalid",
            f"Invalid value for field '{where}': only one of {service_key}, {action_key}.weightedBackendServices "
            f"or {redirect_key} may be set, not {' and '.join(set_fields)}.",
        )
    if top and not set_fields:
        raise ApiError(
            400,
            "invalid",
            f"Invalid value for field '{where}': one of defaultService, "
            "defaultRouteAction.weightedBackendServices or defaultUrlRedirect must be set.",
        )


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396: objects merged key by key, anything else (lists included) replaced, null removes."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if not isinstance(target, dict):
        target = {}
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        else:
            target[key] = _merge_patch(target.get(key), value)
    return target


def _canonical(url: str) -> str:
    if url.startswith("https://"):
        parts = urlsplit(url)
        path = parts.path.split("/compute/v1/", 1)[-1]
        return API + path
    return API + url.lstrip("/")


class _Handler(BaseHTTPRequestHandler):
    emulator: ComputeEmulator
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            status, answer = 400, ApiError(400, "parseError", "Parse Error").body()
            body = raw.decode(errors="replace")
        else:
            status, answer = self.emulator.handle(self.command, parts.path, parts.query, body)
        with self.emulator._lock:
            self.emulator.calls.append(Call(self.command, parts.path, parts.query, body, status))
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve


def router_config(
    emu: ComputeEmulator,
    url_map: str = "web-map",
    *,
    blue: str = "blue",
    green: str = "green",
    timeout_s: float = 10.0,
    **options: Any,
) -> RouterConfig:
    """A ``urlmap`` RouterConfig pointed at ``emu`` (anonymous; ``options`` e.g. ``path_matcher="api"``)."""
    return RouterConfig(
        kind="urlmap",
        target=url_map,
        blue=blue,
        green=green,
        project=emu.project,
        api_endpoint=emu.endpoint,
        anonymous=True,
        timeout_s=timeout_s,
        options=dict(options),
    )


def weights(resource: dict[str, Any], path_matcher: str | None = None) -> dict[str, int]:
    """``{backend service name: weight}`` of a URL map's (or a path matcher's) default route action, or
    ``{name: -1}`` for a default service: what tests assert on."""
    holder = resource
    if path_matcher:
        holder = next(m for m in resource.get("pathMatchers", []) if m["name"] == path_matcher)
    entries = (holder.get("defaultRouteAction") or {}).get("weightedBackendServices") or []
    if entries:
        return {e["backendService"].rsplit("/", 1)[-1]: e["weight"] for e in entries}
    if holder.get("defaultService"):
        return {holder["defaultService"].rsplit("/", 1)[-1]: -1}
    return {}
