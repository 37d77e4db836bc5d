"""The Cloud Run router through the real google-cloud-run (REST) and google-cloud-monitoring (gRPC)
clients against the emulator: every assertion is on what the router returned or raised and on the
emulator's state and request log."""

from __future__ import annotations

import re

import pytest
from cloudrun_emulator import CloudRunEmulator, Target
from google.api_core import exceptions
from google.cloud import run_v2
from google.protobuf import field_mask_pb2

from migrator.traffic.cloudrun import CloudRunRouter
from migrator.traffic.gcp import client_kwargs
from migrator.traffic.monitoring import error_ratio, request_counts
from migrator.traffic.router import Split, TrafficError

SVC = "projects/proj/locations/europe-west1/services/svc"


@pytest.fixture
def emu():
    with CloudRunEmulator() as emulator:
        # blue serves everything; green deployed with --no-traffic and a preview tag; an old revision keeps a tag
        emulator.add_service(
            "svc",
            ["svc-old", "svc-blue", "svc-green"],
            traffic=[
                Target("REVISION", "svc-blue", 100, "blue"),
                Target("REVISION", "svc-green", 0, "green"),
                Target("REVISION", "svc-old", 0, "old"),
            ],
        )
        yield emulator


@pytest.fixture
def router(emu):
    r = CloudRunRouter(emu.router_config())
    yield r
    r.close()


def patches(emu):
    return emu.calls("PATCH", "/services/")


# ---- shifting ------------------------------------------------------------------------------------------


def test_progressive_shift_reads_back_each_step_and_keeps_every_tag(emu):
    router = CloudRunRouter(emu.router_config(full_name=True))
    assert router.describe() == f"Cloud Run service {SVC}"
    assert router.current() == Split(100, 0)
    for green in (10, 50, 100):
        assert router.set_split(Split.green_percent(green)) == Split.green_percent(green)
        assert router.current() == Split.green_percent(green)
        serving = emu.serving("svc")
        assert (serving["svc-blue"], serving["svc-green"], serving["svc-old"]) == (100 - green, green, 0)
        state = emu.service("svc")
        assert state.tags() == {"blue": "svc-blue", "green": "svc-green", "old": "svc-old"}
        assert (state.reconciling, state.observed_generation) == (False, state.generation)
    sent = patches(emu)
    assert len(sent) == 3
    for call in sent:  # traffic only, with the etag read just before; never the template read back
        assert call.query["updateMask"] == "traffic"
        assert set(call.body) == {"traffic", "etag"}
        assert call.status == 200
    assert sent[-1].body["traffic"] == [
        {"type": 2, "revision": "svc-blue", "tag": "blue"},
        {"type": 2, "revision": "svc-green", "percent": 100, "tag": "green"},
        {"type": 2, "revision": "svc-old", "tag": "old"},
    ]
    assert len(emu.calls("GET", "/operations/")) == 3 * emu.polls_to_finish
    router.close()


def test_rollback_to_blue(emu, router):
    router.set_split(Split.green_percent(50))
    assert router.set_split(Split(blue=100, green=0)) == Split(100, 0)
    assert router.current() == Split(100, 0)
    serving = emu.serving("svc")
    assert (serving["svc-blue"], serving["svc-green"]) == (100, 0)
    assert emu.service("svc").tags()["green"] == "svc-green"  # green keeps its preview tag


def test_setting_the_split_already_serving_writes_nothing(emu, router):
    router.set_split(Split.green_percent(10))
    generation = emu.service("svc").generation
    assert router.set_split(Split.green_percent(10)) == Split(90, 10)
    assert len(patches(emu)) == 1 and emu.service("svc").generation == generation


def test_untagged_sides_at_zero_leave_the_traffic_list(emu):
    state = emu.service("svc")
    emu.change_traffic("svc", [Target("REVISION", "svc-blue", 100)])
    router = CloudRunRouter(emu.router_config())
    router.set_split(Split(0, 100))
    assert [t.key() for t in state.traffic] == [("REVISION", "svc-green", 100, "")]
    assert router.current() == Split(0, 100)


# ---- concurrency (etag) ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("mismatch", "http"), [("ABORTED", 409), ("FAILED_PRECONDITION", 400), ("412", 412)])
def test_stale_etag_after_a_non_traffic_change_is_retried_once(emu, router, mismatch, http):
    emu.etag_mismatch = mismatch
    emu.before_next("PATCH", lambda: emu.change_labels("svc", owner="someone-else"))
    assert router.set_split(Split.green_percent(10)) == Split(90, 10)
    first, second = patches(emu)
    assert (first.status, second.status) == (http, 200)
    assert first.body["etag"] != second.body["etag"]
    state = emu.service("svc")
    assert state.labels == {"owner": "someone-else"}  # their change survives: only traffic was written
    assert emu.serving("svc")["svc-green"] == 10


