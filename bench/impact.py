"""Impact benchmark: what one release does to live clients, applied naively and through bgmigrate.

Method, in one process run:

1. Two scratch databases get the base schema (``bench/impact_release/0001_base.sql``: ``plans``
   and ``accounts``) and ``--rows`` accounts, generated with ``INSERT ... SELECT
   generate_series``. The second database is a ``TEMPLATE`` copy of the first, so both start
   from the same bytes. Both are dropped before the run and at its end (also on Ctrl-C, SIGTERM
   or a failure) unless ``--keep``.
2. The release is ``bench/impact_release/0002_release.sql``, the SQL a developer writes without
   thinking of blue-green: ADD COLUMN with a constant default and with a volatile one, CREATE
   INDEX, ADD FOREIGN KEY, RENAME COLUMN, SET NOT NULL. bgmigrate plans it offline
   (``bgmigrate plan bench/impact_release --since 0001_base.sql``) before any load starts.
3. ``--clients`` threads, each with its own psycopg connection (autocommit, ``statement_timeout``
   30 s so a stalled request is counted, never hung forever; psycopg's default server-side
   prepared statements, as a real application has them), send a paced load of ``--rate``
   requests per second each: 60 % SELECT by primary key, 25 % UPDATE of one row (its balance and
   its name), 15 % INSERT of a new row. Every request's latency and error is recorded with the
   phase and the application version ("blue" or "green") it was sent as. With ``--long-tx S``
   one more client holds a read transaction on ``accounts`` for S seconds, pauses 1 s, and
   again: the lock-queue case, where a DDL statement waiting for its lock makes every request
   behind it wait too (for as long as the DDL's ``lock_timeout`` lets it wait).
4. Blue is the application before the release (it reads and writes ``name``), green the one after
   it (it reads and writes ``full_name`` and reads ``status`` and ``api_key``). Every run
   deploys green the same way: first half the clients become green (``--deploy-seconds`` of blue
   and green side by side), then all of them. The naive run deploys green after ``psql`` has
   applied the release, the usual "migrate, then deploy" order; bgmigrate deploys it at its
   deploy-green gate, after ``expand``. So the rename breaks blue's requests in the naive run
   from the moment it commits until blue is gone (counted as client errors: that is the outage
   the release causes), while bgmigrate's two-column window lets both versions work throughout.
5. Each scenario (one per database) measures a baseline window (``--baseline`` seconds of load,
   no migration), the release window (from the first migration command to the last, the deploy
   included) and an "after" window (``--tail`` seconds of green only). naive:
   ``psql -X -e -v ON_ERROR_STOP=1 -f 0002_release.sql``. bgmigrate: ``expand --plan plan.json``,
   deploy green, switch all traffic, ``mark switched``, ``mark decommissioned``, ``contract``,
   each a subprocess whose output lines are time-stamped, so that the longest stall can be
   pinned to the step that was running.
6. At the end the two databases' ``accounts`` tables are compared (columns, constraints,
   indexes, triggers): the naive and the bgmigrate releases must end in the same schema.

Printed per window: requests, throughput, client errors (count and first message), p50/p99 and
the longest request (the longest stall a client saw), the number of requests of 0.5 s or more,
and the wall time of the migration commands. Targets for bgmigrate's release window: zero client
errors and the longest stall under 0.5 s; they are printed beside the figures, never asserted.
The exit code is 1 only when something other than the figures is wrong: a migration command
failed or is missing, or the two final schemas differ.

The load runs in threads of this process; psycopg releases the GIL while it waits for the
server, so the GIL adds at most a few milliseconds to a measured latency (the switch interval),
far below the stalls this measures.

    python bench/impact.py [--rows 1000000] [--clients 4] [--dsn postgresql://postgres@127.0.0.1:5432/postgres]
    python bench/impact.py --rows 100000 --json /tmp/impact.json    # a smoke run, under a minute
    python bench/impact.py --long-tx 5 --expand-arg=--lock-timeout=200ms --contract-arg=--lock-timeout=200ms
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import itertools
import json
import os
import platform
import random
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import BENCH_DIR, REPO_ROOT, bgmigrate_env, bgmigrate_module

RELEASE_DIR = BENCH_DIR / "impact_release"
BASE_FILE = RELEASE_DIR / "0001_base.sql"
RELEASE_FILE = RELEASE_DIR / "0002_release.sql"
DB_NAIVE = "bgm_impact_naive"
DB_BGM = "bgm_impact_bgm"
DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"

STALL_TARGET_S = 0.5
CLIENT_STATEMENT_TIMEOUT_MS = 30_000
PLANS = 10
MIX = (("select", 0.60), ("update", 0.85), ("insert", 1.0))  # cumulative shares
LONG_TX = "long-tx"  # the kind of the --long-tx client's transactions: not counted as requests

# What each application version sends. Blue knows the schema before the release; green the one
# after it (full_name instead of name, and the new status and api_key columns).
QUERIES: dict[str, dict[str, str]] = {
    "blue": {
        "select": "SELECT id, email, name, balance, plan_id FROM accounts WHERE id = %s",
        "update": "UPDATE accounts SET balance = balance + 1, name = %s WHERE id = %s",
        "insert": "INSERT INTO accounts (id, email, name, balance, plan_id) VALUES (%s, %s, %s, %s, %s)",
    },
    "green": {
        "select": "SELECT id, email, full_name, balance, plan_id, status, api_key FROM accounts WHERE id = %s",
        "update": "UPDATE accounts SET balance = balance + 1, full_name = %s WHERE id = %s",
        "insert": (
            "INSERT INTO accounts (id, email, full_name, balance, plan_id, status) "
            "VALUES (%s, %s, %s, %s, %s, 'active')"
        ),
    },
}

FILL_SQL = """
INSERT INTO plans (id, name) SELECT g, 'plan ' || g FROM generate_series(1, {plans}) AS g;
INSERT INTO accounts (id, email, name, balance, plan_id, created_at)
SELECT g, 'user' || g || '@example.com', 'User ' || g, (g % 1000)::int, 1 + g % {plans},
       now() - (g % 10000) * interval '1 minute'
