"""The pipeline examples' bgmigrate commands, run for real (examples/pipelines/README.md, "What is tested").

Cloud Build: every step of ``cloudbuild.yaml`` that runs bgmigrate, in the file's order, as the
step's own command (its entrypoint and args, or its bash script) with the substitutions applied, from
the repository root, against a scratch PostgreSQL holding the example shop and the Cloud Run API
emulator holding the service with blue serving and green deployed with no traffic. The steps that
need Google's tools are played by the test: ``install`` (this checkout is installed), ``build`` and
``push`` (no image is needed), and ``deploy-green``, whose ``gcloud`` calls the emulator's state
stands for; its ``sed`` line runs as written to make the release's configuration, in which the test
then points the probe gate at a local health endpoint and makes the step interval 0.

Cloud Deploy: the two custom actions' commands of ``clouddeploy/skaffold.yaml`` (expand before,
marks and contract after), with the plan the hook image would carry.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from cloudrun_emulator import CloudRunEmulator, Target
from runner_harness import pg_exec, pg_rows

ROOT = Path(__file__).resolve().parents[2]
PIPELINES = ROOT / "examples" / "pipelines"
BASE = ROOT / "examples" / "app" / "migrations" / "0001_base.sql"
SEED = (
    "INSERT INTO customers (email, nickname, created_at) SELECT 'seed' || g || '@example.com', 'nick ' || g, "
    "now() FROM generate_series(1, 500) g"
)
BLUE, GREEN = "shop-00041-abc", "shop-00042-def"


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def health_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/health"
    server.shutdown()
    server.server_close()


def _env(dsn: str, **extra: str) -> dict[str, str]:
    env = {**os.environ, "BGMIGRATE_DSN": dsn, **extra}
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


def _run(argv: list[str], env: dict[str, str], what: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, f"{what}: {shlex.join(argv)} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def test_cloud_build_steps_against_postgres_and_the_cloud_run_emulator(
    fresh_pg: str, tmp_path: Path, health_url: str
) -> None:
    pg_exec(fresh_pg, BASE.read_text() + ";\n" + SEED)
    build = yaml.safe_load((PIPELINES / "cloudbuild.yaml").read_text())
    subs = {**build["substitutions"], "PROJECT_ID": "my-project", "SHORT_SHA": "abc1234"}
    workspace = tmp_path / "workspace"
    workspace.mkdir()

    def substitute(text: str) -> str:
        text = re.sub(r"\$\{(\w+)\}", lambda m: str(subs[m.group(1)]), text)
        text = text.replace("$$", "$").replace("/workspace/venv/bin/bgmigrate", "bgmigrate")
        return text.replace("/workspace/", f"{workspace}/")

    with CloudRunEmulator() as emu:
        emu.add_service(
            "shop",
            [BLUE, GREEN],
            traffic=[Target("REVISION", BLUE, 100), Target("REVISION", GREEN, 0, "green")],
            project="my-project",
            location="europe-west1",
        )  # what `gcloud run deploy --no-traffic --tag green` leaves
        env = _env(fresh_pg, BGMIGRATE_GCP_API_ENDPOINT=emu.endpoint, BGMIGRATE_GCP_ANONYMOUS="1")
        ran: list[str] = []
        for step in build["steps"]:
            sid = step["id"]
            if sid in ("install", "build", "push"):
                continue
            if sid == "deploy-green":
                sed = next(line for line in step["args"][-1].splitlines() if line.strip().startswith("sed "))
                _run(["bash", "-c", f"blue={BLUE}; green={GREEN}; " + substitute(sed)], env, sid)
                config = workspace / "bgmigrate.toml"
                text = config.read_text()
                text = re.sub(r'probe_url = "[^"]*"', f'probe_url = "{health_url}"', text)
                text = text.replace('interval = "2min"', 'interval = "0s"\npoll_interval_s = 0.01')
                config.write_text(text)
                ran.append(sid)
                continue
            entry = step.get("entrypoint", "")
            if Path(entry).name == "bgmigrate":
                argv = ["bgmigrate", *[substitute(a) for a in step["args"]]]
            elif entry == "bash":
                argv = ["bash", "-c", substitute(step["args"][-1])]
            else:
                raise AssertionError(f"step {sid}: a command the test does not know how to run")
            done = _run(argv, env, sid)
            ran.append(sid)
            if sid == "lint":
                assert "renaming-column" in done.stdout  # reported, and the build goes on (--fail-on never)
        assert ran == ["lint", "plan", "expand", "deploy-green", "switch", "decommission-blue", "contract", "status"]

        serving = emu.service("projects/my-project/locations/europe-west1/services/shop").traffic_statuses
        assert {t.revision: t.percent for t in serving if t.percent} == {GREEN: 100}
    released = "SELECT status, switched_at IS NOT NULL, decommissioned_at IS NOT NULL FROM bgmigrate.releases"
    assert pg_rows(fresh_pg, released) == [("contracted", True, True)]
    kinds = [k for (k,) in pg_rows(fresh_pg, "SELECT kind FROM bgmigrate.events ORDER BY id")]
    assert kinds.count("gate") == 3 and "contract-started" in kinds
    query = "SELECT column_name FROM information_schema.columns WHERE table_name = 'customers'"
    columns = {c for (c,) in pg_rows(fresh_pg, query)}
    assert {"email_address", "plan"} <= columns and not {"email", "nickname"} & columns
    assert (workspace / "plan.md").exists()


def test_cloud_deploy_hooks_expand_before_and_contract_after(fresh_pg: str, tmp_path: Path) -> None:
    pg_exec(fresh_pg, BASE.read_text() + ";\n" + SEED)
    plan = tmp_path / "plan.json"
    env = _env(fresh_pg)
    _run(["bgmigrate", "plan", "examples/app/migrations", "--since", "0001_base.sql", "-o", str(plan)], env, "plan")
    skaffold = yaml.safe_load((PIPELINES / "clouddeploy" / "skaffold.yaml").read_text())
    actions = {a["name"]: a["containers"][0] for a in skaffold["customActions"]}

    def run_action(name: str) -> None:
        container = actions[name]
        argv = [*container["command"], *container["args"]]
        argv = [a.replace("/release/plan.json", str(plan)) for a in argv]
        action_env = {**env, **{e["name"]: e["value"] for e in container.get("env", [])}, "BGMIGRATE_DSN": fresh_pg}
        _run(argv, action_env, name)

    run_action("bgmigrate-expand")
    assert pg_rows(fresh_pg, "SELECT status FROM bgmigrate.releases") == [("expanded",)]
    # the deploy: Cloud Run sends 100 % to the new revision (nothing to do against the database)
    run_action("bgmigrate-contract")
    assert pg_rows(fresh_pg, "SELECT status FROM bgmigrate.releases") == [("contracted",)]
    run_action("bgmigrate-contract")  # a retried job: nothing left to do, still exit 0
