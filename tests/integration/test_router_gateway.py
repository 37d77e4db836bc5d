"""The gateway (Gateway API HTTPRoute) and istio (VirtualService) routers, through the real kubernetes client,
against the Kubernetes API emulator (tests/integration/k8s_emulator.py)."""

from __future__ import annotations

import time

import pytest
from k8s_emulator import HTTPROUTES, VIRTUALSERVICES, K8sEmulator

from migrator.traffic.gateway import GatewayRouter, IstioRouter, to_split
from migrator.traffic.router import Split, TrafficError

ROUTE = "HTTPRoute default/web"


@pytest.fixture
def k8s():
    with K8sEmulator() as emulator:
        emulator.add_service("web-blue", ready=2)
        emulator.add_service("web-green", ready=1, not_ready=1)
        yield emulator


def gateway(k8s: K8sEmulator, **options) -> GatewayRouter:
    return GatewayRouter(k8s.router_config(**options))


def set_weights(blue: int, green: int):
    def change(obj):
        for ref in obj["spec"]["rules"][0]["backendRefs"]:
            ref["weight"] = {"web-blue": blue, "web-green": green}[ref["name"]]

    return change


# ---- HTTPRoute ---------------------------------------------------------------------------------------


def test_progressive_shift_is_written_programmed_and_read_back(k8s):
    k8s.add_httproute("web", [["web-blue"]])  # one backendRef, no weight: all the traffic
    router = gateway(k8s)
    assert router.current() == Split(100, 0)
    for green in (10, 50, 100):
        before = k8s.count("GET")
        assert router.set_split(Split.green_percent(green)) == Split.green_percent(green)
        assert k8s.count("GET") - before >= 3  # read, then polled until the controller reported (2 polls)
        assert router.current() == Split.green_percent(green)
        assert k8s.weights(HTTPROUTES, "web") == [{"web-blue": 100 - green, "web-green": green}]
        obj = k8s.get(HTTPROUTES, "web")
        for parent in obj["status"]["parents"]:
            assert {c["type"]: (c["status"], c["observedGeneration"]) for c in parent["conditions"]} == {
                "Accepted": ("True", obj["metadata"]["generation"]),
                "ResolvedRefs": ("True", obj["metadata"]["generation"]),
            }
    added = k8s.get(HTTPROUTES, "web")["spec"]["rules"][0]["backendRefs"][1]
    assert added == {"group": "", "kind": "Service", "name": "web-green", "port": 8080, "weight": 100}
    assert k8s.count("PUT") == 3
    assert router.blue_exposure() == []


def test_rollback_to_blue_keeps_green_at_zero(k8s):
    k8s.add_httproute("web", [[("web-blue", 50), ("web-green", 50)]])
    router = gateway(k8s)
    assert router.current() == Split(50, 50)
    assert router.set_split(Split(100, 0)) == Split(100, 0)
    assert k8s.weights(HTTPROUTES, "web") == [{"web-blue": 100, "web-green": 0}]
    assert router.blue_exposure() == [f"{ROUTE} rules[0] sends 100% to blue (web-blue)"]


def test_a_split_already_in_place_is_not_rewritten_and_a_missing_zero_side_not_added(k8s):
    k8s.add_httproute("web", [["web-blue"]])
    router = gateway(k8s)
    assert router.set_split(Split(100, 0)) == Split(100, 0)
    assert k8s.count("PUT") == 0
    assert k8s.weights(HTTPROUTES, "web") == [{"web-blue": None}]


def test_proportional_weights_become_percents_and_a_trickle_is_never_zero(k8s):
    k8s.add_httproute("web", [[("web-blue", 3), ("web-green", 1)]])
    assert gateway(k8s).current() == Split(75, 25)
    k8s.add_httproute("web", [[("web-blue", 1), ("web-green", 999)]])
    router = gateway(k8s)
    assert router.current() == Split(1, 99)  # 0.1% to blue is reported as 1%, not 0%
    assert router.blue_exposure() == [f"{ROUTE} rules[0] sends 1% to blue (web-blue)"]
    assert to_split(0, 5) == Split(0, 100) and to_split(5, 0) == Split(100, 0) and to_split(1, 1) == Split(50, 50)


