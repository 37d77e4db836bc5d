"""GKE traffic through the Kubernetes API: Gateway API ``HTTPRoute`` weights (kind ``gateway``) and Istio
``VirtualService`` weights (kind ``istio``, or ``variant = "istio"``), with the official ``kubernetes`` client's
``CustomObjectsApi``.

Configuration (``RouterConfig``):

- ``target``: the HTTPRoute / VirtualService name; ``blue`` / ``green``: the backendRef Service names
  (``namespace/name`` for a Service in another namespace). Istio: destination hosts (a short name is
  ``name.<namespace>.svc.cluster.local``), or, with option ``host``, subsets of that host.
- options: ``namespace`` (default ``default``); ``api_version`` (``v1``; ``v1beta1`` for older Gateway API
  CRDs, ``v1beta1``/``v1alpha3`` for older Istio); ``rule`` (an index or a rule name: only that rule;
  default every rule whose backends name blue or green); ``kubeconfig`` / ``context``, or ``in_cluster =
  true`` (default: the kubeconfig, else the in-cluster service account); ``poll_interval_s`` (2);
  ``request_timeout_s`` (30); ``health`` (true: read the Endpoints of each side); ``restore_on_failure``
  (true); ``detect_drift`` (true); ``port`` (for a backendRef that has to be added; default the other side's).
- ``api_endpoint`` or ``BGMIGRATE_K8S_API_ENDPOINT``: another API server URL, no credentials (tests).

Weights are proportional (HTTPRoute: default 1, a lone backendRef with weight > 0 gets everything; Istio: a
lone destination gets everything, others default to 0) and read as whole percents, never rounding a side that
gets traffic to 0% (or a side that does not get all of it to 100%). A backend that is neither blue nor green
with weight > 0, or weights summing to 0, is an error naming the resource.

``set_split`` reads the object (with its ``resourceVersion``), changes only the blue/green weights of the
selected rules (adding the missing side, copying its sibling's port, only when it gets weight > 0: a 0-weight
ref to a Service that does not exist would turn ``ResolvedRefs`` False for the whole route), writes it with
``replace_namespaced_custom_object``, and on 409 re-reads: weights unchanged (someone changed a label, the
controller wrote status) → retry on the fresh object; weights changed → refuse. It refuses likewise when the
weights differ from what this router last read or wrote (``detect_drift``). Then it polls
``status.parents[].conditions`` until every parent has ``Accepted`` and ``ResolvedRefs`` True with
``observedGeneration`` ≥ the written generation (Istio: ``Reconciled``, when the VirtualService reports
status at all), and verifies the weights read back. A condition False for that generation fails at once; no
answer within ``timeout_s`` fails at the deadline; either way the previous weights are written back (unless
someone changed the route since) and the error says so.
"""

from __future__ import annotations

import copy
import os
import time
from dataclasses import dataclass
from typing import Any

from .router import Router, RouterConfig, SideHealth, Split, TrafficError

ENDPOINT_ENV = "BGMIGRATE_K8S_API_ENDPOINT"
MAX_CONFLICT_RETRIES = 5
DEFAULT_POLL_INTERVAL_S = 2.0
DEFAULT_REQUEST_TIMEOUT_S = 30.0
NOT_SERVED = "the server could not find the requested resource"

# ---- weights and percents ---------------------------------------------------------------------------


def to_split(blue: int, green: int) -> Split:
    """Proportional weights as whole percents. A side with weight > 0 gets at least 1% (and one that does not
    get everything at most 99%), so that a trickle of traffic to blue is never reported as 0%."""
    total = blue + green
    if total <= 0:
        raise ValueError("weights sum to 0")
    pct = (200 * green + total) // (2 * total)  # round half up, in integers
    if green and blue:
        pct = min(99, max(1, pct))
    return Split.green_percent(pct)


def _proportional(blue: int, green: int, split: Split) -> bool:
    return blue + green > 0 and blue * split.green == green * split.blue


def _backend_key(ref: dict[str, Any]) -> str:
    return repr(sorted((k, repr(v)) for k, v in ref.items() if k != "weight"))


def _flat(text: object) -> str:
    return " ".join(str(text).split())


