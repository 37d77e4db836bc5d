"""A Cloud Run Admin API v2 and Cloud Monitoring emulator: the official clients talk to it unchanged.

One endpoint, ``http://127.0.0.1:<free port>`` (:attr:`CloudRunEmulator.endpoint`; in bgmigrate
``api_endpoint`` / ``BGMIGRATE_GCP_API_ENDPOINT``), serving:

- **Cloud Run Admin API v2 over REST** (what ``google.cloud.run_v2`` sends with ``transport="rest"``):

  - ``GET   /v2/projects/{p}/locations/{l}/services/{s}``: the Service (camelCase JSON, int64 as
    strings, enums as integers when the query asks ``$alt=json;enum-encoding=int`` as the client
    does, else as names);
  - ``PATCH /v2/projects/{p}/locations/{l}/services/{s}?updateMask=...``: body a Service (enums as
    integers or names). Returns a ``google.longrunning.Operation`` (metadata: the Service); the
    generation and etag move at once, ``traffic_statuses`` only when the operation completes;
  - ``GET   /v2/projects/{p}/locations/{l}/operations/{op}`` (and ``POST ...:wait``): the operation,
    done after :attr:`CloudRunEmulator.polls_to_finish` polls with the updated Service in ``response``
    (``@type`` ``type.googleapis.com/google.cloud.run.v2.Service``), or with ``error``;
  - ``GET   /v2/projects/{p}/locations/{l}/services/{s}/revisions/{r}``: the Revision and its
    ``Ready`` condition.

- **Cloud Monitoring v3 ``MetricService.ListTimeSeries`` over gRPC**, on the same port: the
  ``google-cloud-monitoring`` library has no REST transport (2.32, the latest, ships gRPC only), so
  the emulator answers HTTP/2 connections (the gRPC preface ``PRI * HTTP/2.0``) by piping them to an
  in-process ``grpc.server`` and HTTP/1.1 ones itself. Data comes from
  :meth:`CloudRunEmulator.add_request_counts`; filters are the ``key = "value" AND ...`` form.

Faithful where bgmigrate depends on it (Google's error JSON ``{"error": {"code", "message", "status"}}``):

- traffic percents must be whole numbers 0..100 summing to 100, REVISION targets need a revision,
  LATEST ones must not name one, tags are unique: else 400 ``INVALID_ARGUMENT`` at the PATCH;
- a REVISION target naming a revision the service does not have is accepted by the PATCH and fails
  in the operation, code 13, "Revision 'x' does not exist or is deleted. Update all traffic to route
  to currently available revisions." (what Cloud Run reports; seen through Terraform in
  terraform-google-modules/terraform-docs-samples#269); the serving traffic stays as it was;
- unknown service or revision: 404 ``NOT_FOUND`` in Cloud Run's wording;
- a stale etag: 409 ``ABORTED`` by default, as AIP-154 requires of Google APIs ("If a user sends back
  an etag which does not match the current etag value, the service must send an ABORTED error";
  google.aip.dev/154, changed from FAILED_PRECONDITION in aip-dev/google.aip.dev#705). Cloud Run's own
  documentation does not say which code it uses, so :attr:`CloudRunEmulator.etag_mismatch` also
  offers ``"FAILED_PRECONDITION"`` (HTTP 400, the older AIP wording) and ``"412"`` (HTTP 412);
- without ``updateMask`` the PATCH replaces the whole service and needs ``template`` (400 otherwise);
  with ``updateMask=traffic`` only ``traffic`` changes.

Faults: :meth:`CloudRunEmulator.deny` (403 ``PERMISSION_DENIED`` for one IAM permission),
:meth:`CloudRunEmulator.fail_next_operation` (the next operation ends with an error),
:attr:`CloudRunEmulator.hang_operations` (operations never finish), :meth:`CloudRunEmulator.before_next`
(run something, e.g. another operator's change, just before the next request of a method: races).
Every request is logged in :attr:`CloudRunEmulator.requests`.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import itertools
import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

try:
    import grpc
    from google.cloud import monitoring_v3, run_v2  # noqa: F401
except ImportError as err:  # a collection error with the fix, never a silent skip
    raise ImportError(
        "the Cloud Run tests need google-cloud-run and google-cloud-monitoring: pip install -e '.[test]'"
    ) from err

from migrator.traffic.router import RouterConfig

SERVICE_TYPE = "type.googleapis.com/google.cloud.run.v2.Service"
REQUEST_COUNT = "run.googleapis.com/request_count"
H2_PREFACE = b"PRI "

TYPES = {0: "TRAFFIC_TARGET_ALLOCATION_TYPE_UNSPECIFIED", 1: "LATEST", 2: "REVISION"}
TYPE_NAMES = {
    "TRAFFIC_TARGET_ALLOCATION_TYPE_UNSPECIFIED": 0,
    "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST": 1,
    "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION": 2,
}
CONDITION_STATES = {"CONDITION_PENDING": 1, "CONDITION_RECONCILING": 2, "CONDITION_FAILED": 3, "CONDITION_SUCCEEDED": 4}
GRPC_HTTP = {  # google.rpc.Code -> HTTP status, as Google's front ends map them
    "INVALID_ARGUMENT": (3, 400),
    "FAILED_PRECONDITION": (9, 400),
    "NOT_FOUND": (5, 404),
    "PERMISSION_DENIED": (7, 403),
    "ABORTED": (10, 409),
    "ALREADY_EXISTS": (6, 409),
    "INTERNAL": (13, 500),
    "UNAVAILABLE": (14, 503),
}

_SERVICE = re.compile(r"^/v2/projects/(?P<p>[^/]+)/locations/(?P<l>[^/]+)/services/(?P<s>[^/:]+)$")
_REVISION = re.compile(
    r"^/v2/projects/(?P<p>[^/]+)/locations/(?P<l>[^/]+)/services/(?P<s>[^/]+)/revisions/(?P<r>[^/:]+)$"
)
_OPERATION = re.compile(r"^/v2/projects/(?P<p>[^/]+)/locations/(?P<l>[^/]+)/operations/(?P<op>[^/:]+)(?P<wait>:wait)?$")
_FILTER_TERM = re.compile(r'^\s*(?P<key>[A-Za-z_][\w.]*)\s*=\s*"(?P<value>[^"]*)"\s*$')


class ApiError(Exception):
    """An error response: ``status`` is the google.rpc.Code name."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    @property
    def http(self) -> int:
        return 412 if self.status == "412" else GRPC_HTTP[self.status][1]

    def body(self) -> dict[str, Any]:
        status = "FAILED_PRECONDITION" if self.status == "412" else self.status
        return {"error": {"code": self.http, "message": self.message, "status": status}}


