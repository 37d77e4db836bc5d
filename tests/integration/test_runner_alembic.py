"""Alembic releases through the runner, on the real databases, checked with Alembic itself.

Blue's database is built by Alembic (``command.upgrade`` online, to the release's ``--since``
revision); bgmigrate then runs the release (``expand``, ``mark switched``, ``mark decommissioned``,
``contract``, each a CLI process). Afterwards Alembic's own view must agree: ``get_current_heads()``
is the project's heads (as ``alembic upgrade heads`` itself would leave them, compared on a twin
database Alembic migrated alone), and ``alembic upgrade heads`` applies nothing. Between expand and
contract ``alembic_version`` stays at blue's revisions for a split release; an expand/contract branch
project has its expand head stamped when expand completes, and ``abort`` takes it back. The stamp
itself is also driven directly: Alembic's table shape, rows of other branches left alone,
idempotence, quoted names, atomicity with the status it is recorded with, and the lock timeout.

The fixture projects are copied with an online ``env.py`` (theirs are offline only) that uses the
connection the test gives it and records each revision Alembic applies (``on_version_apply``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pymysql
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from db_servers import CONNECT_TIMEOUT, MySqlServer, PgServer
from sqlalchemy.pool import NullPool

from migrator.plan.model import Plan
from migrator.run.alembic_stamp import stamp
from migrator.run.db import connect
from migrator.run.errors import StepFailed
from migrator.run.runner import Runner, RunOptions

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures" / "alembic"

ONLINE_ENV = '''\
"""Online env.py for the tests: the connection comes from the test, applied revisions go back to it."""

from alembic import context

config = context.config
applied = config.attributes.setdefault("applied", [])


def on_version_apply(*, ctx, step, heads, run_args):
    applied.append(step.up_revision_id)


context.configure(
    connection=config.attributes["connection"],
    transaction_per_migration=True,
    on_version_apply=on_version_apply,
)
with context.begin_transaction():
    context.run_migrations()
'''


# ---- databases -------------------------------------------------------------------------------------


class Db:
    """One scratch database: its bgmigrate DSN, an SQLAlchemy engine (for Alembic) and plain SQL."""

    def __init__(self, kind: str, name: str, pg: PgServer | None = None, my: MySqlServer | None = None) -> None:
        self.kind = kind
        self.name = name
        self.pg = replace(pg, dsn=pg.dsn_for(name)) if pg else None
        self.my = replace(my, database=name) if my else None
        if self.pg is not None:
            dsn = self.pg.dsn
            self.dsn = dsn
            self.engine = sa.create_engine(
                "postgresql+psycopg://", creator=lambda: psycopg.connect(dsn), poolclass=NullPool
            )
        else:
            assert self.my is not None
            m = self.my
            secret = f":{quote(m.password, safe='')}" if m.password else ""
            self.dsn = f"mysql://{quote(m.user, safe='')}{secret}@{m.host}:{m.port}/{name}"
            self.engine = sa.create_engine(
                "mysql+pymysql://",
                creator=lambda: pymysql.connect(
                    host=m.host, port=m.port, user=m.user, password=m.password, database=name
                ),
                poolclass=NullPool,
            )

    def run(self, *statements: str) -> None:
        with self.engine.begin() as conn:
            for sql in statements:
                conn.exec_driver_sql(sql)

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.exec_driver_sql(sql).fetchall()]

    def columns(self, table: str) -> dict[str, bool]:
        """column -> nullable, from information_schema."""
        where = "table_schema = current_schema()" if self.kind == "postgres" else "table_schema = DATABASE()"
        rows = self.rows(
            f"SELECT column_name, is_nullable FROM information_schema.columns WHERE {where} AND table_name = '{table}'"
        )
        return {str(c).lower(): n == "YES" for c, n in rows}

    def tables(self) -> set[str]:
        where = "table_schema = current_schema()" if self.kind == "postgres" else "table_schema = DATABASE()"
        return {str(r[0]).lower() for r in self.rows(f"SELECT table_name FROM information_schema.tables WHERE {where}")}

    def version_rows(self, table: str = "alembic_version") -> set[str]:
        return {r[0] for r in self.rows(f"SELECT version_num FROM {table}")}


@pytest.fixture
def new_db(
    request: pytest.FixtureRequest, pg_server: PgServer, mysql_server: MySqlServer
) -> Iterator[Callable[[str], Db]]:
    """A factory of scratch databases (``postgres`` or ``mysql``), all dropped after the test."""
    made: list[Db] = []

    def make(kind: str) -> Db:
        name = f"bgm_alembic_{uuid.uuid4().hex[:10]}"
        if kind == "postgres":
            with psycopg.connect(pg_server.dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT) as admin:
                admin.execute(f'CREATE DATABASE "{name}"')
            db = Db(kind, name, pg=pg_server)
        else:
            conn = replace(mysql_server, database=None).connect()
            try:
                with conn.cursor() as cur:
                    cur.execute(f"CREATE DATABASE `{name}`")
            finally:
                conn.close()
            db = Db(kind, name, my=mysql_server)
        made.append(db)
        return db

    yield make
    for db in made:
        db.engine.dispose()
        if db.kind == "postgres":
            with psycopg.connect(pg_server.dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{db.name}" WITH (FORCE)')
        else:
            conn = replace(mysql_server, database=None).connect()
            try:
                with conn.cursor() as cur:
                    cur.execute(f"DROP DATABASE IF EXISTS `{db.name}`")
                    cur.execute(f"DROP DATABASE IF EXISTS `bgmigrate_{db.name}`")  # the runner's state
            finally:
                conn.close()


# ---- Alembic, for real -------------------------------------------------------------------------------


class Project:
    """A copy of a fixture project with an online env.py, driven through Alembic's own commands."""

    def __init__(self, name: str, tmp_path: Path) -> None:
        self.path = tmp_path / name
        shutil.copytree(FIXTURES / name, self.path)
        (self.path / "env.py").write_text(ONLINE_ENV)
        self.config_file = self.path / "alembic.ini"

    def upgrade(self, db: Db, target: str) -> list[str]:
        """``alembic upgrade TARGET`` online: the revisions Alembic applied, in order."""
        cfg = Config(str(self.config_file))
        with db.engine.connect() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, target)
            conn.commit()
        return list(cfg.attributes.get("applied", []))

    def script_heads(self) -> set[str]:
        return set(ScriptDirectory.from_config(Config(str(self.config_file))).get_heads())

    @staticmethod
    def current_heads(db: Db) -> set[str]:
        """What Alembic reads from the database (``alembic current``)."""
        with db.engine.connect() as conn:
            return set(MigrationContext.configure(conn).get_current_heads())


