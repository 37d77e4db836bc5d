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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..dsn import Dsn
from ..schema.live.errors import LiveSchemaError

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
        return Connector(**self.connector_kwargs())

    def connect_postgres(self, dsn: Dsn, psycopg: Any) -> Any:
        connector = self._connector()
        conn = connector.connect(self.instance, "psycopg", **self.connect_kwargs(dsn))
        _close_with(conn, connector)
        return conn

    def connect_mysql(self, dsn: Dsn, pymysql: Any) -> Any:
        connector = self._connector()
        conn = connector.connect(self.instance, "pymysql", **self.connect_kwargs(dsn))
        _close_with(conn, connector)
        return conn


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
