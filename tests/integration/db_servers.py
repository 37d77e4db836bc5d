"""The database servers the integration tests use (kept out of conftest.py so that test modules import them
by a name no other directory's conftest shares)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

CONNECT_TIMEOUT = 3


def mask_dsn(dsn: str) -> str:
    """``dsn`` with any password replaced by ``***`` (libpq key/value and URI forms)."""
    masked = re.sub(r"(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&]+)", r"\1***", dsn)
    masked = re.sub(r"(?i)([?&]password=)[^&]*", r"\1***", masked)
    return re.sub(r"^([a-z][a-z0-9+.-]*://[^:/@]*):[^@/]*@", r"\1:***@", masked)


@dataclass(frozen=True)
class PgServer:
    """Where the admin connection goes; ``dsn_for`` points the same server at another database."""

    dsn: str
    origin: str  # "env" | "local" | "pgserver"
    major: int

    def dsn_for(self, dbname: str) -> str:
        from psycopg.conninfo import make_conninfo

        return make_conninfo(self.dsn, dbname=dbname)

    @property
    def shown(self) -> str:
        return f"{mask_dsn(self.dsn)} ({self.origin}, PostgreSQL {self.major})"


@dataclass(frozen=True)
class MySqlServer:
    host: str
    port: int
    user: str
    password: str
    database: str | None
    origin: str  # "env" | "local"
    version: str = ""  # SELECT VERSION()

    @property
    def is_mariadb(self) -> bool:
        return "mariadb" in self.version.lower()

    @property
    def shown(self) -> str:
        secret = ":***" if self.password else ""
        where = f"{self.host}:{self.port}/{self.database or ''}"
        return f"mysql://{self.user}{secret}@{where} ({self.origin}, {self.version})"

    def connect(self, **extra: Any) -> Any:
        import pymysql

        return pymysql.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            database=self.database,
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT,
            **extra,
        )


def parse_mysql_dsn(dsn: str) -> MySqlServer:
    parts = urlsplit(dsn)
    if parts.scheme not in ("mysql", "mariadb", "mysql+pymysql"):
        raise ValueError(f"expected mysql://user:password@host:port/db, got scheme {parts.scheme!r}")
    return MySqlServer(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 3306,
        user=unquote(parts.username or "root"),
        password=unquote(parts.password or ""),
        database=parts.path.lstrip("/") or None,
        origin="env",
    )