def bgm(*args: str) -> subprocess.CompletedProcess[str]:
    """The CLI in its own process, as a pipeline runs it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("BGMIGRATE_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "migrator.cli", *args], capture_output=True, text=True, env=env, timeout=180, cwd=ROOT
    )


def ok(*args: str) -> subprocess.CompletedProcess[str]:
    done = bgm(*args)
    assert done.returncode == 0, f"bgmigrate {' '.join(args[:2])}: exit {done.returncode}\n{done.stdout}{done.stderr}"
    return done


def make_plan(project: Project, since: str, dialect: str, tmp_path: Path) -> Plan:
    out = tmp_path / "plan.json"
    ok("plan", str(project.path), "--since", since, "--dialect", dialect, "-o", str(out))
    return Plan.from_json(out.read_text())


def gates(db: Db) -> None:
    ok("mark", "switched", "--dsn", db.dsn)
    ok("mark", "decommissioned", "--dsn", db.dsn)


# ---- a split release: stamped when contract completes ---------------------------------------------------

SPLIT_BASE, SPLIT_HEADS = "1f9de5c32638", {"a93bb044071b", "b6b5b0ea4dd9"}


@pytest.mark.parametrize("kind", ["postgres", "mysql"])
def test_split_release_is_stamped_at_its_heads_when_contract_completes(kind: str, new_db, tmp_path: Path):
    db = new_db(kind)
    project = Project("runner_split", tmp_path)
    assert project.upgrade(db, SPLIT_BASE) == [SPLIT_BASE]  # blue, migrated by Alembic
    db.run(
        "INSERT INTO accounts (id, email, legacy_code) VALUES (1, 'a@example.com', 'A1'), (2, 'b@example.com', NULL)"
    )
    plan = make_plan(project, SPLIT_BASE, kind, tmp_path)
    assert plan.alembic == {
        "version_table": "alembic_version",
        "version_table_schema": None,
        "revisions": ["286af38e31a5", "6f6b9f88f439", "8e55796d2acc", "a93bb044071b", "b6b5b0ea4dd9"],
        "from": [SPLIT_BASE],
        "heads": ["a93bb044071b", "b6b5b0ea4dd9"],
        "expand": None,
    }

    ok("expand", "--plan", str(tmp_path / "plan.json"), "--dsn", db.dsn)
    # expand ran (display_name added and filled, audit_log created) but Alembic still sees blue
    assert db.rows("SELECT id, display_name FROM accounts ORDER BY id") == [(1, "a@example.com"), (2, "b@example.com")]
    assert "audit_log" in db.tables() and "legacy_code" in db.columns("accounts")
    assert db.version_rows() == {SPLIT_BASE} == project.current_heads(db)
    gates(db)
    assert db.version_rows() == {SPLIT_BASE}

    done = ok("contract", "--dsn", db.dsn)
    assert "alembic_version stamped at a93bb044071b, b6b5b0ea4dd9" in done.stderr
    assert "legacy_code" not in db.columns("accounts")
    assert project.current_heads(db) == SPLIT_HEADS == project.script_heads()
    assert db.rows("SELECT COUNT(*) FROM alembic_version") == [(2,)]
    schema = {t: db.columns(t) for t in ("accounts", "audit_log")}
    assert project.upgrade(db, "heads") == []  # Alembic has nothing left to do
    assert {t: db.columns(t) for t in ("accounts", "audit_log")} == schema
    assert project.current_heads(db) == SPLIT_HEADS
    again = ok("contract", "--dsn", db.dsn, "--release", "b6b5b0ea4dd9_audit_log_account_index")
    assert "already contracted" in again.stderr and db.version_rows() == SPLIT_HEADS


def test_merge_and_two_heads_planned_and_run_from_source_match_alembic(new_db, tmp_path: Path):
    """``bgmigrate expand SOURCE --since`` on a project with a branch point, a merge and two heads: the
    version table ends exactly as on a twin database Alembic upgraded by itself."""
    project = Project("merge_heads", tmp_path)
    db, twin = new_db("postgres"), new_db("postgres")
    for d in (db, twin):
        assert project.upgrade(d, "8f2a1c3d4b5e") == ["8f2a1c3d4b5e"]
        d.run("INSERT INTO users (id, email) VALUES (1, NULL), (2, 'b@example.com')")
    applied = project.upgrade(twin, "heads")
    assert sorted(applied) == sorted(["3b7e5a9c1d24", "c41d9e7f0a12", "e9d0f1a2b3c4", "17b2c3d4e5f6", "a5c6d7e8f901"])

    ok("expand", str(project.path), "--since", "8f2a1c3d4b5e", "--dsn", db.dsn)
    assert db.version_rows() == {"8f2a1c3d4b5e"}
    gates(db)
    ok("contract", "--dsn", db.dsn)
    assert db.version_rows() == twin.version_rows() == {"17b2c3d4e5f6", "a5c6d7e8f901"}
    assert project.current_heads(db) == project.script_heads()
    assert {t: db.columns(t) for t in ("users", "teams")} == {t: twin.columns(t) for t in ("users", "teams")}
    assert db.rows("SELECT id, email FROM users ORDER BY id") == twin.rows("SELECT id, email FROM users ORDER BY id")
    assert project.upgrade(db, "heads") == []


# ---- expand/contract branches: each branch stamped when its stage completes ------------------------------

EXPAND_HEAD, CONTRACT_HEAD = "72a11648719d", "9793a25db4c3"


def test_branch_project_stamps_the_expand_head_after_expand_and_both_after_contract(new_db, tmp_path: Path):
    db = new_db("postgres")
    project = Project("runner_branches", tmp_path)
    # blue: the base and the first revision of each branch (two rows, one per branch)
    assert project.upgrade(db, "34f107ca7a40") == ["0ad258c38a61", "34f107ca7a40"]
    assert project.upgrade(db, "6ac046964c9f") == ["6ac046964c9f"]
    assert db.version_rows() == {"34f107ca7a40", "6ac046964c9f"}
    db.run(
        "INSERT INTO customers (id, email, locale_code) VALUES (1, 'a@example.com', 'fr'), (2, 'b@example.com', 'de')"
    )
    db.run("INSERT INTO legacy_notes (id, body) VALUES (1, 'old')")
    plan = make_plan(project, "6ac046964c9f", "postgres", tmp_path)
    assert plan.alembic is not None
    assert plan.alembic["expand"] == {"revisions": [EXPAND_HEAD], "from": ["34f107ca7a40"], "heads": [EXPAND_HEAD]}
    # the expand branch's revision runs before green, the contract branch's after blue, each step under
    # the runner's lock_timeout
    by_origin = {s.origin.rsplit("(", 1)[-1].rstrip(")"): s for s in plan.steps if not s.is_gate}
    assert (by_origin[EXPAND_HEAD].stage, by_origin[CONTRACT_HEAD].stage) == ("migrate", "contract")
    assert by_origin[EXPAND_HEAD].lock_timeout == by_origin[CONTRACT_HEAD].lock_timeout == "2s"

    done = ok("expand", "--plan", str(tmp_path / "plan.json"), "--dsn", db.dsn)
    assert f"alembic_version stamped at {EXPAND_HEAD} (the expand branch)" in done.stderr
    assert db.rows("SELECT id, locale FROM customers ORDER BY id") == [(1, "fr"), (2, "de")]
    assert "legacy_notes" in db.tables()  # the contract branch has not run
    assert project.current_heads(db) == {EXPAND_HEAD, "6ac046964c9f"}
    assert project.upgrade(db, "expand@head") == []  # the expand branch is done, for Alembic too
    assert db.rows("SELECT COUNT(*) FROM legacy_notes") == [(1,)]

    gates(db)
    done = ok("contract", "--dsn", db.dsn)
    assert "legacy_notes" not in db.tables()
    assert db.version_rows() == {EXPAND_HEAD, CONTRACT_HEAD} == project.script_heads()
    assert project.current_heads(db) == {EXPAND_HEAD, CONTRACT_HEAD}
    assert project.upgrade(db, "heads") == []


def test_branch_project_with_depends_on_ends_as_alembic_would(new_db, tmp_path: Path):
    """The Neutron-style fixture: the contract branch ``depends_on`` the expand head, and one expand
    revision (wrongly) drops a column. Expand stamps the expand head and leaves that drop for contract
    (blue still reads the column); contract ends with the very rows ``alembic upgrade heads`` leaves
    (one: the expand head is a dependency of the contract head), and the same columns."""
    project = Project("expand_contract", tmp_path)
    db, twin = new_db("postgres"), new_db("postgres")
    for d in (db, twin):
        assert project.upgrade(d, "0d1e2f3a4b5c") == ["0d1e2f3a4b5c"]
        d.run(
            "INSERT INTO customers (id, email, locale_code) VALUES (1, 'a@x.org', 'fr'), (2, 'b@x.org', 'de')",
            "INSERT INTO invoices (id, customer_id, legacy_flag) VALUES (1, 1, true)",
        )
    project.upgrade(twin, "heads")
    plan = make_plan(project, "0d1e2f3a4b5c", "postgres", tmp_path)
    drop = next(s for s in plan.steps if "DROP COLUMN legacy_flag" in s.sql)
    assert drop.stage == "contract" and "6f7a8b9c0d1e" in drop.origin  # an expand-branch revision's drop

    ok("expand", "--plan", str(tmp_path / "plan.json"), "--dsn", db.dsn)
    assert db.version_rows() == {"7a8b9c0d1e2f"}
    assert "legacy_flag" in db.columns("invoices") and "paid_at" in db.columns("invoices")
    assert db.rows("SELECT indisvalid FROM pg_index WHERE indexrelid = 'ix_invoices_paid_at'::regclass") == [(True,)]
    assert project.upgrade(db, "expand@head") == [] and "legacy_flag" in db.columns("invoices")

    gates(db)
    ok("contract", "--dsn", db.dsn)
    assert db.version_rows() == twin.version_rows() == {"ab1c2d3e4f5a"}
    assert project.current_heads(db) == project.current_heads(twin)
    for table in ("customers", "invoices"):
        assert db.columns(table) == twin.columns(table)
    assert db.columns("customers")["locale"] is False  # NOT NULL
    assert project.upgrade(db, "heads") == []


def test_abort_takes_the_expand_stamp_back(new_db, tmp_path: Path):
    db = new_db("postgres")
    project = Project("runner_branches", tmp_path)
    assert project.upgrade(db, "0ad258c38a61") == ["0ad258c38a61"]
    db.run("INSERT INTO customers (id, email, locale_code) VALUES (1, 'a@example.com', 'fr')")
    make_plan(project, "0ad258c38a61", "postgres", tmp_path)
    ok("expand", "--plan", str(tmp_path / "plan.json"), "--dsn", db.dsn)
    assert db.version_rows() == {EXPAND_HEAD}
    done = ok("abort", "--dsn", db.dsn)
    assert "alembic_version back at 0ad258c38a61" in done.stderr
    assert db.version_rows() == {"0ad258c38a61"} and "locale" not in db.columns("customers")
    # Alembic, told the truth, applies the whole release itself
    applied = project.upgrade(db, "heads")
    assert sorted(applied) == sorted(["34f107ca7a40", "6ac046964c9f", EXPAND_HEAD, CONTRACT_HEAD])
    assert db.version_rows() == {EXPAND_HEAD, CONTRACT_HEAD}
    assert db.rows("SELECT id, locale FROM customers") == [(1, "fr")]


# ---- the stamp itself ------------------------------------------------------------------------------------


def stamp_plan(dialect: str, **alembic: Any) -> Plan:
    spec = {
        "version_table": "alembic_version",
        "version_table_schema": None,
        "revisions": ["r2", "r3"],
        "from": ["r1"],
        "heads": ["r3"],
        "expand": None,
        **alembic,
    }
    return Plan(dialect, "15", [], None, "", [], "test", alembic=spec).seal()


@pytest.mark.parametrize("kind", ["postgres", "mysql"])
def test_stamp_creates_alembics_table_replaces_only_the_release_rows_and_is_idempotent(kind: str, new_db):
    target = new_db(kind)
    db = connect(target.dsn)
    try:
        plan = stamp_plan(kind)
        assert stamp(db, plan, "contract") == ["r3"]
        assert target.version_rows() == {"r3"}
        if kind == "postgres":
            assert target.rows(
                "SELECT data_type, character_maximum_length, is_nullable FROM information_schema.columns "
                "WHERE table_name = 'alembic_version'"
            ) == [("character varying", 32, "NO")]
            assert target.rows(
                "SELECT conname, contype FROM pg_constraint WHERE conrelid = 'alembic_version'::regclass"
            ) == [("alembic_version_pkc", "p")]
        else:
            assert target.rows(
                "SELECT COLUMN_TYPE, IS_NULLABLE, COLUMN_KEY FROM information_schema.COLUMNS "
                "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'alembic_version'"
            ) == [("varchar(32)", "NO", "PRI")]
        # blue at r1 beside another branch's head: r1 is replaced, the other branch is left alone
        target.run("DELETE FROM alembic_version", "INSERT INTO alembic_version VALUES ('r1'), ('other')")
        assert stamp(db, plan, "contract") == ["r3"]
        assert target.version_rows() == {"r3", "other"}
        assert stamp(db, plan, "contract") == ["r3"]  # again: nothing changes
        assert target.version_rows() == {"r3", "other"}
        # a split release stamps nothing at expand and has nothing to take back on abort
        assert stamp(db, plan, "expand") == [] and stamp(db, plan, "abort") == []
        assert target.version_rows() == {"r3", "other"}
    finally:
        db.close()


@pytest.mark.parametrize("kind", ["postgres", "mysql"])
def test_stamp_is_atomic_with_what_it_records(kind: str, new_db):
    """The stamp and the status it is recorded with commit together or not at all."""
    target = new_db(kind)
    db = connect(target.dsn)
    try:

        def failing() -> None:
            db.execute("INSERT INTO alembic_version (version_num) VALUES ('x')")
            raise RuntimeError("the status update failed")

        with pytest.raises(RuntimeError):
            stamp(db, stamp_plan(kind), "contract", failing)
        if kind == "postgres":  # transactional DDL: the table's creation is rolled back too
            assert "alembic_version" not in target.tables()
        else:  # MySQL DDL commits by itself: the table stays, empty
            assert target.version_rows() == set()
        target.run(
            "CREATE TABLE IF NOT EXISTS alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)",
            "INSERT INTO alembic_version VALUES ('r1')",
        )
        with pytest.raises(RuntimeError):
            stamp(db, stamp_plan(kind), "contract", failing)
        assert target.version_rows() == {"r1"}
        seen: list[set[str]] = []

        def record() -> None:  # runs in the transaction, after the rows changed
            seen.append({r[0] for r in db.query("SELECT version_num FROM alembic_version")})

        assert stamp(db, stamp_plan(kind), "contract", record) == ["r3"]
        assert seen == [{"r3"}] and target.version_rows() == {"r3"}
    finally:
        db.close()


def test_stamp_quotes_names_and_alembic_reads_them(new_db):
    target = new_db("postgres")
    target.run('CREATE SCHEMA "Audit ""Versions"""')
    db = connect(target.dsn)
    try:
        plan = stamp_plan(
            "postgres", version_table='Version "Table"', version_table_schema='Audit "Versions"', heads=["r2", "r3"]
        )
        assert stamp(db, plan, "contract") == ["r2", "r3"]
    finally:
        db.close()
    assert target.version_rows('"Audit ""Versions"""."Version ""Table"""') == {"r2", "r3"}
    with target.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"version_table": 'Version "Table"', "version_table_schema": 'Audit "Versions"'}
        )
        assert set(context.get_current_heads()) == {"r2", "r3"}


