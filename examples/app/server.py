"""The shop's HTTP server (standard library ``http.server``, threaded) on SQLAlchemy Core + psycopg 3.

Endpoints (JSON in and out; every response carries ``X-App-Version: blue|green``):

- ``GET /health``: 200 when this version's own query on ``customers`` works (its columns exist and
  the database answers), else 503; always 503 with ``--fail-health`` (or ``SHOP_FAIL_HEALTH=1``, or
  ``PUT /_shop/health {"fail": true}`` at run time);
- ``GET /customers/{id}`` (404 when absent), ``POST /customers`` (201), ``PUT /customers/{id}``;
- ``GET /customers?limit=N`` (blue: newest ids) / ``GET /customers?plan=P&limit=N`` (green: newest of
  a plan, through ``customers_plan_created_at_idx``).

The API speaks ``email`` in both versions; blue stores it in ``customers.email`` (and keeps
``nickname``), green in ``customers.email_address`` (and ``plan``). Database sessions are named
``shop@blue`` / ``shop@green`` (``application_name``): bgmigrate's release flow refuses contract
while a ``shop@blue`` session remains, and a stopped app closes its pool.

``--error-rate F`` answers that fraction of ``/customers`` requests with an injected 500 (for
error-rate gates); the database is not touched for them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import signal
import socket
import sys
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import Table, create_engine, desc, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError

from .schema import PLANS, VERSIONS, customers_table

VERSION_HEADER = "X-App-Version"
READY_PREFIX = "shop"  # "shop blue ready: http://127.0.0.1:PORT"
MAX_BODY = 64 * 1024
_CUSTOMER_PATH = re.compile(r"^/customers/(\d{1,18})$")


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def make_engine(dsn: str, version: str, *, pool_size: int = 10) -> Engine:
    """An engine whose connections are psycopg 3 sessions named ``shop@<version>``; ``dsn`` is a
    ``postgresql://`` URL or a libpq ``key=value`` string."""
    import psycopg

    if dsn.startswith(("postgresql+", "postgres+")):
        dsn = "postgresql://" + dsn.split("://", 1)[1]
    application_name = f"shop@{version}"

    def connect() -> Any:
        return psycopg.connect(dsn, application_name=application_name, connect_timeout=5)

    return create_engine(
        "postgresql+psycopg://",
        creator=connect,
        pool_size=pool_size,
        max_overflow=2 * pool_size,
        pool_timeout=10,
        pool_pre_ping=True,
    )


