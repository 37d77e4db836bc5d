"""A Kubernetes API emulator for the GKE Gateway / Istio router tests: the real ``kubernetes`` Python client talks
to it unchanged (``kubernetes.client.Configuration(host=emulator.endpoint)``; in bgmigrate through
``RouterConfig.api_endpoint`` or ``BGMIGRATE_K8S_API_ENDPOINT``).

It serves, over plain HTTP on ``127.0.0.1:<free port>``:

- ``GET``/``PUT /apis/gateway.networking.k8s.io/{v1,v1beta1}/namespaces/{ns}/httproutes/{name}``
- ``GET``/``PUT /apis/networking.istio.io/{v1,v1beta1,v1alpha3}/namespaces/{ns}/virtualservices/{name}``
- ``GET /api/v1/namespaces/{ns}/endpoints/{name}`` and ``.../services/{name}`` (the Services a test declared
  with :meth:`K8sEmulator.add_service`)

with the API server's semantics that matter to a router:

- ``metadata.resourceVersion`` is bumped on every write (spec, metadata *and* status, as the real API server
  does, so a controller updating status makes a held resourceVersion stale); a ``PUT`` must carry the current
  one (409 ``Conflict`` on a stale one, 422 when missing); ``metadata.generation`` is bumped only when the spec
  changes; ``.status`` in a ``PUT`` body is ignored (the status subresource is enabled on these CRDs);
  weights must be whole numbers (HTTPRoute: 0..1,000,000), else 422 ``Invalid``.
- A simulated controller: after a spec change, the ``settle_polls``-th ``GET`` of the object (default 2: "after
  a poll or two") writes the status for the new generation. HTTPRoute: for each ``spec.parentRefs[]`` a
  ``status.parents[]`` entry with ``Accepted`` and ``ResolvedRefs`` conditions carrying ``observedGeneration``;
  a ``backendRef`` (kind Service) naming a Service the test did not declare makes ``ResolvedRefs`` False with
  reason ``BackendNotFound``. VirtualService (when ``istio_status`` is on, like ``PILOT_ENABLE_STATUS``):
  ``status.conditions[Reconciled]`` and ``status.observedGeneration``.
- Faults per object (:meth:`K8sEmulator.faults`): ``accepted=(reason, message)`` (Accepted False),
  ``resolved_refs=(reason, message)`` (ResolvedRefs False), ``never_programmed`` (the controller never
  reconciles); per verb/resource (:meth:`K8sEmulator.deny`): 403 ``Forbidden``; a concurrent writer that runs
  just before or after the next ``PUT`` (:meth:`K8sEmulator.interleave`), or at once (:meth:`K8sEmulator.edit`).
- Errors are ``Status`` objects as the API server sends them: 404 ``NotFound`` for an unknown object (and
  "the server could not find the requested resource" for an unknown group/version/resource), 403, 409, 422.

Every request is logged in :attr:`K8sEmulator.calls`. :meth:`K8sEmulator.router_config` returns a
``RouterConfig`` pointed at the emulator, with a short timeout and a fast poll, for router and switch tests.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from migrator.traffic.router import RouterConfig

GATEWAY_GROUP = "gateway.networking.k8s.io"
ISTIO_GROUP = "networking.istio.io"
HTTPROUTES = "httproutes"
VIRTUALSERVICES = "virtualservices"

# plural -> (kind, group, served versions)
RESOURCES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    HTTPROUTES: ("HTTPRoute", GATEWAY_GROUP, ("v1", "v1beta1")),
    VIRTUALSERVICES: ("VirtualService", ISTIO_GROUP, ("v1", "v1beta1", "v1alpha3")),
}
MAX_GATEWAY_WEIGHT = 1_000_000
CONTROLLER_NAME = "networking.gke.io/gateway"

_CUSTOM = re.compile(
    r"^/apis/(?P<group>[^/]+)/(?P<version>[^/]+)/namespaces/(?P<ns>[^/]+)/(?P<plural>[^/]+)/(?P<name>[^/]+)$"
)
_CORE = re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/(?P<plural>endpoints|services)/(?P<name>[^/]+)$")


@dataclass
class Faults:
    """What the simulated controller does wrong for one object (mutable; takes effect at its next reconcile)."""

    accepted: tuple[str, str] | None = None  # (reason, message): Accepted False (VirtualService: Reconciled False)
    resolved_refs: tuple[str, str] | None = None  # (reason, message): ResolvedRefs False
    never_programmed: bool = False  # the controller never writes status for a new generation


@dataclass
class Call:
    method: str
    path: str
    status: int
    authorization: str | None = None  # the Authorization header, as sent


@dataclass
class _Service:
    ready: int
    not_ready: int


@dataclass
class _Stored:
    obj: dict[str, Any]
    faults: Faults = field(default_factory=Faults)
    polls_left: int = -1  # GETs until the controller reconciles; -1: nothing pending
    before_put: list[Callable[[dict[str, Any]], None]] = field(default_factory=list)
    after_put: list[Callable[[dict[str, Any]], None]] = field(default_factory=list)


class _ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details or {}

    def body(self) -> dict[str, Any]:
        status = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            status["details"] = self.details
        return status


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class K8sEmulator:
    """``with K8sEmulator() as k8s: k8s.add_service("web-blue"); k8s.add_httproute("web", [[("web-blue", 1)]])``."""

    def __init__(self, *, settle_polls: int = 2, istio_status: bool = True) -> None:
        self.settle_polls = settle_polls
        self.istio_status = istio_status
        self.calls: list[Call] = []
        self._lock = threading.RLock()
        self._objects: dict[tuple[str, str, str], _Stored] = {}  # (plural, namespace, name)
        self._services: dict[tuple[str, str], _Service] = {}  # (namespace, name)
        self._denied: list[tuple[str | None, str | None, str | None]] = []  # (method, plural, name)
        self._rv = 1000
        self._uid = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> K8sEmulator:
        emulator = self

        class Handler(_Handler):
            pass

        Handler.emulator = emulator
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="k8s-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> K8sEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        assert self._server is not None, "the emulator is not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def router_config(
        self,
        kind: str = "gateway",
        target: str = "web",
        blue: str | None = "web-blue",
        green: str | None = "web-green",
        *,
        namespace: str = "default",
        timeout_s: float = 2.0,
        poll_interval_s: float = 0.01,
        **options: Any,
    ) -> RouterConfig:
        """A RouterConfig for the gateway/istio router pointed at this emulator (short timeout, fast polls)."""
        return RouterConfig(
            kind=kind,
            target=target,
            blue=blue,
            green=green,
            api_endpoint=self.endpoint,
            timeout_s=timeout_s,
            options={"namespace": namespace, "poll_interval_s": poll_interval_s, **options},
        )

    # ---- seeding ---------------------------------------------------------------------------------------

    def add_service(self, name: str, *, namespace: str = "default", ready: int = 1, not_ready: int = 0) -> None:
        """Declare a Service (a backendRef to it resolves) and its Endpoints' ready / not-ready addresses."""
        with self._lock:
            self._services[(namespace, name)] = _Service(ready, not_ready)

    def remove_service(self, name: str, *, namespace: str = "default") -> None:
        with self._lock:
            self._services.pop((namespace, name), None)

    def add_httproute(
        self,
        name: str,
        rules: Sequence[dict[str, Any] | Sequence[str | tuple[str, int | None]]],
        *,
        namespace: str = "default",
        parents: Iterable[str] = ("external-http",),
        port: int = 8080,
        programmed: bool = True,
    ) -> dict[str, Any]:
        """An HTTPRoute. Each rule is a raw rule dict, or a list of backends: ``"svc"`` (no weight: 1) or
        ``("svc", weight)`` (``None``: no weight field). Rule *i* matches ``PathPrefix /`` (``/r{i}`` after the
        first). ``programmed``: the controller has already reconciled generation 1."""
        built = []
        for i, rule in enumerate(rules):
            if isinstance(rule, dict):
                built.append(copy.deepcopy(rule))
                continue
            refs = []
            for backend in rule:
                svc, weight = (backend, None) if isinstance(backend, str) else backend
                ref: dict[str, Any] = {"group": "", "kind": "Service", "name": svc, "port": port}
                if weight is not None:
                    ref["weight"] = weight
                refs.append(ref)
            path = "/" if i == 0 else f"/r{i}"
            built.append({"matches": [{"path": {"type": "PathPrefix", "value": path}}], "backendRefs": refs})
        spec = {
            "parentRefs": [{"group": GATEWAY_GROUP, "kind": "Gateway", "name": p} for p in parents],
            "hostnames": ["web.example.com"],
            "rules": built,
        }
        return self.put(HTTPROUTES, name, spec, namespace=namespace, programmed=programmed)

    def add_virtualservice(
        self,
        name: str,
        routes: Sequence[dict[str, Any] | Sequence[tuple[str | tuple[str, str], int | None]]],
        *,
        namespace: str = "default",
        hosts: Iterable[str] = ("web.example.com",),
        port: int = 8080,
        programmed: bool = True,
    ) -> dict[str, Any]:
        """A VirtualService. Each http route is a raw dict, or a list of ``(host, weight)`` /
        ``((host, subset), weight)`` destinations (``None``: no weight field)."""
        built = []
        for i, route in enumerate(routes):
            if isinstance(route, dict):
                built.append(copy.deepcopy(route))
                continue
            dests = []
            for target, weight in route:
                host, subset = (target, None) if isinstance(target, str) else target
                destination: dict[str, Any] = {"host": host, "port": {"number": port}}
                if subset:
                    destination["subset"] = subset
                entry: dict[str, Any] = {"destination": destination}
                if weight is not None:
                    entry["weight"] = weight
                dests.append(entry)
            http: dict[str, Any] = {"name": f"r{i}", "route": dests}
            if i:
                http["match"] = [{"uri": {"prefix": f"/r{i}"}}]
            built.append(http)
        spec = {"hosts": list(hosts), "gateways": ["istio-system/ingress"], "http": built}
        return self.put(VIRTUALSERVICES, name, spec, namespace=namespace, programmed=programmed)

    def put(
        self, plural: str, name: str, spec: dict[str, Any], *, namespace: str = "default", programmed: bool = True
    ) -> dict[str, Any]:
        """Create (or overwrite) an object with this spec, as ``kubectl apply`` would."""
        kind, group, versions = RESOURCES[plural]
        with self._lock:
            self._uid += 1
            obj = {
                "apiVersion": f"{group}/{versions[0]}",
                "kind": kind,
                "metadata": {
                    "name": name,
                    "namespace": namespace,
                    "uid": f"00000000-0000-0000-0000-{self._uid:012d}",
                    "generation": 1,
                    "resourceVersion": self._next_rv(),
                    "creationTimestamp": _now(),
                },
                "spec": copy.deepcopy(spec),
            }
            stored = _Stored(obj)
            self._objects[(plural, namespace, name)] = stored
            if programmed:
                self._reconcile(plural, stored)
            else:
                stored.polls_left = self.settle_polls
            return copy.deepcopy(obj)

    # ---- inspection and faults -------------------------------------------------------------------------

    def get(self, plural: str, name: str, *, namespace: str = "default") -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._stored(plural, namespace, name).obj)

    def weights(self, plural: str, name: str, *, namespace: str = "default") -> list[dict[str, int | None]]:
        """Per rule (HTTPRoute ``rules[]``, VirtualService ``http[]``): backend -> weight as stored (``None``:
        no weight field). VirtualService backends are ``host`` or ``host/subset``."""
        obj = self.get(plural, name, namespace=namespace)
        out: list[dict[str, int | None]] = []
        if plural == HTTPROUTES:
            for rule in obj["spec"].get("rules") or []:
                out.append({ref["name"]: ref.get("weight") for ref in rule.get("backendRefs") or []})
        else:
            for http in obj["spec"].get("http") or []:
                row: dict[str, int | None] = {}
                for entry in http.get("route") or []:
                    d = entry["destination"]
                    row[d["host"] + (f"/{d['subset']}" if d.get("subset") else "")] = entry.get("weight")
                out.append(row)
        return out

    def faults(self, plural: str, name: str, *, namespace: str = "default") -> Faults:
        with self._lock:
            return self._stored(plural, namespace, name).faults

    def deny(self, method: str | None = None, plural: str | None = None, name: str | None = None) -> None:
        """Answer 403 to ``method`` (GET/PUT, None: any) on ``plural``/``name`` (None: any)."""
        with self._lock:
            self._denied.append((method, plural, name))

    def allow_all(self) -> None:
        with self._lock:
            self._denied.clear()

    def edit(
        self, plural: str, name: str, change: Callable[[dict[str, Any]], None], *, namespace: str = "default"
    ) -> None:
        """Someone else's write (``kubectl edit``), now: ``change(obj)`` mutates the stored object in place;
        resourceVersion is bumped, and generation when the spec changed."""
        with self._lock:
            stored = self._stored(plural, namespace, name)
            self._write(plural, stored, change)

    def interleave(
        self,
        plural: str,
        name: str,
        change: Callable[[dict[str, Any]], None],
        *,
        namespace: str = "default",
        after_put: bool = False,
    ) -> None:
        """Someone else's write, made just before the next PUT of the object is processed (so that PUT carries a
        stale resourceVersion), or with ``after_put`` just after the next successful PUT (so the writer's next
        read sees it)."""
        with self._lock:
            stored = self._stored(plural, namespace, name)
            (stored.after_put if after_put else stored.before_put).append(change)

    def count(self, method: str, plural: str | None = None, status: int | None = None) -> int:
        return sum(
            1
            for c in self.calls
            if c.method == method
            and (plural is None or f"/{plural}/" in c.path)
            and (status is None or c.status == status)
        )

    # ---- internals -------------------------------------------------------------------------------------

    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    def _stored(self, plural: str, namespace: str, name: str) -> _Stored:
        try:
            return self._objects[(plural, namespace, name)]
        except KeyError:
            raise KeyError(f"no {plural} {namespace}/{name} in the emulator") from None

    def _write(self, plural: str, stored: _Stored, change: Callable[[dict[str, Any]], None]) -> None:
        before = copy.deepcopy(stored.obj.get("spec"))
        change(stored.obj)
        meta = stored.obj["metadata"]
        meta["resourceVersion"] = self._next_rv()
        if stored.obj.get("spec") != before:
            meta["generation"] = int(meta.get("generation", 1)) + 1
            stored.polls_left = self.settle_polls
            if self.settle_polls <= 0:
                self._reconcile(plural, stored)

    def _reconcile(self, plural: str, stored: _Stored) -> None:
        """The controller: write the status for the object's current generation (a status write bumps rv)."""
        stored.polls_left = -1
        obj = stored.obj
        meta = obj["metadata"]
        generation = int(meta.get("generation", 1))
        faults = stored.faults
        if plural == HTTPROUTES:
            ns = meta["namespace"]
            missing = []
            for rule in obj["spec"].get("rules") or []:
                for ref in rule.get("backendRefs") or []:
                    if ref.get("kind", "Service") == "Service" and ref.get("group", "") in ("", "core"):
                        ref_ns = ref.get("namespace") or ns
                        if (ref_ns, ref["name"]) not in self._services:
                            missing.append(f'Service "{ref_ns}/{ref["name"]}" not found')
            accepted = ("False", *faults.accepted) if faults.accepted else ("True", "Accepted", "Accepted")
            if faults.resolved_refs:
                resolved = ("False", *faults.resolved_refs)
            elif missing:
                resolved = ("False", "BackendNotFound", "; ".join(dict.fromkeys(missing)))
            else:
                resolved = ("True", "ResolvedRefs", "Resolved all the Object references for the Route")
            parents = []
            for parent in obj["spec"].get("parentRefs") or []:
                conditions = [
                    {
                        "type": ctype,
                        "status": status,
                        "reason": reason,
                        "message": message,
                        "observedGeneration": generation,
                        "lastTransitionTime": _now(),
                    }
                    for ctype, (status, reason, message) in (("Accepted", accepted), ("ResolvedRefs", resolved))
                ]
                parents.append(
                    {"parentRef": copy.deepcopy(parent), "controllerName": CONTROLLER_NAME, "conditions": conditions}
                )
            obj["status"] = {"parents": parents}
        else:
            if not self.istio_status:
                return
            status, reason, message = ("False", *faults.accepted) if faults.accepted else ("True", "", "")
            condition = {
                "type": "Reconciled",
                "status": status,
                "lastTransitionTime": _now(),
                "observedGeneration": generation,
            }
            if reason:
                condition.update(reason=reason, message=message)
            obj["status"] = {"observedGeneration": generation, "conditions": [condition]}
        meta["resourceVersion"] = self._next_rv()

    def _after_get(self, plural: str, stored: _Stored) -> None:
        if stored.polls_left < 0 or stored.faults.never_programmed:
            return
        stored.polls_left -= 1
        if stored.polls_left <= 0:
            self._reconcile(plural, stored)

    def _check_denied(self, method: str, plural: str, name: str, namespace: str, group: str) -> None:
        for d_method, d_plural, d_name in self._denied:
            if (d_method in (None, method)) and (d_plural in (None, plural)) and (d_name in (None, name)):
                verb = {"GET": "get", "PUT": "update", "PATCH": "patch"}.get(method, method.lower())
                resource = f"{plural}.{group}" if group else plural
                raise _ApiError(
                    403,
                    "Forbidden",
                    f'{resource} "{name}" is forbidden: User "system:serviceaccount:ci:deployer" cannot {verb} '
                    f'resource "{plural}" in API group "{group}" in the namespace "{namespace}"',
                    {"name": name, "group": group, "kind": plural},
                )

    def handle(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
        path = path.split("?", 1)[0]
        with self._lock:
            try:
                if m := _CORE.match(path):
                    return 200, self._core(method, m["ns"], m["plural"], m["name"])
                m = _CUSTOM.match(path)
                if not m or m["plural"] not in RESOURCES:
                    raise _ApiError(404, "NotFound", "the server could not find the requested resource")
                _kind, group, versions = RESOURCES[m["plural"]]
                if m["group"] != group or m["version"] not in versions:
                    raise _ApiError(404, "NotFound", "the server could not find the requested resource")
                plural, ns, name, version = m["plural"], m["ns"], m["name"], m["version"]
                self._check_denied(method, plural, name, ns, group)
                stored = self._objects.get((plural, ns, name))
                if stored is None:
                    raise _ApiError(
                        404,
                        "NotFound",
                        f'{plural}.{group} "{name}" not found',
                        {"name": name, "group": group, "kind": plural},
                    )
                if method == "GET":
                    self._after_get(plural, stored)
                elif method == "PUT":
                    self._put(plural, stored, body, name, group)
                else:
                    raise _ApiError(405, "MethodNotAllowed", f"{method} is not supported by this emulator")
                out = copy.deepcopy(stored.obj)
                out["apiVersion"] = f"{group}/{version}"
                if method == "PUT":  # the response is what this PUT stored; then someone else writes
                    while stored.after_put:
                        self._write(plural, stored, stored.after_put.pop(0))
                return 200, out
            except _ApiError as err:
                return err.code, err.body()

    def _core(self, method: str, ns: str, plural: str, name: str) -> dict[str, Any]:
        if method != "GET":
            raise _ApiError(405, "MethodNotAllowed", f"{method} is not supported by this emulator")
        self._check_denied(method, plural, name, ns, "")
        service = self._services.get((ns, name))
        if service is None:
            raise _ApiError(404, "NotFound", f'{plural} "{name}" not found', {"name": name, "kind": plural})
        meta = {"name": name, "namespace": ns, "resourceVersion": str(self._rv)}
        if plural == "services":
            return {
                "kind": "Service",
                "apiVersion": "v1",
                "metadata": meta,
                "spec": {"ports": [{"port": 8080, "protocol": "TCP"}], "type": "ClusterIP"},
            }
        subset: dict[str, Any] = {"ports": [{"port": 8080, "protocol": "TCP"}]}
        if service.ready:
            subset["addresses"] = [{"ip": f"10.0.0.{i + 1}"} for i in range(service.ready)]
        if service.not_ready:
            subset["notReadyAddresses"] = [{"ip": f"10.0.1.{i + 1}"} for i in range(service.not_ready)]
        endpoints: dict[str, Any] = {"kind": "Endpoints", "apiVersion": "v1", "metadata": meta}
        if service.ready or service.not_ready:
            endpoints["subsets"] = [subset]
        return endpoints

    def _put(self, plural: str, stored: _Stored, raw: bytes, name: str, group: str) -> None:
        try:
            body = json.loads(raw or b"null")
        except ValueError as err:
            raise _ApiError(400, "BadRequest", f"invalid JSON: {err}") from None
        if not isinstance(body, dict) or not isinstance(body.get("metadata"), dict):
            raise _ApiError(400, "BadRequest", "the body is not an object with metadata")
        while stored.before_put:  # a concurrent writer got there first
            change = stored.before_put.pop(0)
            self._write(plural, stored, change)
        invalid = {"name": name, "group": group, "kind": stored.obj["kind"]}
        if body["metadata"].get("name") != name:
            raise _ApiError(400, "BadRequest", "the name of the object does not match the name on the URL")
        rv = body["metadata"].get("resourceVersion")
        if not rv:
            raise _ApiError(
                422,
                "Invalid",
                f'{stored.obj["kind"]}.{group} "{name}" is invalid: metadata.resourceVersion: Invalid value: 0x0: '
                "must be specified for an update",
                invalid,
            )
        if rv != stored.obj["metadata"]["resourceVersion"]:
            raise _ApiError(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {plural}.{group} "{name}": the object has been modified; please '
                "apply your changes to the latest version and try again",
                {"name": name, "group": group, "kind": plural},
            )
        problem = _invalid_weights(plural, body.get("spec") or {})
        if problem:
            raise _ApiError(422, "Invalid", f'{stored.obj["kind"]}.{group} "{name}" is invalid: {problem}', invalid)

        def replace(obj: dict[str, Any]) -> None:
            meta = obj["metadata"]
            for key in ("labels", "annotations"):
                if key in body["metadata"]:
                    meta[key] = copy.deepcopy(body["metadata"][key])
                else:
                    meta.pop(key, None)
            obj["spec"] = copy.deepcopy(body.get("spec") or {})  # .status is ignored: status subresource

        self._write(plural, stored, replace)


def _invalid_weights(plural: str, spec: dict[str, Any]) -> str | None:
    if plural == HTTPROUTES:
        for i, rule in enumerate(spec.get("rules") or []):
            for j, ref in enumerate(rule.get("backendRefs") or []):
                w = ref.get("weight", 1)
                if not isinstance(w, int) or isinstance(w, bool) or not 0 <= w <= MAX_GATEWAY_WEIGHT:
                    return f"spec.rules[{i}].backendRefs[{j}].weight: Invalid value: {json.dumps(w)}"
    else:
        for i, http in enumerate(spec.get("http") or []):
            for j, entry in enumerate(http.get("route") or []):
                w = entry.get("weight", 0)
                if not isinstance(w, int) or isinstance(w, bool) or w < 0:
                    return f"spec.http[{i}].route[{j}].weight: Invalid value: {json.dumps(w)}"
    return None


class _Handler(BaseHTTPRequestHandler):
    emulator: K8sEmulator
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall each

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        code, payload = self.emulator.handle(self.command, self.path, body)
        with self.emulator._lock:
            call = Call(self.command, self.path.split("?", 1)[0], code, self.headers.get("Authorization"))
            self.emulator.calls.append(call)
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PUT = do_PATCH = do_POST = do_DELETE = _serve