FROM generate_series(1, {rows}) AS g;
"""

# The end state the two runs are compared on (pg_catalog, so the column order does not matter:
# bgmigrate's rename adds full_name as the last column, an offline RENAME keeps its position).
SCHEMA_QUERIES: dict[str, str] = {
    "columns": """
        SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
               pg_get_expr(d.adbin, d.adrelid)
        FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE a.attrelid = 'accounts'::regclass AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY a.attname""",
    "constraints": """
        SELECT conname, contype, convalidated, pg_get_constraintdef(oid)
        FROM pg_constraint WHERE conrelid = 'accounts'::regclass ORDER BY conname""",
    "indexes": """
        SELECT indexrelid::regclass::text, indisvalid, indisready, pg_get_indexdef(indexrelid)
        FROM pg_index WHERE indrelid = 'accounts'::regclass ORDER BY 1""",
    "triggers": """
        SELECT tgname FROM pg_trigger WHERE tgrelid = 'accounts'::regclass AND NOT tgisinternal ORDER BY 1""",
    "bgm functions": "SELECT proname FROM pg_proc WHERE proname LIKE 'bgm%' ORDER BY 1",
    "rows with a NULL in a required column": """
        SELECT count(*) FROM accounts WHERE full_name IS NULL OR balance IS NULL OR api_key IS NULL""",
}


# ---- connection strings and scratch databases ------------------------------------------------


def database_dsn(dsn: str, dbname: str) -> str:
    """``dsn`` pointing at ``dbname`` instead (URL or libpq key=value form, kept in its form)."""
    if "://" in dsn:
        parts = urlsplit(dsn)
        return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, parts.query, parts.fragment))
    return make_conninfo(dsn, dbname=dbname)


def admin_connect(dsn: str) -> psycopg.Connection[Any]:
    return psycopg.connect(dsn, autocommit=True, application_name="bgm-impact-admin")


def drop_database(dsn: str, name: str) -> None:
    with admin_connect(dsn) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def create_databases(dsn: str, rows: int, log: Log) -> None:
    """The naive database filled, then the bgmigrate one as its TEMPLATE copy."""
    with admin_connect(dsn) as conn:
        for name in (DB_NAIVE, DB_BGM):
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DB_NAIVE)))
    start = time.perf_counter()
    with psycopg.connect(database_dsn(dsn, DB_NAIVE), autocommit=True) as conn:
        conn.execute(BASE_FILE.read_text(encoding="utf-8"))
        conn.execute(FILL_SQL.format(plans=PLANS, rows=rows))
        conn.execute("VACUUM (ANALYZE) accounts")
        conn.execute("VACUUM (ANALYZE) plans")
    log.say(f"{DB_NAIVE}: {rows:,} accounts in {time.perf_counter() - start:.1f} s")
    with admin_connect(dsn) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(DB_BGM), sql.Identifier(DB_NAIVE)))
        with contextlib.suppress(psycopg.Error):  # needs pg_checkpoint or superuser; only evens out the start
            conn.execute("CHECKPOINT")
    log.say(f"{DB_BGM}: a TEMPLATE copy of {DB_NAIVE}")


def server_version(dsn: str) -> str:
    with admin_connect(dsn) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "?"


# ---- output -----------------------------------------------------------------------------------


class Log:
    """Progress lines on stderr, time-stamped relative to the scenario that is running."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.origin = time.perf_counter()
        self._lock = threading.Lock()

    def restart(self) -> None:
        self.origin = time.perf_counter()

    def say(self, text: str, at: float | None = None) -> None:
        if self.quiet:
            return
        stamp = (time.perf_counter() if at is None else at) - self.origin
        with self._lock:
            sys.stderr.write(f"[{stamp:8.2f} s] {text}\n")
            sys.stderr.flush()