def test_weights_summing_to_zero_or_a_third_backend_are_errors_naming_the_route(k8s):
    k8s.add_service("web-canary")
    k8s.add_httproute("web", [[("web-blue", 0), ("web-green", 0)]])
    with pytest.raises(TrafficError, match=rf"{ROUTE}: the weights of rules\[0\] sum to 0"):
        gateway(k8s).current()
    k8s.add_httproute("web", [[("web-blue", 90), ("web-green", 5), ("web-canary", 5)]])
    router = gateway(k8s)
    with pytest.raises(TrafficError, match=rf"{ROUTE}: rules\[0\] also sends traffic to Service web-canary"):
        router.current()
    with pytest.raises(TrafficError, match="web-canary"):
        router.set_split(Split(50, 50))
    assert k8s.count("PUT") == 0
    k8s.add_httproute("web", [[("web-blue", 100), ("web-green", 0), ("web-canary", 0)]])  # 0: no traffic
    router = gateway(k8s)
    assert router.set_split(Split(50, 50)) == Split(50, 50)
    assert k8s.weights(HTTPROUTES, "web") == [{"web-blue": 50, "web-green": 50, "web-canary": 0}]


def test_a_stale_resource_version_with_unchanged_weights_is_retried(k8s):
    k8s.add_httproute("web", [[("web-blue", 100), ("web-green", 0)]])
    router = gateway(k8s)
    k8s.interleave(HTTPROUTES, "web", lambda obj: obj["metadata"].setdefault("labels", {}).update(team="web"))
    assert router.set_split(Split(90, 10)) == Split(90, 10)
    assert k8s.count("PUT", status=409) == 1 and k8s.count("PUT", status=200) == 1
    obj = k8s.get(HTTPROUTES, "web")
    assert obj["metadata"]["labels"] == {"team": "web"}  # their change is kept, ours is applied on top
    assert k8s.weights(HTTPROUTES, "web") == [{"web-blue": 90, "web-green": 10}]


def test_a_concurrent_weight_change_is_refused_never_overwritten(k8s):
    k8s.add_httproute("web", [[("web-blue", 100), ("web-green", 0)]])
    router = gateway(k8s)
    k8s.interleave(HTTPROUTES, "web", set_weights(70, 30))
    with pytest.raises(TrafficError, match=rf"{ROUTE} was changed by someone else while setting blue 90% / green 10%"):
        router.set_split(Split(90, 10))
    assert k8s.count("PUT", status=409) == 1 and k8s.count("PUT", status=200) == 0
    assert k8s.weights(HTTPROUTES, "web") == [{"web-blue": 70, "web-green": 30}]


def test_a_weight_change_since_the_last_read_is_refused(k8s):
    k8s.add_httproute("web", [[("web-blue", 90), ("web-green", 10)]])
    router = gateway(k8s)
    assert router.current() == Split(90, 10)
    k8s.edit(HTTPROUTES, "web", set_weights(100, 0))  # someone rolled back by hand
    with pytest.raises(TrafficError, match=rf"{ROUTE}: its weights changed since bgmigrate last read them"):
        router.set_split(Split(50, 50))
    assert k8s.count("PUT") == 0
    assert k8s.weights(HTTPROUTES, "web") == [{"web-blue": 100, "web-green": 0}]
    # a label change is not a traffic change
    k8s.edit(HTTPROUTES, "web", lambda obj: obj["metadata"].setdefault("annotations", {}).update(note="x"))
    assert router.current() == Split(100, 0)
    assert router.set_split(Split(50, 50)) == Split(50, 50)


