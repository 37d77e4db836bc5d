"""Every command in README.md runs (see its section "How this README is tested").

The README's fenced ``sh`` blocks are extracted and each line run with bash, in order, from a
scratch directory holding a copy of ``examples/``, with this checkout's ``bgmigrate`` first on PATH
and ``BGMIGRATE_DSN`` pointing at a new database that holds the example shop's base schema and
rows. A line must exit 0; a ``bgmigrate lint`` line 0 or 1. An HTML comment right before a block,
``<!-- readme-test: ... -->``, changes what happens to it:

- ``first-command``: the demo's install line; checked here (text, the ``demo`` extra installed), its
  ``bgmigrate demo`` run exactly as written by tests/integration/test_demo.py;
- ``ci``: must be the command ``.ci/run`` runs (CI runs it);
- ``run release``: run with the local router configuration of the README's ``toml`` block (its
  ports replaced by free ones), the shop's blue running behind the local proxy, under load: no
  request may fail;
- ``example (why)``: not run, and the README says why.

``toml`` blocks are configuration: each must load (no unknown key).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SEED = (
    "INSERT INTO customers (email, nickname, created_at) SELECT 'seed' || g || '@example.com', 'nick ' || g, "
    "timestamptz '2024-01-01 00:00:00+00' + g * interval '1 min' FROM generate_series(1, 2000) g"
)
ANNOTATION = re.compile(r"^<!--\s*readme-test:\s*(?P<text>.*?)\s*-->$")
FENCE = re.compile(r"^(?P<ticks>`{3,})(?P<lang>[\w-]*)\s*$")


@dataclass
class Block:
    lang: str
    body: str
    line: int  # 1-based line of the opening fence
    section: str
    annotation: str | None

    @property
    def kind(self) -> str:
        if self.annotation is None:
            return "run"
        return self.annotation.split()[0]

    @property
    def env(self) -> str:
        parts = (self.annotation or "run db").split()
        return parts[1] if self.kind == "run" and len(parts) > 1 else "db"

    @property
    def commands(self) -> list[str]:
        text = self.body.replace("\\\n", " ")
        return [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]

    @property
    def id(self) -> str:
        return f"line{self.line}-{re.sub(r'[^a-z0-9]+', '-', self.section.lower()).strip('-')[:40]}"


def readme_blocks(text: str | None = None) -> list[Block]:
    """The top-level fenced blocks of the README (a 4-backtick block may hold 3-backtick ones)."""
    lines = (README.read_text(encoding="utf-8") if text is None else text).splitlines()
    blocks: list[Block] = []
    section, i = "", 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#") and not line.startswith("#!"):
            section = line.lstrip("#").strip()
        match = FENCE.match(line)
        if not match:
            i += 1
            continue
        ticks, lang = match.group("ticks"), match.group("lang")
        end = next((j for j in range(i + 1, len(lines)) if lines[j].rstrip() == ticks), None)
        assert end is not None, f"README.md:{i + 1}: unclosed code block"
        prev = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        found = ANNOTATION.match(prev.strip())
        blocks.append(
            Block(lang, "\n".join(lines[i + 1 : end]), i + 1, section, found.group("text") if found else None)
        )
        i = end + 1
    return blocks


SH = [b for b in readme_blocks() if b.lang in ("sh", "bash", "shell", "console")]
RUN = [b for b in SH if b.kind == "run"]


def test_every_command_block_is_run_or_says_why_not() -> None:
    kinds = [b.kind for b in SH]
    assert kinds[:2] == ["first-command", "ci"], "the README must open with its two commands"
    for block in SH:
        assert block.kind in ("first-command", "ci", "run", "example"), (block.line, block.annotation)
        if block.kind == "run":
            assert block.env in ("db", "release"), (block.line, block.annotation)
        if block.kind == "example":
            assert re.fullmatch(r"example \(.+\)", block.annotation or ""), f"README.md:{block.line}: say why"
    assert len(RUN) >= 5


def test_the_first_command_installs_the_demo_extra() -> None:
    from importlib.metadata import PackageNotFoundError, version

    from packaging.requirements import Requirement

    block = SH[0]
    assert block.commands == ["python3 -m pip install -e '.[demo]' && bgmigrate demo"]
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for text in extras["demo"]:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate():
            continue
        try:
            installed = version(req.name)
        except PackageNotFoundError:
            pytest.fail(f"{req.name} (the demo extra) is not installed: pip install -e '.[demo]'")
        assert req.specifier.contains(installed, prereleases=True), (req, installed)
    # `bgmigrate demo`, exactly so, is run by test_demo.py
    demo_tests = (ROOT / "tests" / "integration" / "test_demo.py").read_text()
    assert '[bgmigrate, "demo"]' in demo_tests


def test_the_second_command_is_what_ci_runs() -> None:
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line.strip()][-1]
    assert SH[1].commands == [ci]


def test_toml_blocks_load(tmp_path: Path) -> None:
    import tomllib

    from migrator.config import build_settings
    from migrator.traffic.config import load_traffic_settings

    blocks = [b for b in readme_blocks() if b.lang == "toml"]
    assert len(blocks) >= 5
    for block in blocks:
        data = tomllib.loads(block.body)
        assert "tool" in data and "bgmigrate" in data["tool"], block.line

    for index, block in enumerate(blocks):
        path = tmp_path / f"block{index}.toml"
        path.write_text(block.body)
        build_settings(config=path)
        load_traffic_settings(path)


# ---- running the blocks --------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def sandbox(pg_server, tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    name = f"bgm_readme_{os.getpid()}_{_free_port()}"
    with psycopg.connect(pg_server.dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    dsn = pg_server.dsn_for(name)
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute((ROOT / "examples" / "app" / "migrations" / "0001_base.sql").read_text())
            conn.execute(SEED)
        work = tmp_path / "work"
        shutil.copytree(ROOT / "examples", work / "examples", ignore=shutil.ignore_patterns("__pycache__", ".*cache*"))
        bindir = str(Path(sys.executable).parent)
        env = {
            **os.environ,
            "PATH": bindir + os.pathsep + os.environ.get("PATH", ""),
            "BGMIGRATE_DSN": dsn,
            "SHOP_DSN": dsn,
        }
        env.pop("PYTHONPATH", None)
        yield work, env
    finally:
        with psycopg.connect(pg_server.dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _run_lines(block: Block, cwd: Path, env: dict[str, str]) -> None:
    assert shutil.which("bgmigrate", path=env["PATH"]), "no bgmigrate on PATH: pip install -e '.[test]'"
    for command in block.commands:
        done = subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
        allowed = {0, 1} if command.lstrip().startswith("bgmigrate lint") else {0}
        if done.returncode not in allowed:
            logs = "".join(f"\n{p.name}: {p.read_text(errors='replace')[-1500:]}" for p in sorted(cwd.glob("*.log")))
            pytest.fail(
                f"README.md:{block.line} `{command}` exited {done.returncode}\n"
                f"stdout: {done.stdout[-2000:]}\nstderr: {done.stderr[-3000:]}{logs}"
            )


@pytest.mark.parametrize("block", [b for b in RUN if b.env == "db"], ids=lambda b: b.id)
def test_block_runs(block: Block, sandbox: tuple[Path, dict[str, str]]) -> None:
    cwd, env = sandbox
    _run_lines(block, cwd, env)


def _local_config() -> str:
    return next(b.body for b in readme_blocks() if b.lang == "toml" and 'router = "local"' in b.body)


@pytest.mark.parametrize("block", [b for b in RUN if b.env == "release"], ids=lambda b: b.id)
def test_traffic_block_runs_with_the_local_router(block: Block, sandbox: tuple[Path, dict[str, str]]) -> None:
    from migrator.traffic.loadgen import EXAMPLE_APP_MIX, LoadGenerator
    from migrator.traffic.local_proxy import LocalProxy

    cwd, env = sandbox
    ports = {port: _free_port() for port in (8000, 8001, 8002, 8090)}
    config = _local_config()
    for old, new in ports.items():
        config = re.sub(rf"\b{old}\b", str(new), config)
    (cwd / "pyproject.toml").write_text(config)

    blue = subprocess.Popen(
        [sys.executable, "-m", "examples.app", "--version", "blue", "--port", str(ports[8001])],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    assert blue.stdout is not None and "shop blue ready" in blue.stdout.readline()
    (cwd / "blue.pid").write_text(f"{blue.pid}\n")
    threading.Thread(target=blue.wait, daemon=True).start()  # reaped at once: the hook waits for it to be gone
    proxy = LocalProxy(
        f"http://127.0.0.1:{ports[8001]}",
        f"http://127.0.0.1:{ports[8002]}",
        listen=("127.0.0.1", ports[8000]),
        admin=("127.0.0.1", ports[8090]),
    ).start()
    load = LoadGenerator(proxy.url, EXAMPLE_APP_MIX, clients=3, think_s=0.01).start()
    try:
        _run_lines(block, cwd, env)
        summary = load.stop()
    finally:
        load.stop()
        proxy.stop()
        for pidfile in ("blue.pid", "green.pid"):
            with contextlib.suppress(OSError, ValueError, ProcessLookupError):
                os.kill(int((cwd / pidfile).read_text().strip()), signal.SIGTERM)
    assert summary.failures == 0, str(summary)
    assert summary.side("blue").requests > 0 and summary.side("green").requests > 0, str(summary)
    with psycopg.connect(env["BGMIGRATE_DSN"]) as conn:
        assert conn.execute("SELECT status FROM bgmigrate.releases").fetchall() == [("contracted",)]
