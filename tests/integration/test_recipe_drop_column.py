"""A release that drops a NOT NULL column without a default: expand relaxes it so green's INSERTs,
which leave the column out, succeed while blue still writes it; contract drops it (PostgreSQL and
MariaDB, through the runner)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from pathlib import Path

from db_servers import MySqlServer
from runner_harness import Release, bgm, pg_exec, pg_rows

BASE = "CREATE TABLE accounts (id bigint PRIMARY KEY, legacy_code varchar(20) NOT NULL, name varchar(50));\n"
RELEASE = "ALTER TABLE accounts DROP COLUMN legacy_code;\n"


def _gates(dsn: str) -> None:
    for gate in ("switched", "decommissioned"):
        assert bgm("mark", gate, "--dsn", dsn).returncode == 0


def test_postgres_green_inserts_without_the_column_between_expand_and_contract(fresh_pg: str, tmp_path: Path) -> None:
    rel = Release.write(tmp_path, BASE, RELEASE)
    pg_exec(fresh_pg, BASE + "INSERT INTO accounts VALUES (1, 'A1', 'blue row')")
    assert bgm("expand", "--plan", str(rel.plan), "--dsn", fresh_pg).returncode == 0
    pg_exec(fresh_pg, "INSERT INTO accounts (id, legacy_code, name) VALUES (2, 'B2', 'blue again')")  # blue
    pg_exec(fresh_pg, "INSERT INTO accounts (id, name) VALUES (3, 'green row')")  # green: no legacy_code
    _gates(fresh_pg)
    assert bgm("contract", "--dsn", fresh_pg).returncode == 0
    assert pg_rows(fresh_pg, "SELECT id, name FROM accounts ORDER BY id") == [
        (1, "blue row"), (2, "blue again"), (3, "green row"),
    ]  # fmt: skip
    cols = pg_rows(fresh_pg, "SELECT column_name FROM information_schema.columns WHERE table_name = 'accounts'")
    assert {c for (c,) in cols} == {"id", "name"}


def test_postgres_abort_puts_the_not_null_back(fresh_pg: str, tmp_path: Path) -> None:
    rel = Release.write(tmp_path, BASE, RELEASE)
    pg_exec(fresh_pg, BASE)
    assert bgm("expand", "--plan", str(rel.plan), "--dsn", fresh_pg).returncode == 0
    nullable = "SELECT is_nullable FROM information_schema.columns WHERE column_name = 'legacy_code'"
    assert pg_rows(fresh_pg, nullable) == [("YES",)]
    assert bgm("abort", "--dsn", fresh_pg).returncode == 0
    assert pg_rows(fresh_pg, nullable) == [("NO",)]


def test_mariadb_green_inserts_without_the_column(mysql_server: MySqlServer, tmp_path: Path) -> None:
    name = f"bgm_drop_{uuid.uuid4().hex[:8]}"
    admin = replace(mysql_server, database=None)
    conn = admin.connect()
    conn.cursor().execute(f"CREATE DATABASE `{name}`")
    conn.close()
    server = replace(mysql_server, database=name)
    dsn = f"mysql://{server.user}{':' + server.password if server.password else ''}@{server.host}:{server.port}/{name}"
    try:
        rel = Release.write(tmp_path, BASE, RELEASE, dialect="mysql")
        db = server.connect()
        with db.cursor() as cur:
            cur.execute(BASE)
            assert bgm("expand", "--plan", str(rel.plan), "--dsn", dsn).returncode == 0
            cur.execute("INSERT INTO accounts (id, legacy_code, name) VALUES (1, 'A1', 'blue')")
            cur.execute("INSERT INTO accounts (id, name) VALUES (2, 'green')")  # strict mode: fails without a default
            _gates(dsn)
            assert bgm("contract", "--dsn", dsn).returncode == 0
            cur.execute("SELECT id, name FROM accounts ORDER BY id")
            assert list(cur.fetchall()) == [(1, "blue"), (2, "green")]
        db.close()
    finally:
        conn = admin.connect()
        conn.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.cursor().execute(f"DROP DATABASE IF EXISTS `bgmigrate_{name}`")
        conn.close()
