"""The URL map router through the real google-cloud-compute clients (REST) against the Compute emulator."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from compute_emulator import ComputeEmulator, router_config, weights

from migrator.traffic.router import Split, TrafficError
from migrator.traffic.urlmap import UrlMapRouter

MAP = "URL map projects/bg-project/global/urlMaps/web-map"


@pytest.fixture
def emu() -> Iterator[ComputeEmulator]:
    with ComputeEmulator() as emulator:
        yield emulator


def _bs(emu: ComputeEmulator, name: str) -> str:
    return emu.url("backendServices", name)


def _full_map(emu: ComputeEmulator) -> dict:
    """Default route to blue (with a URL rewrite), a host rule to path matcher 'api' (default service blue,
    a route rule on a header to green, a static path rule to a bucket)."""
    return {
        "description": "shop",
        "defaultService": _bs(emu, "blue"),
        "defaultRouteAction": {"urlRewrite": {"pathPrefixRewrite": "/"}},
        "hostRules": [{"hosts": ["api.example.com"], "pathMatcher": "api"}],
        "pathMatchers": [
            {
                "name": "api",
                "defaultService": "global/backendServices/blue",  # a partial URL, as users write them
                "routeRules": [
                    {
                        "priority": 1,
                        "matchRules": [{"prefixMatch": "/", "headerMatches": [{"headerName": "x-canary"}]}],
                        "service": _bs(emu, "green"),
                    }
                ],
                "pathRules": [{"paths": ["/static/*"], "service": emu.url("backendBuckets", "assets")}],
            }
        ],
    }


def _seed_full(emu: ComputeEmulator) -> None:
    emu.add_backend_bucket("assets")
    emu.seed_blue_green(**_full_map(emu))


def _without(resource: dict, *keys: str) -> dict:
    return {k: v for k, v in resource.items() if k not in keys}


# ---- shifting ------------------------------------------------------------------------------------------


def test_progressive_shift_from_default_service(emu: ComputeEmulator) -> None:
    _seed_full(emu)
    router = UrlMapRouter(router_config(emu))
    before = emu.url_map("web-map")
    assert router.current() == Split(100, 0)

    for percent in (10, 50, 100):
        fingerprint = emu.url_map("web-map")["fingerprint"]
        assert router.set_split(Split.green_percent(percent)) == Split.green_percent(percent)
        assert router.current() == Split.green_percent(percent)
        stored = emu.url_map("web-map")
        assert weights(stored) == {"blue": (100 - percent) * 10, "green": percent * 10}
        assert "defaultService" not in stored
        assert stored["fingerprint"] != fingerprint
        # only the default route's weights changed: the rewrite, the path matchers, the rest as they were
        assert stored["defaultRouteAction"]["urlRewrite"] == {"pathPrefixRewrite": "/"}
        assert _without(stored, "defaultService", "defaultRouteAction", "fingerprint") == _without(
            before, "defaultService", "defaultRouteAction", "fingerprint"
        )

    puts = emu.writes("web-map")
    assert [c.status for c in puts] == [200, 200, 200]
    assert all(c.method == "PUT" and c.body["fingerprint"] for c in puts)
    # each operation was awaited on the emulator (our GlobalOperationsClient), to DONE before the re-read
    assert len(emu.calls_to("POST", "/global/operations/")) == 6
    assert all(op.body["status"] == "DONE" for op in emu.operations.values())


def test_shift_is_not_visible_before_the_operation_is_done(emu: ComputeEmulator) -> None:
    emu.seed_blue_green()
    router = UrlMapRouter(router_config(emu))
    seen: list[dict] = []
    emu.before_next("POST", "/wait", lambda e: seen.append(weights(e.url_map("web-map"))))
    assert router.set_split(Split(90, 10)) == Split(90, 10)
    assert seen == [{"blue": -1}]  # still the default service while the operation runs
    assert weights(emu.url_map("web-map")) == {"blue": 900, "green": 100}


def test_same_split_writes_nothing(emu: ComputeEmulator) -> None:
    emu.seed_blue_green()
    router = UrlMapRouter(router_config(emu))
    assert router.set_split(Split(100, 0)) == Split(100, 0)  # default service blue already serves that
    router.set_split(Split(50, 50))
    router.set_split(Split(50, 50))
    assert len(emu.writes("web-map")) == 1


def test_path_matcher(emu: ComputeEmulator) -> None:
    _seed_full(emu)
    router = UrlMapRouter(router_config(emu, path_matcher="api"))
    assert router.current() == Split(100, 0)
    assert router.set_split(Split(70, 30)) == Split(70, 30)
    stored = emu.url_map("web-map")
    matcher = stored["pathMatchers"][0]
    assert weights(stored, "api") == {"blue": 700, "green": 300}
    assert "defaultService" not in matcher
    assert matcher["routeRules"] == _full_map(emu)["pathMatchers"][0]["routeRules"]
    assert weights(stored) == {"blue": -1}  # the URL map's own default route is untouched
    assert router.describe() == MAP

    with pytest.raises(TrafficError, match=r"has no path matcher 'web' \(it has: api\)"):
        UrlMapRouter(router_config(emu, path_matcher="web")).current()


def test_rollback_to_blue(emu: ComputeEmulator) -> None:
    emu.seed_blue_green()
    router = UrlMapRouter(router_config(emu))
    router.set_split(Split(50, 50))
    assert router.set_split(Split(100, 0)) == Split(100, 0)
    assert weights(emu.url_map("web-map")) == {"blue": 1000, "green": 0}  # both entries kept, green at 0
    assert router.current() == Split(100, 0)
    assert router.blue_exposure() == [f"{MAP}: the default route sends weight 1000 of 1000 to blue (blue)"]


def test_small_weights_never_read_as_zero(emu: ComputeEmulator) -> None:
    emu.seed_blue_green(
        defaultRouteAction={
            "weightedBackendServices": [
                {"backendService": _bs(emu, "blue"), "weight": 1},
                {"backendService": _bs(emu, "green"), "weight": 999},
            ]
        }
    )
    assert UrlMapRouter(router_config(emu)).current() == Split(1, 99)


# ---- concurrency -----------------------------------------------------------------------------------------


def test_stale_fingerprint_after_another_change_is_retried(emu: ComputeEmulator) -> None:
    emu.seed_blue_green()
    router = UrlMapRouter(router_config(emu))
    router.current()
    emu.before_next(
        "PUT", "/urlMaps/web-map", lambda e: e.edit_url_map("web-map", lambda m: m.update(description="by hand"))
    )
    assert router.set_split(Split(90, 10)) == Split(90, 10)
    assert [c.status for c in emu.writes("web-map")] == [412, 200]
    stored = emu.url_map("web-map")
    assert stored["description"] == "by hand"  # the other change is kept, not overwritten
    assert weights(stored) == {"blue": 900, "green": 100}


def test_stale_fingerprint_after_a_traffic_change_is_refused(emu: ComputeEmulator) -> None:
    emu.seed_blue_green()
    router = UrlMapRouter(router_config(emu))
    router.set_split(Split(90, 10))

    def hand_rollout(m: dict) -> None:
        m["defaultRouteAction"]["weightedBackendServices"][0]["weight"] = 500
        m["defaultRouteAction"]["weightedBackendServices"][1]["weight"] = 500

    emu.before_next("PUT", "/urlMaps/web-map", lambda e: e.edit_url_map("web-map", hand_rollout))
    with pytest.raises(TrafficError) as caught:
        router.set_split(Split(70, 30))
    message = str(caught.value)
    assert MAP in message and "changed by someone else" in message
    assert "now serves blue 50% / green 50%" in message and "not overwritten" in message
    assert caught.value.exit_code == 3
    assert weights(emu.url_map("web-map")) == {"blue": 500, "green": 500}
    assert [c.status for c in emu.writes("web-map")] == [200, 412]  # never written over


def test_traffic_changed_since_the_last_read_is_refused(emu: ComputeEmulator) -> None:
    emu.seed_blue_green()
    router = UrlMapRouter(router_config(emu))
    router.set_split(Split(90, 10))
    emu.edit_url_map("web-map", lambda m: m.update(defaultService=_bs(emu, "blue"), defaultRouteAction={}))
    with pytest.raises(TrafficError, match=r"since this router last read it.*now serves blue 100% / green 0%"):
        router.set_split(Split(50, 50))
    assert weights(emu.url_map("web-map")) == {"blue": -1}
    assert len(emu.writes("web-map")) == 1
    assert router.current() == Split(100, 0)  # reading accepts what is there now
    assert router.set_split(Split(50, 50)) == Split(50, 50)


# ---- failures --------------------------------------------------------------------------------------------


def test_operation_error(emu: ComputeEmulator) -> None:
    emu.seed_blue_green()
    router = UrlMapRouter(router_config(emu))
    emu.fail_operations(code="RESOURCE_NOT_READY", message="The resource 'green' is not ready")
    with pytest.raises(TrafficError) as caught:
        router.set_split(Split(90, 10))
    message = str(caught.value)
    assert message.startswith(f"{MAP}: operation operation-")
    assert "RESOURCE_NOT_READY: The resource 'green' is not ready (HTTP 400)" in message
    assert message.endswith("the default route serves blue 100% / green 0%")
    assert weights(emu.url_map("web-map")) == {"blue": -1}
    assert router.current() == Split(100, 0)
    assert router.set_split(Split(90, 10)) == Split(90, 10)  # the next attempt goes through


def test_operation_that_never_finishes_times_out(emu: ComputeEmulator) -> None:
    emu.polls_to_done = 10_000
    emu.seed_blue_green()
    router = UrlMapRouter(router_config(emu, timeout_s=0.6))
    with pytest.raises(TrafficError, match=rf"timed out after 0.6s while trying to shift traffic .* on {MAP}"):
        router.set_split(Split(90, 10))


def test_rollback_after_a_timed_out_shift_that_applied_later(emu: ComputeEmulator) -> None:
    emu.polls_to_done = 10_000
    emu.seed_blue_green()
    router = UrlMapRouter(router_config(emu, timeout_s=0.3))
    with pytest.raises(TrafficError, match="timed out"):
        router.set_split(Split(90, 10))
    emu.finish_operations()  # the API finished it after we gave up
    assert weights(emu.url_map("web-map")) == {"blue": 900, "green": 100}
    emu.polls_to_done = 1
    assert router.set_split(Split(100, 0)) == Split(100, 0)  # our own late change is not "someone else's"
    assert weights(emu.url_map("web-map")) == {"blue": 1000, "green": 0}


def test_permission_denied(emu: ComputeEmulator) -> None:
    emu.seed_blue_green()
    emu.deny("compute.urlMaps.update")
    router = UrlMapRouter(router_config(emu))
    with pytest.raises(TrafficError, match=rf"^permission denied on {MAP} while trying to shift traffic") as caught:
        router.set_split(Split(90, 10))
    assert "compute.urlMaps.update" in str(caught.value)
    assert weights(emu.url_map("web-map")) == {"blue": -1}

    emu.deny("compute.urlMaps.get")
    with pytest.raises(TrafficError, match=rf"^permission denied on {MAP} while trying to read the traffic split"):
        router.current()


def test_missing_url_map(emu: ComputeEmulator) -> None:
    emu.seed_blue_green()
    with pytest.raises(TrafficError, match=r"URL map projects/bg-project/global/urlMaps/nope not found"):
        UrlMapRouter(router_config(emu, "nope")).current()


def test_unknown_backend_service(emu: ComputeEmulator) -> None:
    emu.seed_blue_green()
    router = UrlMapRouter(router_config(emu, green="green-typo"))
    with pytest.raises(TrafficError) as caught:
        router.set_split(Split(90, 10))
    message = str(caught.value)
    assert message.startswith(f"{MAP}: cannot shift traffic")
    assert "'projects/bg-project/global/backendServices/green-typo' was not found" in message
    assert message.endswith("traffic stays at blue 100% / green 0%")
    assert [c.status for c in emu.writes("web-map")] == [404]
    assert weights(emu.url_map("web-map")) == {"blue": -1}


def test_a_third_backend_is_named(emu: ComputeEmulator) -> None:
    emu.add_backend_service("canary")
    emu.seed_blue_green(
        defaultRouteAction={
            "weightedBackendServices": [
                {"backendService": _bs(emu, "blue"), "weight": 900},
                {"backendService": _bs(emu, "canary"), "weight": 100},
            ]
        }
    )
    router = UrlMapRouter(router_config(emu))
    third = r"sends weight 100 to projects/bg-project/global/backendServices/canary, which is neither blue"
    with pytest.raises(TrafficError, match=third):
        router.current()
    with pytest.raises(TrafficError, match=third):
        router.set_split(Split(50, 50))
    assert emu.writes("web-map") == []


def test_blue_and_green_given_as_urls(emu: ComputeEmulator) -> None:
    emu.seed_blue_green()
    config = router_config(
        emu, "projects/bg-project/global/urlMaps/web-map", blue=_bs(emu, "blue"), green="global/backendServices/green"
    )
    config.project = None  # taken from the URL map's path
    router = UrlMapRouter(config)
    assert router.set_split(Split(40, 60)) == Split(40, 60)
    assert weights(emu.url_map("web-map")) == {"blue": 400, "green": 600}


# ---- health and exposure --------------------------------------------------------------------------------


def test_health(emu: ComputeEmulator) -> None:
    emu.seed_blue_green()
    router = UrlMapRouter(router_config(emu))
    health = router.health()
    assert health["blue"].healthy is True and health["green"].healthy is True
    assert "2/2 instances HEALTHY" in health["green"].detail

    emu.set_health("green", "UNHEALTHY", instance=1)
    health = router.health()
    assert health["blue"].healthy is True
    assert health["green"].healthy is False
    assert "1/2 instances HEALTHY" in health["green"].detail
    assert "green-0-1 UNHEALTHY (group green-ig-0)" in health["green"].detail
    assert len(emu.calls_to("POST", "/backendServices/green/getHealth")) == 2


def test_health_of_serverless_backends_is_unknown(emu: ComputeEmulator) -> None:
    emu.add_backend_service("blue", neg=True)
    emu.add_backend_service("green", neg=True)
    emu.add_url_map("web-map", {"defaultService": _bs(emu, "blue")})
    health = UrlMapRouter(router_config(emu)).health()
    assert health["green"].healthy is None and "no health check" in health["green"].detail
    assert emu.calls_to(path_contains="getHealth") == []


def test_health_permission_denied(emu: ComputeEmulator) -> None:
    emu.seed_blue_green()
    emu.deny("compute.backendServices.get")
    with pytest.raises(TrafficError, match=r"permission denied on backend service .*/backendServices/blue \(blue\)"):
        UrlMapRouter(router_config(emu)).health()


def test_blue_exposure_finds_blue_in_a_route_rule(emu: ComputeEmulator) -> None:
    emu.add_backend_bucket("assets")
    body = _full_map(emu)
    matcher = body["pathMatchers"][0]
    matcher["defaultService"] = _bs(emu, "green")
    matcher["routeRules"][0]["service"] = _bs(emu, "blue")  # the canary header still reaches blue
    emu.seed_blue_green(**body)
    router = UrlMapRouter(router_config(emu))
    router.set_split(Split(0, 100))
    assert weights(emu.url_map("web-map")) == {"blue": 0, "green": 1000}
    assert router.current() == Split(0, 100)
    assert router.blue_exposure() == [
        f"{MAP}: path matcher 'api' route rule priority 1 sends all its requests to blue (blue)"
    ]

    def weighted_rule(m: dict) -> None:
        rule = m["pathMatchers"][0]["routeRules"][0]
        del rule["service"]
        rule["routeAction"] = {
            "weightedBackendServices": [
                {"backendService": _bs(emu, "blue"), "weight": 1},
                {"backendService": _bs(emu, "green"), "weight": 99},
            ],
            "requestMirrorPolicy": {"backendService": _bs(emu, "blue")},
        }
        m["pathMatchers"][0]["pathRules"].append({"paths": ["/old/*"], "service": _bs(emu, "blue")})

    emu.edit_url_map("web-map", weighted_rule)
    assert router.blue_exposure() == [
        f"{MAP}: path matcher 'api' path rule /old/* sends all its requests to blue (blue)",
        f"{MAP}: path matcher 'api' route rule priority 1 sends weight 1 of 100 to blue (blue)",
        f"{MAP}: path matcher 'api' route rule priority 1 mirrors its requests to blue (blue)",
    ]

    def clean(m: dict) -> None:
        m["pathMatchers"][0]["routeRules"][0]["routeAction"] = {
            "weightedBackendServices": [
                {"backendService": _bs(emu, "blue"), "weight": 0},
                {"backendService": _bs(emu, "green"), "weight": 100},
            ]
        }
        m["pathMatchers"][0]["pathRules"].pop()

    emu.edit_url_map("web-map", clean)
    assert router.blue_exposure() == []


# ---- the emulator behaves like the API where the router relies on it ----------------------------------------


def test_emulator_validates_like_the_api(emu: ComputeEmulator) -> None:
    from google.api_core import exceptions
    from google.cloud import compute_v1

    from migrator.traffic.gcp import client_kwargs

    emu.seed_blue_green()
    client = compute_v1.UrlMapsClient(**client_kwargs(router_config(emu)))

    def put(change) -> None:
        url_map = client.get(project=emu.project, url_map="web-map")
        change(url_map)
        client.update_unary(project=emu.project, url_map="web-map", url_map_resource=url_map)

    def wbs(blue: int, green: int) -> list:
        return [
            compute_v1.WeightedBackendService(backend_service=_bs(emu, "blue"), weight=blue),
            compute_v1.WeightedBackendService(backend_service=_bs(emu, "green"), weight=green),
        ]

    def both(m) -> None:  # default service and weights together
        m.default_route_action.weighted_backend_services = wbs(500, 500)

    def too_heavy(m) -> None:
        m.default_service = None
        m.default_route_action.weighted_backend_services = wbs(1001, 0)

    def all_zero(m) -> None:
        m.default_service = None
        m.default_route_action.weighted_backend_services = wbs(0, 0)

    def stale(m) -> None:
        m.fingerprint = "AAAAAAAAAAA="

    with pytest.raises(exceptions.BadRequest, match="only one of defaultService"):
        put(both)
    with pytest.raises(exceptions.BadRequest, match="Must be between 0 and 1000"):
        put(too_heavy)
    with pytest.raises(exceptions.BadRequest, match="all 0"):
        put(all_zero)
    with pytest.raises(exceptions.PreconditionFailed, match="Invalid fingerprint"):
        put(stale)
    assert weights(emu.url_map("web-map")) == {"blue": -1}

    # PATCH is a JSON merge patch: an explicit empty defaultService is refused, not taken as "clear"
    url_map = client.get(project=emu.project, url_map="web-map")
    patch = compute_v1.UrlMap(fingerprint=url_map.fingerprint, default_service="")
    with pytest.raises(exceptions.BadRequest, match="malformed"):
        client.patch_unary(project=emu.project, url_map="web-map", url_map_resource=patch)
