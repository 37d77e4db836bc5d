"""Cloud SQL connections through the real Cloud SQL Python connector, against the emulator in
``cloudsql_emulator.py`` (SQL Admin API v1beta4 over HTTP + the instances' TLS proxy on port 3307) in
front of the real PostgreSQL and MySQL/MariaDB. Nothing of the connector is mocked or patched: the
test hooks ``BGMIGRATE_GCP_API_ENDPOINT`` and ``BGMIGRATE_GCP_ANONYMOUS`` point it at the emulator."""

from __future__ import annotations

import json
import socket
import ssl
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cloudsql_emulator import CloudSqlEmulator, Connection, Instance
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from db_servers import MySqlServer, PgServer
from psycopg.conninfo import conninfo_to_dict
from runner_harness import bgm

from migrator.run.cloudsql import ANONYMOUS_ENV, ENDPOINT_ENV
from migrator.run.db import connect, lock_key
from migrator.run.errors import InputError

PROJECT, REGION = "bgm-proj", "europe-west1"
PG = f"{PROJECT}:{REGION}:pg"
PG_PUBLIC_ONLY = f"{PROJECT}:{REGION}:pg-public"
MYSQL = f"{PROJECT}:{REGION}:mysql"
LOCKED = f"{PROJECT}:{REGION}:locked"
PASSWORD = "s3cret-Pa55"


@pytest.fixture(scope="module")
def emulator() -> Iterator[CloudSqlEmulator]:
    with CloudSqlEmulator() as emu:
        yield emu


@pytest.fixture(autouse=True)
def _gcp_hooks(emulator: CloudSqlEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENDPOINT_ENV, emulator.endpoint)
    monkeypatch.setenv(ANONYMOUS_ENV, "1")


def _pg_backend(dsn: str) -> tuple[tuple[str, int] | str, dict[str, Any]]:
    params = conninfo_to_dict(dsn)
    host, port = str(params.get("host") or "127.0.0.1"), int(params.get("port") or 5432)
    backend: tuple[str, int] | str = f"{host}/.s.PGSQL.{port}" if host.startswith("/") else (host, port)
    return backend, params


@pytest.fixture(scope="module")
def pg_instance(emulator: CloudSqlEmulator, pg_db: PgServer) -> tuple[Instance, dict[str, Any]]:
    """The scratch PostgreSQL database behind two instances: public + private, and public only."""
    backend, params = _pg_backend(pg_db.dsn)
    instance = emulator.add_instance(PG, "POSTGRES_15", backend, public=True, private=True)
    emulator.add_instance(PG_PUBLIC_ONLY, "POSTGRES_15", backend)
    emulator.add_instance(LOCKED, "POSTGRES_15", backend)
    emulator.deny(LOCKED)
    return instance, params


@pytest.fixture(scope="module")
def mysql_instance(emulator: CloudSqlEmulator, mysql_db: MySqlServer) -> Instance:
    return emulator.add_instance(MYSQL, "MYSQL_8_0", (mysql_db.host, mysql_db.port))


def _pg_dsn(params: dict[str, Any], instance: str = PG, *, user: str | None = None, extra: str = "") -> str:
    password = params.get("password") or PASSWORD  # trust auth ignores it; the driver still gets it
    return (
        f"postgresql://{user or params.get('user') or 'postgres'}:{password}@/{params['dbname']}"
        f"?cloudsql_instance={instance}{extra}"
    )


def _wait(predicate: Callable[[], bool], timeout: float = 3) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _new_connections(emulator: CloudSqlEmulator, instance: str, before: int) -> list[Connection]:
    return emulator.connections_to(instance)[before:]


# ---- PostgreSQL ------------------------------------------------------------------------------------


