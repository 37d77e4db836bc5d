"""A small harness for the constraint/index recipes against real databases.

- :func:`recipe_for` reads a statement the way the planner does (lint analysis, schema before it,
  phase) and returns the recipe that applies with its steps, the statement text attached.
- :class:`Blue` is the old application: rounds of inserts and updates on its own connection in a
  thread, written against the *old* schema, recording each write it made and every error it saw.
  The migration waits on its progress (a condition variable, never a sleep) so blue provably
  writes between the migration's steps.
- :class:`PgTwin` / :class:`MyTwin` hold two copies of the same tables: ``online`` (the recipe runs
  there while blue writes) and ``offline`` (blue's writes are replayed there, then the original
  statement runs as an offline migration would). Their schema and data are compared at the end.

Self-contained on purpose (the rename recipes have their own harness).
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from migrator.lint.classify import classify
from migrator.plan.model import Backfill
from migrator.plan.recipes import Part, Recipe, RecipeContext, RecipeSteps, find_recipe
from migrator.schema.model import Schema
from migrator.sql.analyze import analyze_text
from migrator.sql.changes import Change
from migrator.sql.split import split_statements

Op = tuple[str, tuple[Any, ...]]  # (SQL with {t} for the table, parameters)
WAIT = 30.0  # seconds: a bound for waits that normally take milliseconds


# ---- planning ------------------------------------------------------------------------------------


@dataclass
class Planned:
    recipe: Recipe
    change: Change
    ctx: RecipeContext
    phase: str
    steps: RecipeSteps | None
    refusal: str | None


def schema_from(ddl: str, dialect: str) -> Schema:
    schema = Schema()
    for st in analyze_text(ddl, dialect):
        for change in st.changes:
            schema.apply(change, "history")
    return schema


def recipe_for(sql: str, ddl: str, dialect: str, version: tuple[int, int, int]) -> Planned:
    """The recipe the planner would pick for ``sql`` on the schema ``ddl`` builds, and its steps."""
    schema = schema_from(ddl, dialect)
    (st,) = analyze_text(sql, dialect)
    assert st.problem is None, st.problem
    (change,) = st.changes
    change.attrs["statement"] = st.sql
    ctx = RecipeContext(schema, dialect, version)
    phase = classify(change, schema, "plan", dialect, version).phase
    recipe = find_recipe(change, phase, ctx)
    assert recipe is not None, f"no recipe for {sql}"
    refusal = recipe.refusal(change, ctx)
    steps = None if refusal else recipe.build(change, ctx)
    return Planned(recipe, change, ctx, phase, steps, refusal)


# ---- blue ----------------------------------------------------------------------------------------


@dataclass
class Blue:
    """The old application writing in rounds on its own connection until stopped."""

    connect: Callable[[], Any]
    ops: Callable[[int], list[Op]]
    table: str
    limit: int = 100_000  # rounds: a bound, never reached in practice
    rounds: int = 0
    log: list[Op] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._progress = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="blue", daemon=True)
        self._failed: BaseException | None = None

    def __enter__(self) -> Blue:
        self._thread.start()
        self.wait_rounds(3)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            conn = self.connect()
        except BaseException as err:  # surfaced by wait_rounds
            self._failed = err
            with self._progress:
                self._progress.notify_all()
            return
        try:
            cur = conn.cursor()
            while not self._stop.is_set() and self.rounds < self.limit:
                for sql, params in self.ops(self.rounds):
                    try:
                        cur.execute(sql.format(t=self.table), params)
                        self.log.append((sql, params))
                    except Exception as err:
                        self.errors.append(f"round {self.rounds}: {sql} {params}: {err}")
                with self._progress:
                    self.rounds += 1
                    self._progress.notify_all()
        finally:
            conn.close()

    def wait_rounds(self, n: int = 2) -> None:
        """Block until blue has finished ``n`` more rounds: it wrote against the schema as it is now."""
        with self._progress:
            target = self.rounds + n
            ok = self._progress.wait_for(
                lambda: self.rounds >= target or self._failed is not None or not self._thread.is_alive(), WAIT
            )
        assert self._failed is None, f"blue could not connect: {self._failed}"
        assert ok and self.rounds >= target, f"blue made no progress ({self.rounds} rounds): {self.errors[:3]}"

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(WAIT)
        assert not self._thread.is_alive(), "blue did not stop"


# ---- running parts -------------------------------------------------------------------------------


class Runner:
    """Runs parts, aborts and backfills on one connection, the way a pipeline would."""

    dialect = ""

    def execute(self, sql: str, params: Any = None, transactional: bool = False) -> None:
        raise NotImplementedError

    def scalar(self, sql: str) -> Any:
        raise NotImplementedError

    def run(self, part: Part) -> None:
        self.execute(part.sql, transactional=part.transactional)

    def abort(self, steps: RecipeSteps) -> None:
        """Each expand part's abort, last part first."""
        for part in reversed(steps.expand):
            if part.abort:
                self.execute(part.abort)

    def backfill(self, bf: Backfill) -> int:
        """Every key range from the smallest key to the largest, one transaction per batch."""
        lo = self.scalar(f"SELECT MIN({bf.key}) FROM {bf.table}")
        hi = self.scalar(f"SELECT MAX({bf.key}) FROM {bf.table}")
        batches = 0
        if lo is None:
            return 0
        start = int(lo)
        while start <= int(hi):
            self.execute(bf.batch_sql(), {"lo": start, "hi": start + bf.batch_size}, transactional=True)
            start += bf.batch_size
            batches += 1
        return batches