# ---- the load ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Sample:
    phase: str
    version: str
    kind: str
    client: int
    start: float
    latency: float
    error: str | None


def masked(text: str) -> str:
    """``text`` with the password of any connection string in it replaced by ``***``.

    A URL's user information ends at the last ``@`` of the word (a password may hold ``@``).
    """
    text = re.sub(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)\S*@", r"\1***@", text, flags=re.IGNORECASE)
    return re.sub(r"(\bpassword\s*=\s*)('[^']*'|\S+)", r"\1***", text, flags=re.IGNORECASE)


def one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text}"[:300]


class Load:
    """``clients`` paced client threads against one database; ``green_clients`` of them run green."""

    def __init__(self, dsn: str, clients: int, rate: float, rows: int, seed: int, long_tx: float = 0.0) -> None:
        self.dsn = dsn
        self.long_tx = long_tx
        self.clients = clients
        self.interval = 1.0 / rate
        self.rows = rows
        self.seed = seed
        self.phase = "warm-up"
        self.green_clients = 0
        self.samples: list[Sample] = []  # list.append is atomic: no lock needed
        self.phases: list[tuple[str, float]] = []
        self.stop = threading.Event()
        self._ids = itertools.count(rows + 1)
        self._ids_lock = threading.Lock()
        self._conns: list[psycopg.Connection[Any] | None] = [None] * (clients + 1)
        self._threads: list[threading.Thread] = []
        self._connected = threading.Semaphore(0)
        self._connect_errors: list[str] = []

    # lifecycle

    def start(self) -> None:
        for index in range(self.clients):
            thread = threading.Thread(target=self._run, args=(index,), name=f"impact-client-{index}", daemon=True)
            self._threads.append(thread)
            thread.start()
        if self.long_tx > 0:
            thread = threading.Thread(target=self._run_long_tx, name="impact-long-tx", daemon=True)
            self._threads.append(thread)
            thread.start()
        for _ in self._threads:
            if not self._connected.acquire(timeout=30):
                raise RuntimeError("the load clients did not connect within 30 s")
        if self._connect_errors:
            raise RuntimeError(f"a load client could not connect: {self._connect_errors[0]}")

    def close(self) -> None:
        """Stop every client: no new request, in-flight ones cancelled, threads joined."""
        self.stop.set()
        for conn in list(self._conns):
            if conn is not None and not conn.closed:
                with contextlib.suppress(Exception):
                    conn.cancel_safe(timeout=2.0)
        for thread in self._threads:
            thread.join(timeout=10)

    def set_phase(self, name: str) -> None:
        self.phase = name
        self.phases.append((name, time.perf_counter()))

    def phase_bounds(self, name: str) -> tuple[float, float]:
        marks = [*self.phases, ("<end>", time.perf_counter())]
        for (phase, start), (_, end) in itertools.pairwise(marks):
            if phase == name:
                return start, end
        raise KeyError(name)

    # one client

    def _connect(self, index: int) -> psycopg.Connection[Any]:
        conn = psycopg.connect(
            self.dsn,
            autocommit=True,
            options=f"-c statement_timeout={CLIENT_STATEMENT_TIMEOUT_MS}",
            application_name=f"bgm-impact-client-{index}",
        )
        self._conns[index] = conn
        return conn

    def _next_id(self) -> int:
        with self._ids_lock:
            return next(self._ids)

    def _run(self, index: int) -> None:
        rng = random.Random(self.seed * 1_000 + index)
        conn: psycopg.Connection[Any] | None = None
        try:
            conn = self._connect(index)
        except psycopg.Error as err:
            self._connect_errors.append(one_line(err))
        finally:
            self._connected.release()
        if conn is None:
            return
        next_at = time.perf_counter()
        while not self.stop.is_set():
            version = "green" if index < self.green_clients else "blue"
            phase = self.phase
            draw = rng.random()
            kind = next(name for name, upto in MIX if draw < upto)
            start = time.perf_counter()
            error: str | None = None
            try:
                if conn is None or conn.closed:
                    conn = self._connect(index)
                self._request(conn, version, kind, rng)
            except psycopg.Error as err:
                if self.stop.is_set():
                    break  # cancelled by close(): not the release's doing
                error = one_line(err)
                if conn is not None and conn.broken:
                    conn = None
            self.samples.append(Sample(phase, version, kind, index, start, time.perf_counter() - start, error))
            next_at += self.interval
            delay = next_at - time.perf_counter()
            if delay > 0:
                self.stop.wait(delay)
            else:
                next_at = time.perf_counter()  # behind (a stall): carry on at the pace, no burst to catch up
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def _run_long_tx(self) -> None:
        """One more client: a read transaction held open ``long_tx`` seconds, then a 1 s pause, repeated.

        Like a report or an ORM session left open: it holds ACCESS SHARE on accounts, so a DDL
        statement that needs a stronger lock waits for it, and every request behind that DDL waits
        too (PostgreSQL's lock queue) for as long as the DDL's lock_timeout lets it wait.
        """
        index = self.clients
        conn: psycopg.Connection[Any] | None = None
        try:
            conn = self._connect(index)
        except psycopg.Error as err:
            self._connect_errors.append(one_line(err))
        finally:
            self._connected.release()
        while conn is not None and not self.stop.is_set():
            phase = self.phase
            start = time.perf_counter()
            error: str | None = None
            try:
                with conn.transaction():
                    conn.execute("SELECT count(*) FROM accounts WHERE id <= 100").fetchone()
                    conn.execute("SELECT pg_sleep(%s)", (self.long_tx,))
            except psycopg.Error as err:
                if self.stop.is_set():
                    break
                error = one_line(err)
                if conn.broken:
                    conn = self._connect(index)
            self.samples.append(Sample(phase, "-", LONG_TX, index, start, time.perf_counter() - start, error))
            self.stop.wait(1.0)
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def _request(self, conn: psycopg.Connection[Any], version: str, kind: str, rng: random.Random) -> None:
        query = QUERIES[version][kind]
        if kind == "select":
            conn.execute(query, (rng.randint(1, self.rows),)).fetchone()
        elif kind == "update":
            target = rng.randint(1, self.rows)
            conn.execute(query, (f"User {target} {rng.randrange(1_000_000)}", target))
        else:
            new = self._next_id()
            params = (new, f"user{new}@example.com", f"User {new}", rng.randrange(1000), 1 + new % PLANS)
            conn.execute(query, params)


