"""``bgmigrate demo`` end to end: on the test server (``--dsn``, small and quick), exactly as the README's
first command runs it (no options: an embedded PostgreSQL from the pgserver wheel, from a directory
outside the checkout), interrupted half way, and its set-up errors.

What it must show: the bgmigrate half serves every request (blue before the switch, both during it,
green after) and ends contracted; the naive half fails requests (blue after the rename commits);
every process and scratch database it started is gone afterwards, also after Ctrl-C.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[2]
BGMIGRATE_STAGES = [
    "baseline",
    "lint",
    "plan",
    "expand",
    "deploy-green",
    "verify",
    "switch",
    "soak",
    "decommission-blue",
    "contract",
    "after",
]
NAIVE_STAGES = ["baseline", "migrate", "deploy-green", "switch", "decommission-blue", "after"]


def _demo(*args: str, cwd: Path = ROOT, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "migrator.cli", "demo", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is gone for every purpose here
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def _databases(dsn: str, pattern: str = "bgmigrate_demo_%") -> set[str]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", (pattern,)).fetchall()
    return {r[0] for r in rows}


def _stages(data: dict, half: str) -> dict[str, dict]:
    return {s["stage"]: s for s in data["halves"][half]["stages"]}


def test_demo_on_a_given_server(pg_server, tmp_path: Path) -> None:
    out = tmp_path / "demo.json"
    done = _demo(
        "--dsn", pg_server.dsn, "--rows", "3000", "--clients", "3", "--step-seconds", "0.5", "--json", str(out)
    )
    assert done.returncode == 0, done.stderr[-4000:]
    data = json.loads(out.read_text())
    assert data["version"] == 1 and data["exit_code"] == 0 and data["release_status"] == "contracted"

    bgm, naive = _stages(data, "bgmigrate"), _stages(data, "naive")
    assert list(bgm) == BGMIGRATE_STAGES and list(naive) == NAIVE_STAGES
    total = data["halves"]["bgmigrate"]["total"]
    assert total["failed"] == 0, total
    assert bgm["baseline"]["requests"]["blue"] > 0 and bgm["baseline"]["requests"]["green"] == 0
    assert bgm["expand"]["requests"]["blue"] > 0 and "rows backfilled" in bgm["expand"]["note"]
    assert bgm["switch"]["requests"]["blue"] > 0 and bgm["switch"]["requests"]["green"] > 0
    for stage in ("soak", "contract", "after"):
        assert bgm[stage]["requests"]["blue"] == 0, (stage, bgm[stage])
    assert bgm["after"]["requests"]["green"] > 0
    assert "renaming-column" in data["lint"] and "expand" in data["plan"] and "contract" in data["plan"]

    # the naive half: from the rename's commit until blue is gone, blue's requests fail
    assert data["halves"]["naive"]["total"]["failed"] > 0
    assert naive["deploy-green"]["failed"] == naive["deploy-green"]["requests"]["blue"] > 0
    assert naive["after"]["failed"] == 0 and naive["after"]["requests"]["green"] > 0
    assert re.search(r'column "?(customers\.)?email"? .*does not exist', data["app_errors"]["naive"])
    assert data["naive_error"] is None

    # one table on stdout, both halves in it; the progress on stderr
    assert re.search(r"^bgmigrate\s+expand\s", done.stdout, re.M) and re.search(
        r"^naive\s+migrate\s", done.stdout, re.M
    )
    assert "bgmigrate: 0 failed requests" in done.stdout
    assert "release 0002_release: stage contract" in done.stderr

    # everything it started is gone
    assert not _databases(pg_server.dsn) & set(data["databases"])
    assert len(data["pids"]) == 4 and not [p for p in data["pids"] if _alive(p)]


def test_the_readme_command_runs_the_demo_on_an_embedded_postgres(tmp_path: Path) -> None:
    """``bgmigrate demo`` with no option, from a directory that is not the checkout (the README's
    first command after the install): an embedded PostgreSQL, the defaults, exit 0."""
    bgmigrate = shutil.which("bgmigrate", path=str(Path(sys.executable).parent)) or shutil.which("bgmigrate")
    assert bgmigrate, "the bgmigrate console script is not on PATH: pip install -e '.[demo]'"
    before = set(Path(os.environ.get("TMPDIR", "/tmp")).glob("bgmigrate-demo-pg-*"))
    done = subprocess.run([bgmigrate, "demo"], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    assert "embedded PostgreSQL 16" in done.stderr
    assert "bgmigrate: 0 failed requests" in done.stdout and "release contracted" in done.stdout
    naive = re.search(r"^naive:\s+([\d,]+) failed requests", done.stdout, re.M)
    assert naive and int(naive.group(1).replace(",", "")) > 0, done.stdout
    pids = {int(p) for p in re.findall(r"\(pid (\d+)\)", done.stderr)}
    assert len(pids) == 4 and not [p for p in pids if _alive(p)]
    assert set(Path(os.environ.get("TMPDIR", "/tmp")).glob("bgmigrate-demo-pg-*")) <= before  # data dir deleted


def test_ctrl_c_stops_everything_it_started(pg_server) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "migrator.cli", "demo", "--dsn", pg_server.dsn, "--rows", "2000", "--step-seconds", "5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stderr is not None
    lines: list[str] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        if "stage switch" in line:  # in the middle of the gated switch, blue and green both up
            break
    time.sleep(1)
    proc.send_signal(signal.SIGINT)
    _out, rest = proc.communicate(timeout=60)
    text = "".join(lines) + rest
    assert proc.returncode == 130, text[-3000:]
    assert "demo interrupted; everything it started is stopped" in text
    names = re.search(r"scratch databases: (\S+), (\S+)", text)
    assert names, text
    assert not _databases(pg_server.dsn) & {names.group(1), names.group(2)}
    pids = {int(p) for p in re.findall(r"\(pid (\d+)\)", text)}
    assert len(pids) == 2 and not [p for p in pids if _alive(p)]


def test_setup_errors_are_one_line_and_exit_2(tmp_path: Path) -> None:
    done = _demo("--checkout", str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.startswith("bgmigrate: error: the example shop (examples/app/) is not in ")
    assert len(done.stderr.strip().splitlines()) == 1

    done = _demo("--dsn", "postgresql://nobody:secret@127.0.0.1:1/none")
    assert done.returncode == 2 and "cannot connect to" in done.stderr and "secret" not in done.stderr

    done = _demo("--clients", "0")
    assert done.returncode == 2 and "--clients" in done.stderr