def test_stale_etag_after_a_traffic_change_is_refused_and_theirs_kept(emu, router):
    theirs = [Target("REVISION", "svc-blue", 70, "blue"), Target("REVISION", "svc-green", 30, "green")]
    emu.before_next("PATCH", lambda: emu.change_traffic("svc", theirs))
    with pytest.raises(TrafficError, match="changed by someone else") as info:
        router.set_split(Split.green_percent(50))
    message = str(info.value)
    assert SVC in message and "blue svc-blue 70%" in message and "green svc-green 30%" in message
    assert len(patches(emu)) == 1
    assert [t.key() for t in emu.service("svc").traffic] == [t.key() for t in theirs]
    assert router.current() == Split(70, 30)


def test_a_change_landing_right_after_ours_fails_the_read_back(emu, router):
    theirs = [Target("REVISION", "svc-blue", 100, "blue"), Target("REVISION", "svc-green", 0, "green")]
    # after our PATCH, the next read of the service itself (the verification) sees their rollback
    emu.before_next(
        "PATCH",
        lambda: emu.before_next("GET", lambda: emu.change_traffic("svc", theirs), path=r"/services/svc$"),
    )
    emu.polls_to_finish = 1
    with pytest.raises(TrafficError, match=r"finished but the service is not there: serving blue 100% / green 0%"):
        router.set_split(Split.green_percent(50))
    assert len(patches(emu)) == 1
    assert emu.serving("svc")["svc-blue"] == 100


# ---- failures -------------------------------------------------------------------------------------------


def test_failed_operation_names_the_service_and_leaves_traffic(emu, router):
    router.set_split(Split.green_percent(10))
    emu.fail_next_operation(9, "Revision 'svc-green' is not ready and cannot serve traffic.")
    with pytest.raises(TrafficError) as info:
        router.set_split(Split.green_percent(50))
    message = str(info.value)
    assert SVC in message and "failed: Revision 'svc-green' is not ready" in message
    assert "FAILED_PRECONDITION" in message and "serving now: blue svc-blue 90%" in message
    assert emu.serving("svc")["svc-green"] == 10
    assert router.current() == Split(90, 10)
    assert emu.service("svc").terminal_ok is False


def test_operation_that_never_finishes_times_out(emu):
    emu.hang_operations = True
    router = CloudRunRouter(emu.router_config(timeout_s=0.3))
    with pytest.raises(TrafficError, match=r"did not finish within 0.3 s .*serving now: blue svc-blue 100%"):
        router.set_split(Split.green_percent(10))
    assert emu.service("svc").reconciling is True
    assert emu.serving("svc")["svc-blue"] == 100


def test_permission_denied_names_the_service(emu, router):
    emu.deny("run.services.update")
    with pytest.raises(TrafficError) as info:
        router.set_split(Split.green_percent(10))
    assert re.search(rf"permission denied on Cloud Run service {SVC} .*run\.services\.update", str(info.value))
    assert emu.serving("svc")["svc-blue"] == 100
    emu.deny("run.services.get")
    with pytest.raises(TrafficError, match=f"permission denied on Cloud Run service {SVC}"):
        router.current()


@pytest.mark.parametrize("bad", [lambda: Split(60, 50), lambda: Split.green_percent(110), lambda: Split(50.0, 50)])
def test_weights_are_checked_before_any_call(emu, bad):
    router = CloudRunRouter(emu.router_config())
    with pytest.raises(TrafficError, match=r"weight|sum to 100"):
        router.set_split(bad())
    with pytest.raises(TrafficError, match="takes a Split"):
        router.set_split((50, 50))
    assert emu.requests == []


def test_unknown_revision_is_refused_before_any_write(emu):
    router = CloudRunRouter(emu.router_config(green="svc-nope"))
    with pytest.raises(TrafficError, match=f"green revision svc-nope of Cloud Run service {SVC} not found"):
        router.set_split(Split.green_percent(10))
    assert patches(emu) == []
    assert emu.serving("svc")["svc-blue"] == 100