def test_a_route_never_programmed_times_out_and_the_previous_weights_are_restored(k8s):
    k8s.add_httproute("web", [["web-blue"]])
    k8s.faults(HTTPROUTES, "web").never_programmed = True
    router = GatewayRouter(k8s.router_config(timeout_s=0.3))
    started = time.monotonic()
    with pytest.raises(TrafficError) as err:
        router.set_split(Split(90, 10))
    assert time.monotonic() - started < 3
    message = str(err.value)
    assert message.startswith(f"{ROUTE}: generation 2 not programmed after 0.3 s: parent external-http: Accepted")
    assert "restored the previous weights (blue 100% / green 0%; not waited on)" in message
    assert k8s.weights(HTTPROUTES, "web") == [{"web-blue": None}]  # exactly as it was, green ref removed
    assert k8s.get(HTTPROUTES, "web")["metadata"]["generation"] == 3
    assert router.current() == Split(100, 0)


def test_resolved_refs_false_fails_at_once_with_the_reason_and_restores(k8s):
    k8s.remove_service("web-green")
    k8s.add_httproute("web", [["web-blue"]])
    router = GatewayRouter(k8s.router_config(timeout_s=30))
    started = time.monotonic()
    with pytest.raises(TrafficError) as err:
        router.set_split(Split(90, 10))
    assert time.monotonic() - started < 3  # no waiting for the deadline: the controller said no
    message = str(err.value)
    assert (
        f"{ROUTE}: generation 2 was not accepted: parent external-http: ResolvedRefs False (BackendNotFound" in message
    )
    assert 'Service "default/web-green" not found' in message and "restored the previous weights" in message
    assert k8s.weights(HTTPROUTES, "web") == [{"web-blue": None}]


def test_injected_resolved_refs_and_accepted_failures(k8s):
    k8s.add_httproute("web", [[("web-blue", 100), ("web-green", 0)]])
    k8s.faults(HTTPROUTES, "web").resolved_refs = ("RefNotPermitted", "no ReferenceGrant")
    with pytest.raises(TrafficError, match=r"ResolvedRefs False \(RefNotPermitted: no ReferenceGrant\)"):
        gateway(k8s).set_split(Split(50, 50))
    assert k8s.weights(HTTPROUTES, "web") == [{"web-blue": 100, "web-green": 0}]
    k8s.faults(HTTPROUTES, "web").resolved_refs = None
    k8s.faults(HTTPROUTES, "web").accepted = ("NotAllowedByListeners", "hostname not allowed")
    with pytest.raises(TrafficError, match=r"Accepted False \(NotAllowedByListeners: hostname not allowed\)"):
        gateway(k8s).set_split(Split(50, 50))
    assert k8s.weights(HTTPROUTES, "web") == [{"web-blue": 100, "web-green": 0}]


def test_restore_does_not_overwrite_a_change_made_after_the_write(k8s):
    k8s.add_httproute("web", [[("web-blue", 100), ("web-green", 0)]])
    k8s.faults(HTTPROUTES, "web").never_programmed = True
    router = GatewayRouter(k8s.router_config(timeout_s=0.2))
    # someone else's weight change lands between our write and our restore
    k8s.interleave(HTTPROUTES, "web", set_weights(20, 80), after_put=True)
    with pytest.raises(TrafficError, match="not restored: changed by someone else since the write"):
        router.set_split(Split(50, 50))
    assert k8s.weights(HTTPROUTES, "web") == [{"web-blue": 20, "web-green": 80}]