class Shop:
    """One version of the application: its table, its engine, its handlers (no HTTP here)."""

    def __init__(
        self,
        version: str,
        dsn: str,
        *,
        fail_health: bool = False,
        error_rate: float = 0.0,
        pool_size: int = 10,
    ) -> None:
        if version not in VERSIONS:
            raise ValueError(f"version must be blue or green, not {version!r}")
        if not 0.0 <= error_rate <= 1.0:
            raise ValueError(f"error rate must be from 0 to 1, not {error_rate}")
        self.version = version
        self.table: Table = customers_table(version)
        self.engine = make_engine(dsn, version, pool_size=pool_size)
        self.fail_health = fail_health
        self.error_rate = error_rate
        self._rng = random.Random()
        c = self.table.c
        self._email = c.email if version == "blue" else c.email_address
        self._columns = [c.id, self._email, c.nickname if version == "blue" else c.plan, c.created_at]

    def close(self) -> None:
        self.engine.dispose()

    # ---- rows ------------------------------------------------------------------------------------

    def _row(self, row: Any) -> dict[str, Any]:
        m = row._mapping
        created = m["created_at"]
        out: dict[str, Any] = {"id": m["id"], "email": m[self._email.name]}
        if self.version == "blue":
            out["nickname"] = m["nickname"]
        else:
            out["plan"] = m["plan"]
        out["created_at"] = created.isoformat() if isinstance(created, datetime) else created
        return out

    def _values(self, body: Any, *, creating: bool) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise HttpError(400, "the body must be a JSON object")
        values: dict[str, Any] = {}
        if "email" in body or creating:
            email = body.get("email")
            if not isinstance(email, str) or "@" not in email or len(email) > 320:
                raise HttpError(400, "email must be an e-mail address")
            values[self._email.name] = email
        if self.version == "blue":
            if "nickname" in body:
                nickname = body["nickname"]
                if nickname is not None and (not isinstance(nickname, str) or len(nickname) > 100):
                    raise HttpError(400, "nickname must be a string of at most 100 characters or null")
                values["nickname"] = nickname
        elif "plan" in body or creating:
            plan = body.get("plan", "free")
            if plan not in PLANS:
                raise HttpError(400, f"plan must be one of {', '.join(PLANS)}")
            values["plan"] = plan  # green always writes its new column
        if not values:
            raise HttpError(400, "nothing to change")
        return values

    # ---- handlers --------------------------------------------------------------------------------

    def health(self) -> tuple[int, dict[str, Any]]:
        if self.fail_health:
            return 503, {"status": "failing", "version": self.version, "reason": "--fail-health"}
        try:
            with self.engine.connect() as conn:
                conn.execute(select(*self._columns).limit(0)).all()
        except SQLAlchemyError as err:
            return 503, {"status": "unhealthy", "version": self.version, "error": _db_message(err)}
        return 200, {"status": "ok", "version": self.version}

    def _inject(self) -> None:
        if self.error_rate and self._rng.random() < self.error_rate:
            raise HttpError(500, "injected failure (--error-rate)")

    def get(self, customer_id: int) -> tuple[int, dict[str, Any]]:
        self._inject()
        with self.engine.connect() as conn:
            row = conn.execute(select(*self._columns).where(self.table.c.id == customer_id)).first()
        if row is None:
            raise HttpError(404, f"no customer {customer_id}")
        return 200, self._row(row)

    def create(self, body: Any) -> tuple[int, dict[str, Any]]:
        self._inject()
        values = self._values(body, creating=True)
        with self.engine.begin() as conn:
            row = conn.execute(insert(self.table).values(**values).returning(*self._columns)).one()
        return 201, self._row(row)

    def update(self, customer_id: int, body: Any) -> tuple[int, dict[str, Any]]:
        self._inject()
        values = self._values(body, creating=False)
        with self.engine.begin() as conn:
            stmt = update(self.table).where(self.table.c.id == customer_id).values(**values)
            row = conn.execute(stmt.returning(*self._columns)).first()
        if row is None:
            raise HttpError(404, f"no customer {customer_id}")
        return 200, self._row(row)

    def list_customers(self, query: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        self._inject()
        try:
            limit = int(query.get("limit", ["20"])[0])
        except ValueError:
            raise HttpError(400, "limit must be a whole number") from None
        limit = max(1, min(limit, 100))
        c = self.table.c
        stmt = select(*self._columns).limit(limit)
        if self.version == "green":
            plan = query.get("plan", [None])[0]
            if plan is not None:
                if plan not in PLANS:
                    raise HttpError(400, f"plan must be one of {', '.join(PLANS)}")
                stmt = stmt.where(c.plan == plan)  # (plan, created_at): the index green's release adds
            stmt = stmt.order_by(desc(c.created_at), desc(c.id))
        else:
            stmt = stmt.order_by(desc(c.id))
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).all()
        return 200, {"customers": [self._row(r) for r in rows]}