@dataclass(frozen=True)
class _SideRef:
    """How one side is named in the resource: a Service (namespace, name); Istio: a host, or a subset of one."""

    namespace: str
    name: str
    label: str  # as messages show it


# ---- the two resource shapes --------------------------------------------------------------------------


class _Shape:
    kind = ""
    group = ""
    plural = ""
    rules_key = ""
    refs_key = ""

    def __init__(self, router: GatewayRouter) -> None:
        self.router = router

    def rules(self, obj: dict[str, Any]) -> list[dict[str, Any]]:
        rules = (obj.get("spec") or {}).get(self.rules_key) or []
        return rules if isinstance(rules, list) else []

    def refs(self, rule: dict[str, Any]) -> list[dict[str, Any]]:
        refs = rule.get(self.refs_key) or []
        return refs if isinstance(refs, list) else []

    def rule_label(self, index: int, rule: dict[str, Any]) -> str:
        return f"{self.rules_key}[{index}]" + (f" ({rule['name']})" if rule.get("name") else "")

    def effective_weights(self, rule: dict[str, Any]) -> list[int]:
        raise NotImplementedError

    def side_of(self, ref: dict[str, Any]) -> str | None:
        raise NotImplementedError

    def ref_label(self, ref: dict[str, Any]) -> str:
        raise NotImplementedError

    def new_ref(self, sibling: dict[str, Any], side: str) -> dict[str, Any]:
        raise NotImplementedError

    def mirrors(self, obj: dict[str, Any]) -> list[str]:
        """Where blue receives mirrored traffic (it answers nobody, but it runs, writes included)."""
        return []

    def extra_exposure(self, obj: dict[str, Any]) -> list[str]:
        return []

    def programmed(self, obj: dict[str, Any], generation: int, waits: bool) -> tuple[str, str]:
        """("ok" | "pending" | "failed", detail) for the status of ``generation``."""
        raise NotImplementedError


class _HTTPRouteShape(_Shape):
    kind = "HTTPRoute"
    group = "gateway.networking.k8s.io"
    plural = "httproutes"
    rules_key = "rules"
    refs_key = "backendRefs"

    @staticmethod
    def _weight(ref: dict[str, Any]) -> int:
        w = ref.get("weight", 1)
        return w if isinstance(w, int) and not isinstance(w, bool) and w > 0 else 0

    def effective_weights(self, rule: dict[str, Any]) -> list[int]:
        return [self._weight(ref) for ref in self.refs(rule)]

    def _service(self, ref: dict[str, Any]) -> tuple[str, str] | None:
        if ref.get("kind", "Service") != "Service" or ref.get("group", "") not in ("", "core"):
            return None
        return (ref.get("namespace") or self.router.namespace, str(ref.get("name", "")))

    def side_of(self, ref: dict[str, Any]) -> str | None:
        service = self._service(ref)
        for side, want in self.router.sides.items():
            if service == (want.namespace, want.name):
                return side
        return None

    def ref_label(self, ref: dict[str, Any]) -> str:
        kind = ref.get("kind", "Service")
        ns = ref.get("namespace")
        return f"{kind} {ns + '/' if ns else ''}{ref.get('name', '?')}"

    def new_ref(self, sibling: dict[str, Any], side: str) -> dict[str, Any]:
        want = self.router.sides[side]
        ref: dict[str, Any] = {key: sibling[key] for key in ("group", "kind") if key in sibling}
        ref["name"] = want.name
        if want.namespace != self.router.namespace:
            ref["namespace"] = want.namespace
        port = self.router.config.options.get("port", sibling.get("port"))
        if port is not None:
            ref["port"] = int(port)
        return ref

    def mirrors(self, obj: dict[str, Any]) -> list[str]:
        out = []
        for i, rule in enumerate(self.rules(obj)):
            filters = list(rule.get("filters") or [])
            for ref in self.refs(rule):
                filters += ref.get("filters") or []
            for f in filters:
                if not isinstance(f, dict) or f.get("type") != "RequestMirror":
                    continue
                mirror = (f.get("requestMirror") or {}).get("backendRef")
                if isinstance(mirror, dict) and self.side_of(mirror) == "blue":
                    out.append(f"{self.rule_label(i, rule)} mirrors requests to blue")
        return out

    def programmed(self, obj: dict[str, Any], generation: int, waits: bool) -> tuple[str, str]:
        parents = (obj.get("status") or {}).get("parents") or []
        if not parents:
            return "pending", "no parent Gateway has reported status (check spec.parentRefs and the Gateway)"
        failed, pending = [], []
        for parent in parents:
            ref = parent.get("parentRef") or {}
            name = f"parent {ref.get('namespace', '') + '/' if ref.get('namespace') else ''}{ref.get('name', '?')}"
            if ref.get("sectionName"):
                name += f"/{ref['sectionName']}"
            conditions = {c.get("type"): c for c in parent.get("conditions") or [] if isinstance(c, dict)}
            for ctype in ("Accepted", "ResolvedRefs"):
                cond = conditions.get(ctype)
                observed = cond.get("observedGeneration") if cond else None
                if cond is None:
                    pending.append(f"{name}: no {ctype} condition yet")
                elif not isinstance(observed, int) or observed < generation:
                    pending.append(
                        f"{name}: {ctype} not yet observed for generation {generation} (observed {observed})"
                    )
                elif cond.get("status") == "True":
                    continue
                elif cond.get("status") == "False":
                    reason = cond.get("reason") or "no reason"
                    message = _flat(cond.get("message") or "")
                    failed.append(f"{name}: {ctype} False ({reason}{': ' + message if message else ''})")
                else:
                    pending.append(f"{name}: {ctype} {cond.get('status', 'Unknown')}")
        if failed:
            return "failed", "; ".join(failed)
        if pending:
            return "pending", "; ".join(pending)
        return "ok", ""