# ---- migration commands -----------------------------------------------------------------------


@dataclass
class Step:
    name: str
    argv: list[str]
    start: float = 0.0  # seconds since the scenario began
    wall: float = 0.0
    returncode: int | None = None
    output: list[tuple[float, str]] = field(default_factory=list)  # (seconds since the scenario began, line)


class Commands:
    """Runs the migration commands of one scenario as subprocesses, one at a time, killable."""

    def __init__(self, log: Log) -> None:
        self.log = log
        self.current: subprocess.Popen[str] | None = None
        self.steps: list[Step] = []
        self.events: list[tuple[float, str]] = []  # (perf_counter, text): command output and gate marks

    def mark(self, text: str) -> None:
        now = time.perf_counter()
        self.events.append((now, text))
        self.log.say(text, now)

    def run(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Step:
        step = Step(name, [masked(arg) for arg in argv])
        self.mark(f"$ {' '.join(step.argv)}")
        begin = time.perf_counter()
        step.start = begin - self.log.origin
        proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=REPO_ROOT,
            start_new_session=True,  # Ctrl-C reaches this process only; kill() ends the command
        )
        self.current = proc
        try:
            if proc.stdout is None:
                raise RuntimeError("no output pipe")
            for line in proc.stdout:
                now = time.perf_counter()
                text = line.rstrip("\n")
                step.output.append((now - self.log.origin, text))
                self.events.append((now, f"{name}: {text}"))
                self.log.say(f"  {name}: {text}", now)
            step.returncode = proc.wait()
        except BaseException:
            self.kill()  # Ctrl-C, SIGTERM or a failure here: the command must not outlive the bench
            raise
        finally:
            self.current = None
        step.wall = time.perf_counter() - begin
        self.steps.append(step)
        self.mark(f"{name}: exit {step.returncode} after {step.wall:.2f} s")
        return step

    def kill(self) -> None:
        proc = self.current
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)


BGMIGRATE_COMMAND: list[str] = bgmigrate_module()  # --bgmigrate replaces it


def bgmigrate_argv(*args: str) -> list[str]:
    return [*BGMIGRATE_COMMAND, *args]


def bgmigrate_subprocess_env() -> dict[str, str]:
    env = bgmigrate_env()
    env["PYTHONUNBUFFERED"] = "1"  # output lines carry their real time
    return env


