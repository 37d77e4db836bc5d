"""The local weighted proxy and the ``local`` router, with real sockets: weights per request, a side
at 0 never reached (even stopped), 502s counted, streaming, the admin API's validation and
conditional writes, health, the command line (ready line, SIGTERM), and the load generator."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from migrator.traffic.loadgen import LoadGenerator, percentile, summarize
from migrator.traffic.local import LocalRouter
from migrator.traffic.local_proxy import READY_PREFIX, LocalProxy, parse_weights
from migrator.traffic.router import RouterConfig, Split, TrafficError

ROOT = Path(__file__).resolve().parents[2]
ECHO = [("GET", "/echo", None)]


# ---- a stand-in upstream: answers as one side, counts what reaches it --------------------------------


class _StubHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _StubServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self) -> None:
        stub = self.server.stub
        with stub.lock:
            stub.hits += 1
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = self.path.split("?", 1)[0]
        if path == "/health":
            self._send(stub.health_status, {"side": stub.name})
        elif path == "/stream":
            self.send_response(200)
            self.send_header("X-App-Version", stub.name)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(3):
                chunk = f"part {i}\n".encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
                if i == 0:
                    stub.release.wait(5)  # the rest only once the client has the first part (or 5 s)
            self.wfile.write(b"0\r\n\r\n")
        elif path == "/big":
            self._send(200, {"side": stub.name, "data": "x" * 300_000})
        else:
            payload = {
                "side": stub.name,
                "method": self.command,
                "path": self.path,
                "body": body.decode(),
                "host": self.headers.get("Host"),
                "forwarded_for": self.headers.get("X-Forwarded-For"),
            }
            self._send(200, payload)

    do_GET = do_POST = do_PUT = do_DELETE = _answer

    def _send(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-App-Version", self.server.stub.name)
        self.end_headers()
        self.wfile.write(data)


class _StubServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256


class Stub:
    def __init__(self, name: str) -> None:
        self.name = name
        self.hits = 0
        self.health_status = 200
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.server = _StubServer(("127.0.0.1", 0), _StubHandler)
        self.server.stub = self  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.running = True

    def stop(self) -> None:
        if self.running:
            self.server.shutdown()
            self.server.server_close()
            self.running = False


@pytest.fixture
def stubs():
    blue, green = Stub("blue"), Stub("green")
    yield blue, green
    blue.stop()
    green.stop()


def _http(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None):
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null"), response.headers
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null"), err.headers


# ---- weights ---------------------------------------------------------------------------------------


def test_weights_are_honoured_per_request(stubs) -> None:
    blue, green = stubs
    with LocalProxy(blue.url, green.url, weights=(30, 70), seed=7) as proxy:
        summary = LoadGenerator(proxy.url, ECHO, clients=50, max_requests=1000).run()
        stats = proxy.stats()
    assert summary.requests == 1000 and summary.failures == 0, summary
    to_blue, to_green = summary.side("blue").requests, summary.side("green").requests
    # binomial(1000, 0.3): standard deviation 14.5; 60 is more than 4 of them
    assert abs(to_blue - 300) <= 60, summary
    assert to_blue + to_green == 1000
    # three witnesses agree: the answering app, the proxy's counters, the upstream's own count
    assert (stats["blue"]["requests"], stats["green"]["requests"]) == (to_blue, to_green) == (blue.hits, green.hits)
    assert stats["blue"]["errors"] == stats["green"]["errors"] == 0
    assert stats["blue"]["responses"]["2xx"] == to_blue


def test_a_side_at_zero_is_never_reached_even_stopped(stubs) -> None:
    blue, green = stubs
    blue.stop()  # nothing listens on blue's port any more
    with LocalProxy(blue.url, green.url, weights=(0, 100)) as proxy:
        summary = LoadGenerator(proxy.url, ECHO, clients=20, max_requests=400).run()
        stats = proxy.stats()
    assert summary.failures == 0, summary
    assert summary.side("green").requests == 400
    assert stats["blue"]["requests"] == stats["blue"]["errors"] == 0

    green.stop()
    other = Stub("blue")
    try:
        with LocalProxy(other.url, green.url, weights=(100, 0)) as proxy:
            summary = LoadGenerator(proxy.url, ECHO, clients=10, max_requests=200).run()
            assert summary.failures == 0 and summary.side("blue").requests == 200, summary
            assert proxy.stats()["green"]["requests"] == 0
    finally:
        other.stop()


def test_shifting_under_load_then_stopping_blue_loses_nothing(stubs) -> None:
    blue, green = stubs
    with LocalProxy(blue.url, green.url, weights=(100, 0)) as proxy:
        gen = LoadGenerator(proxy.url, ECHO, clients=20).start()
        try:
            for percent in (0, 10, 50, 90, 100):
                proxy.set_weights(100 - percent, percent)
                assert gen.wait_for(len(gen.records) + 150)
            blue.stop()  # decommissioned while traffic goes on
            assert gen.wait_for(len(gen.records) + 300)
        finally:
            summary = gen.stop()
        stats = proxy.stats()
    assert summary.failures == 0, summary
    assert summary.side("blue").requests > 0 and summary.side("green").requests > 0
    assert stats["blue"]["errors"] == 0 and stats["blue"]["requests"] == blue.hits


def test_an_unreachable_upstream_is_a_counted_502(stubs) -> None:
    blue, green = stubs
    blue.stop()
    with LocalProxy(blue.url, green.url, weights=(50, 50), seed=3) as proxy:
        summary = LoadGenerator(proxy.url, ECHO, clients=5, max_requests=200).run()
        stats = proxy.stats()
        for _ in range(100):  # until one request is sent to blue
            status, payload, headers = _http("GET", proxy.url + "/echo")
            if headers.get("X-Bgmigrate-Side") == "blue":
                break
    assert summary.side("blue").failures == summary.side("blue").requests == stats["blue"]["errors"] > 0
    assert summary.side("green").failures == 0 and stats["green"]["errors"] == 0
    assert status == 502 and blue.url in payload["error"] and "connection refused" in payload["error"]


def test_requests_and_streamed_responses_pass_through(stubs) -> None:
    blue, green = stubs
    with LocalProxy(blue.url, green.url, weights=(0, 100)) as proxy:
        status, payload, headers = _http("POST", proxy.url + "/echo?x=1", {"a": 1})
        assert status == 200 and headers["X-App-Version"] == "green" and headers["X-Bgmigrate-Side"] == "green"
        assert (
            payload["method"] == "POST" and payload["path"] == "/echo?x=1" and json.loads(payload["body"]) == {"a": 1}
        )
        assert payload["host"] == green.url.removeprefix("http://") and payload["forwarded_for"] == "127.0.0.1"
        status, payload, _ = _http("GET", proxy.url + "/big")
        assert status == 200 and len(payload["data"]) == 300_000

        # chunked upstream answer: the first part reaches the client while the upstream still waits
        conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
        started = time.monotonic()
        conn.request("GET", "/stream")
        response = conn.getresponse()
        first = response.read1(100)
        first_after = time.monotonic() - started
        green.release.set()
        rest = response.read()
        conn.close()
        assert response.status == 200 and response.getheader("Transfer-Encoding") == "chunked"
        assert first == b"part 0\n" and rest == b"part 1\npart 2\n"
        assert first_after < 4, f"the first part came only after {first_after:.1f} s: the proxy buffered"


# ---- the admin API ---------------------------------------------------------------------------------


def test_admin_api_validates_and_writes_conditionally(stubs) -> None:
    blue, green = stubs
    with LocalProxy(blue.url, green.url, weights=(100, 0), admin=("127.0.0.1", 0)) as proxy:
        assert proxy.admin_port != proxy.port
        weights_url = proxy.admin_url + "/_bgmigrate/weights"
        status, payload, headers = _http("GET", weights_url)
        assert (status, payload) == (200, {"blue": 100, "green": 0})
        etag = headers["ETag"]

        bad = [
            (b"not json", "must be JSON"),
            ({"blue": 50}, "exactly the keys blue and green"),
            ({"blue": 50, "green": 50, "red": 0}, "exactly the keys blue and green"),
            ({"blue": 50.0, "green": 50}, "whole percent"),
            ({"blue": True, "green": 99}, "whole percent"),
            ({"blue": -10, "green": 110}, "whole percent"),
            ({"blue": 60, "green": 50}, "must sum to 100: blue 60 + green 50 = 110"),
            ([90, 10], "JSON object"),
        ]
        for body, message in bad:
            status, payload, _ = _http("PUT", weights_url, body)
            assert status == 400 and message in payload["error"], (body, payload)
        assert proxy.weights == (100, 0)

        status, payload, headers = _http("PUT", weights_url, {"blue": 90, "green": 10}, {"If-Match": etag})
        assert (status, payload) == (200, {"blue": 90, "green": 10}) and headers["ETag"] != etag
        status, payload, _ = _http("PUT", weights_url, {"blue": 0, "green": 100}, {"If-Match": etag})  # stale
        assert status == 412 and "changed" in payload["error"] and proxy.weights == (90, 10)

        assert _http("GET", proxy.admin_url + "/_bgmigrate/nothing")[0] == 404
        assert _http("POST", weights_url, {"blue": 0, "green": 100})[0] == 405
        status, payload, _ = _http("GET", proxy.admin_url + "/_bgmigrate/config")
        assert payload == {
            "blue": blue.url,
            "green": green.url,
            "listen": proxy.url,
            "weights": {"blue": 90, "green": 10},
        }
        # with a separate admin port the listening port forwards /_bgmigrate/ like any path
        status, payload, _ = _http("GET", proxy.url + "/_bgmigrate/weights")
        assert status == 200 and payload["side"] in ("blue", "green")

        _http("GET", proxy.url + "/echo")
        status, before, _ = _http("DELETE", proxy.admin_url + "/_bgmigrate/stats")
        assert before["blue"]["requests"] + before["green"]["requests"] == 2
        after = _http("GET", proxy.admin_url + "/_bgmigrate/stats")[1]
        assert after["blue"]["requests"] == after["green"]["requests"] == 0

    assert parse_weights("70,30") == (70, 30)
    with pytest.raises(ValueError, match="sum to 100"):
        parse_weights("70,40")


# ---- the router ------------------------------------------------------------------------------------


def test_router_reads_sets_and_reads_back(stubs) -> None:
    blue, green = stubs
    with LocalProxy(blue.url, green.url, weights=(100, 0), admin=("127.0.0.1", 0)) as proxy:
        router = LocalRouter(RouterConfig(kind="local", target=proxy.admin_url, blue=blue.url, green=green.url))
        assert router.kind == "local" and proxy.admin_url in router.describe()
        assert router.current() == Split(100, 0)
        assert router.set_split(Split.green_percent(30)) == Split(70, 30)
        assert proxy.weights == (70, 30) and router.current() == Split(70, 30)
        assert router.blue_exposure() and "70% to blue" in router.blue_exposure()[0]
        assert router.set_split(Split(0, 100)) == Split(0, 100) and router.blue_exposure() == []

    # no separate admin port: the admin API under /_bgmigrate/ on the listening port; the target may
    # name the prefix too; without blue/green configured the router asks the proxy for its upstreams
    with LocalProxy(blue.url, green.url, weights=(50, 50)) as proxy:
        router = LocalRouter(RouterConfig(kind="local", target=proxy.url + "/_bgmigrate/"))
        assert router.current() == Split(50, 50)
        assert router.set_split(Split(20, 80)) == Split(20, 80)
        assert router.upstream("green") == green.url


def test_router_health(stubs) -> None:
    blue, green = stubs
    with LocalProxy(blue.url, green.url) as proxy:
        router = LocalRouter(RouterConfig(kind="local", target=proxy.url, options={"health_path": "health"}))
        health = router.health()
        assert {s: h.healthy for s, h in health.items()} == {"blue": True, "green": True}
        assert health["green"].detail == f"GET {green.url}/health: HTTP 200"
        green.health_status = 503
        blue.stop()
        health = router.health()
        assert health["green"].healthy is False and "HTTP 503" in health["green"].detail
        assert health["blue"].healthy is False and "connection refused" in health["blue"].detail


def test_router_errors_name_the_proxy(stubs) -> None:
    blue, green = stubs
    proxy = LocalProxy(blue.url, green.url).start()
    url = proxy.url
    proxy.stop()
    router = LocalRouter(RouterConfig(kind="local", target=url, options={"http_timeout_s": 2}))
    with pytest.raises(
        TrafficError, match=rf"local proxy {re.escape(url)}: cannot read the weights: connection refused"
    ):
        router.current()
    with pytest.raises(TrafficError, match="cannot read the weights") as err:
        router.set_split(Split(0, 100))
    assert err.value.exit_code == 3
    with pytest.raises(TrafficError, match="needs --target"):
        LocalRouter(RouterConfig(kind="local"))
    with pytest.raises(TrafficError, match="admin URL"):
        LocalRouter(RouterConfig(kind="local", target="127.0.0.1:9000"))


# ---- the command line ------------------------------------------------------------------------------


def test_command_line_ready_line_and_clean_sigterm(stubs) -> None:
    blue, green = stubs
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = ["--listen", "127.0.0.1:0", "--blue", blue.url, "--green", green.url, "--weights", "0,100"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "migrator.traffic.local_proxy", *args, "--admin", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    try:
        line = proc.stdout.readline()
        match = re.match(rf"{re.escape(READY_PREFIX)} listen=(\S+) admin=(\S+) blue=\S+ green=\S+ weights=0,100$", line)
        assert match, line
        listen, admin = match.groups()
        status, payload, _ = _http("GET", listen + "/echo")
        assert status == 200 and payload["side"] == "green"
        router = LocalRouter(RouterConfig(kind="local", target=admin))
        assert router.set_split(Split(100, 0)) == Split(100, 0)
        assert _http("GET", listen + "/echo")[1]["side"] == "blue"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert "stopped" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()

    bad = subprocess.run(
        [sys.executable, "-m", "migrator.traffic.local_proxy", *args[:-1], "60,60"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=30,
    )
    assert bad.returncode == 2 and "sum to 100" in bad.stderr and bad.stdout == ""


# ---- the load generator ----------------------------------------------------------------------------


def test_load_generator_templates_expectations_and_summary(stubs) -> None:
    blue, green = stubs
    mix = [
        ("GET", "/echo/{last_id}", None),  # skipped until an answer carried an "id"
        ("POST", "/echo/c{client}-{cycle}", {"n": "{n}"}, {"method": "POST", "path": "/echo/c{client}-{cycle}"}),
        ("GET", "/echo", None, {"side": "nobody"}),  # an expectation that fails
    ]
    with LocalProxy(blue.url, green.url, weights=(50, 50), seed=1) as proxy:
        gen = LoadGenerator(proxy.url, mix, clients=3, max_requests=60)
        summary = gen.run()
    records = gen.records
    assert summary.requests == len(records) == 60
    assert not any(r.path.startswith("/echo/") and r.method == "GET" for r in records)  # no id ever came back
    failed = [r for r in records if r.failed]
    assert failed and all(r.path == "/echo" and "expected" in (r.error or "") for r in failed)
    gets = [r for r in records if r.method == "GET"]
    assert summary.failures == len(failed) == len(gets) and 25 <= len(gets) <= 35  # the clients alternate
    assert {r.path for r in records if r.method == "POST" and r.client == 0} >= {"/echo/c0-0", "/echo/c0-1"}
    assert summary.side("blue").requests + summary.side("green").requests == 60
    assert 0 < summary.p50_s <= summary.p99_s <= summary.latency_max_s
    assert "60 requests" in str(summary)

    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.0 and percentile([1.0, 2.0, 3.0, 4.0], 99) == 4.0
    assert percentile([], 50) == 0.0 and summarize([]).requests == 0