def test_postgres_query_and_runner_lock(emulator: CloudSqlEmulator, pg_instance: tuple[Instance, dict]) -> None:
    instance, params = pg_instance
    before = len(emulator.connections_to(PG))
    db = connect(_pg_dsn(params))
    try:
        assert db.dialect == "postgres"
        assert db.query_one("SELECT current_database()") == (params["dbname"],)
        assert db.conn.info.password == params.get("password", PASSWORD)  # a password login sends it
        # the runner's advisory lock, and its holder as another session sees it
        assert db.try_lock("bgmigrate-test")
        with psycopg.connect(**params, autocommit=True) as other:
            taken = other.execute("SELECT pg_try_advisory_lock(%s)", (lock_key("bgmigrate-test"),)).fetchone()
            assert taken == (False,)
        holder = db.lock_holder_session("bgmigrate-test")
        assert holder is not None and "bgmigrate" in holder  # application_name set through the connector
        db.unlock("bgmigrate-test")
        assert db.lock_holder_session("bgmigrate-test") is None
    finally:
        db.close()
    [conn] = _new_connections(emulator, PG, before)
    # it went over the emulated instance: mutual TLS with an ephemeral certificate, public address
    assert conn.address == instance.public_ip and not conn.iam
    assert (conn.user, conn.database) == (params.get("user", "postgres"), params["dbname"])
    assert emulator.certs[conn.cert_serial].instance == PG
    calls = [c for c in emulator.calls if f"/instances/{instance.name}" in c.path]
    assert {c.path.rsplit("/", 1)[-1] for c in calls} >= {"connectSettings", "pg:generateEphemeralCert"}
    assert all(c.authorization == "Bearer anonymous" for c in calls)
    assert _wait(lambda: conn.closed), "closing the database closes the connection to the instance"


def test_private_ip_type_uses_the_private_address(
    emulator: CloudSqlEmulator, pg_instance: tuple[Instance, dict]
) -> None:
    instance, params = pg_instance
    before = len(emulator.connections_to(PG))
    db = connect(_pg_dsn(params, extra="&cloudsql_ip_type=private"))
    try:
        assert db.query_one("SELECT 1") == (1,)
    finally:
        db.close()
    [conn] = _new_connections(emulator, PG, before)
    assert instance.private_ip and conn.address == instance.private_ip != instance.public_ip


def test_private_ip_type_on_an_instance_without_one(pg_instance: tuple[Instance, dict]) -> None:
    _, params = pg_instance
    with pytest.raises(InputError) as caught:
        connect(_pg_dsn(params, PG_PUBLIC_ONLY, extra="&cloudsql_ip_type=private"))
    message = str(caught.value)
    assert PG_PUBLIC_ONLY in message and "no private IP address" in message
    assert PASSWORD not in message