def test_forbidden_and_not_found_name_the_resource(k8s):
    k8s.add_httproute("web", [[("web-blue", 100), ("web-green", 0)]])
    k8s.deny("PUT", HTTPROUTES)
    router = gateway(k8s)
    with pytest.raises(TrafficError, match=rf"permission denied on {ROUTE} while trying to update its weights: .*"):
        router.set_split(Split(50, 50))
    assert k8s.weights(HTTPROUTES, "web") == [{"web-blue": 100, "web-green": 0}]
    k8s.allow_all()
    k8s.deny("GET", HTTPROUTES, "web")
    with pytest.raises(TrafficError, match=rf"permission denied on {ROUTE} while trying to read it: .*cannot get"):
        gateway(k8s).current()
    with pytest.raises(TrafficError, match=r"HTTPRoute shop/nope not found while trying to read it"):
        GatewayRouter(k8s.router_config(target="nope", namespace="shop")).current()
    with pytest.raises(TrafficError, match=r"does not serve gateway.networking.k8s.io/v9 httproutes"):
        GatewayRouter(k8s.router_config(api_version="v9")).current()


def test_an_unreachable_api_server_is_a_traffic_error(k8s):
    endpoint = k8s.endpoint
    config = k8s.router_config(request_timeout_s=2)
    k8s.stop()
    with pytest.raises(TrafficError, match=rf"{ROUTE}: cannot reach the Kubernetes API at {endpoint} to read it"):
        GatewayRouter(config).current()


