"""The progressive, gated switch through each GCP router's official client against its emulator, with
the release state in the real PostgreSQL: a full shift, a failed gate that rolls back, an operation
error that rolls back, a stale version retried, and a rollback that fails too (traffic left on a
consistent split, recorded, contract refused)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cloudrun_emulator import CloudRunEmulator, Target
from compute_emulator import ComputeEmulator, weights
from compute_emulator import router_config as urlmap_config
from k8s_emulator import HTTPROUTES, VIRTUALSERVICES, K8sEmulator
from runner_harness import Release, bgm, pg_exec, seed_sql

from migrator.run.db import connect
from migrator.run.runner import Runner
from migrator.traffic.config import GateSettings, TrafficSettings
from migrator.traffic.registry import make_router
from migrator.traffic.release import ReleaseFlow
from migrator.traffic.router import Router, Split, TrafficError


class Health:
    """Green's health endpoint: answers 200 until told to fail (after ``fail_after`` good answers)."""

    def __init__(self) -> None:
        self.good = True
        self.fail_after: int | None = None
        self.answers = 0
        health = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                health.answers += 1
                if health.fail_after is not None and health.answers > health.fail_after:
                    health.good = False
                self.send_response(200 if health.good else 503)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/health"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Platform:
    """One router on its emulator, and what the tests need to steer and read the emulator."""

    kind: str
    router: Router
    serving: Callable[[], Split]
    fail_next_shift: Callable[[], None]
    fail_every_shift: Callable[[], None]
    concurrent_other_change: Callable[[], None]
    clear_faults: Callable[[], None] = lambda: None  # the emulators whose faults last until cleared


@contextmanager
def _cloudrun() -> Iterator[Platform]:
    with CloudRunEmulator() as emu:
        emu.add_service(
            "svc",
            ["svc-blue", "svc-green"],
            traffic=[Target("REVISION", "svc-blue", 100, "blue"), Target("REVISION", "svc-green", 0, "green")],
        )

        def serving() -> Split:
            now = emu.serving("svc")
            return Split(blue=now.get("svc-blue", 0), green=now.get("svc-green", 0))

        def fail_every() -> None:
            emu.deny("run.services.update")

        yield Platform(
            "cloudrun",
            make_router(emu.router_config()),
            serving,
            lambda: emu.fail_next_operation(13, "Revision 'svc-green' is not ready."),
            fail_every,
            lambda: emu.before_next("PATCH", lambda: emu.change_labels("svc", team="payments")),
        )


@contextmanager
def _urlmap() -> Iterator[Platform]:
    with ComputeEmulator() as emu:
        emu.seed_blue_green("web-map")

        def serving() -> Split:
            w = weights(emu.url_map("web-map"))
            if w.get("blue") == -1:
                return Split(100, 0)
            total = sum(w.values())
            return Split.green_percent(round(100 * w.get("green", 0) / total))

        def other_change() -> None:
            def edit(resource: dict[str, Any]) -> None:
                resource["description"] = "edited by someone else"

            emu.before_next("PUT", "/urlMaps/web-map", lambda e: e.edit_url_map("web-map", edit))

        yield Platform(
            "urlmap",
            make_router(urlmap_config(emu, "web-map")),
            serving,
            lambda: emu.fail_operations(1),
            lambda: emu.fail_operations(50),
            other_change,
        )


def _weights_split(emu: K8sEmulator, plural: str) -> Split:
    row = emu.weights(plural, "web")[0]
    blue = next((w for k, w in row.items() if "blue" in k), 0) or 0
    green = next((w for k, w in row.items() if "green" in k), 0) or 0
    if green == 0:
        return Split(100, 0)
    return Split.green_percent(round(100 * green / (blue + green)))


@contextmanager
def _kubernetes(kind: str) -> Iterator[Platform]:
    with K8sEmulator() as emu:
        emu.add_service("web-blue", ready=2)
        emu.add_service("web-green", ready=2)
        plural = HTTPROUTES if kind == "gateway" else VIRTUALSERVICES
        if kind == "gateway":
            emu.add_httproute("web", [["web-blue"]])
            config = emu.router_config()
        else:
            blue, green = "web-blue.default.svc.cluster.local", "web-green.default.svc.cluster.local"
            emu.add_virtualservice("web", [[(blue, 100), (green, 0)]])
            config = emu.router_config("istio", blue=blue, green=green)

        def never_programmed() -> None:
            emu.faults(plural, "web").never_programmed = True

        def refs_unresolved() -> None:
            emu.faults(plural, "web").resolved_refs = ("BackendNotFound", "injected")
            emu.faults(plural, "web").accepted = ("NotAllowedByListeners", "injected")
            emu.deny("PUT")

        def other_change() -> None:
            def label(obj: dict[str, Any]) -> None:
                obj["metadata"].setdefault("labels", {})["team"] = "payments"

            emu.interleave(plural, "web", label)

        def clear() -> None:
            emu.faults(plural, "web").never_programmed = False
            emu.faults(plural, "web").resolved_refs = None
            emu.faults(plural, "web").accepted = None
            emu.allow_all()

        yield Platform(
            kind,
            make_router(config),
            lambda: _weights_split(emu, plural),
            never_programmed,
            refs_unresolved,
            other_change,
            clear,
        )


PLATFORMS = {
    "cloudrun": _cloudrun,
    "urlmap": _urlmap,
    "gateway": lambda: _kubernetes("gateway"),
    "istio": lambda: _kubernetes("istio"),
}