# ---- state ------------------------------------------------------------------------------------------


@dataclass
class Target:
    """A traffic target (``Service.traffic``) or its status (``Service.traffic_statuses``)."""

    type: str = "REVISION"  # REVISION | LATEST
    revision: str = ""  # short name
    percent: int = 0
    tag: str = ""
    uri: str = ""  # statuses with a tag

    def key(self) -> tuple[str, str, int, str]:
        return (self.type, self.revision, self.percent, self.tag)


@dataclass
class RevisionState:
    name: str  # short name
    ready: bool | None = True  # None: still pending
    reason: str = ""
    message: str = ""
    min_instances: int = 0


@dataclass
class ServiceState:
    project: str
    location: str
    name: str  # short name
    revisions: dict[str, RevisionState]
    traffic: list[Target]
    traffic_statuses: list[Target]
    generation: int = 1
    observed_generation: int = 1
    reconciling: bool = False
    etag_seq: int = 1
    labels: dict[str, str] = field(default_factory=dict)
    terminal_ok: bool = True
    terminal_message: str = ""
    uid: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def full_name(self) -> str:
        return f"projects/{self.project}/locations/{self.location}/services/{self.name}"

    @property
    def etag(self) -> str:
        return f'"{self.uid[:8]}-{self.etag_seq}"'

    @property
    def latest_ready(self) -> str:
        ready = [r for r in self.revisions.values() if r.ready]
        return ready[-1].name if ready else ""

    def url(self, tag: str = "") -> str:
        return f"https://{tag + '---' if tag else ''}{self.name}-x7abc-ew.a.run.app"

    def touched(self, *, spec: bool) -> None:
        """A change: the etag always moves; a spec change also moves the generation."""
        self.etag_seq += 1
        if spec:
            self.generation += 1

    def percent_of(self, revision: str) -> int:
        return sum(t.percent for t in self.traffic_statuses if t.revision == revision)

    def tags(self) -> dict[str, str]:
        """tag -> revision, as serving."""
        return {t.tag: t.revision for t in self.traffic_statuses if t.tag}