def test_blue_exposure_sees_every_rule_and_mirrors(k8s):
    mirror = {
        "matches": [{"path": {"type": "PathPrefix", "value": "/shadow"}}],
        "filters": [{"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "web-blue", "port": 8080}}}],
        "backendRefs": [{"name": "web-green", "port": 8080}],
    }
    k8s.add_httproute("web", [[("web-blue", 0), ("web-green", 100)], ["web-blue"], mirror])
    router = gateway(k8s)
    assert router.blue_exposure() == [
        f"{ROUTE} rules[1] sends 100% to blue (web-blue)",
        f"{ROUTE} rules[2] mirrors requests to blue (web-blue)",
    ]
    with pytest.raises(TrafficError, match=r"its rules split traffic differently .*rules\[1\]: blue 100% / green 0%"):
        router.current()
    assert gateway(k8s, rule=0).current() == Split(0, 100)


def test_the_rule_option_shifts_only_that_rule(k8s):
    named = {"name": "api", "backendRefs": [{"name": "web-blue", "port": 8080, "weight": 1}]}
    k8s.add_httproute("web", [[("web-blue", 100), ("web-green", 0)], named])
    assert gateway(k8s, rule="api").set_split(Split(50, 50)) == Split(50, 50)
    assert k8s.weights(HTTPROUTES, "web") == [{"web-blue": 100, "web-green": 0}, {"web-blue": 50, "web-green": 50}]
    assert gateway(k8s, rule=0).set_split(Split(0, 100)) == Split(0, 100)
    assert k8s.weights(HTTPROUTES, "web") == [{"web-blue": 0, "web-green": 100}, {"web-blue": 50, "web-green": 50}]
    with pytest.raises(TrafficError, match=rf"{ROUTE}: rule 5 does not exist"):
        gateway(k8s, rule=5).current()
    with pytest.raises(TrafficError, match=rf"{ROUTE} has no rules entry named 'web'"):
        gateway(k8s, rule="web").current()
    k8s.add_httproute("other", [["other-svc"]])
    with pytest.raises(TrafficError, match=r"HTTPRoute default/other: no rules entry routes to blue"):
        GatewayRouter(k8s.router_config(target="other")).current()


def test_v1beta1_and_the_endpoint_from_the_environment(k8s, monkeypatch):
    k8s.add_httproute("web", [["web-blue"]])
    monkeypatch.setenv("BGMIGRATE_K8S_API_ENDPOINT", k8s.endpoint)
    config = k8s.router_config(api_version="v1beta1")
    config.api_endpoint = None
    router = GatewayRouter(config)
    assert router.set_split(Split(80, 20)) == Split(80, 20)
    assert any("/gateway.networking.k8s.io/v1beta1/" in c.path and c.method == "PUT" for c in k8s.calls)


def test_kubeconfig_and_context(k8s, tmp_path):
    k8s.add_httproute("web", [["web-blue"]])
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        f"""apiVersion: v1
kind: Config
clusters:
- name: emulator
  cluster: {{server: "{k8s.endpoint}"}}
- name: elsewhere
  cluster: {{server: "http://127.0.0.1:9"}}
users:
- name: ci
  user: {{token: ci-token}}
contexts:
- name: emulator
  context: {{cluster: emulator, user: ci}}
- name: elsewhere
  context: {{cluster: elsewhere, user: ci}}
current-context: elsewhere
"""
    )
    config = k8s.router_config(kubeconfig=str(kubeconfig), context="emulator")
    config.api_endpoint = None
    assert GatewayRouter(config).set_split(Split(90, 10)) == Split(90, 10)
    assert {c.authorization for c in k8s.calls} == {"Bearer ci-token"}
    config = k8s.router_config(kubeconfig=str(tmp_path / "missing"))
    config.api_endpoint = None
    with pytest.raises(TrafficError, match=rf"{ROUTE}: cannot load Kubernetes credentials"):
        GatewayRouter(config).current()
    config = k8s.router_config(kubeconfig=str(kubeconfig), context="nope")
    config.api_endpoint = None
    with pytest.raises(TrafficError, match=rf"{ROUTE}: cannot load Kubernetes credentials .*nope"):
        GatewayRouter(config).current()


def test_backends_in_another_namespace(k8s):
    k8s.add_service("web-green", namespace="green-ns")
    k8s.add_httproute("web", [["web-blue"]])
    router = GatewayRouter(k8s.router_config(green="green-ns/web-green"))
    assert router.set_split(Split(60, 40)) == Split(60, 40)
    refs = k8s.get(HTTPROUTES, "web")["spec"]["rules"][0]["backendRefs"]
    assert refs[1] == {
        "group": "",
        "kind": "Service",
        "name": "web-green",
        "namespace": "green-ns",
        "port": 8080,
        "weight": 40,
    }


def test_health_reads_each_sides_endpoints(k8s):
    k8s.add_httproute("web", [["web-blue"]])
    k8s.add_service("web-green", ready=0, not_ready=2)
    health = gateway(k8s).health()
    assert (health["blue"].healthy, health["blue"].detail) == (True, "Endpoints default/web-blue: 2 ready, 0 not ready")
    assert (health["green"].healthy, health["green"].detail) == (
        False,
        "Endpoints default/web-green: 0 ready, 2 not ready",
    )
    k8s.remove_service("web-green")
    assert gateway(k8s).health()["green"].healthy is False
    assert gateway(k8s, health=False).health() == {}
    k8s.deny("GET", "endpoints")
    with pytest.raises(TrafficError, match="permission denied on Endpoints default/web-blue"):
        gateway(k8s).health()


def test_configuration_errors(k8s):
    with pytest.raises(TrafficError, match="needs --green"):
        GatewayRouter(k8s.router_config(green=None))
    with pytest.raises(TrafficError, match="blue and green name the same backend"):
        GatewayRouter(k8s.router_config(green="web-blue"))
    with pytest.raises(TrafficError, match="variant must be"):
        GatewayRouter(k8s.router_config(variant="linkerd"))


# ---- Istio VirtualService ----------------------------------------------------------------------------

VS = "VirtualService default/web"


def istio(k8s: K8sEmulator, **options) -> IstioRouter:
    return IstioRouter(k8s.router_config("istio", **options))


def test_istio_progressive_shift_and_rollback_with_weights_summing_to_100(k8s):
    k8s.add_virtualservice("web", [[("web-blue", None)]])
    router = istio(k8s)
    assert router.describe() == VS
    assert router.current() == Split(100, 0)
    for green in (10, 50, 100, 0):
        assert router.set_split(Split.green_percent(green)) == Split.green_percent(green)
        assert k8s.weights(VIRTUALSERVICES, "web") == [{"web-blue": 100 - green, "web-green": green}]
        obj = k8s.get(VIRTUALSERVICES, "web")
        assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
    route = k8s.get(VIRTUALSERVICES, "web")["spec"]["http"][0]["route"]
    assert route[1]["destination"] == {"host": "web-green", "port": {"number": 8080}}
    assert router.blue_exposure() == [f"{VS} http[0] (r0) sends 100% to blue (web-blue)"]
    assert router.health()["green"].detail == "Endpoints default/web-green: 1 ready, 1 not ready"


def test_istio_subsets_of_one_host_and_fqdn_hosts(k8s):
    k8s.add_virtualservice("web", [[(("web.default.svc.cluster.local", "blue"), 100)]])
    router = istio(k8s, blue="blue", green="green", host="web")
    assert router.set_split(Split(70, 30)) == Split(70, 30)
    assert k8s.weights(VIRTUALSERVICES, "web") == [
        {"web.default.svc.cluster.local/blue": 70, "web.default.svc.cluster.local/green": 30}
    ]
    assert router.health()["blue"].healthy is None
    k8s.add_virtualservice("fq", [[("web-blue.default.svc.cluster.local", 40), ("web-green", 60)]])
    assert istio(k8s, target="fq").current() == Split(40, 60)


def test_istio_variant_option_on_the_gateway_kind(k8s):
    k8s.add_virtualservice("web", [[("web-blue", 100)]])
    router = GatewayRouter(k8s.router_config(variant="istio"))
    assert router.describe() == VS and router.current() == Split(100, 0)


def test_istio_concurrency_never_reconciled_and_no_status(k8s):
    k8s.add_virtualservice("web", [[("web-blue", 100), ("web-green", 0)]])
    router = istio(k8s)

    def theirs(obj):
        obj["spec"]["http"][0]["route"][1]["weight"] = 50
        obj["spec"]["http"][0]["route"][0]["weight"] = 50

    k8s.interleave(VIRTUALSERVICES, "web", theirs)
    with pytest.raises(TrafficError, match=rf"{VS} was changed by someone else"):
        router.set_split(Split(90, 10))
    assert k8s.weights(VIRTUALSERVICES, "web") == [{"web-blue": 50, "web-green": 50}]

    k8s.faults(VIRTUALSERVICES, "web").never_programmed = True
    router = IstioRouter(k8s.router_config("istio", timeout_s=0.2))
    with pytest.raises(TrafficError, match=rf"{VS}: generation \d+ not programmed after 0.2 s: Reconciled not yet obs"):
        router.set_split(Split(90, 10))
    assert k8s.weights(VIRTUALSERVICES, "web") == [{"web-blue": 50, "web-green": 50}]


def test_istio_without_status_reporting_does_not_wait(k8s):
    with K8sEmulator(istio_status=False) as bare:
        bare.add_virtualservice("web", [[("web-blue", 100)]])
        router = IstioRouter(bare.router_config("istio", timeout_s=0.5))
        assert router.set_split(Split(50, 50)) == Split(50, 50)
        assert "status" not in bare.get(VIRTUALSERVICES, "web")


def test_istio_exposure_in_tcp_routes_and_mirrors(k8s):
    k8s.add_virtualservice("web", [{"route": [{"destination": {"host": "web-green"}}], "mirror": {"host": "web-blue"}}])
    k8s.edit(
        VIRTUALSERVICES, "web", lambda o: o["spec"].update(tcp=[{"route": [{"destination": {"host": "web-blue"}}]}])
    )
    assert istio(k8s).blue_exposure() == [
        f"{VS} http[0] mirrors requests to blue (web-blue)",
        f"{VS} tcp[0] sends 100% to blue (web-blue; only http routes are shifted)",
    ]
    with pytest.raises(TrafficError, match=r"VirtualService other/web not found while trying to read it"):
        istio(k8s, target="web", namespace="other").current()