def run_online(runner: Runner, steps: RecipeSteps, blue: Blue) -> int:
    """Expand and backfill while blue writes (blue completes rounds between every two steps); then
    stop blue and run contract. Returns the number of backfill batches."""
    for part in steps.expand:
        runner.run(part)
        blue.wait_rounds(2)
    batches = 0
    for bf in steps.backfill:
        batches += runner.backfill(bf)
        blue.wait_rounds(2)
    blue.stop()
    for part in steps.contract:
        runner.run(part)
    return batches


def replay(runner: Runner, blue: Blue, table: str) -> None:
    """Blue's successful writes, in order, on the offline twin."""
    for sql, params in blue.log:
        runner.execute(sql.format(t=table), params)


# ---- PostgreSQL ----------------------------------------------------------------------------------


class PgRunner(Runner):
    dialect = "postgres"

    def __init__(self, dsn: str, search_path: str) -> None:
        import psycopg

        self.conn = psycopg.connect(dsn, autocommit=True)
        self.conn.execute(f"SET search_path = {search_path}")
        self.conn.execute("SET lock_timeout = '10s'")
        self.notices: list[str] = []
        self.conn.add_notice_handler(lambda d: self.notices.append(d.message_primary or ""))

    def execute(self, sql: str, params: Any = None, transactional: bool = False) -> None:
        if transactional:
            with self.conn.transaction():
                self.conn.execute(sql, params)
        else:
            self.conn.execute(sql, params)

    def scalar(self, sql: str) -> Any:
        row = self.conn.execute(sql).fetchone()
        return row[0] if row else None

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return list(self.conn.execute(sql, params).fetchall())

    def close(self) -> None:
        self.conn.close()


_SCHEMA_PREFIX = re.compile(r"\b(?:online|offline)_[0-9a-f]{8}\.")


class PgTwin:
    """Two schemas with the same tables: ``online`` (recipe + blue) and ``offline`` (reference)."""

    def __init__(self, dsn: str) -> None:
        tag = uuid.uuid4().hex[:8]
        self.dsn = dsn
        self.online_schema = f"online_{tag}"
        self.offline_schema = f"offline_{tag}"
        self.online = PgRunner(dsn, self.online_schema)
        self.offline = PgRunner(dsn, self.offline_schema)
        for schema in (self.online_schema, self.offline_schema):
            self.online.execute(f"CREATE SCHEMA {schema}")

    def setup(self, ddl: str) -> None:
        for runner in (self.online, self.offline):
            runner.conn.execute(ddl)

    def blue_connect(self) -> Any:
        import psycopg

        conn = psycopg.connect(self.dsn, autocommit=True)
        conn.execute(f"SET search_path = {self.online_schema}")
        conn.execute("SET statement_timeout = '60s'")
        return conn

    def close(self) -> None:
        self.offline.close()
        for schema in (self.online_schema, self.offline_schema):
            self.online.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        self.online.close()


