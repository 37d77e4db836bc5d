"""A weighted HTTP reverse proxy between a blue and a green upstream: real local traffic for the
``local`` router, the example application and the end-to-end tests.

Each request goes to one side, drawn by weight per request (``randrange(100) < blue``: a side at 0
is never chosen, a side at 100 always), and the response is streamed back as the upstream sends it.
The proxy is standard library only: a threaded ``http.server`` (one thread per client connection,
keep-alive, a listen backlog for bursts of clients) and one ``http.client`` connection per upstream
request (``Connection: close``: never a stale pooled connection, so never a retried request).

Admin API (on ``--admin HOST:PORT`` when given, else under ``/_bgmigrate/`` on the listening port):

- ``GET /_bgmigrate/weights`` → ``{"blue": 90, "green": 10}`` with an ``ETag``;
- ``PUT /_bgmigrate/weights`` with that JSON: whole numbers 0..100 summing to 100, else ``400`` and
  ``{"error": "..."}``; ``If-Match`` with the ETag read makes it conditional (``412`` when the
  weights changed meanwhile);
- ``GET /_bgmigrate/stats`` → per side: requests, upstream errors, responses by status class,
  in flight, latency; ``DELETE /_bgmigrate/stats`` resets them (and returns the ones before);
- ``GET /_bgmigrate/config`` → the upstream URLs, the listening URL and the weights;
- ``GET /_bgmigrate/health`` → ``{"status": "ok"}`` (the proxy itself).

An upstream that cannot be reached (refused, reset, timed out, not HTTP) is answered ``502`` with
``{"error": ...}`` and counted as that side's error; an upstream that fails mid-body is counted and
the client connection closed (the body is truncated, never completed with something else). Every
proxied response carries ``X-Bgmigrate-Side: blue|green``.

In-process::

    proxy = LocalProxy("http://127.0.0.1:8001", "http://127.0.0.1:8002", weights=(100, 0)).start()
    proxy.url, proxy.admin_url  # port 0 (the default) → the port chosen
    proxy.stop()

From a shell (one ready line on stdout; SIGTERM or SIGINT stops it cleanly)::

    python -m migrator.traffic.local_proxy --listen 127.0.0.1:8000 --blue http://127.0.0.1:8001 \\
        --green http://127.0.0.1:8002 --weights 100,0 --admin 127.0.0.1:8090
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import random
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

SIDES = ("blue", "green")
ADMIN_PREFIX = "/_bgmigrate"
SIDE_HEADER = "X-Bgmigrate-Side"
READY_PREFIX = "bgmigrate local proxy ready:"
MAX_ADMIN_BODY = 64 * 1024
CHUNK = 64 * 1024
# RFC 9110 7.6.1: connection-specific headers a proxy must not forward (plus those Connection names)
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)


class WeightsError(ValueError):
    """Weights that are not two whole percents summing to 100 (the admin API answers 400)."""


def parse_weights(value: Any) -> tuple[int, int]:
    """``{"blue": b, "green": g}`` (or ``"b,g"``) as ``(b, g)``; :class:`WeightsError` says what is wrong."""
    if isinstance(value, str):
        parts = [p.strip() for p in value.split(",")]
        if len(parts) != 2 or not all(p.isdigit() for p in parts):
            raise WeightsError(f"weights must be two whole percents BLUE,GREEN (e.g. 90,10), not {value!r}")
        value = {"blue": int(parts[0]), "green": int(parts[1])}
    if not isinstance(value, dict):
        raise WeightsError('weights must be a JSON object like {"blue": 90, "green": 10}')
    if set(value) != set(SIDES):
        raise WeightsError(f"weights must have exactly the keys blue and green, got {sorted(map(str, value))}")
    for side in SIDES:
        weight = value[side]
        if not isinstance(weight, int) or isinstance(weight, bool) or not 0 <= weight <= 100:
            raise WeightsError(f"{side} weight must be a whole percent from 0 to 100, not {weight!r}")
    if value["blue"] + value["green"] != 100:
        raise WeightsError(
            f"weights must sum to 100: blue {value['blue']} + green {value['green']} = {value['blue'] + value['green']}"
        )
    return value["blue"], value["green"]


def parse_hostport(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) as ``(host, port)``; port 0 lets the system choose."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ValueError(f"expected HOST:PORT, not {value!r}")
    return host.strip("[]"), int(port)


@dataclass(frozen=True)
class Upstream:
    url: str
    scheme: str
    host: str
    port: int
    prefix: str  # path prefix, without a trailing slash

    @classmethod
    def parse(cls, url: str) -> Upstream:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"upstream must be an http(s)://HOST[:PORT][/prefix] URL, not {url!r}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return cls(url.rstrip("/"), parts.scheme, parts.hostname, port, parts.path.rstrip("/"))

    def connection(self, timeout: float) -> http.client.HTTPConnection:
        if self.scheme == "https":
            return http.client.HTTPSConnection(self.host, self.port, timeout=timeout)
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    @property
    def netloc(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


class _SideStats:
    __slots__ = ("errors", "in_flight", "latency_max", "latency_sum", "requests", "responses")

    def __init__(self) -> None:
        self.requests = 0
        self.errors = 0
        self.in_flight = 0
        self.responses: dict[str, int] = {"2xx": 0, "3xx": 0, "4xx": 0, "5xx": 0}
        self.latency_sum = 0.0
        self.latency_max = 0.0

    def as_dict(self, upstream: str) -> dict[str, Any]:
        answered = sum(self.responses.values())
        return {
            "upstream": upstream,
            "requests": self.requests,
            "errors": self.errors,
            "responses": dict(self.responses),
            "in_flight": self.in_flight,
            "latency_max_ms": round(self.latency_max * 1000, 3),
            "latency_avg_ms": round(self.latency_sum / answered * 1000, 3) if answered else None,
        }


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256  # a burst of clients connecting at once waits in the backlog, not in SYN retries

    def __init__(self, address: tuple[str, int], proxy: LocalProxy, *, serves: str) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.proxy = proxy
        self.serves = serves  # "proxy" | "admin" | "both"
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Wake every handler still waiting on a keep-alive connection (they then end)."""
        with self.connections_lock:
            connections = list(self.connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # a client that went away mid-request is not an error worth a traceback on stderr
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "bgmigrate-local-proxy"
    timeout = 60  # idle keep-alive connections and slow request bodies
    disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms delayed-ACK stall
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.proxy.access_log:
            sys.stderr.write(f"{self.address_string()} - {format % args}\n")

    def _dispatch(self) -> None:
        serves = self.server.serves
        if serves == "admin" or (serves == "both" and self._is_admin_path()):
            self._admin()
        else:
            self._proxy()

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _dispatch

    def _is_admin_path(self) -> bool:
        path = self.path.split("?", 1)[0]
        return path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/")

    # ---- request bodies --------------------------------------------------------------------------

    def _read_body(self, limit: int | None = None) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked(limit)
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        size = int(length)
        if size < 0 or (limit is not None and size > limit):
            raise ValueError(f"request body of {size} bytes refused")
        return self.rfile.read(size)

    def _read_chunked(self, limit: int | None) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):  # trailers
                    pass
                return b"".join(parts)
            total += size
            if limit is not None and total > limit:
                raise ValueError("request body too large")
            parts.append(self.rfile.read(size))
            self.rfile.readline(1024)

    # ---- proxying --------------------------------------------------------------------------------

    def _proxy(self) -> None:
        proxy = self.server.proxy
        try:
            body = self._read_body()
        except (ValueError, OSError) as err:
            self.close_connection = True
            self._json(400, {"error": f"bad request body: {err}"})
            return
        side = proxy.choose()
        upstream = proxy.upstreams[side]
        started = time.monotonic()
        proxy._begin(side)
        status: int | None = None
        failed = False
        conn = upstream.connection(proxy.connect_timeout)
        try:
            try:
                conn.connect()
                conn.sock.settimeout(proxy.read_timeout)
                conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                conn.request(
                    self.command, upstream.prefix + self.path, body=body or None, headers=self._headers_out(upstream)
                )
                response = conn.getresponse()
            except (OSError, http.client.HTTPException) as err:
                failed = True
                status = 502
                self._json(502, {"error": f"{side} upstream {upstream.url}: {_describe(err)}"}, side=side)
                return
            status = response.status
            failed = not self._relay(response, side)
        finally:
            conn.close()
            proxy._end(side, status, time.monotonic() - started, failed)

    def _headers_out(self, upstream: Upstream) -> dict[str, str]:
        named = {h.strip().lower() for h in self.headers.get("Connection", "").split(",") if h.strip()}
        headers: dict[str, str] = {}
        for key, value in self.headers.items():
            low = key.lower()
            if low in HOP_BY_HOP or low in named or low in ("host", "content-length", "expect"):
                continue
            headers[key] = value if key not in headers else f"{headers[key]}, {value}"
        host = self.headers.get("Host")
        if host:
            headers["X-Forwarded-Host"] = host
        forwarded_for = self.headers.get("X-Forwarded-For")
        client = self.client_address[0]
        headers["X-Forwarded-For"] = f"{forwarded_for}, {client}" if forwarded_for else client
        headers["X-Forwarded-Proto"] = "http"
        headers["Host"] = upstream.netloc
        headers["Connection"] = "close"
        return headers

    def _relay(self, response: http.client.HTTPResponse, side: str) -> bool:
        """Stream ``response`` to the client; False when the *upstream* failed mid-body."""
        named = {h.strip().lower() for h in (response.getheader("Connection") or "").split(",") if h.strip()}
        length = response.getheader("Content-Length")
        no_body = self.command == "HEAD" or response.status in (204, 304) or 100 <= response.status < 200
        chunked = False
        self.send_response_only(response.status, response.reason)
        for key, value in response.getheaders():
            low = key.lower()
            if low in HOP_BY_HOP or low in named or low == "content-length":
                continue
            self.send_header(key, value)
        self.send_header(SIDE_HEADER, side)
        if no_body:
            if length is not None:
                self.send_header("Content-Length", length)
        elif length is not None and length.isdigit():
            self.send_header("Content-Length", length)
        elif self.request_version == "HTTP/1.1":
            chunked = True
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.close_connection = True
        if self.close_connection:
            self.send_header("Connection", "close")
        try:
            self.end_headers()
        except OSError:
            self.close_connection = True
            return True  # the client went away: not the upstream's fault
        if no_body:
            return True
        while True:
            try:
                data = response.read1(CHUNK)
            except (OSError, http.client.HTTPException):
                self.close_connection = True  # truncated: the client must see it, never a completed body
                return False
            try:
                if not data:
                    if chunked:
                        self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
                    return True
                if chunked:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                else:
                    self.wfile.write(data)
                self.wfile.flush()
            except OSError:
                self.close_connection = True
                return True

    def _json(
        self, status: int, payload: Any, *, side: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        data = b"" if self.command == "HEAD" else json.dumps(payload).encode() + b"\n"
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if side:
                self.send_header(SIDE_HEADER, side)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        except OSError:
            self.close_connection = True

    # ---- admin -----------------------------------------------------------------------------------

    def _admin(self) -> None:
        proxy = self.server.proxy
        path = self.path.split("?", 1)[0].rstrip("/")
        if path.startswith(ADMIN_PREFIX):
            path = path[len(ADMIN_PREFIX) :] or "/"
        method = self.command
        try:
            body = self._read_body(MAX_ADMIN_BODY)
        except (ValueError, OSError) as err:
            self.close_connection = True
            self._json(413, {"error": f"bad request body: {err}"})
            return
        routes: dict[str, tuple[str, ...]] = {
            "/weights": ("GET", "HEAD", "PUT"),
            "/stats": ("GET", "HEAD", "DELETE"),
            "/config": ("GET", "HEAD"),
            "/health": ("GET", "HEAD"),
        }
        if path not in routes:
            self._json(404, {"error": f"no admin resource {ADMIN_PREFIX}{path}; try {ADMIN_PREFIX}/weights"})
            return
        if method not in routes[path]:
            self._json(
                405,
                {"error": f"{method} not allowed on {ADMIN_PREFIX}{path}"},
                headers={"Allow": ", ".join(routes[path])},
            )
            return
        if path == "/health":
            self._json(200, {"status": "ok"})
        elif path == "/config":
            self._json(200, proxy.config())
        elif path == "/stats":
            self._json(200, proxy.reset_stats() if method == "DELETE" else proxy.stats())
        elif method == "PUT":
            self._put_weights(body)
        else:
            blue, green, version = proxy.weights_version()
            self._json(200, {"blue": blue, "green": green}, headers={"ETag": _etag(version)})

    def _put_weights(self, body: bytes) -> None:
        proxy = self.server.proxy
        try:
            value = json.loads(body.decode("utf-8") or "null")
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            self._json(400, {"error": f'body must be JSON like {{"blue": 90, "green": 10}}: {err}'})
            return
        try:
            blue, green = parse_weights(value)
        except WeightsError as err:
            self._json(400, {"error": str(err)})
            return
        if_match = self.headers.get("If-Match")
        expected = None if if_match is None or if_match.strip() == "*" else if_match.strip()
        done = proxy.set_weights(blue, green, if_version=expected)
        if done is None:
            current_blue, current_green, version = proxy.weights_version()
            self._json(
                412,
                {
                    "error": f"the weights changed since {expected} was read: now blue {current_blue} / green "
                    f"{current_green} ({_etag(version)})",
                },
                headers={"ETag": _etag(version)},
            )
            return
        self._json(200, {"blue": blue, "green": green}, headers={"ETag": _etag(done)})


def _etag(version: int) -> str:
    return f'"w{version}"'


def _describe(err: BaseException) -> str:
    if isinstance(err, ConnectionRefusedError):
        return "connection refused"
    if isinstance(err, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(err, http.client.RemoteDisconnected):
        return "closed the connection without a response"
    text = str(err) or type(err).__name__
    return " ".join(text.split())


class LocalProxy:
    """The proxy, in-process: :meth:`start` binds and serves in background threads, :meth:`stop`
    stops accepting, lets requests in flight finish (up to ``drain_s``) and closes idle connections."""

    def __init__(
        self,
        blue: str,
        green: str,
        *,
        listen: tuple[str, int] = ("127.0.0.1", 0),
        admin: tuple[str, int] | None = None,
        weights: tuple[int, int] = (100, 0),
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        seed: int | None = None,
        access_log: bool = False,
    ) -> None:
        self.upstreams = {"blue": Upstream.parse(blue), "green": Upstream.parse(green)}
        blue_w, green_w = parse_weights({"blue": weights[0], "green": weights[1]})
        self._weights = (blue_w, green_w, 1)  # swapped as one tuple: a request never sees half an update
        self._weights_lock = threading.Lock()
        self._listen, self._admin_listen = listen, admin
        self.connect_timeout, self.read_timeout = connect_timeout, read_timeout
        self.access_log = access_log
        self._rng = random.Random(seed)
        self._stats_lock = threading.Lock()
        self._stats = {side: _SideStats() for side in SIDES}
        self._since = time.time()
        self._servers: list[_Server] = []
        self._urls: tuple[str, str] | None = None
        self._threads: list[threading.Thread] = []

    # ---- lifecycle -------------------------------------------------------------------------------

    def start(self) -> LocalProxy:
        if self._servers:
            raise RuntimeError("the proxy is already started")
        main = _Server(self._listen, self, serves="proxy" if self._admin_listen else "both")
        self._servers.append(main)
        if self._admin_listen:
            try:
                self._servers.append(_Server(self._admin_listen, self, serves="admin"))
            except OSError:
                main.server_close()
                self._servers.clear()
                raise
        self._urls = (_url(self._servers[0]), _url(self._servers[-1]))
        for server in self._servers:
            thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.1}, name=f"local-proxy-{server.serves}"
            )
            thread.daemon = True
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self, drain_s: float = 5.0) -> None:
        servers, self._servers = self._servers, []
        for server in servers:
            server.shutdown()  # no new connections are accepted
            server.server_close()
        deadline = time.monotonic() + drain_s
        while time.monotonic() < deadline and self._in_flight():
            time.sleep(0.01)
        for server in servers:
            server.close_connections()
        for thread in self._threads:
            thread.join(timeout=1)
        self._threads.clear()

    def __enter__(self) -> LocalProxy:
        return self.start() if not self._servers else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def admin_port(self) -> int:
        return int(self.admin_url.rsplit(":", 1)[1])

    @property
    def url(self) -> str:
        """Where clients send requests (known from :meth:`start` on, still after :meth:`stop`)."""
        if not self._urls:
            raise RuntimeError("the proxy is not started")
        return self._urls[0]

    @property
    def admin_url(self) -> str:
        """The admin API's base URL (the router's ``target``); paths are under ``/_bgmigrate/``."""
        if not self._urls:
            raise RuntimeError("the proxy is not started")
        return self._urls[1]

    # ---- weights ---------------------------------------------------------------------------------

    def choose(self) -> str:
        blue, _green, _version = self._weights
        return "blue" if self._rng.randrange(100) < blue else "green"

    @property
    def weights(self) -> tuple[int, int]:
        blue, green, _version = self._weights
        return blue, green

    def weights_version(self) -> tuple[int, int, int]:
        return self._weights

    def set_weights(self, blue: int, green: int, *, if_version: str | None = None) -> int | None:
        """Set the weights (validated); with ``if_version`` (an ETag) only if unchanged since. Returns
        the new version, or None when ``if_version`` is stale."""
        parse_weights({"blue": blue, "green": green})
        with self._weights_lock:
            version = self._weights[2]
            if if_version is not None and if_version not in (_etag(version), _etag(version).strip('"')):
                return None
            self._weights = (blue, green, version + 1)
            return version + 1

    # ---- stats -----------------------------------------------------------------------------------

    def _begin(self, side: str) -> None:
        with self._stats_lock:
            stats = self._stats[side]
            stats.requests += 1
            stats.in_flight += 1

    def _end(self, side: str, status: int | None, latency: float, failed: bool) -> None:
        with self._stats_lock:
            stats = self._stats[side]
            stats.in_flight -= 1
            if failed:
                stats.errors += 1
            if status is not None and not (failed and status == 502):
                bucket = f"{status // 100}xx"
                stats.responses[bucket] = stats.responses.get(bucket, 0) + 1
                stats.latency_sum += latency
                stats.latency_max = max(stats.latency_max, latency)

    def _in_flight(self) -> int:
        with self._stats_lock:
            return sum(s.in_flight for s in self._stats.values())

    def stats(self) -> dict[str, Any]:
        blue, green = self.weights
        with self._stats_lock:
            result: dict[str, Any] = {
                "weights": {"blue": blue, "green": green},
                "since": round(self._since, 3),
            }
            for side in SIDES:
                result[side] = self._stats[side].as_dict(self.upstreams[side].url)
        return result

    def reset_stats(self) -> dict[str, Any]:
        """The stats so far, then zero (requests in flight stay counted as in flight)."""
        before = self.stats()
        with self._stats_lock:
            for side in SIDES:
                fresh = _SideStats()
                fresh.in_flight = self._stats[side].in_flight
                self._stats[side] = fresh
            self._since = time.time()
        return before

    def config(self) -> dict[str, Any]:
        blue, green = self.weights
        return {
            "blue": self.upstreams["blue"].url,
            "green": self.upstreams["green"].url,
            "listen": self.url if self._servers else None,
            "weights": {"blue": blue, "green": green},
        }


