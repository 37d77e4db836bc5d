"""``bgmigrate release`` end to end with the ``local`` router on the real PostgreSQL: the example shop's
blue serving live HTTP load through the weighted proxy, green started by the deploy hook, a gated
progressive switch, blue stopped by the decommission hook, then contract, with zero failed
requests and contract only after blue's weight is 0. A second run, where green's health probe
fails, rolls back to blue, leaves the schema expanded (blue still serves) and never contracts."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from runner_harness import ROOT, bgm, pg_exec, pg_rows

from migrator.traffic.loadgen import EXAMPLE_APP_MIX, LoadGenerator
from migrator.traffic.local_proxy import LocalProxy

APP = ROOT / "examples" / "app"
SEED = (
    "INSERT INTO customers (email, nickname, created_at) SELECT 'seed' || g || '@example.com', 'nick ' || g, "
    "timestamptz '2024-01-01 00:00:00+00' + g * interval '1 min' FROM generate_series(1, 2000) g"
)
PY = shlex.quote(sys.executable)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_blue(dsn: str, port: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "examples.app", "--version", "blue", "--port", str(port), "--dsn", dsn],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    line = proc.stdout.readline() if proc.stdout else ""
    assert "shop blue ready" in line, line
    return proc


@dataclass
class Stage:
    dsn: str
    blue: subprocess.Popen[str]
    proxy: LocalProxy
    green_port: int
    config: Path
    plan: Path
    workdir: Path

    @property
    def green_url(self) -> str:
        return f"http://127.0.0.1:{self.green_port}"


def _config(
    tmp: Path, dsn: str, blue_pid: int, admin: str, blue_url: str, green_url: str, port: int, *flags: str
) -> Path:
    """bgmigrate.toml: the local router, a probe gate on green, and hooks that start green and stop blue."""
    log, pidfile = tmp / "green.log", tmp / "green.pid"
    wait_healthy = (
        f'{PY} -c "import time,urllib.request as u\n'
        f"for _ in range(100):\n"
        f"  try: u.urlopen('{green_url}/health', timeout=1); break\n"
        f'  except Exception: time.sleep(0.1)"'
    )
    extra = " ".join(flags)
    deploy = (
        f"cd {shlex.quote(str(ROOT))} && {PY} -m examples.app --version green --port {port} "
        f"--dsn {shlex.quote(dsn)} {extra} > {log} 2>&1 & echo $! > {pidfile}; {wait_healthy}; true"
    )
    # blue is the test's child: once it exits it stays a zombie (state Z) until the test reaps it
    decommission = (
        f"kill {blue_pid}; while [ -e /proc/{blue_pid} ] && [ \"$(cut -d' ' -f3 /proc/{blue_pid}/stat)\" != Z ]; "
        "do sleep 0.1; done"
    )
    verify = f"{PY} -c \"import urllib.request as u; u.urlopen('{green_url}/customers?plan=free', timeout=5)\""
    text = f"""
[traffic]
router = "local"
target = "{admin}"
blue = "{blue_url}"
green = "{green_url}"
steps = [10, 50, 100]
interval = "1s"

[gates]
probe_url = "{green_url}/health"
probe_successes = 2
probe_timeout = "2s"

[hooks]
deploy_green = {json.dumps(deploy)}
verify = {json.dumps(verify)}
decommission_blue = {json.dumps(decommission)}
timeout = "60s"

