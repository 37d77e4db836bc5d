"""A Cloud SQL emulator for the connector tests: the real Cloud SQL Python connector talks to it unchanged.

Two planes, like the real service:

- **SQL Admin API v1beta4** over plain HTTP on ``127.0.0.1:<free port>`` (point the connector at it with
  ``Connector(sqladmin_api_endpoint=emulator.endpoint)``, in bgmigrate through ``BGMIGRATE_GCP_API_ENDPOINT``):

  - ``GET /sql/v1beta4/projects/{project}/instances/{instance}/connectSettings``: the instance's IP
    addresses (``PRIMARY`` and/or ``PRIVATE``), its server CA certificate, ``databaseVersion``,
    ``region``, ``backendType: SECOND_GEN``.
  - ``POST /sql/v1beta4/projects/{project}/instances/{instance}:generateEphemeralCert``: signs the
    client's ``public_key`` with the instance's client CA and returns ``ephemeralCert`` (valid one
    hour). An ``access_token`` in the body is the connector asking for automatic IAM database
    authentication; it is recorded (:attr:`EphemeralCert.iam`).

  Errors have Google's JSON shape (``{"error": {"code", "message", "status", "errors"}}``): 404 for an
  unknown instance, 403 for an instance passed to :meth:`CloudSqlEmulator.deny`, 401 without a bearer
  token, 400 for a bad public key. Every call is logged in :attr:`CloudSqlEmulator.calls`.

- **The instance's server-side proxy**: TLS on port **3307** of each instance address (the connector
  hard-codes the port: ``SERVER_PROXY_PORT = 3307`` in ``google/cloud/sql/connector/connector.py``).
  It presents a server certificate signed by the instance's server CA (CN ``PROJECT:INSTANCE``, as Cloud
  SQL's own; the Python connector verifies the chain only, ``check_hostname = False``), requires a client
  certificate signed by the instance's client CA (so a certificate issued for another instance is refused
  in the handshake) and issued by this emulator, then pipes the bytes to the real database behind it.
  Each connection is logged in :attr:`CloudSqlEmulator.connections` with what the client sent at login
  (PostgreSQL startup message / MySQL handshake response): user, database and whether a password went
  over the wire.

Instance addresses: the port being fixed, each instance gets its own loopback addresses in a /24 of
127.0.0.0/8 picked at random (``127.X.Y.1`` public, ``127.X.Y.2`` private for the first instance, ...),
so that several emulators (pytest-xdist workers) never fight over ``127.0.0.1:3307``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import errno
import hashlib
import json
import random
import re
import socket
import ssl
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

try:  # the connector brings aiohttp and cryptography
    import google.cloud.sql.connector  # noqa: F401
    from aiohttp import web
except ImportError as err:  # a collection error with the fix, never a silent skip
    raise ImportError(
        "the Cloud SQL tests need the Cloud SQL Python connector: pip install -e '.[test,cloudsql]'"
    ) from err
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

API_PREFIX = "/sql/v1beta4"
SERVER_PROXY_PORT = 3307  # fixed by the connector
CERT_LIFETIME = dt.timedelta(hours=1)  # Cloud SQL's ephemeral certificates last one hour

_SETTINGS = re.compile(rf"^{API_PREFIX}/projects/(?P<project>[^/]+)/instances/(?P<instance>[^/:]+)/connectSettings$")
_EPHEMERAL = re.compile(
    rf"^{API_PREFIX}/projects/(?P<project>[^/]+)/instances/(?P<instance>[^/:]+):generateEphemeralCert$"
)


# ---- what the emulator serves and records ------------------------------------------------------------


@dataclass
class _Ca:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @property
    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()


@dataclass
class Instance:
    project: str
    region: str
    name: str
    database_version: str  # POSTGRES_15 | MYSQL_8_0 | ...
    backend: tuple[str, int] | str  # (host, port) of the real database, or a Unix socket path
    public_ip: str | None
    private_ip: str | None
    server_ca: _Ca
    client_ca: _Ca
    dns_name: str | None = None

    @property
    def connection_name(self) -> str:
        return f"{self.project}:{self.region}:{self.name}"

    @property
    def engine(self) -> str:
        return "postgres" if self.database_version.startswith("POSTGRES") else "mysql"


@dataclass(frozen=True)
class ApiCall:
    method: str
    path: str
    authorization: str | None
    body: dict[str, Any] | None
    status: int


@dataclass(frozen=True)
class EphemeralCert:
    serial: int
    instance: str  # connection name
    iam: bool  # the request carried an access_token: automatic IAM database authentication
    not_after: dt.datetime


@dataclass
class Connection:
    """One TLS connection accepted by an instance's proxy."""

    instance: str  # connection name
    address: str  # the instance address it came in on (public or private)
    cert_serial: int
    iam: bool
    user: str | None = None
    database: str | None = None
    password_sent: bool = False  # a PostgreSQL password message / a non-empty MySQL auth response
    closed: bool = False