class _VirtualServiceShape(_Shape):
    kind = "VirtualService"
    group = "networking.istio.io"
    plural = "virtualservices"
    rules_key = "http"
    refs_key = "route"

    def effective_weights(self, rule: dict[str, Any]) -> list[int]:
        refs = self.refs(rule)
        if len(refs) == 1:
            return [1]  # a lone destination gets all the traffic, whatever its weight
        out = []
        for ref in refs:
            w = ref.get("weight", 0)
            out.append(w if isinstance(w, int) and not isinstance(w, bool) and w > 0 else 0)
        return out

    def canon(self, host: str) -> str:
        host = host.rstrip(".")
        return f"{host}.{self.router.namespace}.svc.cluster.local" if "." not in host else host

    def _matches(self, destination: Any, want: _SideRef) -> bool:
        if not isinstance(destination, dict) or not destination.get("host"):
            return False
        subset_host = self.router.config.options.get("host")
        if subset_host:
            return (
                self.canon(str(destination["host"])) == self.canon(str(subset_host))
                and destination.get("subset") == want.name
            )
        return self.canon(str(destination["host"])) == self.canon(want.name)

    def side_of(self, ref: dict[str, Any]) -> str | None:
        for side, want in self.router.sides.items():
            if self._matches(ref.get("destination"), want):
                return side
        return None

    def ref_label(self, ref: dict[str, Any]) -> str:
        d = ref.get("destination") or {}
        return f"host {d.get('host', '?')}" + (f" subset {d['subset']}" if d.get("subset") else "")

    def new_ref(self, sibling: dict[str, Any], side: str) -> dict[str, Any]:
        want = self.router.sides[side]
        destination = copy.deepcopy(sibling.get("destination") or {})
        if self.router.config.options.get("host"):
            destination["subset"] = want.name
        else:
            destination["host"] = want.name
            destination.pop("subset", None)
        port = self.router.config.options.get("port")
        if port is not None:
            destination["port"] = {"number": int(port)}
        return {"destination": destination}

    def mirrors(self, obj: dict[str, Any]) -> list[str]:
        out = []
        blue = self.router.sides["blue"]
        for i, rule in enumerate(self.rules(obj)):
            targets = [rule.get("mirror")] + [
                m.get("destination") for m in rule.get("mirrors") or [] if isinstance(m, dict)
            ]
            if any(self._matches(t, blue) for t in targets):
                out.append(f"{self.rule_label(i, rule)} mirrors requests to blue")
        return out

    def extra_exposure(self, obj: dict[str, Any]) -> list[str]:
        """tcp[] and tls[] routes: bgmigrate shifts http[] only, so blue there is exposure."""
        out = []
        blue = self.router.sides["blue"]
        spec = obj.get("spec") or {}
        for key in ("tcp", "tls"):
            for i, rule in enumerate(spec.get(key) or []):
                refs = rule.get("route") or []
                weights = self.effective_weights(rule)
                total = sum(weights)
                b = sum(w for ref, w in zip(refs, weights) if self._matches(ref.get("destination"), blue))
                if b and total:
                    out.append(f"{key}[{i}] sends {max(1, round(100 * b / total))}% to blue")
        return out

    def programmed(self, obj: dict[str, Any], generation: int, waits: bool) -> tuple[str, str]:
        if not waits:
            return "ok", ""
        status = obj.get("status") or {}
        conditions = {c.get("type"): c for c in status.get("conditions") or [] if isinstance(c, dict)}
        cond = conditions.get("Reconciled")
        observed = cond.get("observedGeneration", status.get("observedGeneration")) if cond else None
        if cond is None:
            return "pending", "no Reconciled condition yet"
        if not isinstance(observed, int) or observed < generation:
            return "pending", f"Reconciled not yet observed for generation {generation} (observed {observed})"
        if cond.get("status") == "True":
            return "ok", ""
        # Reconciled False: not every proxy has the configuration yet; it is progressive, keep waiting
        reason = cond.get("reason") or "no reason"
        message = _flat(cond.get("message") or "")
        return "pending", f"Reconciled {cond.get('status')} ({reason}{': ' + message if message else ''})"


