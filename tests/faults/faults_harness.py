"""Helpers of the fault suite: a realistic release, databases copied from a seeded template, the
schema as ``pg_dump --schema-only`` prints it, per-table row checksums and rows lost, and the release
run through the CLI with a kill point."""

from __future__ import annotations

import hashlib
import re
import shutil
import signal
import subprocess
import uuid
import warnings
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from runner_harness import Release, bgm, pg_exec, pg_rows

KILL_ENV = "BGMIGRATE_FAULT_KILL"
_ATTVER = re.compile(r"^ALTER TABLE ONLY \S+ ALTER COLUMN \S+ SET \(pg_attver=\d+\);$")

# A release as a team ships it: a rename (column + sync trigger + batched backfill on customers), a
# concurrent index, a foreign key (NOT VALID, then VALIDATE), a new column, a data fix, SET NOT NULL through
# a CHECK, a narrowing type change (new column + trigger + batched backfill on orders), a CHECK, a widening
# in place and a dropped column.
BASE_SQL = """\
CREATE TABLE customers (id bigint PRIMARY KEY, email text NOT NULL, name varchar(50),
  created_at timestamptz NOT NULL DEFAULT now(), fax text);
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint NOT NULL, total int, status text, note text);
"""
RELEASE_SQL = """\
ALTER TABLE customers RENAME COLUMN email TO email_address;
CREATE INDEX orders_customer_idx ON orders (customer_id);
ALTER TABLE orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id);
ALTER TABLE customers ADD COLUMN tier text;
UPDATE orders SET status = 'new' WHERE status IS NULL;
ALTER TABLE orders ALTER COLUMN status SET NOT NULL;
ALTER TABLE orders ALTER COLUMN note TYPE varchar(20);
ALTER TABLE orders ADD CONSTRAINT orders_total_positive CHECK (total >= 0);
ALTER TABLE customers ALTER COLUMN name TYPE varchar(200);
ALTER TABLE customers DROP COLUMN fax;
"""
# the plan of RELEASE_SQL (checked against the planner by test_every_step_boundary_is_a_kill_point)
EXPAND_STEPS = [f"expand-{i:03d}" for i in range(1, 11)] + ["migrate-001", "migrate-002", "migrate-003"]
CONTRACT_STEPS = [f"contract-{i:03d}" for i in range(1, 12)]
BACKFILLS = {"migrate-001": "customers", "migrate-003": "orders"}
# every boundary: before the first step of each command (the release recorded, nothing run) and after
# every step (recorded done, the next not started; after the last one, the release not yet completed)
KILL_POINTS = (
    ["before:expand-001"]
    + [f"after:{s}" for s in EXPAND_STEPS]
    + ["before:contract-001"]
    + [f"after:{s}" for s in CONTRACT_STEPS]
)


def seed_sql(customers: int) -> str:
    return f"""\
INSERT INTO customers (id, email, name, created_at, fax)
  SELECT g, 'user' || g || '@example.com', 'name ' || g, timestamptz '2024-01-01 00:00:00+00' + g * interval '1 min',
         CASE WHEN g % 3 = 0 THEN '+1-555-' || g END
  FROM generate_series(1, {customers}) g;
INSERT INTO orders (id, customer_id, total, status, note)
  SELECT g, 1 + (g % {customers}), g % 1000, CASE WHEN g % 4 = 0 THEN NULL ELSE 'paid' END, 'n' || (g % 97)
  FROM generate_series(1, {customers * 2}) g;
ANALYZE customers;
ANALYZE orders;
"""


# ---- databases ---------------------------------------------------------------------------------------