def _error(code: int, status: str, message: str, reason: str) -> web.Response:
    body = {
        "error": {
            "code": code,
            "message": message,
            "status": status,
            "errors": [{"message": message, "domain": "global", "reason": reason}],
        }
    }
    return web.json_response(body, status=code)


# ---- certificates --------------------------------------------------------------------------------------


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Google, Inc"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _make_ca(common_name: str) -> _Ca:
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return _Ca(key, cert)


def _issue(
    ca: _Ca,
    common_name: str,
    public_key: Any,
    *,
    lifetime: dt.timedelta,
    usage: x509.ObjectIdentifier,
    ips: tuple[str, ...] = (),
) -> x509.Certificate:
    import ipaddress

    now = _now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca.cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + lifetime)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
    )
    if ips:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]), critical=False
        )
    return builder.sign(ca.key, hashes.SHA256())


def _ssl_cert(cert: x509.Certificate, instance: str) -> dict[str, Any]:
    """An ``sql#sslCert`` resource."""
    return {
        "kind": "sql#sslCert",
        "certSerialNumber": str(cert.serial_number),
        "cert": cert.public_bytes(serialization.Encoding.PEM).decode(),
        "commonName": cert.subject.rfc4514_string(),
        "sha1Fingerprint": hashlib.sha1(cert.public_bytes(serialization.Encoding.DER)).hexdigest(),
        "instance": instance,
        "createTime": cert.not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "expirationTime": cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
    }


# ---- what the client says at login (read from the decrypted stream, never changed) ---------------------


class _PgLogin:
    """Reads the PostgreSQL startup message and the messages until authentication is over."""

    _UNTYPED = frozenset({80877103, 80877104, 80877102})  # SSLRequest, GSSENCRequest, CancelRequest

    def __init__(self, record: Connection) -> None:
        self.record = record
        self.buf = b""
        self.started = False
        self.done = False

    def feed(self, data: bytes) -> None:
        if self.done:
            return
        self.buf += data
        while not self.done:
            if not self.started:
                if len(self.buf) < 8:
                    return
                size = int.from_bytes(self.buf[:4], "big")
                if len(self.buf) < size:
                    return
                message, self.buf = self.buf[4:size], self.buf[size:]
                code = int.from_bytes(message[:4], "big")
                if code in self._UNTYPED:
                    continue
                parts = message[4:].split(b"\0")
                params = dict(zip(parts[0::2], parts[1::2]))
                self.record.user = params.get(b"user", b"").decode() or None
                self.record.database = params.get(b"database", b"").decode() or None
                self.started = True
            else:
                if len(self.buf) < 5:
                    return
                size = int.from_bytes(self.buf[1:5], "big")
                if len(self.buf) < 1 + size:
                    return
                kind, self.buf = self.buf[:1], self.buf[1 + size :]
                if kind == b"p":  # PasswordMessage, SASLInitialResponse, SASLResponse
                    self.record.password_sent = True
                else:  # the first query: authentication is over
                    self.done = True
                    self.buf = b""