def _db_message(err: BaseException) -> str:
    original = getattr(err, "orig", None) or err
    text = str(original).strip().splitlines()
    return text[0][:300] if text else type(original).__name__


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], shop: Shop, access_log: bool) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.shop = shop
        self.access_log = access_log
        self.in_flight = 0
        self.lock = threading.Lock()
        self.connections: set[socket.socket] = set()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30
    disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms delayed-ACK stall
    server: _Server

    @property
    def server_version(self) -> str:  # type: ignore[override]
        return f"shop/{self.server.shop.version}"

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.access_log:
            sys.stderr.write(f"[{self.server.shop.version}] {self.address_string()} - {format % args}\n")

    def _dispatch(self) -> None:
        with self.server.lock:
            self.server.in_flight += 1
        try:
            status, payload = self._route()
        except HttpError as err:
            status, payload = err.status, {"error": str(err)}
        except OperationalError as err:
            status, payload = 503, {"error": f"database unavailable: {_db_message(err)}"}
        except DBAPIError as err:
            status, payload = 500, {"error": f"database error: {_db_message(err)}"}
            sys.stderr.write(f"[{self.server.shop.version}] {self.command} {self.path}: {payload['error']}\n")
        except SQLAlchemyError as err:  # pragma: no cover - pool timeouts and the like
            status, payload = 503, {"error": f"{type(err).__name__}: {_db_message(err)}"}
        try:
            self._send(status, payload)
        finally:
            with self.server.lock:
                self.server.in_flight -= 1

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _dispatch

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            raise HttpError(411, "send a Content-Length")
        if length > MAX_BODY:
            self.close_connection = True
            raise HttpError(413, "body too large")
        data = self.rfile.read(length) if length else b""
        try:
            return json.loads(data.decode("utf-8")) if data else None
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise HttpError(400, "the body must be JSON") from None

    def _route(self) -> tuple[int, Any]:
        shop = self.server.shop
        parts = urlsplit(self.path)
        path, method = parts.path.rstrip("/") or "/", self.command
        body = self._body() if method in ("POST", "PUT", "PATCH") else None
        if path == "/health" and method == "GET":
            return shop.health()
        if path == "/_shop/health" and method == "PUT":
            if not isinstance(body, dict) or not isinstance(body.get("fail"), bool):
                raise HttpError(400, 'expected {"fail": true|false}')
            shop.fail_health = body["fail"]
            return 200, {"fail_health": shop.fail_health, "version": shop.version}
        if path == "/customers":
            if method == "POST":
                return shop.create(body)
            if method == "GET":
                return shop.list_customers(parse_qs(parts.query))
            raise HttpError(405, f"{method} not allowed on /customers")
        match = _CUSTOMER_PATH.match(path)
        if match:
            if method == "GET":
                return shop.get(int(match.group(1)))
            if method == "PUT":
                return shop.update(int(match.group(1)), body)
            raise HttpError(405, f"{method} not allowed on /customers/{{id}}")
        raise HttpError(404, f"no route {method} {path}")

    def _send(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode() + b"\n"
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header(VERSION_HEADER, self.server.shop.version)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            self.close_connection = True


class ShopServer:
    """The HTTP server around a :class:`Shop`, in background threads; port 0 picks a free port."""

    def __init__(self, shop: Shop, host: str = "127.0.0.1", port: int = 0, *, access_log: bool = False) -> None:
        self.shop = shop
        self._server = _Server((host, port), shop, access_log)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        host = self._server.server_address[0]
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    def start(self) -> ShopServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name=f"shop-{self.shop.version}"
        )
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self, drain_s: float = 5.0) -> None:
        """Stop accepting, let requests in flight finish, close idle connections and the pool."""
        self._server.shutdown()
        self._server.server_close()
        deadline = time.monotonic() + drain_s
        while self._server.in_flight and time.monotonic() < deadline:
            time.sleep(0.01)
        with self._server.lock:
            connections = list(self._server.connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=1)
        self.shop.close()

    def __enter__(self) -> ShopServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.app", description="The example shop (blue or green).")
    parser.add_argument("--version", required=True, choices=VERSIONS, help="blue (v1) or green (v2)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 (the default): any free port, printed when ready")
    parser.add_argument(
        "--dsn",
        default=os.environ.get("SHOP_DSN") or os.environ.get("DATABASE_URL"),
        help="postgresql:// URL or libpq key=value string (default: $SHOP_DSN, $DATABASE_URL)",
    )
    parser.add_argument(
        "--fail-health",
        action="store_true",
        default=_truthy(os.environ.get("SHOP_FAIL_HEALTH")),
        help="GET /health answers 503 (also SHOP_FAIL_HEALTH=1)",
    )
    parser.add_argument(
        "--error-rate",
        type=float,
        default=float(os.environ.get("SHOP_ERROR_RATE") or 0),
        help="fraction of /customers requests answered 500 (also SHOP_ERROR_RATE)",
    )
    parser.add_argument("--pool-size", type=int, default=10)
    parser.add_argument("--access-log", action="store_true")
    args = parser.parse_args(argv)
    if not args.dsn:
        parser.error("--dsn (or SHOP_DSN / DATABASE_URL) is required")
    try:
        shop = Shop(
            args.version, args.dsn, fail_health=args.fail_health, error_rate=args.error_rate, pool_size=args.pool_size
        )
        server = ShopServer(shop, args.host, args.port, access_log=args.access_log)
    except (ValueError, OSError) as err:
        print(f"shop: {err}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server.start()
    print(f"{READY_PREFIX} {args.version} ready: {server.url} (pid {os.getpid()})", flush=True)
    while not stop.wait(0.5):
        pass
    server.stop()
    print(f"shop {args.version}: stopped", file=sys.stderr, flush=True)
    return 0
