"""The example shop (examples/app) through its own release on a scratch PostgreSQL database.

Blue (v1) and green (v2) run as real processes (``python -m examples.app`` from the repository
root) behind the local proxy, and bgmigrate's runner commands run the plan of the naive
``0002_release.sql``: blue keeps serving through expand, green serves after expand and after
contract, what one version writes the other reads (the rename's sync trigger and backfill), and the
switch and blue's decommissioning happen under load without a failed request. The Alembic form of
the same history plans the same steps and, run, leaves the same schema (with ``alembic_version``
stamped at the release revision).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from runner_harness import bgm, pg_exec, pg_rows, pg_schema

from migrator.traffic.loadgen import EXAMPLE_APP_MIX, LoadGenerator
from migrator.traffic.local import LocalRouter
from migrator.traffic.local_proxy import LocalProxy
from migrator.traffic.router import RouterConfig, Split

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "examples" / "app"
MIGRATIONS = APP / "migrations"
ALEMBIC = APP / "alembic"
ALEMBIC_BASE, ALEMBIC_RELEASE = "3a7c1e90b2d4", "9d4b2f61c8e7"
SEED = (
    "INSERT INTO customers (email, nickname, created_at) SELECT 'seed' || g || '@example.com', 'nick ' || g, "
    "timestamptz '2024-01-01 00:00:00+00' + g * interval '1 min' FROM generate_series(1, 1500) g"
)


class App:
    """One version of the shop in its own process."""

    def __init__(self, version: str, dsn: str, *extra: str) -> None:
        self.version = version
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "examples.app", "--version", version, "--port", "0", "--dsn", dsn, *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        line = self.proc.stdout.readline()
        if f"shop {version} ready: " not in line:
            self.proc.kill()
            pytest.fail(f"{version} did not start: {line!r} {self.proc.stderr.read()}")
        self.url = line.split("ready: ", 1)[1].split()[0]

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any, str | None]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read()), response.headers["X-App-Version"]
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"null"), err.headers["X-App-Version"]

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, payload, version = self.call(method, path, body)
        assert status in (200, 201) and version == self.version, (self.version, method, path, status, payload)
        return payload

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            assert self.proc.wait(timeout=15) == 0, self.proc.stderr.read()
        self.proc.stdout.close()
        self.proc.stderr.close()


@pytest.fixture
def apps():
    started: list[App] = []

    def start(version: str, dsn: str, *extra: str) -> App:
        app = App(version, dsn, *extra)
        started.append(app)
        return app

    yield start
    for app in started:
        if app.proc.poll() is None:
            app.proc.kill()
            app.proc.wait()


def _run(*args: str) -> str:
    done = bgm(*args)
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


def _sessions(dsn: str) -> dict[str, int]:
    rows = pg_rows(
        dsn,
        "SELECT application_name, count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND application_name LIKE 'shop@%' GROUP BY 1",
    )
    return dict(rows)


def _no_failures(gen: LoadGenerator, more: int) -> None:
    """Let ``more`` requests pass, then stop the load and require that none failed."""
    assert gen.wait_for(len(gen.records) + more, timeout_s=30)
    summary = gen.stop()
    assert summary.failures == 0, summary


def test_blue_and_green_through_the_whole_release(fresh_pg: str, tmp_path: Path, apps) -> None:
    dsn = fresh_pg
    pg_exec(dsn, (MIGRATIONS / "0001_base.sql").read_text() + ";\n" + SEED)
    plan = tmp_path / "plan.json"
    _run("plan", str(MIGRATIONS), "--since", "0001_base.sql", "-o", str(plan))

    blue = apps("blue", dsn)
    assert blue.ok("GET", "/customers/7") == {
        "id": 7,
        "email": "seed7@example.com",
        "nickname": "nick 7",
        "created_at": "2024-01-01T00:07:00+00:00",
    }
    green = apps("green", dsn)  # deployed too early: its health says so, and nothing routes to it
    status, payload, _ = green.call("GET", "/health")
    assert status == 503 and "email_address" in payload["error"]

    # expand (and the backfill) while blue serves its whole mix: nothing fails
    load = LoadGenerator(blue.url, EXAMPLE_APP_MIX, clients=8).start()
    assert load.wait_for(100)
    _run("expand", "--plan", str(plan), "--dsn", dsn)
    _no_failures(load, 200)

    # green after expand: healthy, and each version reads and changes what the other wrote
    assert green.ok("GET", "/health") == {"status": "ok", "version": "green"}
    assert green.ok("GET", "/customers/7")["email"] == "seed7@example.com"  # backfilled
    by_blue = blue.ok("POST", "/customers", {"email": "blue@example.com", "nickname": "b"})
    assert green.ok("GET", f"/customers/{by_blue['id']}") | {"created_at": None} == {
        "id": by_blue["id"],
        "email": "blue@example.com",
        "plan": "free",  # blue never names plan: the default fills it
        "created_at": None,
    }
    by_green = green.ok("POST", "/customers", {"email": "green@example.com", "plan": "pro"})
    assert blue.ok("GET", f"/customers/{by_green['id']}")["email"] == "green@example.com"  # the sync trigger
    green.ok("PUT", f"/customers/{by_blue['id']}", {"email": "blue2@example.com"})
    assert blue.ok("GET", f"/customers/{by_blue['id']}")["email"] == "blue2@example.com"
    blue.ok("PUT", f"/customers/{by_green['id']}", {"email": "green2@example.com", "nickname": "g"})
    assert green.ok("GET", f"/customers/{by_green['id']}")["email"] == "green2@example.com"
    assert [c["id"] for c in green.ok("GET", "/customers?plan=pro")["customers"]] == [by_green["id"]]

    # the switch through the local proxy and router, under the mixed load: blue writes, green reads
    with LocalProxy(blue.url, green.url, weights=(100, 0)) as proxy:
        router = LocalRouter(RouterConfig(kind="local", target=proxy.url))
        assert {side: h.healthy for side, h in router.health().items()} == {"blue": True, "green": True}
        load = LoadGenerator(proxy.url, EXAMPLE_APP_MIX, clients=10).start()
        for percent in (10, 50, 100):
            assert router.set_split(Split.green_percent(percent)) == Split(100 - percent, percent)
            assert load.wait_for(len(load.records) + 250, timeout_s=30)
        served = load.summary()
        assert served.side("blue").requests > 100 and served.side("green").requests > 100, served
        _run("mark", "switched", "--dsn", dsn)

        # blue is decommissioned: its sessions go with it
        blue.stop()
        deadline = time.monotonic() + 10
        while "shop@blue" in _sessions(dsn) and time.monotonic() < deadline:
            time.sleep(0.1)
        sessions = _sessions(dsn)
        assert "shop@blue" not in sessions and sessions.get("shop@green", 0) >= 1, sessions
        _run("mark", "decommissioned", "--dsn", dsn)

        # contract while green serves everything
        _run("contract", "--dsn", dsn)
        _no_failures(load, 300)
        assert proxy.stats()["blue"]["errors"] == proxy.stats()["green"]["errors"] == 0

    assert green.ok("GET", "/health")["status"] == "ok"
    assert green.ok("GET", f"/customers/{by_blue['id']}")["email"] == "blue2@example.com"
    assert green.ok("GET", "/customers/7")["email"] == "seed7@example.com"
    assert green.ok("POST", "/customers", {"email": "after@example.com"})["plan"] == "free"
    status, payload, _ = green.call("POST", "/customers", {"email": "x@example.com", "plan": "gold"})
    assert status == 400 and "plan must be one of" in payload["error"]
    schema = pg_schema(dsn)
    assert "table customers: created_at timestamp with time zone not null, email_address text not null, " in schema
    assert "id bigint not null, plan text not null\n" in schema
    assert "customers_plan_created_at_idx" in schema and "False)" not in schema  # the index is valid
    assert "trigger" not in schema and "nickname" not in schema

    # blue could not come back now: its columns are gone, and its health says so
    late_blue = apps("blue", dsn)
    status, payload, _ = late_blue.call("GET", "/health")
    assert status == 503 and "customers.email does not exist" in payload["error"]
    late_blue.stop()
    green.stop()


def test_fail_health_switch_and_injected_errors(fresh_pg: str, apps) -> None:
    dsn = fresh_pg
    pg_exec(dsn, (MIGRATIONS / "0001_base.sql").read_text())
    blue = apps("blue", dsn, "--fail-health", "--error-rate", "1")
    status, payload, version = blue.call("GET", "/health")
    assert (status, payload["status"], version) == (503, "failing", "blue")
    status, payload, _ = blue.call("POST", "/customers", {"email": "a@example.com"})
    assert status == 500 and "injected" in payload["error"]
    assert blue.ok("PUT", "/_shop/health", {"fail": False}) == {"fail_health": False, "version": "blue"}
    assert blue.ok("GET", "/health")["status"] == "ok"
    assert blue.call("GET", "/customers/x")[0] == 404
    assert blue.call("POST", "/customers", {"nickname": "no email"})[0] in (400, 500)
    blue.stop()

    env_blue = subprocess.run(
        [sys.executable, "examples/app/serve.py", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert env_blue.returncode == 0 and "--fail-health" in env_blue.stdout


def test_naive_release_is_planned_the_same_from_sql_and_from_alembic(tmp_path: Path) -> None:
    lint = bgm("lint", str(MIGRATIONS), "--since", "0001_base.sql", "--format", "json")
    assert lint.returncode == 1  # written the naive way on purpose
    rules = {f["rule"] for f in json.loads(lint.stdout)["findings"]}
    assert {"renaming-column", "require-concurrent-index-creation", "ban-drop-column"} <= rules

    sql_plan, alembic_plan = tmp_path / "sql.json", tmp_path / "alembic.json"
    _run("plan", str(MIGRATIONS), "--since", "0001_base.sql", "-o", str(sql_plan))
    _run("plan", str(ALEMBIC), "--since", ALEMBIC_BASE, "-o", str(alembic_plan))

    def shape(path: Path) -> list[tuple[Any, ...]]:
        steps = json.loads(path.read_text())["steps"]
        return [(s["id"], s["stage"], s["recipe"], s["lock"], s["transactional"], s["table"]) for s in steps]

    assert shape(sql_plan) == shape(alembic_plan)
    stages = [step[1] for step in shape(sql_plan)]
    gates = ["deploy-green", "switch", "decommission-blue"]
    assert stages == ["expand"] * 5 + ["migrate"] + gates + ["contract"] * 4
    steps = {s["id"]: " ".join(s["sql"].split()).lower() for s in json.loads(alembic_plan.read_text())["steps"]}
    assert steps["expand-001"] == "alter table customers add column email_address text;"
    assert "add column plan text default 'free' not null" in steps["expand-003"]
    assert "create index concurrently if not exists customers_plan_created_at_idx" in steps["expand-004"]
    assert steps["contract-004"] == "alter table customers drop column nickname;"


def test_alembic_release_runs_and_stamps(fresh_pg: str, tmp_path: Path) -> None:
    """The Alembic plan, run on a database at blue's revision: the same end schema as the SQL form,
    and ``alembic_version`` at the release revision after contract."""
    dsn = fresh_pg
    pg_exec(
        dsn,
        (MIGRATIONS / "0001_base.sql").read_text()
        + ";\n"
        + SEED
        + ";\nCREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY);"
        + f"INSERT INTO alembic_version VALUES ('{ALEMBIC_BASE}')",
    )
    plan = tmp_path / "plan.json"
    _run("plan", str(ALEMBIC), "--since", ALEMBIC_BASE, "-o", str(plan))
    _run("expand", "--plan", str(plan), "--dsn", dsn)
    assert pg_rows(dsn, "SELECT version_num FROM alembic_version") == [(ALEMBIC_BASE,)]
    _run("mark", "switched", "--dsn", dsn)
    _run("mark", "decommissioned", "--dsn", dsn)
    _run("contract", "--dsn", dsn)
    assert pg_rows(dsn, "SELECT version_num FROM alembic_version") == [(ALEMBIC_RELEASE,)]
    assert pg_rows(dsn, "SELECT count(*), count(DISTINCT email_address), min(plan), max(plan) FROM customers") == [
        (1500, 1500, "free", "free")
    ]
    customers = [line for line in pg_schema(dsn).splitlines() if "alembic_version" not in line]
    assert any(line.startswith("table customers: created_at") and "nickname" not in line for line in customers)
    assert any("customers_plan_created_at_idx" in line and "True)" in line for line in customers)