def _url(server: _Server) -> str:
    host, port = server.server_address[:2]
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1" if host == "0.0.0.0" else "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


# ---- command line ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m migrator.traffic.local_proxy",
        description="A weighted HTTP reverse proxy between a blue and a green upstream (bgmigrate's local router).",
    )
    parser.add_argument("--listen", required=True, help="HOST:PORT to serve on (port 0: any free port)")
    parser.add_argument("--blue", required=True, help="blue upstream URL, e.g. http://127.0.0.1:8001")
    parser.add_argument("--green", required=True, help="green upstream URL, e.g. http://127.0.0.1:8002")
    parser.add_argument("--weights", default="100,0", help="BLUE,GREEN percent, summing to 100 (default 100,0)")
    parser.add_argument("--admin", help="HOST:PORT for the admin API (default: /_bgmigrate/ on --listen)")
    parser.add_argument("--connect-timeout", type=float, default=5.0, help="seconds to connect to an upstream")
    parser.add_argument("--read-timeout", type=float, default=60.0, help="seconds an upstream may stay silent")
    parser.add_argument("--access-log", action="store_true", help="log every request on stderr")
    args = parser.parse_args(argv)
    try:
        listen = parse_hostport(args.listen)
        admin = parse_hostport(args.admin) if args.admin else None
        weights = parse_weights(args.weights)
        proxy = LocalProxy(
            args.blue,
            args.green,
            listen=listen,
            admin=admin,
            weights=weights,
            connect_timeout=args.connect_timeout,
            read_timeout=args.read_timeout,
            access_log=args.access_log,
        )
        proxy.start()
    except (ValueError, OSError) as err:
        print(f"local proxy: {err}", file=sys.stderr)
        return 2

    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    blue_w, green_w = proxy.weights
    print(
        f"{READY_PREFIX} listen={proxy.url} admin={proxy.admin_url} "
        f"blue={proxy.upstreams['blue'].url} green={proxy.upstreams['green'].url} weights={blue_w},{green_w}",
        flush=True,
    )
    while not stop.wait(0.5):
        pass
    proxy.stop()
    print("local proxy: stopped", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