def runner_available() -> str | None:
    """None when ``bgmigrate expand``, ``mark`` and ``contract`` exist, else why not."""
    for command in (["expand"], ["mark", "switched"], ["contract"]):
        proc = subprocess.run(
            bgmigrate_argv(*command, "--help"), capture_output=True, text=True, env=bgmigrate_env(), check=False
        )
        if proc.returncode != 0:
            last = (proc.stderr or proc.stdout).strip().splitlines()
            return f"bgmigrate {' '.join(command)} --help exited {proc.returncode}: {last[-1] if last else ''}"
    return None


# ---- scenarios --------------------------------------------------------------------------------


@dataclass
class Window:
    """The figures of one measured window of one scenario."""

    label: str
    wall_s: float
    requests: int
    per_s: float
    errors: int
    first_error: str | None
    error_kinds: list[tuple[str, int]]
    errors_by_version: dict[str, int]
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    slow: int  # requests of STALL_TARGET_S or more
    longest: dict[str, Any] | None  # the longest request: when, what, and what ran meanwhile
    long_tx_errors: list[str]  # errors of the --long-tx client (not counted in errors)


@dataclass
class Scenario:
    name: str
    database: str
    windows: list[Window] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    migration_wall_s: float = 0.0  # the migration commands only (not the deploy)
    failure: str | None = None
    skipped: str | None = None


def percentile(ordered: list[float], share: float) -> float:
    """Nearest-rank percentile of an already sorted, non-empty list."""
    rank = max(1, min(len(ordered), round(share * len(ordered) + 0.5)))
    return ordered[rank - 1]


def summarize(label: str, load: Load, phase: str, commands: Commands, origin: float) -> Window:
    start, end = load.phase_bounds(phase)
    samples = [s for s in load.samples if s.phase == phase and s.kind != LONG_TX]
    long_tx = [s for s in load.samples if s.phase == phase and s.kind == LONG_TX]
    latencies = sorted(s.latency for s in samples)
    errors = [s for s in samples if s.error is not None]
    errors.sort(key=lambda s: s.start)
    longest: dict[str, Any] | None = None
    if samples:
        worst = max(samples, key=lambda s: s.latency)
        finish = worst.start + worst.latency
        before = [text for at, text in commands.events if at <= worst.start]
        during = [text for at, text in commands.events if worst.start < at <= finish]
        running = [
            step.name
            for step in commands.steps
            if step.start + origin <= finish and step.start + origin + step.wall >= worst.start
        ]
        longest = {
            "at_s": round(worst.start - origin, 3),
            "latency_ms": round(worst.latency * 1000, 1),
            "request": f"{worst.version} {worst.kind} (client {worst.client})",
            "error": worst.error,
            "commands_running": running,
            "last_output_before": before[-1] if before else None,
            "output_meanwhile": during[:5],
        }
    return Window(
        label=label,
        wall_s=round(end - start, 3),
        requests=len(samples),
        per_s=round(len(samples) / (end - start), 1) if end > start else 0.0,
        errors=len(errors),
        first_error=errors[0].error if errors else None,
        error_kinds=Counter(e.error for e in errors if e.error).most_common(3),
        errors_by_version=dict(Counter(e.version for e in errors)),
        p50_ms=round(percentile(latencies, 0.50) * 1000, 2) if latencies else None,
        p99_ms=round(percentile(latencies, 0.99) * 1000, 2) if latencies else None,
        max_ms=round(latencies[-1] * 1000, 1) if latencies else None,
        slow=sum(1 for value in latencies if value >= STALL_TARGET_S),
        longest=longest,
        long_tx_errors=[s.error for s in long_tx if s.error],
    )


@contextlib.contextmanager
def running_load(args: argparse.Namespace, dsn: str, log: Log) -> Iterator[Load]:
    load = Load(dsn, args.clients, args.rate, args.rows, args.seed, args.long_tx)
    try:
        load.start()
        extra = f", and a {args.long_tx:g} s read transaction every {args.long_tx + 1:g} s" if args.long_tx else ""
        log.say(f"{args.clients} clients connected, {args.rate:g} requests/s each{extra}")
        yield load
    finally:
        load.close()