def test_unknown_service(emu):
    router = CloudRunRouter(emu.router_config("nope"))
    with pytest.raises(
        TrafficError,
        match=r"Cloud Run service projects/proj/locations/europe-west1/services/nope "
        r"not found .*'nope' of kind 'SERVICE'",
    ):
        router.current()


def test_bad_configuration_is_refused():
    base = {"kind": "cloudrun", "blue": "a", "green": "b"}
    from migrator.traffic.router import RouterConfig

    with pytest.raises(TrafficError, match="needs project, region"):
        CloudRunRouter(RouterConfig(target="svc", **base))
    with pytest.raises(TrafficError, match="is not projects/PROJECT"):
        CloudRunRouter(RouterConfig(target="projects/p/services/s", **base))
    with pytest.raises(TrafficError, match="same revision"):
        CloudRunRouter(RouterConfig(kind="cloudrun", target="svc", blue="a", green="a", project="p", region="r"))


def test_traffic_to_a_third_party_is_an_error_naming_it(emu, router):
    emu.change_traffic("svc", [Target("REVISION", "svc-blue", 90), Target("REVISION", "svc-old", 10)])
    with pytest.raises(TrafficError, match="sends 10% to revision svc-old"):
        router.current()
    with pytest.raises(TrafficError, match="sends 10% to revision svc-old"):
        router.set_split(Split.green_percent(10))
    emu.change_traffic("svc", [Target("LATEST", "", 100)])
    with pytest.raises(TrafficError, match=r"sends 100% to LATEST \(now svc-green\)"):
        router.current()
    assert patches(emu) == []


def test_emulator_fails_the_operation_for_an_unknown_revision(emu):
    """What the router's revision check saves us from: Cloud Run takes the PATCH and fails the operation."""
    client = run_v2.ServicesClient(**client_kwargs(emu.router_config()))
    before = emu.service("svc").etag
    body = run_v2.Service(name=SVC, traffic=[run_v2.TrafficTarget(type_=2, revision="svc-nope", percent=100)])
    operation = client.update_service(service=body, update_mask=field_mask_pb2.FieldMask(paths=["traffic"]))
    with pytest.raises(exceptions.InternalServerError, match="Revision 'svc-nope' does not exist or is deleted"):
        operation.result(timeout=5)
    assert emu.serving("svc")["svc-blue"] == 100 and emu.service("svc").etag != before
    with pytest.raises(exceptions.BadRequest, match="must add up to 100, got 90"):
        bad = [run_v2.TrafficTarget(type_="TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION", revision="svc-blue", percent=90)]
        client.update_service(service=run_v2.Service(name=SVC, traffic=bad), update_mask={"paths": ["traffic"]})


# ---- exposure, tags, health ------------------------------------------------------------------------------


def test_blue_exposure_counts_percent_and_tags_until_the_tags_are_dropped(emu, router):
    router.set_split(Split.green_percent(10))
    reasons = router.blue_exposure()
    assert len(reasons) == 2
    assert "sends 90% to blue (svc-blue)" in reasons[0]
    assert "tag 'blue' points at blue" in reasons[1] and "https://blue---svc-" in reasons[1]

    router.set_split(Split.green_percent(100))
    reasons = router.blue_exposure()  # 0%, but its tag URL still reaches blue
    assert len(reasons) == 1 and "tag 'blue' points at blue (svc-blue)" in reasons[0]

    assert router.drop_blue_tags() == ["blue"]
    assert router.blue_exposure() == []
    assert emu.service("svc").tags() == {"green": "svc-green", "old": "svc-old"}
    assert router.current() == Split(0, 100)
    writes = len(patches(emu))
    assert router.drop_blue_tags() == []  # nothing left: no write
    assert len(patches(emu)) == writes


def test_dropping_the_tag_of_a_serving_blue_keeps_its_percent(emu, router):
    router.set_split(Split.green_percent(40))
    assert router.drop_blue_tags() == ["blue"]
    assert router.current() == Split(60, 40)
    assert ("REVISION", "svc-blue", 60, "") in [t.key() for t in emu.service("svc").traffic]


def test_blue_exposure_sees_a_change_not_yet_serving(emu, router):
    router.set_split(Split.green_percent(100))
    router.drop_blue_tags()
    emu.hang_operations = True
    client = run_v2.ServicesClient(**client_kwargs(emu.router_config()))
    back = [run_v2.TrafficTarget(type_=2, revision="svc-blue", percent=100)]
    client.update_service(service=run_v2.Service(name=SVC, traffic=back), update_mask={"paths": ["traffic"]})
    reasons = router.blue_exposure()
    assert len(reasons) == 1 and "is being changed to send 100% to blue (svc-blue)" in reasons[0]