[release]
soak = "1s"
blue_application_name = "shop@blue"
"""
    path = tmp / "bgmigrate.toml"
    path.write_text(text)
    return path


@pytest.fixture
def stage(fresh_pg: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Stage]:
    green_flags: tuple[str, ...] = getattr(request, "param", ())
    pg_exec(fresh_pg, (APP / "migrations" / "0001_base.sql").read_text())
    pg_exec(fresh_pg, SEED)
    plan = tmp_path / "plan.json"
    done = bgm("plan", str(APP / "migrations"), "--since", "0001_base.sql", "-o", str(plan))
    assert done.returncode == 0, done.stderr
    blue_port, green_port = _free_port(), _free_port()
    blue = _start_blue(fresh_pg, blue_port)
    blue_url, green_url = f"http://127.0.0.1:{blue_port}", f"http://127.0.0.1:{green_port}"
    proxy = LocalProxy(blue_url, green_url, weights=(100, 0), admin=("127.0.0.1", 0)).start()
    config = _config(tmp_path, fresh_pg, blue.pid, proxy.admin_url, blue_url, green_url, green_port, *green_flags)
    try:
        yield Stage(fresh_pg, blue, proxy, green_port, config, plan, tmp_path)
    finally:
        proxy.stop()
        for proc_pid in [blue.pid, *_green_pid(tmp_path)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc_pid, signal.SIGTERM)
        blue.wait(10)


def _green_pid(tmp: Path) -> list[int]:
    path = tmp / "green.pid"
    return [int(path.read_text().strip())] if path.exists() and path.read_text().strip() else []


def _events(dsn: str) -> list[tuple[int, str, str]]:
    return pg_rows(dsn, "SELECT id, kind, detail FROM bgmigrate.events ORDER BY id")


def _columns(dsn: str) -> set[str]:
    rows = pg_rows(dsn, "SELECT column_name FROM information_schema.columns WHERE table_name = 'customers'")
    return {r[0] for r in rows}


def test_release_under_live_load_with_zero_failed_requests(stage: Stage) -> None:
    load = LoadGenerator(stage.proxy.url, EXAMPLE_APP_MIX, clients=4, think_s=0.01).start()
    try:
        time.sleep(0.5)
        done = bgm("release", "--plan", str(stage.plan), "--dsn", stage.dsn, "--config", str(stage.config), timeout=240)
    finally:
        summary = load.stop()
    assert done.returncode == 0, done.stderr[-3000:]
    assert "stages run: expand, deploy-green, verify, switch, soak, decommission-blue, contract" in done.stdout
    assert summary.failures == 0, str(summary)
    assert summary.side("blue").requests > 50 and summary.side("green").requests > 50, str(summary)

    events = _events(stage.dsn)
    kinds = [k for _, k, _ in events]
    full_green = next(i for i, k, d in events if k == "traffic" and '"green": 100' in d)
    contract = next(i for i, k, _ in events if k == "contract-started")
    decommissioned = next(i for i, k, _ in events if k == "decommissioned")
    assert full_green < decommissioned < contract  # contract only once blue's weight was 0 and blue was gone
    assert kinds.count("gate") == 3  # before each step (the soak's checks are not switch steps)
    assert [k for k in kinds if k in ("hook", "hook-failed")] == ["hook", "hook", "hook"]
    assert pg_rows(stage.dsn, "SELECT status FROM bgmigrate.releases") == [("contracted",)]
    assert {"email_address", "plan"} <= _columns(stage.dsn) and not {"email", "nickname"} & _columns(stage.dsn)
    assert stage.proxy.weights == (0, 100)
    # rerun: nothing left to do
    again = bgm("release", "--plan", str(stage.plan), "--dsn", stage.dsn, "--config", str(stage.config))
    assert again.returncode == 0 and "stages run: none" in again.stdout


@pytest.mark.parametrize("stage", [("--fail-health",)], indirect=True)
def test_a_failing_green_probe_rolls_back_and_never_contracts(stage: Stage) -> None:
    load = LoadGenerator(stage.proxy.url, EXAMPLE_APP_MIX, clients=4, think_s=0.01).start()
    try:
        time.sleep(0.5)
        done = bgm("release", "--plan", str(stage.plan), "--dsn", stage.dsn, "--config", str(stage.config), timeout=240)
    finally:
        summary = load.stop()
    assert done.returncode == 3, done.stderr[-3000:]
    assert "gate failed before green 10%" in done.stderr and "traffic rolled back" in done.stderr
    assert summary.failures == 0 and summary.side("green").requests == 0, str(summary)
    # the schema stays expanded: blue's columns and green's side by side, and blue still serves
    assert {"email", "email_address", "nickname", "plan"} <= _columns(stage.dsn)
    status = pg_rows(stage.dsn, "SELECT status, switched_at, decommissioned_at FROM bgmigrate.releases")
    assert status == [("expanded", None, None)]
    steps = dict(pg_rows(stage.dsn, "SELECT step_id, status FROM bgmigrate.steps WHERE stage = 'contract'"))
    assert steps and set(steps.values()) == {"pending"}
    assert stage.blue.poll() is None  # blue was never decommissioned
    kinds = [k for _, k, _ in _events(stage.dsn)]
    assert "contract-started" not in kinds and "decommissioned" not in kinds