def test_stamp_waits_no_longer_than_the_lock_timeout(new_db):
    """A transaction writing alembic_version (an Alembic run elsewhere) holds the stamp off: it fails
    after the lock timeout, records nothing, and succeeds once the writer is gone."""
    target = new_db("postgres")
    target.run("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
    target.run("INSERT INTO alembic_version VALUES ('r1')")
    blocker = psycopg.connect(target.dsn)
    blocker.execute("UPDATE alembic_version SET version_num = 'r1'")  # ROW EXCLUSIVE, held until commit
    db = connect(target.dsn)
    recorded: list[str] = []

    def retry(attempts: int):  # the runner's policy: tenacity, on lock timeout or deadlock
        return Runner(db, RunOptions(retries=attempts, retry_initial=0.05))._retrying(
            "alembic_version", "r", step=False
        )

    try:
        started = time.monotonic()
        with pytest.raises(StepFailed, match="lock timeout"):
            stamp(
                db, stamp_plan("postgres"), "contract", lambda: recorded.append("x"), lock_timeout=0.2, retry=retry(2)
            )
        assert time.monotonic() - started < 5
        assert recorded == [] and target.version_rows() == {"r1"}
        threading.Timer(0.3, blocker.commit).start()
        assert stamp(
            db, stamp_plan("postgres"), "contract", lambda: recorded.append("x"), lock_timeout=0.2, retry=retry(10)
        ) == ["r3"]
        assert recorded == ["x"] and target.version_rows() == {"r3"}
    finally:
        blocker.close()
        db.close()


def test_plans_of_sql_files_carry_no_alembic_field(tmp_path: Path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "0001.sql").write_text("CREATE TABLE t (id bigint PRIMARY KEY);\n")
    (tmp_path / "m" / "0002.sql").write_text("ALTER TABLE t ADD COLUMN note text;\n")
    out = tmp_path / "plan.json"
    ok("plan", str(tmp_path / "m"), "--since", "0001.sql", "-o", str(out))
    data = json.loads(out.read_text())
    assert "alembic" not in data and Plan.from_json(out.read_text()).alembic is None