def test_iam_authentication_sends_no_password(emulator: CloudSqlEmulator, pg_instance: tuple[Instance, dict]) -> None:
    """The IAM user is the service account's email without .gserviceaccount.com; the password in the
    DSN is ignored; the ephemeral certificate request carries the access token."""
    _, params = pg_instance
    role = f"bgm-iam-{uuid.uuid4().hex[:8]}@{PROJECT}.iam"
    admin = dict(params)
    with psycopg.connect(**admin, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN')
    try:
        before = len(emulator.connections_to(PG))
        issued_before = set(emulator.certs)
        db = connect(_pg_dsn(params, user=f"{role}.gserviceaccount.com", extra="&cloudsql_iam=true"))
        try:
            assert db.query_one("SELECT current_user") == (role,)
            assert not db.conn.info.password  # the driver was given none
        finally:
            db.close()
        [conn] = _new_connections(emulator, PG, before)
        assert conn.iam and conn.user == role and not conn.password_sent
        [cert] = [c for s, c in emulator.certs.items() if s not in issued_before]
        assert cert.iam and cert.instance == PG
        [call] = [c for c in emulator.calls if c.path.endswith(":generateEphemeralCert")][-1:]
        assert call.body is not None and call.body.get("access_token") == "anonymous"
        assert PASSWORD not in str(call.body)
    finally:
        with psycopg.connect(**admin, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                (role,),
            )
            conn.execute(f'DROP ROLE IF EXISTS "{role}"')


def test_unknown_instance(pg_instance: tuple[Instance, dict]) -> None:
    _, params = pg_instance
    missing = f"{PROJECT}:{REGION}:no-such-instance"
    with pytest.raises(InputError) as caught:
        connect(_pg_dsn(params, missing))
    message = str(caught.value)
    assert f"Cloud SQL instance {missing} was not found" in message
    assert "The Cloud SQL instance does not exist." in message  # the API's own words
    assert PASSWORD not in message and "\n" not in message


def test_permission_denied(pg_instance: tuple[Instance, dict]) -> None:
    _, params = pg_instance
    with pytest.raises(InputError) as caught:
        connect(_pg_dsn(params, LOCKED))
    message = str(caught.value)
    assert f"not allowed to connect to Cloud SQL instance {LOCKED}" in message
    assert "not authorized" in message and "roles/cloudsql.client" in message
    assert PASSWORD not in message


def test_region_mismatch(pg_instance: tuple[Instance, dict]) -> None:
    _, params = pg_instance
    wrong = f"{PROJECT}:us-central1:pg"
    with pytest.raises(InputError) as caught:
        connect(_pg_dsn(params, wrong))
    message = str(caught.value)
    assert wrong in message and "expected europe-west1" in message and PASSWORD not in message


def test_postgres_driver_errors_stay_the_drivers(pg_instance: tuple[Instance, dict]) -> None:
    """An unknown database is the database's answer, reported as for a direct connection."""
    _, params = pg_instance
    with pytest.raises(InputError) as caught:
        connect(_pg_dsn({**params, "dbname": "bgm_no_such_db"}))
    message = str(caught.value)
    assert "bgm_no_such_db" in message and "does not exist" in message and PASSWORD not in message


def test_status_command_through_cloud_sql(emulator: CloudSqlEmulator, pg_instance: tuple[Instance, dict]) -> None:
    _, params = pg_instance
    done = bgm(
        "status",
        "--dsn",
        _pg_dsn(params),
        env={ENDPOINT_ENV: emulator.endpoint, ANONYMOUS_ENV: "1"},
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert "no release is recorded in this database" in done.stdout


def test_status_command_reports_an_unknown_instance(
    emulator: CloudSqlEmulator, pg_instance: tuple[Instance, dict]
) -> None:
    _, params = pg_instance
    missing = f"{PROJECT}:{REGION}:gone"
    done = bgm(
        "status",
        "--dsn",
        _pg_dsn(params, missing),
        env={ENDPOINT_ENV: emulator.endpoint, ANONYMOUS_ENV: "1"},
        timeout=30,
    )
    assert done.returncode == 2, done.stdout
    assert f"Cloud SQL instance {missing} was not found" in done.stderr
    assert PASSWORD not in done.stderr + done.stdout and "Traceback" not in done.stderr


# ---- MySQL -----------------------------------------------------------------------------------------


def _mysql_dsn(server: MySqlServer, *, user: str | None = None, password: str | None = None, extra: str = "") -> str:
    secret = password if password is not None else server.password
    auth = f"{user or server.user}:{secret}" if secret else (user or server.user)
    return f"mysql://{auth}@/{server.database}?cloudsql_instance={MYSQL}{extra}"


def test_mysql_query_and_runner_lock(
    emulator: CloudSqlEmulator, mysql_instance: Instance, mysql_db: MySqlServer
) -> None:
    before = len(emulator.connections_to(MYSQL))
    db = connect(_mysql_dsn(mysql_db))
    try:
        assert db.dialect == "mysql"
        assert db.query_one("SELECT DATABASE()") == (mysql_db.database,)
        assert db.try_lock("bgmigrate-test")
        other = mysql_db.connect()
        try:
            with other.cursor() as cur:
                cur.execute("SELECT GET_LOCK('bgmigrate-test', 0)")
                assert cur.fetchone() == (0,)
        finally:
            other.close()
        assert db.lock_holder_session("bgmigrate-test") is not None
        db.unlock("bgmigrate-test")
    finally:
        db.close()
    [conn] = _new_connections(emulator, MYSQL, before)
    assert conn.address == mysql_instance.public_ip and not conn.iam
    assert (conn.user, conn.database) == (mysql_db.user, mysql_db.database)
    assert conn.password_sent == bool(mysql_db.password)
    assert _wait(lambda: conn.closed)


def test_mysql_iam_authentication_sends_no_password(
    emulator: CloudSqlEmulator, mysql_instance: Instance, mysql_db: MySqlServer
) -> None:
    """A passwordless IAM-style user; the DSN's (wrong) password is not sent, else the login would fail;
    the user is the part before ``@``."""
    user = f"bgm_iam_{uuid.uuid4().hex[:8]}"
    admin = mysql_db.connect()
    try:
        with admin.cursor() as cur:
            cur.execute(f"CREATE USER '{user}'@'%'")
            cur.execute(f"GRANT ALL ON `{mysql_db.database}`.* TO '{user}'@'%'")
        before = len(emulator.connections_to(MYSQL))
        db = connect(
            _mysql_dsn(
                mysql_db, user=f"{user}@{PROJECT}.iam.gserviceaccount.com", password="wrong", extra="&cloudsql_iam=true"
            )
        )
        try:
            row = db.query_one("SELECT CURRENT_USER()")
            assert row is not None and str(row[0]).startswith(f"{user}@")
        finally:
            db.close()
        [conn] = _new_connections(emulator, MYSQL, before)
        assert conn.iam and conn.user == user and not conn.password_sent
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP USER IF EXISTS '{user}'@'%'")
        admin.close()


def test_mysql_driver_against_a_postgres_instance(pg_instance: tuple[Instance, dict]) -> None:
    """A mysql:// DSN naming a PostgreSQL instance: the connector refuses, the message names both."""
    with pytest.raises(InputError) as caught:
        connect(f"mysql://root:{PASSWORD}@/app?cloudsql_instance={PG}")
    message = str(caught.value)
    assert PG in message and "POSTGRES_15" in message and PASSWORD not in message


# ---- the emulator itself ---------------------------------------------------------------------------


def test_emulator_proxy_requires_the_instances_client_certificate(
    emulator: CloudSqlEmulator, pg_instance: tuple[Instance, dict], tmp_path: Path
) -> None:
    """The proxy answers with the database's bytes only with an ephemeral certificate for that instance:
    none, or one issued for another instance, and the TLS connection is refused (as Cloud SQL's)."""
    instance, _ = pg_instance
    other = emulator.instances[(PROJECT, "pg-public")]
    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )

    def ephemeral_cert(name: str) -> Path:
        request = urllib.request.Request(
            f"{emulator.endpoint}/sql/v1beta4/projects/{PROJECT}/instances/{name}:generateEphemeralCert",
            data=json.dumps({"public_key": public_pem.decode()}).encode(),
            headers={"Authorization": "Bearer test", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=3) as response:
            path = tmp_path / f"{name}.pem"
            path.write_text(json.load(response)["ephemeralCert"]["cert"])
        return path

    def first_byte(cert: Path | None) -> bytes:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.load_verify_locations(cadata=instance.server_ca.pem)  # the server certificate is verified
        if cert is not None:
            context.load_cert_chain(cert, tmp_path / "key.pem")
        assert instance.public_ip is not None
        with socket.create_connection((instance.public_ip, 3307), timeout=3) as raw:
            try:
                with context.wrap_socket(raw) as tls:
                    tls.sendall(b"\0\0\0\x08\x04\xd2\x16\x2f")  # SSLRequest: PostgreSQL answers N or S
                    return tls.recv(1)
            except (ssl.SSLError, ConnectionError):  # TLS 1.3: the refusal comes after the handshake
                return b""

    assert first_byte(ephemeral_cert(instance.name)) in (b"N", b"S")
    assert first_byte(None) == b""
    assert first_byte(ephemeral_cert(other.name)) == b""