class _MyLogin:
    """Reads the MySQL HandshakeResponse41 (the first client packet)."""

    CONNECT_WITH_DB, SSL, SECURE_CONNECTION, LENENC_AUTH = 0x8, 0x800, 0x8000, 0x200000

    def __init__(self, record: Connection) -> None:
        self.record = record
        self.buf = b""
        self.done = False

    def feed(self, data: bytes) -> None:
        if self.done:
            return
        self.buf += data
        if len(self.buf) < 4:
            return
        size = int.from_bytes(self.buf[:3], "little")
        if len(self.buf) < 4 + size:
            return
        packet, self.buf, self.done = self.buf[4 : 4 + size], b"", True
        caps = int.from_bytes(packet[:4], "little")
        if size == 32 and caps & self.SSL:  # an SSLRequest: the rest would be encrypted
            return
        pos = 32
        end = packet.index(b"\0", pos)
        self.record.user = packet[pos:end].decode()
        pos = end + 1
        if caps & self.LENENC_AUTH:
            length, pos = self._lenenc(packet, pos)
        elif caps & self.SECURE_CONNECTION:
            length, pos = packet[pos], pos + 1
        else:
            length = packet.index(b"\0", pos) - pos
        self.record.password_sent = length > 0
        pos += length
        if caps & self.CONNECT_WITH_DB and pos < len(packet):
            self.record.database = packet[pos : packet.index(b"\0", pos)].decode() or None

    @staticmethod
    def _lenenc(packet: bytes, pos: int) -> tuple[int, int]:
        first = packet[pos]
        width = {0xFC: 2, 0xFD: 3, 0xFE: 8}.get(first)
        if width is None:
            return first, pos + 1
        return int.from_bytes(packet[pos + 1 : pos + 1 + width], "little"), pos + 1 + width


# ---- the emulator --------------------------------------------------------------------------------------


