"""What the demo stands on: the example shop's files, a PostgreSQL server and two scratch databases.

The example shop is not part of the installed package: it lives in the source checkout, in
``examples/app/`` beside ``migrator/``. The demo looks for it (``find_checkout``) in the checkout
bgmigrate is installed from (``pip install -e .``), else in the current directory; ``--checkout``
names another one. Without a checkout it stops with one clear line.
"""

from __future__ import annotations

import tempfile
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PACKAGE_CHECKOUT = Path(__file__).resolve().parents[2]
APP = Path("examples") / "app"
BASE_SQL = APP / "migrations" / "0001_base.sql"
RELEASE_SQL = APP / "migrations" / "0002_release.sql"
CONNECT_TIMEOUT = 10


class DemoError(Exception):
    """Something the user can fix (missing package, no checkout, unreachable server): one line, exit 2."""


def find_checkout(explicit: Path | None = None) -> Path:
    """The directory holding ``examples/app`` (the shop and its migrations)."""
    candidates = [explicit] if explicit is not None else [PACKAGE_CHECKOUT, Path.cwd()]
    for root in candidates:
        root = root.resolve()
        if (root / APP / "server.py").is_file() and (root / BASE_SQL).is_file() and (root / RELEASE_SQL).is_file():
            return root
    where = " or ".join(str(c) for c in candidates)
    raise DemoError(
        f"the example shop (examples/app/) is not in {where}: the demo runs from a bgmigrate source checkout "
        "(git clone ... && python3 -m pip install -e '.[demo]'), or name one with --checkout DIR"
    )


def mask(dsn: str) -> str:
    from ..dsn import mask_secrets

    return mask_secrets(dsn)


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        raise DemoError("the demo needs psycopg 3: python3 -m pip install -e '.[demo]'") from None
    return psycopg


@dataclass
class Server:
    """A PostgreSQL server the demo may create databases on; ``close`` stops what the demo started."""

    admin_dsn: str
    origin: str  # "embedded" | "dsn"
    version: str = ""
    _embedded: Any = None
    _created: list[str] = field(default_factory=list)

    @property
    def shown(self) -> str:
        if self.origin == "embedded":
            return f"embedded {self.version} (pgserver, a temporary data directory)"
        return f"{mask(self.admin_dsn)} ({self.version})"

    def dsn_for(self, dbname: str) -> str:
        from psycopg.conninfo import make_conninfo

        return make_conninfo(self.admin_dsn, dbname=dbname)

    def admin(self) -> Any:
        psycopg = _psycopg()
        return psycopg.connect(
            self.admin_dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT, application_name="bgmigrate-demo"
        )

    def create_database(self, name: str, template: str | None = None) -> str:
        psycopg = _psycopg()
        try:
            with self.admin() as conn:
                conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        except psycopg.Error as err:
            raise DemoError(
                f"cannot create the scratch database {name} on {mask(self.admin_dsn)}: {_first_line(err)} "
                "(--dsn needs a role that may create databases)"
            ) from None
        self._created.append(name)
        return self.dsn_for(name)

    def drop_databases(self) -> None:
        if not self._created:
            return
        with self.admin() as conn:
            major = int(conn.info.server_version) // 10000
            for name in reversed(self._created):
                if major >= 13:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                else:
                    conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        self._created.clear()

    def close(self) -> None:
        if self._embedded is not None:
            embedded, self._embedded = self._embedded, None
            embedded.cleanup()  # stops the server and deletes its data directory
        else:
            self.drop_databases()


def start_server(dsn: str | None, say: Any) -> Server:
    """The server at ``dsn``, else an embedded PostgreSQL started from the ``pgserver`` wheel."""
    psycopg = _psycopg()
    if dsn:
        try:
            with psycopg.connect(dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT) as conn:
                version = _version(conn)
        except psycopg.Error as err:
            raise DemoError(f"cannot connect to {mask(dsn)}: {_first_line(err)}") from None
        return Server(dsn, "dsn", version)
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        try:
            import pgserver  # type: ignore[import-not-found]
        except ImportError:
            raise DemoError(
                "no --dsn and no embedded PostgreSQL: python3 -m pip install -e '.[demo]' installs the pgserver "
                "wheel (Python < 3.13), or pass --dsn postgresql://USER@HOST/DB (a role that may create databases)"
            ) from None
        say("starting an embedded PostgreSQL (pgserver) in a temporary directory")
        data = tempfile.mkdtemp(prefix="bgmigrate-demo-pg-")
        try:
            embedded = pgserver.get_server(data, cleanup_mode="delete")
        except Exception as err:  # pgserver raises CalledProcessError, TimeoutExpired, OSError, ...
            raise DemoError(f"the embedded PostgreSQL did not start: {_first_line(err)}") from None
    uri = embedded.get_uri()
    try:
        with psycopg.connect(uri, autocommit=True, connect_timeout=CONNECT_TIMEOUT) as conn:
            version = _version(conn)
    except psycopg.Error as err:
        embedded.cleanup()
        raise DemoError(f"the embedded PostgreSQL does not answer: {_first_line(err)}") from None
    return Server(uri, "embedded", version, _embedded=embedded)


def _version(conn: Any) -> str:
    text = str(conn.execute("SHOW server_version").fetchone()[0])
    return "PostgreSQL " + text.split()[0]


def _first_line(err: BaseException) -> str:
    lines = [line for line in str(err).strip().splitlines() if line.strip()]
    return mask(lines[0]) if lines else type(err).__name__


def scratch_names() -> tuple[str, str]:
    tag = uuid.uuid4().hex[:8]
    return f"bgmigrate_demo_{tag}_release", f"bgmigrate_demo_{tag}_naive"


SEED = (
    "INSERT INTO customers (email, nickname, created_at) "
    "SELECT 'seed' || g || '@example.com', 'nick ' || g, "
    "timestamptz '2024-01-01 00:00:00+00' + g * interval '1 min' FROM generate_series(1, {rows}) g"
)


def load_base(dsn: str, checkout: Path, rows: int) -> None:
    """Blue's schema (``0001_base.sql``) and ``rows`` customers."""
    psycopg = _psycopg()
    try:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT) as conn:
            conn.execute((checkout / BASE_SQL).read_text(encoding="utf-8"))
            if rows:
                conn.execute(SEED.format(rows=int(rows)))
            conn.execute("ANALYZE customers")
    except psycopg.Error as err:
        raise DemoError(f"cannot load {BASE_SQL} and the seed rows: {_first_line(err)}") from None