def create_db(admin_dsn: str, prefix: str, template: str | None = None) -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    pg_exec(admin_dsn, f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    return name


def drop_db(admin_dsn: str, name: str) -> None:
    pg_exec(admin_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def dsn_for(dsn: str, dbname: str) -> str:
    return psycopg.conninfo.make_conninfo(dsn, dbname=dbname)


# ---- schema and data ---------------------------------------------------------------------------------


def _pg_dump_binary(server_major: int) -> str:
    """The pg_dump closest to the server's version and not older (pg_dump refuses newer servers)."""
    candidates = []
    try:
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
            warnings.simplefilter("ignore")
            from pgserver._commands import POSTGRES_BIN_PATH  # type: ignore[import-not-found]

        candidates.append(str(POSTGRES_BIN_PATH / "pg_dump"))
    except Exception:
        pass
    system = shutil.which("pg_dump")
    if system:
        candidates.append(system)
    best: tuple[int, str] | None = None
    for binary in candidates:
        try:
            out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout
            major = int(out.split()[-1].split(".")[0])
        except Exception:
            continue
        if major >= server_major and (best is None or major < best[0]):
            best = (major, binary)
    if best is None:
        raise AssertionError(f"no pg_dump for PostgreSQL {server_major} (tried {candidates})")
    return best[1]


def pg_dump_schema(dsn: str) -> str:
    """``pg_dump --schema-only`` of the application's schema (bgmigrate's own left out), without the
    comments and session settings that differ between runs."""
    major = int(pg_rows(dsn, "SHOW server_version_num")[0][0]) // 10000
    done = subprocess.run(
        [_pg_dump_binary(major), "--schema-only", "--no-owner", "--no-privileges", "--schema=public", "--dbname", dsn],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    keep = []
    for line in done.stdout.splitlines():
        if not line.strip() or line.startswith(("--", "SET ", "SELECT pg_catalog.set_config", "\\")):
            continue  # \restrict / \unrestrict lines carry a random key in newer pg_dump releases
        if _ATTVER.search(line):
            continue  # a per-database attribute option some servers set on every column (not the schema's)
        keep.append(line)
    return "\n".join(keep)


def table_rows(dsn: str) -> dict[str, list[str]]:
    """Every application table's rows as text, sorted."""
    out = {}
    for (table,) in pg_rows(dsn, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"):
        out[table] = sorted(r[0] for r in pg_rows(dsn, f'SELECT t::text FROM public."{table}" t'))
    return out


def checksums(rows: dict[str, list[str]]) -> dict[str, str]:
    return {t: hashlib.sha256("\n".join(r).encode()).hexdigest() for t, r in rows.items()}


def rows_lost(reference: dict[str, list[str]], actual: dict[str, list[str]]) -> int:
    """Rows of the reference run missing (or different) in ``actual``, over all tables."""
    lost = 0
    for table, rows in reference.items():
        lost += sum((Counter(rows) - Counter(actual.get(table, []))).values())
    return lost


@dataclass
class Outcome:
    schema: str
    rows: dict[str, list[str]]

    @classmethod
    def of(cls, dsn: str) -> Outcome:
        return cls(pg_dump_schema(dsn), table_rows(dsn))


# ---- the release through the CLI ---------------------------------------------------------------------


def write_release(root: Path, base: str = BASE_SQL, release: str = RELEASE_SQL, **kw: Any) -> Release:
    return Release.write(root, base, release, **kw)


def run_ok(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    done = bgm(*args, env=env)
    assert done.returncode == 0, (args, done.returncode, done.stderr[-3000:])
    assert "Traceback" not in done.stderr
    return done


def run_killed(*args: str, point: str) -> subprocess.CompletedProcess[str]:
    done = bgm(*args, env={KILL_ENV: point})
    assert done.returncode == -signal.SIGKILL, (point, done.returncode, done.stderr[-3000:])
    return done


def mark_gates(dsn: str) -> None:
    """``bgmigrate mark switched`` and ``mark decommissioned``, in this process (what they record is not
    under test here, and two interpreters less per kill point keep the suite short)."""
    from migrator.run.db import connect
    from migrator.run.runner import Runner

    db = connect(dsn)
    try:
        runner = Runner(db)
        runner.mark("switched")
        runner.mark("decommissioned")
    finally:
        db.close()


def full_release(dsn: str, plan: Path, *, kill: str | None = None, expand_args: Iterable[str] = ()) -> None:
    """expand, mark switched, mark decommissioned, contract; with ``kill``, the command that reaches it is
    killed there (SIGKILL) and run again, which must finish."""
    expand = ("expand", "--plan", str(plan), "--dsn", dsn, *expand_args)
    in_contract = kill is not None and "contract-" in kill
    if kill is not None and not in_contract:
        run_killed(*expand, point=kill)
    run_ok(*expand)
    mark_gates(dsn)
    if in_contract:
        run_killed("contract", "--dsn", dsn, point=kill or "")
    run_ok("contract", "--dsn", dsn)


def steps_status(dsn: str) -> dict[str, tuple[Any, ...]]:
    """{step: (status, attempts, statements_done, backfill_rows, backfill_last_key)}"""
    sql = "SELECT step_id, status, attempts, statements_done, backfill_rows, backfill_last_key FROM bgmigrate.steps"
    return {r[0]: r[1:] for r in pg_rows(dsn, sql)}
