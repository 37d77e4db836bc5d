"""Google Cloud SQL through the Cloud SQL Python connector (``pip install 'bgmigrate[cloudsql]'``).

The connection string names the instance in query parameters; everything else is the usual URL::

    postgresql://USER:PASSWORD@/DBNAME?cloudsql_instance=PROJECT:REGION:INSTANCE
    postgresql://SA-NAME@PROJECT.iam@/DBNAME?cloudsql_instance=PROJECT:REGION:INSTANCE&cloudsql_iam=true
    mysql://USER@/DBNAME?cloudsql_instance=PROJECT:REGION:INSTANCE&cloudsql_ip_type=private

- ``cloudsql_instance``: the instance connection name (required; its presence selects the connector).
- ``cloudsql_iam``: ``true`` for IAM database authentication (no password; the user is the IAM
  principal: for PostgreSQL a service account's email without ``.gserviceaccount.com``, for MySQL
  the part before ``@``).
- ``cloudsql_ip_type``: ``public`` (default), ``private`` (the runner must reach the VPC) or ``psc``.

Credentials are Application Default Credentials. PostgreSQL goes through psycopg 3 (connector
1.22 or later), MySQL through PyMySQL. The connector's refresh strategy is ``lazy``: a runner is a
short-lived process, often on Cloud Build or Cloud Run jobs where CPU is throttled between requests.

Errors from the SQL Admin API (unknown instance, missing permission, region mismatch, no address of
the requested type, no credentials) become one line naming the instance; database errors (wrong
password, unknown database) are the driver's and are classified by :mod:`.db`.

Test hooks (project-wide: the traffic routers read the same ones), environment variables:

- ``BGMIGRATE_GCP_API_ENDPOINT``: the base URL of the Google APIs, for an emulator
  (``http://127.0.0.1:PORT``; without a scheme ``https://`` is assumed). Here it is passed to
  ``Connector(sqladmin_api_endpoint=...)``: the connector then calls
  ``{endpoint}/sql/v1beta4/projects/P/instances/I/connectSettings`` and ``...:generateEphemeralCert``.
  The instance itself is still reached on port 3307 of the address ``connectSettings`` returns: the
  connector fixes that port, so an emulator listens on 3307 of a loopback address it returns.
- ``BGMIGRATE_GCP_ANONYMOUS=1``: no Application Default Credentials; anonymous credentials instead
  (a ``google.auth.credentials.AnonymousCredentials`` with a placeholder token, see
  :func:`anonymous_credentials`: the connector sends ``credentials.token`` itself and refreshes
  credentials whose token is not fresh, which plain ``AnonymousCredentials`` refuses).

Both are for tests against an emulator; neither is needed, or wanted, against Google Cloud.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from ..dsn import Dsn
from ..schema.live.errors import LiveSchemaError, one_line

ENDPOINT_ENV = "BGMIGRATE_GCP_API_ENDPOINT"
ANONYMOUS_ENV = "BGMIGRATE_GCP_ANONYMOUS"

PARAMS = ("cloudsql_instance", "cloudsql_iam", "cloudsql_ip_type")
_IP_TYPES = {"public": "PUBLIC", "private": "PRIVATE", "psc": "PSC"}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class CloudSql:
    instance: str
    iam: bool
    ip_type: str  # PUBLIC | PRIVATE | PSC

    def connector_kwargs(self) -> dict[str, Any]:
        return {"ip_type": self.ip_type, "enable_iam_auth": self.iam, "refresh_strategy": "lazy"}

    def connect_kwargs(self, dsn: Dsn) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"user": dsn.user or ""}
        if dsn.database:
            kwargs["db"] = dsn.database
        if dsn.password and not self.iam:
            kwargs["password"] = dsn.password
        return kwargs

    def _connector(self) -> Any:
        try:
            from google.cloud.sql.connector import Connector
        except ImportError:
            raise LiveSchemaError(
                "a cloudsql_instance connection needs the Cloud SQL Python connector: "
                "pip install 'bgmigrate[cloudsql]'",
                kind="driver",
            ) from None
        kwargs = self.connector_kwargs()
        endpoint = api_endpoint()
        if endpoint:
            kwargs["sqladmin_api_endpoint"] = endpoint
        if anonymous():
            kwargs["credentials"] = anonymous_credentials()
        try:
            return Connector(**kwargs)
        except Exception as err:  # no Application Default Credentials, a universe domain mismatch
            raise self._failure(err) from None

    def connect_postgres(
        self, dsn: Dsn, psycopg: Any, *, timeout_s: float = 10, application_name: str = "bgmigrate"
    ) -> Any:
        kwargs = self.connect_kwargs(dsn)
        kwargs.setdefault("db", None)  # the connector's psycopg path needs the key; None: libpq's default
        kwargs["application_name"] = application_name
        return self._connect("psycopg", psycopg.Error, timeout=max(1, round(timeout_s)), **kwargs)

    def connect_mysql(self, dsn: Dsn, pymysql: Any, *, timeout_s: float = 10) -> Any:
        return self._connect("pymysql", pymysql.Error, timeout=max(1, round(timeout_s)), **self.connect_kwargs(dsn))

    def _connect(self, driver: str, driver_error: type[BaseException], **kwargs: Any) -> Any:
        connector = self._connector()
        try:
            conn = connector.connect(self.instance, driver, **kwargs)
        except BaseException as err:
            connector.close()
            if isinstance(err, driver_error) or not isinstance(err, Exception):
                raise  # the database's answer (wrong password, unknown database): classified by the caller
            raise self._failure(err) from None
        _close_with(conn, connector)
        return conn

    def _failure(self, err: BaseException) -> LiveSchemaError:
        """One line naming the instance for a connector or SQL Admin API error (no secret is in them)."""
        where = f"Cloud SQL instance {self.instance}"
        status = _http_status(err)
        reason = one_line(Exception(getattr(err, "message", "") or status)) if status else one_line(err)
        name = type(err).__name__
        if status == 404:
            return LiveSchemaError(
                f"{where} was not found (SQL Admin API: {reason}): check the project, region and instance name",
                kind="connect",
            )
        if status == 403:
            return LiveSchemaError(
                f"not allowed to connect to {where} (SQL Admin API: {reason}): the credentials need the "
                "Cloud SQL Client role (roles/cloudsql.client) on the project, and the Cloud SQL Admin API "
                "must be enabled",
                kind="auth",
            )
        if status == 401:
            return LiveSchemaError(
                f"the Google credentials were refused for {where} (SQL Admin API: {reason})", kind="auth"
            )
        if isinstance(status, int):
            return LiveSchemaError(f"the SQL Admin API failed for {where}: HTTP {status} {reason}", kind="connect")
        if name == "DefaultCredentialsError":
            return LiveSchemaError(
                f"no Google credentials to reach {where}: {reason} (set up Application Default Credentials, "
                "e.g. a service account on Cloud Build / Cloud Run, or gcloud auth application-default login)",
                kind="auth",
            )
        if name in ("RefreshError", "TransportError"):
            return LiveSchemaError(f"the Google credentials could not be refreshed for {where}: {reason}", kind="auth")
        if name == "CloudSQLIPTypeError":
            wanted = {"PUBLIC": "public", "PRIVATE": "private", "PSC": "psc"}[self.ip_type]
            return LiveSchemaError(
                f"{where} has no {wanted} IP address (cloudsql_ip_type={wanted}): {reason}", kind="connect"
            )
        if name.startswith("ClientConnector") or name == "ServerDisconnectedError":
            return LiveSchemaError(f"cannot reach the SQL Admin API for {where}: {reason}", kind="connect")
        if isinstance(err, TimeoutError):
            return LiveSchemaError(f"timed out connecting to {where}: {reason}", kind="timeout")
        if self.instance in reason:  # the connector's own messages often name it already
            return LiveSchemaError(f"cannot connect to Cloud SQL: {reason}", kind="connect")
        return LiveSchemaError(f"cannot connect to {where}: {reason}", kind="connect")


def _http_status(err: BaseException) -> int | None:
    """The HTTP status of a failed SQL Admin API call (the connector raises aiohttp's error)."""
    try:
        from aiohttp import ClientResponseError
    except ImportError:  # pragma: no cover - a dependency of the connector
        return None
    return err.status if isinstance(err, ClientResponseError) else None


def api_endpoint() -> str | None:
    """``BGMIGRATE_GCP_API_ENDPOINT`` as a base URL (a scheme, no trailing ``/``), None when unset."""
    text = os.environ.get(ENDPOINT_ENV, "").strip().rstrip("/")
    if not text:
        return None
    return text if "://" in text else f"https://{text}"


def anonymous() -> bool:
    """``BGMIGRATE_GCP_ANONYMOUS`` is set to a true value."""
    return os.environ.get(ANONYMOUS_ENV, "").strip().lower() in _TRUE


def anonymous_credentials() -> Any:
    """``google.auth.credentials.AnonymousCredentials`` the connector can use (``BGMIGRATE_GCP_ANONYMOUS``).

    The connector does not let the credentials decorate its requests: it reads ``credentials.token``
    for the ``Authorization`` header and first calls ``refresh()`` when ``token_state`` is not FRESH
    (``CloudSQLClient.get_connection_info``); for IAM authentication it copies the credentials,
    refreshes the copy and reads its ``expiry`` (``refresh_utils._downscope_credentials``). A plain
    ``AnonymousCredentials`` has no token, so it is never FRESH, and its ``refresh()`` raises
    "Anonymous credentials cannot be refreshed." Hence a subclass with a placeholder token that
    ``refresh()`` renews for an hour.
    """
    from google.auth.credentials import AnonymousCredentials

    class EmulatorCredentials(AnonymousCredentials):
        PLACEHOLDER = "anonymous"

        def __init__(self) -> None:
            super().__init__()
            self.token = self.PLACEHOLDER  # no expiry: always FRESH

        def refresh(self, request: Any) -> None:
            self.token = self.PLACEHOLDER
            # google-auth keeps expiries as naive UTC
            self.expiry = datetime.now(timezone.utc).replace(tzinfo=None) + timedelta(hours=1)

    return EmulatorCredentials()


def _close_with(conn: Any, connector: Any) -> None:
    """Close the connector (its refresh machinery) when the connection closes."""
    close = conn.close

    def closing() -> None:
        try:
            close()
        finally:
            connector.close()

    try:
        conn.close = closing
    except AttributeError:  # a driver class with slots: the connector is closed at exit instead
        import atexit

        atexit.register(connector.close)


def cloudsql_options(dsn: Dsn) -> CloudSql | None:
    """The Cloud SQL settings in ``dsn`` (None when it names no instance); LiveSchemaError when bad."""
    params = {k.lower(): v for k, v in dsn.params.items()}
    instance = params.get("cloudsql_instance")
    others = [k for k in PARAMS[1:] if k in params]
    if instance is None:
        if others:
            raise LiveSchemaError(f"{', '.join(others)} need cloudsql_instance=PROJECT:REGION:INSTANCE", kind="dsn")
        return None
    if instance.count(":") != 2 or not all(instance.split(":")):
        raise LiveSchemaError(
            f"cloudsql_instance must be PROJECT:REGION:INSTANCE, not {instance!r}", kind="dsn", dsn=dsn.masked
        )
    iam_text = params.get("cloudsql_iam", "false").lower()
    if iam_text not in _TRUE | _FALSE:
        raise LiveSchemaError(f"cloudsql_iam must be true or false, not {iam_text!r}", kind="dsn")
    ip_text = params.get("cloudsql_ip_type", "public").lower()
    if ip_text not in _IP_TYPES:
        raise LiveSchemaError(f"cloudsql_ip_type must be public, private or psc, not {ip_text!r}", kind="dsn")
    unknown = sorted(k for k in params if k not in PARAMS)
    if unknown:
        raise LiveSchemaError(
            f"a cloudsql_instance connection takes no other parameters (got {', '.join(unknown)})", kind="dsn"
        )
    if not dsn.user:
        raise LiveSchemaError("a cloudsql_instance connection needs a user name", kind="dsn", dsn=dsn.masked)
    return CloudSql(instance=instance, iam=iam_text in _TRUE, ip_type=_IP_TYPES[ip_text])