def deploy_green(load: Load, commands: Commands, seconds: float, stop: threading.Event) -> None:
    """Half the clients turn green (blue and green side by side for ``seconds``), then all of them."""
    load.green_clients = max(1, load.clients // 2) if load.clients > 1 else 0
    commands.mark(f"deploy green: {load.green_clients} of {load.clients} clients green, blue still serving")
    stop.wait(seconds)
    load.green_clients = load.clients
    commands.mark(f"switch: all {load.clients} clients green, blue stopped")


def run_scenario(
    name: str, database: str, args: argparse.Namespace, log: Log, commands: Commands, release: Any
) -> Scenario:
    """Baseline, release (``release(load)`` runs the commands and the deploy), after."""
    scenario = Scenario(name, database)
    dsn = database_dsn(args.dsn, database)
    log.restart()
    origin = log.origin
    with running_load(args, dsn, log) as load:
        load.set_phase("baseline")
        commands.mark(f"{name}: baseline, {args.baseline:g} s of load without a migration")
        load.stop.wait(args.baseline)
        load.set_phase("release")
        commands.mark(f"{name}: release")
        try:
            scenario.failure = release(load)
        finally:
            load.set_phase("after")
        load.green_clients = load.clients
        commands.mark(f"{name}: after, {args.tail:g} s of green only")
        load.stop.wait(args.tail)
        load.set_phase("stopped")
        scenario.windows = [
            summarize(f"baseline ({name} db)", load, "baseline", commands, origin),
            summarize(f"{name}: release", load, "release", commands, origin),
            summarize(f"{name}: after", load, "after", commands, origin),
        ]
    scenario.steps = list(commands.steps)
    scenario.migration_wall_s = round(sum(step.wall for step in commands.steps), 3)
    return scenario


def naive_release(args: argparse.Namespace, commands: Commands) -> Any:
    dsn = database_dsn(args.dsn, DB_NAIVE)

    def release(load: Load) -> str | None:
        step = commands.run("psql", ["psql", "-X", "-e", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-f", str(RELEASE_FILE)])
        failure = None if step.returncode == 0 else f"psql exited {step.returncode}"
        deploy_green(load, commands, args.deploy_seconds, load.stop)
        return failure

    return release


def bgmigrate_release(args: argparse.Namespace, commands: Commands, plan_file: Path) -> Any:
    dsn = database_dsn(args.dsn, DB_BGM)
    env = bgmigrate_subprocess_env()

    def release(load: Load) -> str | None:
        expand = ["expand", "--plan", str(plan_file), "--dsn", dsn, "--no-progress", *args.expand_arg]
        step = commands.run("expand", bgmigrate_argv(*expand), env)
        if step.returncode != 0:
            return f"bgmigrate expand exited {step.returncode}"
        deploy_green(load, commands, args.deploy_seconds, load.stop)
        for name, argv in (
            ("mark switched", ["mark", "switched", "--dsn", dsn]),
            ("mark decommissioned", ["mark", "decommissioned", "--dsn", dsn]),
            ("contract", ["contract", "--dsn", dsn]),
        ):
            extra = args.contract_arg if name == "contract" else []
            step = commands.run(name, bgmigrate_argv(*argv, *extra), env)
            if step.returncode != 0:
                return f"bgmigrate {name} exited {step.returncode}"
        return None

    return release


def make_plan(args: argparse.Namespace, work: Path, log: Log) -> tuple[Path | None, str | None]:
    plan_file = work / "plan.json"
    release = [str(RELEASE_DIR), "--since", BASE_FILE.name]
    argv = [*bgmigrate_module(), "plan", *release, "-o", str(plan_file), "--markdown", str(work / "plan.md")]
    proc = subprocess.run(
        argv, capture_output=True, text=True, env=bgmigrate_env(work / "cache"), cwd=REPO_ROOT, check=False
    )
    if proc.returncode != 0:
        return None, f"bgmigrate plan exited {proc.returncode}: {(proc.stderr or proc.stdout).strip()}"
    log.say((proc.stderr or proc.stdout).strip())
    plan = json.loads(plan_file.read_text(encoding="utf-8"))
    for stage in ("expand", "migrate", "contract"):
        ids = [s["id"] for s in plan["steps"] if s.get("stage") == stage]
        log.say(f"plan {stage}: {len(ids)} steps")
    return plan_file, None


# ---- final schemas ----------------------------------------------------------------------------


def final_schema(dsn: str) -> dict[str, list[list[Any]]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return {
            name: [[str(v) for v in row] for row in conn.execute(query).fetchall()]
            for name, query in SCHEMA_QUERIES.items()
        }


def schema_differences(naive: dict[str, list[list[Any]]], bgm: dict[str, list[list[Any]]]) -> list[str]:
    problems: list[str] = []
    for name in SCHEMA_QUERIES:
        left = {tuple(row) for row in naive.get(name, [])}
        right = {tuple(row) for row in bgm.get(name, [])}
        problems += [f"{name}: only naive: {' | '.join(row)}" for row in sorted(left - right)]
        problems += [f"{name}: only bgmigrate: {' | '.join(row)}" for row in sorted(right - left)]
    return problems


# ---- report -----------------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def report(result: dict[str, Any]) -> str:
    out: list[str] = []
    params = result["parameters"]
    out.append(
        f"\nImpact of one release on {params['clients']} clients ({params['rate']:g} requests/s each), "
        f"accounts: {params['rows']:,} rows; {result['machine']['date']}"
    )
    held = params["long_tx_s"]
    if held:
        out.append(f"plus one read transaction held {held:g} s on accounts, every {held + 1:g} s")
    expand_args, contract_args = " ".join(params["expand_args"]), " ".join(params["contract_args"])
    if expand_args or contract_args:
        out.append(f"runner options: expand {expand_args or '-'}; contract {contract_args or '-'}")
    header = ("window", "wall s", "requests", "req/s", "errors", "p50 ms", "p99 ms", "max ms", ">=0.5 s")
    rows: list[tuple[str, ...]] = []
    for scenario in result["scenarios"]:
        if scenario["skipped"]:
            rows.append((f"{scenario['name']}: skipped", *("-" * 1 for _ in header[1:])))
            continue
        for w in scenario["windows"]:
            rows.append(
                (
                    w["label"],
                    fmt(w["wall_s"], 2),
                    f"{w['requests']:,}",
                    fmt(w["per_s"]),
                    str(w["errors"]),
                    fmt(w["p50_ms"], 2),
                    fmt(w["p99_ms"], 2),
                    fmt(w["max_ms"]),
                    str(w["slow"]),
                )
            )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    out.append("")
    out.append("  ".join(h.ljust(widths[0]) if i == 0 else h.rjust(widths[i]) for i, h in enumerate(header)))
    for r in rows:
        out.append("  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r)))
    for scenario in result["scenarios"]:
        out.append("")
        if scenario["skipped"]:
            out.append(f"{scenario['name']}: skipped ({scenario['skipped']})")
            continue
        steps = ", ".join(f"{s['name']} {s['wall']:.2f} s (exit {s['returncode']})" for s in scenario["steps"])
        out.append(f"{scenario['name']}: migration commands {scenario['migration_wall_s']:.2f} s: {steps}")
        if scenario["failure"]:
            out.append(f"  FAILED: {scenario['failure']}")
        for w in scenario["windows"]:
            if w["long_tx_errors"]:
                out.append(
                    f"  {w['label']}: the long transaction failed {len(w['long_tx_errors'])}x, first: "
                    f"{w['long_tx_errors'][0]}"
                )
            if w["errors"]:
                kinds = "; ".join(f"{n}x {text}" for text, n in w["error_kinds"])
                versions = ", ".join(f"{n} {v}" for v, n in sorted(w["errors_by_version"].items()))
                out.append(f"  {w['label']}: {w['errors']} client errors ({versions}), first: {w['first_error']}")
                out.append(f"    most frequent: {kinds}")
        release = scenario["windows"][1]
        longest = release["longest"]
        if longest:
            out.append(
                f"  longest request in the release window: {longest['latency_ms']:.1f} ms at +{longest['at_s']:.2f} s, "
                f"{longest['request']}{', ' + longest['error'] if longest['error'] else ''}"
            )
            out.append(f"    commands running: {', '.join(longest['commands_running']) or 'none'}")
            if longest["last_output_before"]:
                out.append(f"    last output before it: {longest['last_output_before']}")
            for line in longest["output_meanwhile"]:
                out.append(f"    output meanwhile: {line}")
    targets = result.get("targets")
    if targets:
        out.append("")
        out.append(
            f"bgmigrate targets (release window): client errors {targets['errors']} (target 0): "
            f"{'MET' if targets['errors_met'] else 'MISSED'}; longest stall {targets['longest_s']:.3f} s "
            f"(target < {STALL_TARGET_S} s): {'MET' if targets['stall_met'] else 'MISSED'}"
        )
    schema = result.get("schema_differences")
    if schema is not None:
        out.append("")
        if schema:
            out.append("final schemas DIFFER (naive vs bgmigrate):")
            out += [f"  {line}" for line in schema]
        else:
            out.append("final schemas: the same after both runs (columns, constraints, indexes, triggers, no NULLs)")
    return "\n".join(out) + "\n"


def machine(dsn: str) -> dict[str, str]:
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": str(os.cpu_count()),
        "arch": platform.machine(),
        "python": platform.python_version(),
        "psycopg": psycopg.__version__,
        "postgresql": server_version(dsn),
    }


# ---- main -------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="accounts rows (default %(default)s)")
    parser.add_argument("--clients", type=int, default=4, help="client threads (default %(default)s)")
    parser.add_argument("--rate", type=float, default=50.0, help="requests per second per client (default %(default)s)")
    parser.add_argument("--dsn", default=DEFAULT_DSN, help="server to create the scratch databases on (%(default)s)")
    parser.add_argument("--baseline", type=float, default=5.0, help="seconds of load before each release")
    parser.add_argument("--tail", type=float, default=2.0, help="seconds of green-only load after each release")
    parser.add_argument(
        "--deploy-seconds", type=float, default=2.0, help="blue and green side by side during the deploy (default 2)"
    )
    parser.add_argument(
        "--expand-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra argument for 'bgmigrate expand', repeatable (e.g. --expand-arg=--batch-size=5000)",
    )
    parser.add_argument(
        "--contract-arg", action="append", default=[], metavar="ARG", help="extra argument for 'bgmigrate contract'"
    )
    parser.add_argument(
        "--long-tx",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="add one client that holds a read transaction on accounts this long, then pauses 1 s (default: none)",
    )
    parser.add_argument(
        "--bgmigrate",
        metavar="CMD",
        help="command for expand, mark and contract (default: this checkout, 'python -m migrator.cli')",
    )
    parser.add_argument("--skip-naive", action="store_true", help="run only bgmigrate's scenario")
    parser.add_argument("--skip-bgmigrate", action="store_true", help="run only the naive scenario")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON ('-' for stdout)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch databases and the plan")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = parser.parse_args(argv)
    if args.rows < 1 or args.clients < 1 or args.rate <= 0:
        parser.error("--rows, --clients and --rate must be positive")
    return args


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.bgmigrate:
        BGMIGRATE_COMMAND[:] = shlex.split(args.bgmigrate)
    signal.signal(signal.SIGTERM, _terminate)
    log = Log(args.quiet)
    work = Path(tempfile.mkdtemp(prefix="bgm-impact-"))
    commands = Commands(log)
    scenarios: list[Scenario] = []
    created = False
    try:
        info = machine(args.dsn)
        plan_file, plan_problem = make_plan(args, work, log)
        missing = runner_available() if not args.skip_bgmigrate else None
        created = True
        create_databases(args.dsn, args.rows, log)
        if not args.skip_naive:
            scenarios.append(run_scenario("naive", DB_NAIVE, args, log, commands, naive_release(args, commands)))
        bgm_skip = "--skip-bgmigrate" if args.skip_bgmigrate else plan_problem or missing
        if bgm_skip is None and plan_file is not None:
            commands = Commands(log)
            scenarios.append(
                run_scenario("bgmigrate", DB_BGM, args, log, commands, bgmigrate_release(args, commands, plan_file))
            )
        else:
            scenarios.append(Scenario("bgmigrate", DB_BGM, skipped=bgm_skip))
        result: dict[str, Any] = {
            "version": 1,
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "parameters": {
                "rows": args.rows,
                "clients": args.clients,
                "rate": args.rate,
                "baseline_s": args.baseline,
                "tail_s": args.tail,
                "deploy_s": args.deploy_seconds,
                "expand_args": args.expand_arg,
                "contract_args": args.contract_arg,
                "long_tx_s": args.long_tx,
                "client_statement_timeout_ms": CLIENT_STATEMENT_TIMEOUT_MS,
            },
            "machine": info,
            "scenarios": [asdict(s) for s in scenarios],
        }
        ran = {s.name: s for s in scenarios if not s.skipped}
        if "bgmigrate" in ran:
            release = ran["bgmigrate"].windows[1]
            result["targets"] = {
                "errors": release.errors,
                "errors_met": release.errors == 0,
                "longest_s": (release.max_ms or 0.0) / 1000,
                "stall_met": (release.max_ms or 0.0) / 1000 < STALL_TARGET_S,
            }
        if "naive" in ran and "bgmigrate" in ran:
            result["schema_differences"] = schema_differences(
                final_schema(database_dsn(args.dsn, DB_NAIVE)), final_schema(database_dsn(args.dsn, DB_BGM))
            )
        sys.stdout.write(report(result))
        if args.json:
            text = json.dumps(result, indent=2, default=str) + "\n"
            if args.json == "-":
                sys.stdout.write(text)
            else:
                Path(args.json).write_text(text, encoding="utf-8")
        failed = any(s.failure or (s.skipped and s.skipped != "--skip-bgmigrate") for s in scenarios)
        return 1 if failed or result.get("schema_differences") else 0
    except KeyboardInterrupt:
        sys.stderr.write("\nimpact: interrupted, cleaning up\n")
        return 130
    except psycopg.OperationalError as err:
        sys.stderr.write(f"impact: {masked(one_line(err))}\n")
        return 2
    finally:
        commands.kill()
        if created and not args.keep:
            for name in (DB_NAIVE, DB_BGM):
                with contextlib.suppress(psycopg.Error):
                    drop_database(args.dsn, name)
        if args.keep:
            sys.stderr.write(f"impact: kept {DB_NAIVE}, {DB_BGM} and {work}\n")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
