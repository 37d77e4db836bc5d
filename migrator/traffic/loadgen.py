"""A load generator: N client threads sending a mix of HTTP requests to one base URL, recording every
request (when, how long, status, which side answered, error), for tests and ``bgmigrate demo``.

The mix is either a list of templates ``(method, path, body)`` or ``(method, path, body, expect)``
that each client cycles through, or a callable ``mix(ctx) -> (method, path, body[, expect]) | None``
(None: this client is done). Templates are formatted per request with ``{client}`` (the client's
number), ``{n}`` (its request number), ``{cycle}`` (how often it went through the list), ``{rand}``
(a random 9-digit number) and ``{last_id}`` (the ``"id"`` of the last JSON answer this client got;
a template that needs it before there is one is skipped). ``body`` is JSON-encoded unless it is
``str``/``bytes``; ``expect`` is a dict of fields the JSON answer must hold (formatted the same way):
a mismatch is a failure, so read-your-writes across blue and green is checked under load.

Which side answered comes from a response header: ``X-App-Version`` (the example app), else
``X-Bgmigrate-Side`` (the local proxy's, also on its own 502s).

    gen = LoadGenerator("http://127.0.0.1:8000", EXAMPLE_APP_MIX, clients=20).start()
    ...  # shift traffic
    summary = gen.stop()            # or LoadGenerator(..., duration_s=10).run()
    summary.failures, summary.by_side["green"].requests, summary.p99_s
"""

from __future__ import annotations

import contextlib
import http.client
import json
import random
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

SIDE_HEADERS = ("X-App-Version", "X-Bgmigrate-Side")
UNKNOWN = "unknown"

# The example application's mix (examples/app): create, read back, change, read back; each read
# checks what the client wrote, whichever version served the write and whichever serves the read.
EXAMPLE_APP_MIX: list[tuple[Any, ...]] = [
    ("POST", "/customers", {"email": "c{client}-{cycle}@example.com"}, None),
    ("GET", "/customers/{last_id}", None, {"email": "c{client}-{cycle}@example.com"}),
    ("PUT", "/customers/{last_id}", {"email": "c{client}-{cycle}-b@example.com"}, None),
    ("GET", "/customers/{last_id}", None, {"email": "c{client}-{cycle}-b@example.com"}),
    ("GET", "/health", None, None),
]

Template = tuple[str, str, Any] | tuple[str, str, Any, Any]


@dataclass(frozen=True)
class Record:
    """One request. ``t``: seconds from the start of the run to when it was sent."""

    t: float
    latency_s: float
    client: int
    method: str
    path: str
    status: int | None
    side: str | None
    error: str | None  # a connection error, a timeout, or a failed expectation

    @property
    def failed(self) -> bool:
        return self.error is not None or self.status is None or not 200 <= self.status < 400


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    side: str | None

    def json(self) -> Any:
        try:
            return json.loads(self.body.decode("utf-8")) if self.body else None
        except (UnicodeDecodeError, json.JSONDecodeError):
            return None


@dataclass
class ClientContext:
    """What a mix callable sees: the client's number, its request count, a random generator, the
    last response (None at first) and a dict it may keep its own state in."""

    client: int
    n: int = 0
    cycle: int = 0
    rng: random.Random = field(default_factory=random.Random)
    last: Response | None = None
    last_id: Any = None
    state: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SideSummary:
    requests: int
    failures: int
    latency_max_s: float
    p50_s: float
    p99_s: float