# ---- the router ------------------------------------------------------------------------------------------


class _Conflict(Exception):
    pass


class _NotFound(TrafficError):
    """A 404 (still a TrafficError for callers)."""


class GatewayRouter(Router):
    """Gateway API HTTPRoute weights (or, with ``variant = "istio"``, an Istio VirtualService's)."""

    kind = "gateway"
    variant = "gateway"

    def __init__(self, config: RouterConfig) -> None:
        super().__init__(config)
        config.require("target", "blue", "green")
        options = config.options
        variant = str(options.get("variant") or self.variant).lower()
        if variant not in ("gateway", "istio"):
            raise TrafficError(f'the {config.kind} router: variant must be "gateway" or "istio", not {variant!r}')
        self.shape: _Shape = _VirtualServiceShape(self) if variant == "istio" else _HTTPRouteShape(self)
        self.namespace = str(options.get("namespace") or "default")
        self.name = str(config.target or options.get("target"))
        self.api_version = str(options.get("api_version") or "v1")
        self.poll_interval_s = float(options.get("poll_interval_s", DEFAULT_POLL_INTERVAL_S))
        self.request_timeout_s = float(options.get("request_timeout_s", DEFAULT_REQUEST_TIMEOUT_S))
        self.sides = {side: self._side_ref(side) for side in ("blue", "green")}
        if self.sides["blue"] == self.sides["green"]:
            raise TrafficError(f"{self.describe()}: blue and green name the same backend ({self.sides['blue'].label})")
        self._api_client: Any = None
        self._seen: tuple[Any, ...] | None = None  # the weights this router last read or wrote
        self._host = ""

    def _side_ref(self, side: str) -> _SideRef:
        value = str(getattr(self.config, side, None) or self.config.options.get(side))
        if isinstance(self.shape, _HTTPRouteShape) and "/" in value:
            ns, name = value.split("/", 1)
            return _SideRef(ns, name, value)
        return _SideRef(self.namespace, value, value)

    def describe(self) -> str:
        return f"{self.shape.kind} {self.namespace}/{self.name}"

    # ---- the Kubernetes API ------------------------------------------------------------------------

    def _client(self) -> Any:
        if self._api_client is None:
            self._api_client = self._make_client()
        return self._api_client

    def _make_client(self) -> Any:
        try:
            from kubernetes import client
            from kubernetes import config as kube_config
        except ImportError:
            raise TrafficError(
                f"the {self.config.kind} router needs the kubernetes client: pip install 'bgmigrate[gcp]'"
            ) from None
        options = self.config.options
        endpoint = self.config.api_endpoint or os.environ.get(ENDPOINT_ENV)
        if endpoint:
            configuration = client.Configuration(host=endpoint.rstrip("/"))
        else:
            configuration = client.Configuration()
            in_cluster = options.get("in_cluster")
            try:
                if in_cluster:
                    kube_config.load_incluster_config(client_configuration=configuration)
                else:
                    try:
                        kube_config.load_kube_config(
                            config_file=options.get("kubeconfig"),
                            context=options.get("context"),
                            client_configuration=configuration,
                            persist_config=False,
                        )
                    except kube_config.ConfigException:
                        if options.get("kubeconfig") or options.get("context") or in_cluster is False:
                            raise
                        if not os.environ.get("KUBERNETES_SERVICE_HOST"):
                            raise
                        kube_config.load_incluster_config(client_configuration=configuration)
            except (kube_config.ConfigException, OSError, ValueError) as err:
                raise TrafficError(
                    f"{self.describe()}: cannot load Kubernetes credentials "
                    f"(kubeconfig / context / in_cluster): {_flat(err)}"
                ) from None
        self._host = configuration.host
        return client.ApiClient(configuration)

    def _custom(self) -> Any:
        from kubernetes import client

        return client.CustomObjectsApi(self._client())

    def _api_error(self, err: Any, action: str, what: str | None = None) -> TrafficError:
        import json

        what = what or self.describe()
        status = getattr(err, "status", None)
        message = ""
        try:
            body = json.loads(err.body or "")
            message = body.get("message") or ""
        except (ValueError, TypeError, AttributeError):
            message = ""
        message = _flat(message or getattr(err, "reason", "") or "")
        if status == 404:
            if message == NOT_SERVED:
                return TrafficError(
                    f"{what}: the API server does not serve {self.shape.group}/{self.api_version} "
                    f"{self.shape.plural} while trying to {action} (CRDs not installed, or set api_version)"
                )
            return _NotFound(f"{what} not found while trying to {action}: {message}")
        if status == 403:
            return TrafficError(f"permission denied on {what} while trying to {action}: {message}")
        if status == 401:
            return TrafficError(f"not authenticated to the Kubernetes API while trying to {action} {what}: {message}")
        if status == 422:
            return TrafficError(f"{what}: the API server rejected the change ({action}): {message}")
        return TrafficError(f"{what}: cannot {action}: HTTP {status} {message}".rstrip())

    def _call(self, action: str, fn: Any, *args: Any, what: str | None = None, **kwargs: Any) -> Any:
        from kubernetes.client.exceptions import ApiException

        try:
            return fn(*args, _request_timeout=self.request_timeout_s, **kwargs)
        except ApiException as err:
            if err.status == 409:
                raise _Conflict() from None
            raise self._api_error(err, action, what) from None
        except TrafficError:
            raise
        except Exception as err:  # urllib3 / socket errors: the API server cannot be reached
            where = f" at {self._host}" if self._host else ""
            raise TrafficError(
                f"{what or self.describe()}: cannot reach the Kubernetes API{where} to {action}: "
                f"{type(err).__name__}: {_flat(err)[:300]}"
            ) from None

    def _coords(self) -> tuple[str, str, str, str, str]:
        return self.shape.group, self.api_version, self.namespace, self.shape.plural, self.name

    def _get(self, action: str = "read it") -> dict[str, Any]:
        api = self._custom()
        obj = self._call(action, api.get_namespaced_custom_object, *self._coords())
        if not isinstance(obj, dict):
            raise TrafficError(f"{self.describe()}: the API server returned no object")
        return obj

    def _replace(self, body: dict[str, Any]) -> dict[str, Any]:
        """PUT with the body's resourceVersion; raises _Conflict on 409."""
        api = self._custom()
        return self._call("update its weights", api.replace_namespaced_custom_object, *self._coords(), body)

    # ---- reading weights ---------------------------------------------------------------------------

    def _selected(self, obj: dict[str, Any]) -> list[int]:
        rules = self.shape.rules(obj)
        wanted = self.config.options.get("rule")
        if wanted is not None and str(wanted) != "":
            if isinstance(wanted, int) or str(wanted).isdigit():
                index = int(wanted)
                if not 0 <= index < len(rules):
                    raise TrafficError(
                        f"{self.describe()}: rule {index} does not exist ({len(rules)} {self.shape.rules_key} entries)"
                    )
                chosen = [index]
            else:
                chosen = [i for i, r in enumerate(rules) if r.get("name") == wanted]
                if not chosen:
                    raise TrafficError(f"{self.describe()} has no {self.shape.rules_key} entry named {wanted!r}")
            return chosen
        chosen = [i for i, r in enumerate(rules) if any(self.shape.side_of(ref) for ref in self.shape.refs(r))]
        if not chosen:
            raise TrafficError(
                f"{self.describe()}: no {self.shape.rules_key} entry routes to blue ({self.sides['blue'].label}) "
                f"or green ({self.sides['green'].label})"
            )
        return chosen

    def _rule_weights(self, obj: dict[str, Any], index: int) -> tuple[int, int]:
        rule = self.shape.rules(obj)[index]
        sums = {"blue": 0, "green": 0}
        others = []
        for ref, weight in zip(self.shape.refs(rule), self.shape.effective_weights(rule)):
            side = self.shape.side_of(ref)
            if side:
                sums[side] += weight
            elif weight > 0:
                others.append(self.shape.ref_label(ref))
        label = self.shape.rule_label(index, rule)
        if others:
            raise TrafficError(
                f"{self.describe()}: {label} also sends traffic to {', '.join(others)}, neither blue "
                f"({self.sides['blue'].label}) nor green ({self.sides['green'].label})"
            )
        if sums["blue"] + sums["green"] == 0:
            raise TrafficError(f"{self.describe()}: the weights of {label} sum to 0 (it serves no traffic)")
        return sums["blue"], sums["green"]

    def _split_of(self, obj: dict[str, Any]) -> Split:
        splits = {i: to_split(*self._rule_weights(obj, i)) for i in self._selected(obj)}
        if len(set(splits.values())) > 1:
            rules = self.shape.rules(obj)
            detail = "; ".join(f"{self.shape.rule_label(i, rules[i])}: {s}" for i, s in splits.items())
            raise TrafficError(f"{self.describe()}: its rules split traffic differently ({detail}); set option rule")
        return next(iter(splits.values()))

    def _fingerprint(self, obj: dict[str, Any]) -> tuple[Any, ...]:
        """Everything about who gets traffic, in every rule (not labels, not status): each backend (all of its
        fields but the weight) with its effective weight. Istio: tcp[] and tls[] routes too."""
        spec = obj.get("spec") or {}
        out: list[Any] = []
        for rule in self.shape.rules(obj):
            refs = self.shape.refs(rule)
            out.append((self.shape.rules_key, tuple(zip(map(_backend_key, refs), self.shape.effective_weights(rule)))))
        if isinstance(self.shape, _VirtualServiceShape):
            for key in ("tcp", "tls"):
                for rule in spec.get(key) or []:
                    refs = (
                        [r for r in (rule.get("route") or []) if isinstance(r, dict)] if isinstance(rule, dict) else []
                    )
                    out.append((key, tuple((_backend_key(r), r.get("weight")) for r in refs)))
        return tuple(out)

    def _describe_weights(self, obj: dict[str, Any]) -> str:
        parts = []
        for i, rule in enumerate(self.shape.rules(obj)):
            refs = self.shape.refs(rule)
            weights = self.shape.effective_weights(rule)
            parts.append(
                f"{self.shape.rule_label(i, rule)}: "
                + ", ".join(f"{self.shape.ref_label(r)}={w}" for r, w in zip(refs, weights))
            )
        return "; ".join(parts) or "no rules"

    # ---- Router ------------------------------------------------------------------------------------

    def current(self) -> Split:
        obj = self._get()
        split = self._split_of(obj)
        self._seen = self._fingerprint(obj)
        return split

    def set_split(self, split: Split) -> Split:
        before: dict[str, Any] | None = None
        written: dict[str, Any] | None = None
        for _attempt in range(MAX_CONFLICT_RETRIES):
            obj = self._get()
            fingerprint = self._fingerprint(obj)
            if before is None:
                if (
                    self._seen is not None
                    and fingerprint != self._seen
                    and self.config.options.get("detect_drift", True) is not False
                ):
                    raise TrafficError(
                        f"{self.describe()}: its weights changed since bgmigrate last read them (now "
                        f"{self._describe_weights(obj)}); not overwriting a concurrent traffic change"
                    )
                before = obj
                self._split_of(obj)  # refuses third backends, 0 sums and disagreeing rules before any write
            elif fingerprint != self._fingerprint(before):
                raise TrafficError(
                    f"{self.describe()} was changed by someone else while setting {split}: its weights are now "
                    f"{self._describe_weights(obj)} (were {self._describe_weights(before)}); "
                    "not overwriting a concurrent traffic change"
                )
            if all(_proportional(*self._rule_weights(obj, i), split) for i in self._selected(obj)):
                written = obj  # already there (e.g. a resumed switch): nothing to write, still wait for status
                break
            body = self._with_split(obj, split)
            try:
                written = self._replace(body)
            except _Conflict:
                continue
            break
        else:
            raise TrafficError(
                f"{self.describe()}: the update kept conflicting (409) {MAX_CONFLICT_RETRIES} times; giving up"
            )
        assert before is not None and written is not None
        self._seen = self._fingerprint(written)
        generation = int((written.get("metadata") or {}).get("generation") or 0)
        waits = isinstance(self.shape, _HTTPRouteShape) or self._reports_status(before)
        try:
            final = self._wait_programmed(generation, waits)
        except TrafficError as err:
            if written is before:
                raise TrafficError(f"{err}; nothing was written (the weights were already {split})") from None
            note = self._restore(before, self._fingerprint(written))
            raise TrafficError(f"{err}; {note}") from None
        got = self._split_of(final)
        self._seen = self._fingerprint(final)
        if not all(_proportional(*self._rule_weights(final, i), split) for i in self._selected(final)):
            raise TrafficError(
                f"{self.describe()}: set {split} but reads back {got} ({self._describe_weights(final)}): "
                "changed by someone else meanwhile?"
            )
        return split

    def _reports_status(self, obj: dict[str, Any]) -> bool:
        """Istio writes VirtualService status only with PILOT_ENABLE_STATUS; wait only when it does (option
        ``wait_status``: true / false overrides)."""
        forced = self.config.options.get("wait_status")
        if forced is not None:
            return bool(forced)
        conditions = (obj.get("status") or {}).get("conditions") or []
        return any(isinstance(c, dict) and c.get("type") == "Reconciled" for c in conditions)

    def _with_split(self, obj: dict[str, Any], split: Split) -> dict[str, Any]:
        body = copy.deepcopy(obj)
        rules = self.shape.rules(body)
        for index in self._selected(body):
            rule = rules[index]
            refs = self.shape.refs(rule)
            want = {"blue": split.blue, "green": split.green}
            seen: set[str] = set()
            for ref in refs:
                side = self.shape.side_of(ref)
                if side is None:
                    if isinstance(self.shape, _VirtualServiceShape):
                        ref["weight"] = 0  # weights of the rule sum to 100
                    continue
                ref["weight"] = 0 if side in seen else want[side]  # a duplicate ref of a side gets 0
                seen.add(side)
            for side in ("blue", "green"):
                if side not in seen and want[side] > 0:
                    sibling = next(r for r in refs if self.shape.side_of(r))
                    ref = self.shape.new_ref(sibling, side)
                    ref["weight"] = want[side]
                    refs.append(ref)
            rule[self.shape.refs_key] = refs
        return body

    def _wait_programmed(self, generation: int, waits: bool) -> dict[str, Any]:
        timeout = float(self.config.timeout_s)
        deadline = time.monotonic() + timeout
        while True:
            obj = self._get("read its status")
            state, detail = self.shape.programmed(obj, generation, waits)
            if state == "ok":
                return obj
            if state == "failed":
                raise TrafficError(f"{self.describe()}: generation {generation} was not accepted: {detail}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TrafficError(
                    f"{self.describe()}: generation {generation} not programmed after {timeout:g} s: {detail}"
                )
            time.sleep(max(0.0, min(self.poll_interval_s, remaining)))

    def _restore(self, before: dict[str, Any], written_fp: tuple[Any, ...]) -> str:
        """Write the previous weights back, unless someone changed the route after our write."""
        if self.config.options.get("restore_on_failure", True) is False:
            return f"the new weights were left in place (restore_on_failure = false; before: {self._split_of(before)})"
        previous = self._split_of(before)
        try:
            for _attempt in range(MAX_CONFLICT_RETRIES):
                obj = self._get("read it to restore the previous weights")
                if self._fingerprint(obj) != written_fp:
                    return (
                        f"not restored: changed by someone else since the write ({self._describe_weights(obj)}); "
                        "traffic is theirs"
                    )
                body = copy.deepcopy(obj)
                rules, old_rules = self.shape.rules(body), self.shape.rules(before)
                for index in self._selected(before):
                    rules[index][self.shape.refs_key] = copy.deepcopy(self.shape.refs(old_rules[index]))
                try:
                    restored = self._replace(body)
                except _Conflict:
                    continue
                self._seen = self._fingerprint(restored)
                return f"restored the previous weights ({previous}; not waited on)"
        except TrafficError as err:
            return f"could not restore the previous weights ({previous}): {err}"
        return f"could not restore the previous weights ({previous}): the update kept conflicting"

    def blue_exposure(self) -> list[str]:
        obj = self._get()
        out = []
        for i, rule in enumerate(self.shape.rules(obj)):
            weights = self.shape.effective_weights(rule)
            refs = self.shape.refs(rule)
            total = sum(weights)
            blue = sum(w for ref, w in zip(refs, weights) if self.shape.side_of(ref) == "blue")
            if blue and total:
                pct = to_split(total - blue, blue).green  # blue's share, never rounded to 0
                label = self.shape.rule_label(i, rule)
                out.append(f"{self.describe()} {label} sends {pct}% to blue ({self.sides['blue'].label})")
        out += [f"{self.describe()} {m} ({self.sides['blue'].label})" for m in self.shape.mirrors(obj)]
        out += [
            f"{self.describe()} {m} ({self.sides['blue'].label}; only http routes are shifted)"
            for m in self.shape.extra_exposure(obj)
        ]
        return out

    def health(self) -> dict[str, SideHealth]:
        """Ready addresses in each side's Endpoints (``CoreV1Api.read_namespaced_endpoints``): > 0 is healthy; no
        Endpoints object is unhealthy. Istio subsets (option ``host``) are not mapped to pods: ``None``."""
        if self.config.options.get("health", True) is False:
            return {}
        from kubernetes import client

        core = client.CoreV1Api(self._client())
        out: dict[str, SideHealth] = {}
        for side, want in self.sides.items():
            if isinstance(self.shape, _VirtualServiceShape):
                if self.config.options.get("host"):
                    out[side] = SideHealth(side, None, f"subset {want.name}: readiness not checked per subset")
                    continue
                host = self.shape.canon(want.name)
                parts = host.split(".")
                if not host.endswith(".svc.cluster.local") or len(parts) != 5:
                    out[side] = SideHealth(side, None, f"host {want.name} is not a cluster Service")
                    continue
                namespace, name = parts[1], parts[0]
            else:
                namespace, name = want.namespace, want.name
            what = f"Endpoints {namespace}/{name}"
            try:
                endpoints = self._call("read its readiness", core.read_namespaced_endpoints, name, namespace, what=what)
            except _NotFound:
                out[side] = SideHealth(side, False, f"no {what} (no such Service, or it has no selector)")
                continue
            except _Conflict:
                raise TrafficError(f"{what}: unexpected 409 on a read") from None
            ready = not_ready = 0
            for subset in endpoints.subsets or []:
                ready += len(subset.addresses or [])
                not_ready += len(subset.not_ready_addresses or [])
            out[side] = SideHealth(side, ready > 0, f"{what}: {ready} ready, {not_ready} not ready")
        return out


class IstioRouter(GatewayRouter):
    """Istio VirtualService ``spec.http[].route[]`` weights (kind ``istio``)."""

    kind = "istio"
    variant = "istio"
