"""Helpers for the runner's integration tests: a fresh database per test, a release on disk, the CLI
run in a real process (so it can be killed), and comparisons of schema and data."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parents[2]

BASE_SQL = """\
CREATE TABLE customers (id bigint PRIMARY KEY, email text NOT NULL, name text,
  created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint NOT NULL, total int);
"""
# rename (trigger + backfill), concurrent index, foreign key NOT VALID + VALIDATE, new column, SET NOT NULL
RELEASE_SQL = """\
ALTER TABLE customers RENAME COLUMN email TO email_address;
CREATE INDEX orders_customer_idx ON orders (customer_id);
ALTER TABLE orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id);
ALTER TABLE customers ADD COLUMN tier text;
ALTER TABLE orders ALTER COLUMN total SET NOT NULL;
"""


def seed_sql(customers: int) -> str:
    return textwrap.dedent(f"""\
        INSERT INTO customers (id, email, name, created_at)
          SELECT g, 'user' || g || '@example.com', 'name ' || g,
                 timestamptz '2024-01-01 00:00:00+00' + g * interval '1 min'
          FROM generate_series(1, {customers}) g;
        INSERT INTO orders (id, customer_id, total)
          SELECT g, 1 + (g % {customers}), g % 1000 FROM generate_series(1, {customers * 2}) g;
        ANALYZE customers;
        ANALYZE orders;
        """)


@dataclass
class Release:
    root: Path
    migrations: Path
    plan: Path

    @classmethod
    def write(
        cls, root: Path, base: str = BASE_SQL, release: str = RELEASE_SQL, *, dialect: str = "postgres"
    ) -> Release:
        migrations = root / "migrations"
        migrations.mkdir(parents=True, exist_ok=True)
        (migrations / "0001_base.sql").write_text(base)
        (migrations / "0002_release.sql").write_text(release)
        plan = root / "plan.json"
        args = ["plan", str(migrations), "--since", "0001_base.sql", "-o", str(plan)]
        if dialect != "postgres":
            args += ["--dialect", dialect]
        done = bgm(*args)
        assert done.returncode == 0, done.stderr
        return cls(root, migrations, plan)


def bgm(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The CLI in its own process (as a pipeline runs it)."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    full_env.pop("BGMIGRATE_DEBUG", None)  # the real error handling, not tracebacks
    return subprocess.run(
        [sys.executable, "-m", "migrator.cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        cwd=ROOT,
    )


def bgm_popen(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    full_env.pop("BGMIGRATE_DEBUG", None)
    return subprocess.Popen(
        [sys.executable, "-m", "migrator.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=full_env,
        cwd=ROOT,
    )


def pg_exec(dsn: str, sql: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql)


def pg_rows(dsn: str, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return list(conn.execute(sql, params).fetchall())


def pg_schema(dsn: str) -> str:
    """The application's schema (columns, constraints, indexes, triggers), bgmigrate's own left out."""
    parts = []
    for table, cols in pg_rows(
        dsn,
        "SELECT c.relname, string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || "
        "CASE WHEN a.attnotnull THEN ' not null' ELSE '' END, ', ' ORDER BY a.attname) "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_attribute a ON a.attrelid = c.oid "
        "WHERE n.nspname = 'public' AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped "
        "GROUP BY c.relname ORDER BY c.relname",
    ):
        parts.append(f"table {table}: {cols}")
    for row in pg_rows(
        dsn,
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid), convalidated FROM pg_constraint "
        "WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2",
    ):
        parts.append(f"constraint {row}")
    for row in pg_rows(
        dsn,
        "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid), indisvalid FROM pg_index i "
        "JOIN pg_class c ON c.oid = i.indrelid WHERE c.relnamespace = 'public'::regnamespace ORDER BY 1",
    ):
        parts.append(f"index {row}")
    for row in pg_rows(
        dsn, "SELECT tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
        "WHERE NOT t.tgisinternal AND c.relnamespace = 'public'::regnamespace ORDER BY 1",
    ):  # fmt: skip
        parts.append(f"trigger {row[0]}")
    return "\n".join(parts)


def pg_data(dsn: str) -> dict[str, str]:
    """A checksum of every application table's rows (ordered by primary key)."""
    out = {}
    for (table,) in pg_rows(dsn, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"):
        rows = pg_rows(dsn, f'SELECT t::text FROM "{table}" t ORDER BY 1')
        out[table] = hashlib.sha256("\n".join(r[0] for r in rows).encode()).hexdigest()
    return out


def steps_state(dsn: str, schema: str = "bgmigrate") -> dict[str, tuple[Any, ...]]:
    rows = pg_rows(
        dsn, f"SELECT step_id, status, attempts, statements_done, backfill_rows, backfill_last_key FROM {schema}.steps"
    )
    return {r[0]: r[1:] for r in rows}


# ---- MySQL / MariaDB ---------------------------------------------------------------------------------


def my_exec(server: Any, *statements: str) -> None:
    """Run ``statements`` on ``server`` (a conftest ``MySqlServer``), autocommit."""
    conn = server.connect()
    try:
        with conn.cursor() as cur:
            for sql in statements:
                cur.execute(sql)
    finally:
        conn.close()


def my_rows(server: Any, sql: str) -> list[tuple[Any, ...]]:
    conn = server.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return list(cur.fetchall())
    finally:
        conn.close()


@contextmanager
def my_database(mysql_server: Any, prefix: str = "bgm_run") -> Iterator[tuple[Any, str]]:
    """A new database (server handle, DSN), dropped afterwards with bgmigrate's state database for it."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = replace(mysql_server, database=None)
    my_exec(admin, f"CREATE DATABASE `{name}`")
    server = replace(mysql_server, database=name)
    secret = f":{server.password}" if server.password else ""
    try:
        yield server, f"mysql://{server.user}{secret}@{server.host}:{server.port}/{name}"
    finally:
        my_exec(admin, f"DROP DATABASE IF EXISTS `{name}`", f"DROP DATABASE IF EXISTS `bgmigrate_{name}`")