def test_health_reads_each_revision_ready_condition(emu, router):
    assert {s: (h.healthy, h.detail) for s, h in router.health().items()} == {
        "blue": (True, "revision svc-blue Ready: succeeded"),
        "green": (True, "revision svc-green Ready: succeeded"),
    }
    emu.set_revision("svc", "svc-green", ready=False, reason="HEALTH_CHECK_CONTAINER_ERROR", message="probe failed")
    green = router.health()["green"]
    assert (green.side, green.healthy) == ("green", False)
    assert green.detail == "revision svc-green Ready: failed (HEALTH_CHECK_CONTAINER_ERROR): probe failed"
    emu.set_revision("svc", "svc-green", ready=None)
    assert router.health()["green"].healthy is False
    del emu.service("svc").revisions["svc-green"]
    assert router.health()["green"] == type(green)("green", False, "revision svc-green not found")


# ---- Cloud Monitoring ------------------------------------------------------------------------------------


def test_error_ratio_from_request_count(emu):
    config = emu.router_config()
    emu.monitoring_page_size = 1  # the pager follows next_page_token
    emu.add_request_counts("svc", "svc-green", {"200": 150, "503": 6, "500": 4})
    emu.add_request_counts("svc", "svc-green", {"200": 40}, age_s=90)
    emu.add_request_counts("svc", "svc-green", {"500": 1000}, age_s=900)  # outside the window
    emu.add_request_counts("svc", "svc-blue", {"500": 500})  # another revision
    emu.add_request_counts("svc", "svc-green", {"500": 500}, location="us-central1")  # same name, other region
    assert request_counts(config, service="svc", revision="svc-green", window_s=300) == (200, 10)
    assert error_ratio(config, service="svc", revision="svc-green", window_s=300) == pytest.approx(0.05)
    assert error_ratio(config, service=SVC, revision=f"{SVC}/revisions/svc-green", window_s=300) == pytest.approx(0.05)
    assert error_ratio(config, service="svc", revision="svc-old", window_s=300) is None  # no requests
    grpc_calls = emu.calls("GRPC")
    assert grpc_calls[0].body["name"] == "projects/proj"
    assert 'resource.labels.revision_name = "svc-green"' in grpc_calls[0].body["filter"]
    assert any(c.body["page_token"] for c in grpc_calls)


def test_error_ratio_permission_denied_and_bad_window(emu):
    config = emu.router_config()
    emu.deny("monitoring.timeSeries.list")
    with pytest.raises(TrafficError, match=r"permission denied on Cloud Monitoring \(project proj\)"):
        error_ratio(config, service="svc", revision="svc-green", window_s=300)
    with pytest.raises(TrafficError, match="positive number of seconds"):
        error_ratio(config, service="svc", revision="svc-green", window_s=0)


def test_emulator_wire_takes_enum_names_and_answers_in_the_encoding_asked(emu):
    import requests

    url = f"{emu.endpoint}/v2/{SVC}"
    etag = requests.get(url, timeout=5).json()["etag"]
    body = {
        "etag": etag,
        "traffic": [
            {"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION", "revision": "svc-blue", "percent": 75, "tag": "blue"},
            {"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION", "revision": "svc-green", "percent": 25},
        ],
    }
    op = requests.patch(url, params={"updateMask": "traffic"}, json=body, timeout=5).json()
    assert op["metadata"]["@type"] == "type.googleapis.com/google.cloud.run.v2.Service" and "done" not in op
    while not op.get("done"):
        op = requests.get(f"{emu.endpoint}/v2/{op['name']}", timeout=5).json()
    assert op["response"]["trafficStatuses"][1] == {
        "type": "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION",
        "revision": "svc-green",
        "percent": 25,
    }
    assert op["response"]["generation"] == op["response"]["observedGeneration"] == "2"
    as_ints = requests.get(url, params={"$alt": "json;enum-encoding=int"}, timeout=5).json()
    assert as_ints["trafficStatuses"][0]["type"] == 2 and as_ints["etag"] != etag
    stale = requests.patch(url, params={"updateMask": "traffic"}, json=body, timeout=5)
    assert (stale.status_code, stale.json()["error"]["status"]) == (409, "ABORTED")
    no_mask = requests.patch(url, json={"traffic": body["traffic"]}, timeout=5)
    assert no_mask.status_code == 400 and "template" in no_mask.json()["error"]["message"]