class CloudSqlEmulator:
    """Start with :meth:`start` (or ``with``); add instances with :meth:`add_instance`."""

    def __init__(self) -> None:
        self.instances: dict[tuple[str, str], Instance] = {}  # (project, name) -> instance
        self.denied: set[str] = set()  # connection names answered with 403
        self.calls: list[ApiCall] = []
        self.certs: dict[int, EphemeralCert] = {}
        self.connections: list[Connection] = []
        self.endpoint = ""
        self._subnet = ""
        self._next_host = 1
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="cloudsql-emulator", daemon=True)
        self._runner: web.AppRunner | None = None
        self._servers: list[asyncio.base_events.Server] = []
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._tmp = tempfile.TemporaryDirectory(prefix="cloudsql-emulator-")
        self._lock = threading.Lock()

    # -- life cycle --------------------------------------------------------------------------------------
    def start(self) -> CloudSqlEmulator:
        self._subnet = _free_subnet()
        self._thread.start()
        port = self._run(self._start_api())
        self.endpoint = f"http://127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                self._run(self._stop_all(), timeout=10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        if not self._thread.is_alive():
            self._loop.close()
        self._tmp.cleanup()

    def __enter__(self) -> CloudSqlEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self, coro: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _start_api(self) -> int:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._api)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        return int(self._runner.addresses[0][1])

    async def _stop_all(self) -> None:
        for server in self._servers:
            server.close()
        for writer in list(self._writers):
            writer.close()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)
        if self._runner is not None:
            await self._runner.cleanup()

    # -- instances ---------------------------------------------------------------------------------------
    def add_instance(
        self,
        connection_name: str,
        database_version: str,
        backend: tuple[str, int] | str,
        *,
        public: bool = True,
        private: bool = False,
    ) -> Instance:
        """A new instance ``PROJECT:REGION:NAME`` in front of the database at ``backend``."""
        project, region, name = connection_name.split(":")
        hosts = [f"{self._subnet}.{self._next_host}", f"{self._subnet}.{self._next_host + 1}"]
        self._next_host += 2
        instance = Instance(
            project=project,
            region=region,
            name=name,
            database_version=database_version,
            backend=backend,
            public_ip=hosts[0] if public else None,
            private_ip=hosts[1] if private else None,
            server_ca=_make_ca(f"Google Cloud SQL Server CA {project}:{name}"),
            client_ca=_make_ca(f"Google Cloud SQL Client CA {project}:{name}"),
        )
        addresses = tuple(ip for ip in (instance.public_ip, instance.private_ip) if ip)
        if addresses:
            context = self._server_context(instance, addresses)
            for ip in addresses:
                self._servers.append(self._run(self._listen(instance, ip, context)))
        with self._lock:
            self.instances[(project, name)] = instance
        return instance

    def deny(self, connection_name: str) -> None:
        """The SQL Admin API answers 403 for this instance (the caller lacks cloudsql.instances.connect)."""
        self.denied.add(connection_name)

    def connections_to(self, connection_name: str) -> list[Connection]:
        return [c for c in self.connections if c.instance == connection_name]

    def _server_context(self, instance: Instance, addresses: tuple[str, ...]) -> ssl.SSLContext:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _issue(
            instance.server_ca,
            f"{instance.project}:{instance.name}",
            key.public_key(),
            lifetime=dt.timedelta(days=365),
            usage=ExtendedKeyUsageOID.SERVER_AUTH,
            ips=addresses,
        )
        folder = Path(self._tmp.name)
        cert_file = folder / f"{instance.name}-server.pem"
        key_file = folder / f"{instance.name}-server.key"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(cert_file, key_file)
        context.verify_mode = ssl.CERT_REQUIRED  # mutual TLS: the ephemeral certificate is the credential
        context.load_verify_locations(cadata=instance.client_ca.pem)
        return context

    # -- SQL Admin API -----------------------------------------------------------------------------------
    async def _api(self, request: web.Request) -> web.Response:
        body: dict[str, Any] | None = None
        if request.can_read_body:
            try:
                body = await request.json()
            except (json.JSONDecodeError, UnicodeDecodeError):
                body = None
        response = self._answer(request, body)
        self.calls.append(
            ApiCall(request.method, request.path, request.headers.get("Authorization"), body, response.status)
        )
        return response

    def _answer(self, request: web.Request, body: dict[str, Any] | None) -> web.Response:
        settings = _SETTINGS.match(request.path) if request.method == "GET" else None
        ephemeral = _EPHEMERAL.match(request.path) if request.method == "POST" else None
        match = settings or ephemeral
        if match is None:
            return _error(404, "NOT_FOUND", f"Method not found: {request.method} {request.path}", "notFound")
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else ""
        if not token or token == "None":
            return _error(
                401,
                "UNAUTHENTICATED",
                "Request is missing required authentication credential. Expected OAuth 2 access token.",
                "required",
            )
        instance = self.instances.get((match["project"], match["instance"]))
        if instance is None:
            return _error(404, "NOT_FOUND", "The Cloud SQL instance does not exist.", "instanceDoesNotExist")
        if instance.connection_name in self.denied:
            return _error(
                403, "PERMISSION_DENIED", "The client is not authorized to make this request.", "notAuthorized"
            )
        if settings is not None:
            return web.json_response(self._connect_settings(instance))
        return self._ephemeral_cert(instance, body)

    def _connect_settings(self, instance: Instance) -> dict[str, Any]:
        addresses = []
        if instance.public_ip:
            addresses.append({"type": "PRIMARY", "ipAddress": instance.public_ip})
        if instance.private_ip:
            addresses.append({"type": "PRIVATE", "ipAddress": instance.private_ip})
        settings: dict[str, Any] = {
            "kind": "sql#connectSettings",
            "serverCaCert": _ssl_cert(instance.server_ca.cert, instance.name),
            "ipAddresses": addresses,
            "region": instance.region,
            "databaseVersion": instance.database_version,
            "backendType": "SECOND_GEN",
            "pscEnabled": False,
            "serverCaMode": "GOOGLE_MANAGED_INTERNAL_CA",
        }
        if instance.dns_name:
            settings["dnsName"] = instance.dns_name
        return settings

    def _ephemeral_cert(self, instance: Instance, body: dict[str, Any] | None) -> web.Response:
        body = body or {}
        pem = body.get("public_key") or body.get("publicKey")
        try:
            public_key = serialization.load_pem_public_key(str(pem).encode())
        except (ValueError, TypeError):
            return _error(400, "INVALID_ARGUMENT", "Invalid request: public_key is not a PEM public key.", "invalid")
        cert = _issue(
            instance.client_ca,
            "cloudsql-ephemeral-client",
            public_key,
            lifetime=CERT_LIFETIME,
            usage=ExtendedKeyUsageOID.CLIENT_AUTH,
        )
        iam = bool(body.get("access_token") or body.get("accessToken"))
        with self._lock:
            self.certs[cert.serial_number] = EphemeralCert(
                cert.serial_number, instance.connection_name, iam, cert.not_valid_after_utc
            )
        return web.json_response({"ephemeralCert": _ssl_cert(cert, instance.name)})

    # -- the instances' server-side proxy ----------------------------------------------------------------
    async def _listen(self, instance: Instance, ip: str, context: ssl.SSLContext) -> asyncio.base_events.Server:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            self._tasks.add(task)
            try:
                await self._relay(instance, ip, reader, writer)
            finally:
                self._tasks.discard(task)

        return await asyncio.start_server(
            serve, ip, SERVER_PROXY_PORT, ssl=context, ssl_handshake_timeout=5, reuse_address=True
        )

    async def _relay(
        self, instance: Instance, ip: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        peer = writer.get_extra_info("peercert") or {}
        serial = int(peer.get("serialNumber", "0"), 16)
        issued = self.certs.get(serial)
        if issued is None or issued.instance != instance.connection_name:  # signed by the CA, not by us
            writer.close()
            return
        record = Connection(instance.connection_name, ip, serial, issued.iam)
        self.connections.append(record)
        try:
            if isinstance(instance.backend, str):
                db_reader, db_writer = await asyncio.open_unix_connection(instance.backend)
            else:
                db_reader, db_writer = await asyncio.open_connection(*instance.backend)
        except OSError:
            record.closed = True
            writer.close()
            return
        self._writers.update((writer, db_writer))
        tap = _PgLogin(record) if instance.engine == "postgres" else _MyLogin(record)
        try:
            await asyncio.gather(_pipe(reader, db_writer, tap.feed), _pipe(db_reader, writer, None))
        finally:
            record.closed = True
            self._writers.difference_update((writer, db_writer))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, tap: Any) -> None:
    try:
        while data := await reader.read(65536):
            if tap is not None:
                try:
                    tap(data)
                except Exception:  # a login we cannot read is only not recorded; the bytes still flow
                    tap = None
            writer.write(data)
            await writer.drain()
    except (OSError, ssl.SSLError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


def _free_subnet() -> str:
    """``127.X.Y`` whose ``.1`` is free on port 3307."""
    rng = random.Random()
    for _ in range(100):
        subnet = f"127.{rng.randint(1, 254)}.{rng.randint(0, 255)}"
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            probe.bind((f"{subnet}.1", SERVER_PROXY_PORT))
        except OSError as err:
            if err.errno != errno.EADDRINUSE:
                raise
            continue
        finally:
            probe.close()
        return subnet
    raise RuntimeError(f"no loopback address is free on port {SERVER_PROXY_PORT}")