@pytest.fixture(params=sorted(PLATFORMS))
def platform(request: pytest.FixtureRequest) -> Iterator[Platform]:
    with PLATFORMS[request.param]() as p:
        yield p


@pytest.fixture
def health() -> Iterator[Health]:
    h = Health()
    yield h
    h.close()


@pytest.fixture
def expanded(fresh_pg: str, tmp_path: Path) -> Iterator[Runner]:
    """A release expanded on a fresh database, and a runner on it."""
    rel = Release.write(tmp_path)
    pg_exec(fresh_pg, (rel.migrations / "0001_base.sql").read_text() + seed_sql(20))
    done = bgm("expand", "--plan", str(rel.plan), "--dsn", fresh_pg)
    assert done.returncode == 0, done.stderr
    db = connect(fresh_pg)
    try:
        yield Runner(db)
    finally:
        db.close()


def _flow(runner: Runner, platform: Platform, health: Health, lines: list[str]) -> ReleaseFlow:
    settings = TrafficSettings(
        router=platform.router.config, steps=[10, 50, 100], interval=0,
        gates=GateSettings(probe_url=health.url, probe_timeout=2, probe_successes=2),
    )  # fmt: skip
    return ReleaseFlow(runner, settings, platform.router, say=lines.append)


def _events(runner: Runner, kind: str) -> list[str]:
    return [detail for _, k, _, detail in runner.store.events("0002_release") if k == kind]


def _switched(runner: Runner) -> bool:
    rel = runner.store.release("0002_release")
    return rel is not None and rel.switched_at is not None


def test_progressive_shift_with_gates(expanded: Runner, platform: Platform, health: Health) -> None:
    lines: list[str] = []
    _flow(expanded, platform, health, lines).switch("0002_release")
    assert platform.serving() == Split(0, 100)
    assert _switched(expanded)
    moves = [json.loads(m) for m in _events(expanded, "traffic")]
    assert [(m["blue"], m["green"], m["reason"]) for m in moves] == [
        (90, 10, "step 10%"),
        (50, 50, "step 50%"),
        (0, 100, "step 100%"),
    ]
    assert health.answers == 6  # two probes before each of the three steps
    assert [line for line in lines if line.startswith("gate before")] == [
        f"gate before green {p}%: probe: ok (2 x 2xx from {health.url})" for p in (10, 50, 100)
    ]


def test_a_failed_gate_rolls_back_to_blue(expanded: Runner, platform: Platform, health: Health) -> None:
    health.fail_after = 3  # healthy for the first step's two probes, then 503
    with pytest.raises(TrafficError, match="gate failed before green 50%") as err:
        _flow(expanded, platform, health, []).switch("0002_release")
    assert "traffic rolled back: blue 100% / green 0%" in str(err.value)
    assert err.value.exit_code == 3
    assert platform.serving() == Split(100, 0)
    assert not _switched(expanded)
    moves = _events(expanded, "traffic")
    assert len(moves) == 2 and "rollback: gate failed before green 50%" in moves[1]
    # contract stays refused: the release is not switched
    with pytest.raises(Exception, match="not recorded as switched and decommissioned"):
        expanded.contract("0002_release")


def test_an_operation_error_rolls_back_to_blue(expanded: Runner, platform: Platform, health: Health) -> None:
    flow = _flow(expanded, platform, health, [])
    flow.settings.steps = [50, 100]
    original = platform.router.set_split
    calls = {"n": 0}

    def second_shift_fails(split: Split) -> Split:
        calls["n"] += 1
        if calls["n"] == 2:
            platform.fail_next_shift()
        if calls["n"] == 3:  # the rollback: the platform works again
            platform.clear_faults()
        return original(split)

    platform.router.set_split = second_shift_fails  # type: ignore[method-assign]
    with pytest.raises(TrafficError, match="shift to blue 0% / green 100% failed") as err:
        flow.switch("0002_release")
    assert "traffic rolled back: blue 100% / green 0%" in str(err.value)
    assert platform.serving() == Split(100, 0)
    assert not _switched(expanded)


def test_a_concurrent_change_elsewhere_is_retried(expanded: Runner, platform: Platform, health: Health) -> None:
    platform.concurrent_other_change()
    _flow(expanded, platform, health, []).switch("0002_release")
    assert platform.serving() == Split(0, 100) and _switched(expanded)


def test_api_failing_mid_shift_leaves_a_consistent_recorded_split(
    expanded: Runner, platform: Platform, health: Health
) -> None:
    flow = _flow(expanded, platform, health, [])
    flow.settings.steps = [10, 100]
    original = platform.router.set_split
    calls = {"n": 0}

    def api_breaks(split: Split) -> Split:
        calls["n"] += 1
        if calls["n"] == 2:
            platform.fail_every_shift()  # from the second shift on, every write fails (the rollback too)
        return original(split)

    platform.router.set_split = api_breaks  # type: ignore[method-assign]
    with pytest.raises(TrafficError, match="the rollback to blue failed too") as err:
        flow.switch("0002_release")
    assert "serves blue 90% / green 10%" in str(err.value) and "contract stays refused" in str(err.value)
    assert platform.serving() == Split(90, 10)  # consistent: the last split that was applied
    failed = _events(expanded, "rollback-failed")
    assert len(failed) == 1 and "blue 90% / green 10%" in failed[0]
    assert not _switched(expanded)