def pg_schema(runner: PgRunner, table: str) -> dict[str, list[tuple[Any, ...]]]:
    """Columns, constraints and indexes of ``table`` (schema names stripped, to compare twins)."""
    columns = runner.rows(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(d.adbin, d.adrelid) "
        "FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
        "WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        (table,),
    )
    constraints = runner.rows(
        "SELECT conname, contype, convalidated, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s::regclass ORDER BY conname",
        (table,),
    )
    indexes = runner.rows(
        "SELECT c.relname, i.indisvalid, i.indisready, pg_get_indexdef(i.indexrelid) FROM pg_index i "
        "JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = %s::regclass ORDER BY c.relname",
        (table,),
    )
    strip = lambda rows: [tuple(_SCHEMA_PREFIX.sub("", v) if isinstance(v, str) else v for v in r) for r in rows]  # noqa: E731
    return {"columns": strip(columns), "constraints": strip(constraints), "indexes": strip(indexes)}


def pg_data(runner: PgRunner, table: str, columns: str = "*") -> list[tuple[Any, ...]]:
    return runner.rows(f"SELECT {columns} FROM {table} ORDER BY 1")


# ---- MySQL / MariaDB -----------------------------------------------------------------------------


class MyRunner(Runner):
    dialect = "mysql"

    def __init__(self, server: Any) -> None:
        self.conn = server.connect()
        with self.conn.cursor() as cur:
            cur.execute("SET SESSION lock_wait_timeout = 10")

    def execute(self, sql: str, params: Any = None, transactional: bool = False) -> None:
        with self.conn.cursor() as cur:
            if params is not None:
                cur.execute(sql, params)
                return
            for raw in split_statements(sql, "mysql"):  # a part may hold several statements (one session)
                cur.execute(raw.sql)

    def scalar(self, sql: str) -> Any:
        with self.conn.cursor() as cur:
            cur.execute(sql)
            row = cur.fetchone()
            return row[0] if row else None

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self.conn.cursor() as cur:
            cur.execute(sql, params or None)
            return list(cur.fetchall())

    def close(self) -> None:
        self.conn.close()


class MyTwin:
    """Two databases with the same tables: the fixture's (online) and a ``_off`` twin (offline)."""

    def __init__(self, server: Any) -> None:
        tag = uuid.uuid4().hex[:6]
        self.server = server
        self.online_db = f"{server.database}_{tag}"[:60]
        self.offline_db = f"{server.database}_{tag}_off"[:64]
        admin = server.connect()
        with admin.cursor() as cur:
            for db in (self.online_db, self.offline_db):
                cur.execute(f"CREATE DATABASE `{db}`")
        admin.close()
        self.online = MyRunner(replace(server, database=self.online_db))
        self.offline = MyRunner(replace(server, database=self.offline_db))

    def setup(self, ddl: str) -> None:
        for runner in (self.online, self.offline):
            runner.execute(ddl)

    def blue_connect(self) -> Any:
        return replace(self.server, database=self.online_db).connect()

    def close(self) -> None:
        self.online.close()
        self.offline.close()
        admin = self.server.connect()
        with admin.cursor() as cur:
            for db in (self.online_db, self.offline_db):
                cur.execute(f"DROP DATABASE IF EXISTS `{db}`")
        admin.close()


def my_schema(runner: MyRunner, table: str) -> list[str]:
    """``SHOW CREATE TABLE``, one line per column/key, keys sorted (their order is not meaningful)."""
    text = runner.rows(f"SHOW CREATE TABLE {table}")[0][1]
    lines = [line.strip().rstrip(",") for line in text.splitlines()[1:-1]]
    columns = [line for line in lines if line.startswith("`")]
    keys = sorted(line for line in lines if not line.startswith("`"))
    return columns + keys


def my_data(runner: MyRunner, table: str, columns: str = "*") -> list[tuple[Any, ...]]:
    return runner.rows(f"SELECT {columns} FROM {table} ORDER BY 1")
