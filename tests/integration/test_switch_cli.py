"""``bgmigrate switch`` / ``rollback`` from the command line with the local router: the exit codes,
what is recorded, and bad input refused before anything moves."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from runner_harness import Release, bgm, pg_exec, pg_rows, seed_sql

from migrator.traffic.local_proxy import LocalProxy


class _Ok(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def green() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def setup(fresh_pg: str, tmp_path: Path, green: str) -> Iterator[tuple[str, LocalProxy, list[str]]]:
    rel = Release.write(tmp_path)
    pg_exec(fresh_pg, (rel.migrations / "0001_base.sql").read_text() + seed_sql(10))
    assert bgm("expand", "--plan", str(rel.plan), "--dsn", fresh_pg).returncode == 0
    proxy = LocalProxy(green, green, weights=(100, 0), admin=("127.0.0.1", 0)).start()
    flags = ["--dsn", fresh_pg, "--router", "local", "--target", proxy.admin_url, "--blue", green, "--green", green]
    try:
        yield fresh_pg, proxy, flags
    finally:
        proxy.stop()


def test_switch_and_rollback_from_the_command_line(setup: tuple[str, LocalProxy, list[str]], green: str) -> None:
    dsn, proxy, flags = setup
    done = bgm("switch", *flags, "--steps", "50,100", "--interval", "0", "--probe-url", f"{green}/health", "-f", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["serving"] == {"blue": 0, "green": 100}
    assert proxy.weights == (0, 100)
    assert pg_rows(dsn, "SELECT switched_at IS NOT NULL FROM bgmigrate.releases") == [(True,)]

    done = bgm("rollback", *flags)
    assert done.returncode == 0, done.stderr
    assert "serving blue 100% / green 0%" in done.stdout and proxy.weights == (100, 0)
    assert pg_rows(dsn, "SELECT switched_at FROM bgmigrate.releases") == [(None,)]
    kinds = [k for (k,) in pg_rows(dsn, "SELECT kind FROM bgmigrate.events ORDER BY id")]
    assert kinds[-2:] == ["traffic", "unswitched"] and kinds.count("traffic") == 3


def test_switch_refuses_without_gates_or_with_bad_input(setup: tuple[str, LocalProxy, list[str]], green: str) -> None:
    _, proxy, flags = setup
    blind = bgm("switch", *flags)
    assert blind.returncode == 2 and "no health gate configured" in blind.stderr
    assert bgm("switch", *flags, "--no-gates", "--steps", "100", "--interval", "0").returncode == 0
    assert proxy.weights == (0, 100)
    bad = [
        (("--to", "purple"), "--to must be green or blue"),
        (("--steps", "50,20"), "steps must increase"),
        (("--router", "heroku"), "unknown router 'heroku'"),
    ]
    for extra, message in bad:
        done = bgm("switch", *flags, *extra, "--no-gates")
        assert done.returncode == 2 and message in done.stderr, (extra, done.stderr)
    unreachable = bgm("rollback", *[f if f != proxy.admin_url else "http://127.0.0.1:9" for f in flags])
    assert unreachable.returncode == 3 and "local proxy http://127.0.0.1:9" in unreachable.stderr
    assert proxy.weights == (0, 100)  # nothing moved