@dataclass(frozen=True)
class Summary:
    requests: int
    failures: int
    duration_s: float
    latency_max_s: float
    p50_s: float
    p99_s: float
    by_side: dict[str, SideSummary]
    failure_examples: list[str]

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0

    def side(self, name: str) -> SideSummary:
        return self.by_side.get(name) or SideSummary(0, 0, 0.0, 0.0, 0.0)

    def __str__(self) -> str:
        sides = ", ".join(f"{name} {s.requests} ({s.failures} failed)" for name, s in sorted(self.by_side.items()))
        text = (
            f"{self.requests} requests in {self.duration_s:.1f} s ({self.rps:.0f}/s), {self.failures} failed; "
            f"{sides or 'no side'}; latency p50 {self.p50_s * 1000:.1f} ms, p99 {self.p99_s * 1000:.1f} ms, "
            f"max {self.latency_max_s * 1000:.1f} ms"
        )
        if self.failure_examples:
            text += "; e.g. " + " | ".join(self.failure_examples[:3])
        return text


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of already sorted values; 0.0 for none."""
    if not sorted_values:
        return 0.0
    rank = max(1, min(len(sorted_values), int(-(-q * len(sorted_values) // 100))))
    return sorted_values[rank - 1]


def summarize(records: Sequence[Record], duration_s: float | None = None) -> Summary:
    if duration_s is None:
        duration_s = max((r.t + r.latency_s for r in records), default=0.0) - min((r.t for r in records), default=0.0)
    latencies = sorted(r.latency_s for r in records)
    groups: dict[str, list[Record]] = {}
    for record in records:
        groups.setdefault(record.side or UNKNOWN, []).append(record)
    by_side = {}
    for name, group in groups.items():
        lat = sorted(r.latency_s for r in group)
        by_side[name] = SideSummary(
            requests=len(group),
            failures=sum(r.failed for r in group),
            latency_max_s=lat[-1],
            p50_s=percentile(lat, 50),
            p99_s=percentile(lat, 99),
        )
    failed = [r for r in records if r.failed]
    examples = [
        f"t={r.t:.2f}s {r.method} {r.path} -> {r.status if r.status is not None else '-'}"
        f" ({r.side or UNKNOWN}){': ' + r.error if r.error else ''}"
        for r in failed[:5]
    ]
    return Summary(
        requests=len(records),
        failures=len(failed),
        duration_s=duration_s,
        latency_max_s=latencies[-1] if latencies else 0.0,
        p50_s=percentile(latencies, 50),
        p99_s=percentile(latencies, 99),
        by_side=by_side,
        failure_examples=examples,
    )


Mix = Sequence[Template] | Callable[[ClientContext], Any]


class LoadGenerator:
    """``clients`` threads, each with its own keep-alive connection (reopened after an error), sending
    the mix until :meth:`stop`, ``duration_s`` or ``max_requests`` (over all clients)."""

    def __init__(
        self,
        base_url: str,
        mix: Mix = EXAMPLE_APP_MIX,
        *,
        clients: int = 10,
        duration_s: float | None = None,
        max_requests: int | None = None,
        timeout_s: float = 10.0,
        think_s: float = 0.0,
        side_headers: Sequence[str] = SIDE_HEADERS,
        headers: dict[str, str] | None = None,
        seed: int | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base URL must be http(s)://HOST[:PORT][/prefix], not {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self._scheme, self._host = parts.scheme, parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._prefix = parts.path.rstrip("/")
        self.mix = mix
        self.clients = clients
        self.duration_s = duration_s
        self.max_requests = max_requests
        self.timeout_s = timeout_s
        self.think_s = think_s
        self.side_headers = tuple(side_headers)
        self.headers = dict(headers or {})
        self._seed = seed
        self._lock = threading.Lock()
        self._records: list[Record] = []
        self._sent = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._t0 = 0.0
        self._ended: float | None = None

    # ---- lifecycle -------------------------------------------------------------------------------

    def start(self) -> LoadGenerator:
        if self._threads:
            raise RuntimeError("the load generator is already running")
        self._stop.clear()
        self._t0 = time.monotonic()
        self._ended = None
        for index in range(self.clients):
            rng = random.Random(None if self._seed is None else self._seed * 1_000_003 + index)
            thread = threading.Thread(
                target=self._client, args=(ClientContext(index, rng=rng),), name=f"loadgen-{index}"
            )
            thread.daemon = True
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self, timeout_s: float | None = None) -> Summary:
        """Stop the clients (each finishes its request in flight) and summarize."""
        self._stop.set()
        self.join(timeout_s)
        return self.summary()

    def join(self, timeout_s: float | None = None) -> None:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        if not any(t.is_alive() for t in self._threads):
            self._threads.clear()
            if self._ended is None:
                self._ended = time.monotonic()

    def run(self) -> Summary:
        """Start, wait for ``duration_s`` or ``max_requests`` (one of them is needed), summarize."""
        if self.duration_s is None and self.max_requests is None:
            raise ValueError("run() needs duration_s or max_requests (or use start() and stop())")
        self.start()
        self.join()
        return self.summary()

    def __enter__(self) -> LoadGenerator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def elapsed(self) -> float:
        """Seconds since start (the clock the records' ``t`` use)."""
        return time.monotonic() - self._t0

    # ---- results ---------------------------------------------------------------------------------

    @property
    def records(self) -> list[Record]:
        with self._lock:
            return list(self._records)

    def summary(self, since: float | None = None, until: float | None = None) -> Summary:
        """Over all records, or those sent in ``[since, until)`` (seconds from start)."""
        records = [r for r in self.records if (since is None or r.t >= since) and (until is None or r.t < until)]
        if since is None and until is None:
            end = self._ended if self._ended is not None else time.monotonic()
            return summarize(records, end - self._t0)
        return summarize(records)

    def wait_for(self, requests: int, timeout_s: float = 30.0) -> bool:
        """Block until at least ``requests`` were recorded (True) or the timeout (False)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if len(self._records) >= requests:
                    return True
            if not self.running:
                break
            time.sleep(0.01)
        with self._lock:
            return len(self._records) >= requests

    # ---- one client ------------------------------------------------------------------------------

    def _connection(self) -> http.client.HTTPConnection:
        if self._scheme == "https":
            return http.client.HTTPSConnection(self._host, self._port, timeout=self.timeout_s)
        return http.client.HTTPConnection(self._host, self._port, timeout=self.timeout_s)

    @staticmethod
    def _connect(conn: http.client.HTTPConnection) -> None:
        conn.connect()
        with contextlib.suppress(OSError):
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _take_slot(self) -> bool:
        with self._lock:
            if self.max_requests is not None and self._sent >= self.max_requests:
                return False
            self._sent += 1
            return True

    def _next(self, ctx: ClientContext) -> tuple[str, str, Any, Any] | None:
        if callable(self.mix):
            chosen = self.mix(ctx)
            if chosen is None:
                return None
            method, path, body, *rest = chosen
            return method, path, body, rest[0] if rest else None
        templates = list(self.mix)
        pos = ctx.state.get("pos", 0)
        for _ in range(len(templates)):
            position, pos = pos, (pos + 1) % len(templates)
            if position == 0 and ctx.state.get("started"):
                ctx.cycle += 1
            ctx.state["started"] = True
            method, path, body, *rest = templates[position]
            try:
                chosen = (method, _format(path, ctx), _format(body, ctx), _format(rest[0] if rest else None, ctx))
            except _NeedsLastId:
                continue
            ctx.state["pos"] = pos
            return chosen
        ctx.state["pos"] = pos
        return None

    def _client(self, ctx: ClientContext) -> None:
        conn: http.client.HTTPConnection | None = None
        deadline = None if self.duration_s is None else self._t0 + self.duration_s
        try:
            while not self._stop.is_set() and (deadline is None or time.monotonic() < deadline):
                request = self._next(ctx)
                if request is None or not self._take_slot():
                    return
                method, path, body, expect = request
                if conn is None:
                    conn = self._connection()
                conn, response, failed = self._send(conn, ctx, method, path, body, expect)
                ctx.n += 1
                ctx.last = response
                payload = response.json() if response is not None and not failed else None
                if isinstance(payload, dict) and "id" in payload:
                    ctx.last_id = payload["id"]
                elif failed:
                    ctx.last_id = None  # what follows a failed write would only fail for its sake
                if self.think_s:
                    self._stop.wait(self.think_s)
        finally:
            if conn is not None:
                conn.close()

    def _send(
        self, conn: http.client.HTTPConnection, ctx: ClientContext, method: str, path: str, body: Any, expect: Any
    ) -> tuple[http.client.HTTPConnection | None, Response | None, bool]:
        headers = {"Accept": "application/json", **self.headers}
        data: bytes | None
        if body is None:
            data = None
        elif isinstance(body, bytes):
            data = body
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        sent = time.monotonic()
        status: int | None = None
        side: str | None = None
        error: str | None = None
        response: Response | None = None
        try:
            if conn.sock is None:
                self._connect(conn)
            conn.request(method, self._prefix + path, body=data, headers=headers)
            raw = conn.getresponse()
            payload = raw.read()
            status = raw.status
            header_map = {k.lower(): v for k, v in raw.getheaders()}
            side = next((header_map[h.lower()] for h in self.side_headers if h.lower() in header_map), None)
            response = Response(status, header_map, payload, side)
            if raw.will_close:
                conn.close()
                conn = None  # type: ignore[assignment]
            if expect is not None and 200 <= status < 300:
                error = _check(response.json(), expect)
        except (OSError, http.client.HTTPException) as err:
            error = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
            conn.close()
            conn = None  # type: ignore[assignment]
        latency = time.monotonic() - sent
        record = Record(sent - self._t0, latency, ctx.client, method, path, status, side, error)
        with self._lock:
            self._records.append(record)
        return conn, response, record.failed


class _NeedsLastId(Exception):
    pass


def _format(value: Any, ctx: ClientContext) -> Any:
    if isinstance(value, str):
        if "{last_id}" in value and ctx.last_id is None:
            raise _NeedsLastId
        return value.format(
            client=ctx.client, n=ctx.n, cycle=ctx.cycle, rand=ctx.rng.randrange(10**8, 10**9), last_id=ctx.last_id
        )
    if isinstance(value, dict):
        return {k: _format(v, ctx) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_format(v, ctx) for v in value)
    return value


def _check(payload: Any, expect: dict[str, Any]) -> str | None:
    if not isinstance(payload, dict):
        return f"expected a JSON object with {expect}, got {payload!r}"[:300]
    wrong = {k: payload.get(k) for k, v in expect.items() if payload.get(k) != v}
    if wrong:
        return f"expected {expect}, got {wrong}"[:300]
    return None