@dataclass
class Operation:
    name: str
    service: str  # full name
    generation: int
    polls: int = 0
    done: bool = False
    error: tuple[int, str] | None = None
    fail_with: tuple[int, str] | None = None  # set at creation (injected or an unknown revision)


@dataclass
class Request:
    method: str  # GET | PATCH | POST | GRPC
    path: str
    query: dict[str, str]
    body: Any
    status: int = 0


@dataclass
class _Series:
    resource: dict[str, str]
    metric: dict[str, str]
    points: list[tuple[dt.datetime, dt.datetime, int]]


# ---- the emulator -------------------------------------------------------------------------------------


class CloudRunEmulator:
    """``with CloudRunEmulator() as emu: emu.add_service("svc", ["svc-blue", "svc-green"]) ...``"""

    def __init__(self, *, project: str = "proj", region: str = "europe-west1") -> None:
        self.project = project
        self.region = region
        self.polls_to_finish = 2  # the operation is done at the 2nd GET of it
        self.hang_operations = False  # operations never finish
        self.etag_mismatch = "ABORTED"  # | "FAILED_PRECONDITION" (400) | "412"
        self.monitoring_page_size = 100
        self.requests: list[Request] = []
        self.lock = threading.RLock()
        self._services: dict[str, ServiceState] = {}
        self._operations: dict[str, Operation] = {}
        self._denied: set[str] = set()
        self._next_failure: tuple[int, str] | None = None
        self._hooks: dict[str, list[tuple[re.Pattern[str], Callable[[], None]]]] = {}
        self._series: dict[tuple, _Series] = {}
        self._httpd: _Server | None = None
        self._grpc: grpc.Server | None = None
        self._grpc_port = 0
        self._threads: list[threading.Thread] = []

    # ---- lifecycle --------------------------------------------------------------------------------

    def __enter__(self) -> CloudRunEmulator:
        self._grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        self._grpc.add_generic_rpc_handlers((self._monitoring_handler(),))
        self._grpc_port = self._grpc.add_insecure_port("127.0.0.1:0")
        self._grpc.start()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.emulator = self
        thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name="cloudrun-emulator", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._grpc is not None:
            self._grpc.stop(0)

    @property
    def endpoint(self) -> str:
        assert self._httpd is not None, "use the emulator as a context manager"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def router_config(
        self,
        service: str = "svc",
        *,
        blue: str | None = "svc-blue",
        green: str | None = "svc-green",
        full_name: bool = False,
        timeout_s: float = 5.0,
        **options: Any,
    ) -> RouterConfig:
        """A ``cloudrun`` RouterConfig pointed at this emulator (anonymous, fast operation polling)."""
        target = f"projects/{self.project}/locations/{self.region}/services/{service}" if full_name else service
        return RouterConfig(
            kind="cloudrun",
            target=target,
            blue=blue,
            green=green,
            project=None if full_name else self.project,
            region=None if full_name else self.region,
            api_endpoint=self.endpoint,
            anonymous=True,
            timeout_s=timeout_s,
            options={"poll_interval_s": 0.01, **options},
        )

    # ---- state ------------------------------------------------------------------------------------

    def add_service(
        self,
        name: str = "svc",
        revisions: Iterable[str] = ("svc-blue", "svc-green"),
        *,
        traffic: list[Target] | None = None,
        project: str | None = None,
        location: str | None = None,
    ) -> ServiceState:
        """A service whose ``traffic`` (and serving ``traffic_statuses``) is ``traffic``, by default 100%
        to the first revision."""
        revs = {r: RevisionState(r) for r in revisions}
        traffic = traffic if traffic is not None else [Target("REVISION", next(iter(revs)), 100)]
        with self.lock:
            state = ServiceState(project or self.project, location or self.region, name, revs, [], [])
            state.traffic = [copy.copy(t) for t in traffic]
            state.traffic_statuses = self._statuses(state, state.traffic)
            self._services[state.full_name] = state
            return state

    def service(self, name: str = "svc") -> ServiceState:
        """The live state of a service (short or full name); change it under :attr:`lock`."""
        with self.lock:
            return self._services[name if name.startswith("projects/") else self._full(name)]

    def serving(self, name: str = "svc") -> dict[str, int]:
        """revision -> percent serving now (0% tagged entries included)."""
        with self.lock:
            out: dict[str, int] = {}
            for t in self.service(name).traffic_statuses:
                key = t.revision if t.type == "REVISION" else "LATEST"
                out[key] = out.get(key, 0) + t.percent
            return out

    def change_traffic(self, name: str, traffic: list[Target]) -> None:
        """Someone else moves traffic (applied and serving at once)."""
        with self.lock:
            state = self.service(name)
            state.traffic = [copy.copy(t) for t in traffic]
            state.traffic_statuses = self._statuses(state, state.traffic)
            state.touched(spec=True)
            state.observed_generation = state.generation

    def change_labels(self, name: str, **labels: str) -> None:
        """Someone else changes a non-traffic field (labels): generation and etag move, traffic does not."""
        with self.lock:
            state = self.service(name)
            state.labels.update(labels)
            state.touched(spec=True)
            state.observed_generation = state.generation

    def set_revision(
        self, service: str, revision: str, *, ready: bool | None, reason: str = "", message: str = ""
    ) -> None:
        with self.lock:
            self.service(service).revisions[revision] = RevisionState(revision, ready, reason, message)

    def add_request_counts(
        self,
        service: str,
        revision: str,
        counts: dict[str, int],
        *,
        age_s: float = 30.0,
        location: str | None = None,
        project: str | None = None,
    ) -> None:
        """``run.googleapis.com/request_count`` points for a revision: ``counts`` maps a response code
        (``"200"``, ``"503"``) to a number of requests in one 60 s sample ending ``age_s`` ago."""
        end = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=age_s)
        with self.lock:
            for code, count in counts.items():
                resource = {
                    "project_id": project or self.project,
                    "service_name": service,
                    "revision_name": revision,
                    "location": location or self.region,
                    "configuration_name": service,
                }
                metric = {"response_code": code, "response_code_class": f"{code[0]}xx", "route_type": "default"}
                key = (tuple(sorted(resource.items())), tuple(sorted(metric.items())))
                series = self._series.setdefault(key, _Series(resource, metric, []))
                series.points.insert(0, (end - dt.timedelta(seconds=60), end, count))  # newest first, as Monitoring

    # ---- faults -----------------------------------------------------------------------------------

    def deny(self, permission: str) -> None:
        """403 PERMISSION_DENIED for calls needing ``permission`` (``run.services.get``,
        ``run.services.update``, ``run.revisions.get``, ``run.operations.get``, ``monitoring.timeSeries.list``)."""
        with self.lock:
            self._denied.add(permission)

    def allow(self, permission: str) -> None:
        with self.lock:
            self._denied.discard(permission)

    def fail_next_operation(self, code: int = 13, message: str = "Revision 'svc-green' is not ready.") -> None:
        """The next PATCH is accepted and its operation ends with ``error`` {code, message}."""
        with self.lock:
            self._next_failure = (code, message)

    def before_next(self, method: str, action: Callable[[], None], *, path: str = "") -> None:
        """Run ``action`` (under the lock) just before the next ``method`` request (whose path matches
        the regular expression ``path``, when given) is handled: another operator's change in a race."""
        with self.lock:
            self._hooks.setdefault(method.upper(), []).append((re.compile(path), action))

    def calls(self, method: str | None = None, contains: str = "") -> list[Request]:
        with self.lock:
            return [r for r in self.requests if (method is None or r.method == method) and contains in r.path]

    # ---- Cloud Run REST ---------------------------------------------------------------------------

    def _full(self, short: str) -> str:
        return f"projects/{self.project}/locations/{self.region}/services/{short}"

    def _find(self, p: str, loc: str, s: str) -> ServiceState:
        state = self._services.get(f"projects/{p}/locations/{loc}/services/{s}")
        if state is None:
            raise ApiError(
                "NOT_FOUND", f"Resource '{s}' of kind 'SERVICE' in region '{loc}' in project '{p}' does not exist."
            )
        return state

    def _check(self, permission: str, resource: str) -> None:
        if permission in self._denied:
            raise ApiError(
                "PERMISSION_DENIED",
                f"Permission '{permission}' denied on resource '{resource}' (or resource may not exist).",
            )

    def handle(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, dict[str, Any]]:
        with self.lock:
            hooks = self._hooks.get(method, [])
            for hook in [h for h in hooks if h[0].search(path)]:
                hooks.remove(hook)
                hook[1]()
            ints = "enum-encoding=int" in query.get("$alt", "")
            if m := _SERVICE.match(path):
                name = f"projects/{m['p']}/locations/{m['l']}/services/{m['s']}"
                if method == "GET":
                    self._check("run.services.get", name)
                    return 200, self._service_json(self._find(m["p"], m["l"], m["s"]), ints)
                if method == "PATCH":
                    self._check("run.services.update", name)
                    return 200, self._patch(self._find(m["p"], m["l"], m["s"]), query, body, ints)
            elif m := _REVISION.match(path):
                name = path.removeprefix("/v2/")
                if method == "GET":
                    self._check("run.revisions.get", name)
                    state = self._find(m["p"], m["l"], m["s"])
                    rev = state.revisions.get(m["r"])
                    if rev is None:
                        raise ApiError(
                            "NOT_FOUND",
                            f"Resource '{m['r']}' of kind 'REVISION' in region '{m['l']}' in project '{m['p']}' "
                            "does not exist.",
                        )
                    return 200, self._revision_json(state, rev, ints)
            elif m := _OPERATION.match(path):
                name = path.removeprefix("/v2/").removesuffix(":wait")
                if (method == "GET" and not m["wait"]) or (method == "POST" and m["wait"]):
                    self._check("run.operations.get", name)
                    op = self._operations.get(name)
                    if op is None:
                        raise ApiError("NOT_FOUND", f"Operation '{name}' not found.")
                    return 200, self._poll(op, ints)
            raise ApiError("NOT_FOUND", f"no route for {method} {path} in the emulator")

    def _patch(self, state: ServiceState, query: dict[str, str], body: Any, ints: bool) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ApiError("INVALID_ARGUMENT", "Invalid JSON payload received.")
        if "validateOnly" in query or "allowMissing" in query:
            raise ApiError("INVALID_ARGUMENT", "the emulator does not implement validateOnly/allowMissing")
        etag = body.get("etag")
        if etag and etag != state.etag:
            message = f"The etag '{etag}' does not match the current etag '{state.etag}' of service '{state.name}'."
            raise ApiError(self.etag_mismatch, message)
        mask = [p for p in query.get("updateMask", "").split(",") if p]
        if not mask and "template" not in body:
            raise ApiError("INVALID_ARGUMENT", "service.template: is required")
        unknown = [p for p in mask if p not in ("traffic", "labels")]
        if unknown:
            raise ApiError("INVALID_ARGUMENT", f"the emulator does not implement updateMask paths {unknown}")
        apply_traffic = not mask or "traffic" in mask
        traffic = self._parse_traffic(body.get("traffic", [])) if apply_traffic else state.traffic
        fail = self._next_failure
        self._next_failure = None
        missing = [t.revision for t in traffic if t.type == "REVISION" and t.revision not in state.revisions]
        if missing and fail is None:
            fail = (
                13,
                f"Revision '{missing[0]}' does not exist or is deleted. "
                "Update all traffic to route to currently available revisions.",
            )
        if apply_traffic:
            state.traffic = traffic
        if not mask or "labels" in mask:
            state.labels = dict(body.get("labels", {}))
        state.touched(spec=True)
        state.reconciling = True
        op = Operation(
            name=f"projects/{state.project}/locations/{state.location}/operations/{uuid.uuid4()}",
            service=state.full_name,
            generation=state.generation,
            fail_with=fail,
        )
        self._operations[op.name] = op
        return self._operation_json(op, ints)

    def _parse_traffic(self, raw: Any) -> list[Target]:
        if not isinstance(raw, list):
            raise ApiError("INVALID_ARGUMENT", "service.traffic: must be a list")
        out: list[Target] = []
        for i, item in enumerate(raw):
            kind = item.get("type", 0)
            kind = TYPE_NAMES.get(kind, kind) if isinstance(kind, str) else kind
            if kind not in (1, 2):
                raise ApiError(
                    "INVALID_ARGUMENT", f"service.traffic[{i}].type: must be LATEST or REVISION, not {kind!r}"
                )
            percent = item.get("percent", 0)
            if not isinstance(percent, int) or not 0 <= percent <= 100:
                raise ApiError("INVALID_ARGUMENT", f"service.traffic[{i}].percent: must be 0..100, not {percent!r}")
            revision = item.get("revision", "")
            if kind == 2 and not revision:
                raise ApiError("INVALID_ARGUMENT", f"service.traffic[{i}].revision: is required for type REVISION")
            if kind == 1 and revision:
                raise ApiError("INVALID_ARGUMENT", f"service.traffic[{i}].revision: must be empty for type LATEST")
            out.append(Target(TYPES[kind], revision, percent, item.get("tag", "")))
        tags = [t.tag for t in out if t.tag]
        if len(tags) != len(set(tags)):
            raise ApiError("INVALID_ARGUMENT", f"service.traffic: duplicate tags {sorted(tags)}")
        total = sum(t.percent for t in out)
        if out and total != 100:
            raise ApiError(
                "INVALID_ARGUMENT",
                f"service.traffic: Traffic percentages must add up to 100, got {total}.",
            )
        return out

    def _statuses(self, state: ServiceState, traffic: list[Target]) -> list[Target]:
        traffic = traffic or [Target("LATEST", "", 100)]
        return [
            Target(t.type, t.revision or state.latest_ready, t.percent, t.tag, state.url(t.tag) if t.tag else "")
            for t in traffic
        ]

    def _poll(self, op: Operation, ints: bool) -> dict[str, Any]:
        if not op.done and not self.hang_operations:
            op.polls += 1
            if op.polls >= self.polls_to_finish:
                self._finish(op)
        return self._operation_json(op, ints)

    def _finish(self, op: Operation) -> None:
        op.done = True
        state = self._services.get(op.service)
        if state is None:
            op.error = (5, "service deleted")
            return
        if op.generation != state.generation:  # superseded by a later change: that one reconciles
            return
        state.reconciling = False
        state.observed_generation = state.generation
        if op.fail_with:  # reconciliation failed: statuses keep showing the last serving state
            op.error = op.fail_with
            state.terminal_ok = False
            state.terminal_message = op.fail_with[1]
        else:
            state.traffic_statuses = self._statuses(state, state.traffic)
            state.terminal_ok = True
            state.terminal_message = ""
        state.touched(spec=False)

    # ---- JSON -------------------------------------------------------------------------------------

    @staticmethod
    def _enum(value: int, name: str, ints: bool) -> int | str:
        return value if ints else name

    def _target_json(self, t: Target, ints: bool, status: bool) -> dict[str, Any]:
        code = 2 if t.type == "REVISION" else 1
        out: dict[str, Any] = {"type": self._enum(code, f"TRAFFIC_TARGET_ALLOCATION_TYPE_{t.type}", ints)}
        if t.revision and (t.type == "REVISION" or status):
            out["revision"] = t.revision
        if t.percent:
            out["percent"] = t.percent
        if t.tag:
            out["tag"] = t.tag
        if status and t.uri:
            out["uri"] = t.uri
        return out

    def _condition(self, kind: str, ok: bool | None, message: str, ints: bool, reason: str = "") -> dict[str, Any]:
        state = "CONDITION_SUCCEEDED" if ok else "CONDITION_PENDING" if ok is None else "CONDITION_FAILED"
        out: dict[str, Any] = {
            "type": kind,
            "state": self._enum(CONDITION_STATES[state], state, ints),
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        }
        if message:
            out["message"] = message
        if reason:
            out["revisionReason" if kind == "Ready" else "reason"] = reason
        return out

    def _service_json(self, s: ServiceState, ints: bool) -> dict[str, Any]:
        prefix = f"{s.full_name}/revisions/"
        out: dict[str, Any] = {
            "name": s.full_name,
            "uid": s.uid,
            "generation": str(s.generation),
            "labels": dict(s.labels),
            "template": {"containers": [{"image": "europe-docker.pkg.dev/proj/app/app:1"}]},
            "traffic": [self._target_json(t, ints, False) for t in s.traffic],
            "observedGeneration": str(s.observed_generation),
            "terminalCondition": self._condition(
                "Ready", None if s.reconciling else s.terminal_ok, s.terminal_message, ints
            ),
            "latestReadyRevision": prefix + s.latest_ready if s.latest_ready else "",
            "latestCreatedRevision": prefix + list(s.revisions)[-1] if s.revisions else "",
            "trafficStatuses": [self._target_json(t, ints, True) for t in s.traffic_statuses],
            "uri": s.url(),
            "urls": [s.url()],
            "etag": s.etag,
        }
        if s.reconciling:
            out["reconciling"] = True
        return out

    def _revision_json(self, s: ServiceState, r: RevisionState, ints: bool) -> dict[str, Any]:
        return {
            "name": f"{s.full_name}/revisions/{r.name}",
            "service": s.full_name,
            "generation": "1",
            "observedGeneration": "1",
            "conditions": [
                self._condition("Ready", r.ready, r.message, ints, r.reason),
                self._condition("ContainerHealthy", r.ready, r.message, ints),
                self._condition("ResourcesAvailable", True, "", ints),
            ],
            "scalingStatus": {"desiredMinInstanceCount": r.min_instances},
            "etag": f'"rev-{r.name}"',
        }

    def _operation_json(self, op: Operation, ints: bool) -> dict[str, Any]:
        state = self._services.get(op.service)
        out: dict[str, Any] = {"name": op.name}
        if state is not None:
            out["metadata"] = {"@type": SERVICE_TYPE, **self._service_json(state, ints)}
        if op.done:
            out["done"] = True
            if op.error:
                out["error"] = {"code": op.error[0], "message": op.error[1]}
            elif state is not None:
                out["response"] = {"@type": SERVICE_TYPE, **self._service_json(state, ints)}
        return out

    # ---- Cloud Monitoring (gRPC) -------------------------------------------------------------------

    def _monitoring_handler(self) -> grpc.GenericRpcHandler:
        def list_time_series(request: monitoring_v3.ListTimeSeriesRequest, context: grpc.ServicerContext) -> Any:
            with self.lock:
                self.requests.append(
                    Request(
                        "GRPC",
                        "/google.monitoring.v3.MetricService/ListTimeSeries",
                        {},
                        {"name": request.name, "filter": request.filter, "page_token": request.page_token},
                    )
                )
                try:
                    return self._list_time_series(request)
                except ApiError as err:
                    self.requests[-1].status = err.http
                    context.abort(getattr(grpc.StatusCode, err.status), err.message)

        return grpc.method_handlers_generic_handler(
            "google.monitoring.v3.MetricService",
            {
                "ListTimeSeries": grpc.unary_unary_rpc_method_handler(
                    list_time_series,
                    request_deserializer=monitoring_v3.ListTimeSeriesRequest.deserialize,
                    response_serializer=monitoring_v3.ListTimeSeriesResponse.serialize,
                )
            },
        )

    def _list_time_series(self, request: monitoring_v3.ListTimeSeriesRequest) -> monitoring_v3.ListTimeSeriesResponse:
        self._check("monitoring.timeSeries.list", request.name)
        m = re.fullmatch(r"projects/([^/]+)", request.name)
        if not m:
            raise ApiError("INVALID_ARGUMENT", f'Field name had an invalid value of "{request.name}"')
        wanted: dict[str, str] = {}
        for term in re.split(r"\s+AND\s+", request.filter.strip()) if request.filter.strip() else []:
            t = _FILTER_TERM.match(term)
            if not t:
                raise ApiError("INVALID_ARGUMENT", f"The emulator cannot parse the filter term {term!r}")
            wanted[t["key"]] = t["value"]
        if "metric.type" not in wanted:
            raise ApiError("INVALID_ARGUMENT", 'A filter must specify a metric type: metric.type = "..."')
        if not request.interval or not request.interval.end_time:
            raise ApiError("INVALID_ARGUMENT", "Field interval.end_time had an invalid value")
        start, end = request.interval.start_time, request.interval.end_time
        matched: list[monitoring_v3.TimeSeries] = []
        for series in self._series.values():
            fields = {"metric.type": REQUEST_COUNT, "resource.type": "cloud_run_revision"}
            fields.update({f"resource.labels.{k}": v for k, v in series.resource.items()})
            fields.update({f"metric.labels.{k}": v for k, v in series.metric.items()})
            if series.resource["project_id"] != m[1] or any(fields.get(k) != v for k, v in wanted.items()):
                continue
            points = [p for p in series.points if (not start or p[1] > start) and p[1] <= end]
            if not points:
                continue
            matched.append(
                monitoring_v3.TimeSeries(
                    metric={"type": REQUEST_COUNT, "labels": series.metric},
                    resource={"type": "cloud_run_revision", "labels": series.resource},
                    metric_kind="DELTA",
                    value_type="INT64",
                    points=[
                        {"interval": {"start_time": s, "end_time": e}, "value": {"int64_value": n}}
                        for s, e, n in points
                    ],
                )
            )
        size = request.page_size or self.monitoring_page_size
        offset = int(request.page_token or 0)
        page = matched[offset : offset + size]
        more = offset + size < len(matched)
        return monitoring_v3.ListTimeSeriesResponse(
            time_series=page, next_page_token=str(offset + size) if more else ""
        )

    # ---- wire -------------------------------------------------------------------------------------

    def _pipe_to_grpc(self, client: socket.socket) -> None:
        """An HTTP/2 (gRPC) connection: bytes both ways to the in-process gRPC server."""
        backend = socket.create_connection(("127.0.0.1", self._grpc_port))

        def copy_(src: socket.socket, dst: socket.socket) -> None:
            with contextlib.suppress(OSError):
                while data := src.recv(65536):
                    dst.sendall(data)
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)

        other = threading.Thread(target=copy_, args=(backend, client), daemon=True)
        other.start()
        copy_(client, backend)
        other.join()
        backend.close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    emulator: CloudRunEmulator

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        with contextlib.suppress(OSError):  # headers and body go in two writes: no Nagle delay between them
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        head = b""
        with contextlib.suppress(OSError):
            for _ in itertools.repeat(None, 50):
                head = request.recv(len(H2_PREFACE), socket.MSG_PEEK)
                if len(head) >= len(H2_PREFACE) or not head:
                    break
                time.sleep(0.001)
        if head.startswith(H2_PREFACE):
            try:
                self.emulator._pipe_to_grpc(request)
            finally:
                self.shutdown_request(request)
            return
        super().process_request_thread(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _serve(self, method: str) -> None:
        emu = self.server.emulator
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        record = Request(method, unquote(url.path), query, body)
        with emu.lock:
            emu.requests.append(record)
        try:
            status, payload = emu.handle(method, unquote(url.path), query, body)
        except ApiError as err:
            status, payload = err.http, err.body()
        record.status = status
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_POST(self) -> None:
        self._serve("POST")
