"""Run a recipe against a real database under live traffic, and compare the result with an offline run.

A :class:`Scenario` describes one breaking change: the table as blue knows it (with ~2,000 rows),
the statement, and the values blue and green write. :func:`exercise` then plays a release:

1. a BLUE writer (its own connection, in a thread) loops insert / update / read-back using the old
   names, and records every error;
2. the recipe's expand parts run, transactional ones in a transaction with a short lock_timeout
   and retries, the others statement by statement in autocommit; then the backfill in key batches;
3. for :func:`exercise` with ``abort=True``: each expand part's abort runs (in reverse) while blue
   still writes, and the result must equal the untouched table plus blue's writes;
4. otherwise a GREEN writer (new names) starts and both write for a while; blue stops
   (decommission); green keeps writing through the contract parts, then stops.

The checks: neither writer saw an error (nor read back a value it did not write), and the final
table equals an *offline* migration: the same DDL in a scratch namespace, filled with the rows the
writers' successful writes leave, and the original statement applied to it. Rows, column types,
nullability and defaults are compared; no ``bgm_`` trigger, function or view may remain.

Nothing depends on timing: the phases wait for the writers' iteration counts (conditions, joins,
bounded loops); a writer that stops making progress fails the test after a timeout instead of
hanging it. Server-side prepared statements are off on the writers' connections: after a column
changes type a prepared statement fails once, as the recipe's notes tell the team.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from migrator.lint.classify import classify
from migrator.plan.model import Backfill
from migrator.plan.recipes import Recipe, RecipeContext, RecipeSteps, find_recipe
from migrator.schema.live import load_live_schema
from migrator.sql.analyze import analyze_text
from migrator.sql.changes import Change
from migrator.sql.split import split_statements

PG, MY = "postgres", "mysql"
OFFLINE = "bgm_offline"  # PostgreSQL schema / MySQL database suffix of the offline copy
WAIT_S = 30.0  # a writer that makes no progress this long fails the test
MAX_ITERATIONS = 20_000  # writers stop by themselves after this many rounds (bounded loops)
_MISSING = object()


# ---- one connection, either driver ----------------------------------------------------------------


class Session:
    """An autocommit connection with the same three calls on psycopg 3 and PyMySQL."""

    def __init__(self, dialect: str, raw: Any) -> None:
        self.dialect, self.raw = dialect, raw

    def run(self, sql: str, params: Any = None) -> int:
        if self.dialect == PG:
            return int(self.raw.execute(sql, params).rowcount)
        with self.raw.cursor() as cur:
            return int(cur.execute(sql, params))

    def rows(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        if self.dialect == PG:
            return [tuple(r) for r in self.raw.execute(sql, params).fetchall()]
        with self.raw.cursor() as cur:
            cur.execute(sql, params)
            return [tuple(r) for r in cur.fetchall()]

    def insert(self, sql: str, params: Any) -> int:
        """Run an INSERT of one row and return its generated id."""
        if self.dialect == PG:
            row = self.raw.execute(sql + " RETURNING id", params).fetchone()
            return int(row[0])
        with self.raw.cursor() as cur:
            cur.execute(sql, params)
            return int(cur.lastrowid)

    def close(self) -> None:
        self.raw.close()


@dataclass
class Target:
    """A scratch database: how to connect, its DSN for the live-schema loader, its server version."""

    dialect: str
    connect: Callable[..., Session]  # connect(offline=False) -> Session
    dsn: str = field(repr=False)  # may hold a password: never in a test report
    namespace: str  # PostgreSQL schema / MySQL database the recipe works in
    version: tuple[int, int, int] = (0, 0, 0)


def pg_target(dsn: str) -> Target:
    import psycopg

    def connect(offline: bool = False) -> Session:
        raw = psycopg.connect(dsn, autocommit=True, prepare_threshold=None, connect_timeout=5)
        raw.execute("SET statement_timeout = '20s'")
        if offline:
            raw.execute(f"SET search_path = {OFFLINE}")
        return Session(PG, raw)

    session = connect()
    num = int(session.rows("SHOW server_version_num")[0][0])
    session.close()
    return Target(PG, connect, dsn, "public", (num // 10000, num % 10000, 0))


def mysql_target(server: Any) -> Target:
    """``server``: the ``mysql_db`` fixture (host, port, user, password, database, connect())."""
    from dataclasses import replace

    def connect(offline: bool = False) -> Session:
        db = f"{server.database}_{OFFLINE}" if offline else server.database
        raw = replace(server, database=db).connect()
        with raw.cursor() as cur:
            cur.execute("SET SESSION sql_mode = 'STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION'")
        return Session(MY, raw)

    session = connect()
    text = str(session.rows("SELECT VERSION()")[0][0]).split("-")[0]
    session.close()
    parts = [int(p) for p in text.split(".")[:3]] + [0, 0]
    secret = f":{server.password}" if server.password else ""
    dsn = f"mysql://{server.user}{secret}@{server.host}:{server.port}/{server.database}"
    return Target(MY, connect, dsn, server.database, (parts[0], parts[1], parts[2]))


# ---- the scenario ---------------------------------------------------------------------------------


@dataclass
class Scenario:
    """One breaking change on one table ``table(id, column, note)``."""

    create: list[str]  # DDL of the table as blue knows it (no schema qualification)
    table: str  # old names (blue)
    column: str
    statement: str  # the breaking statement, as written in the migration
    seed: Callable[[int], Any]  # value of ``column`` for seed row i
    blue_value: Callable[[int], Any]  # value blue writes in round i
    green_value: Callable[[int], Any]  # value green writes in round i (must fit both types on a retype)
    new_table: str | None = None  # names green uses (default: the old ones)
    new_column: str | None = None
    rows: int = 2000
    batch_size: int = 500
    omitted_value: Any = _MISSING  # what an INSERT that leaves the column out stores (its default)
    same: Callable[[Any, Any], bool] = lambda got, wrote: got == wrote  # read-back check
    in_sync: str | None = None  # SQL counting rows whose two columns disagree during the overlap
    to_param: Callable[[Any], Any] = lambda value: value  # a value read back, as a query parameter again

    @property
    def green_table(self) -> str:
        return self.new_table or self.table

    @property
    def green_column(self) -> str:
        return self.new_column or self.column


# ---- running recipe parts -------------------------------------------------------------------------


def statements(sql: str, dialect: str) -> list[str]:
    return [raw.sql for raw in split_statements(sql, dialect) if raw.sql.strip()]


def _lock_error(err: BaseException, dialect: str) -> bool:
    if dialect == PG:
        return getattr(err, "sqlstate", None) == "55P03"  # lock_not_available (lock_timeout)
    args: tuple[Any, ...] = tuple(getattr(err, "args", ()))
    return len(args) > 0 and args[0] == 1205  # ER_LOCK_WAIT_TIMEOUT (lock_wait_timeout for MDL)


def execute(session: Session, sql: str, transactional: bool, attempts: int = 40) -> int:
    """Run one part: in one transaction with a short lock_timeout, retried whole on lock timeouts;
    or statement by statement in autocommit, each retried. Returns the number of retries."""
    retries = 0
    stmts = statements(sql, session.dialect)
    if session.dialect == MY:
        session.run("SET SESSION lock_wait_timeout = 2")
    if transactional and session.dialect == PG:
        for attempt in range(attempts):
            try:
                with session.raw.transaction():
                    session.run("SET LOCAL lock_timeout = '300ms'")
                    for stmt in stmts:
                        session.run(stmt)
                return retries
            except Exception as err:
                if not _lock_error(err, PG) or attempt == attempts - 1:
                    raise
                retries += 1
                time.sleep(0.02 * (attempt + 1))
    for stmt in stmts:
        for attempt in range(attempts):
            try:
                if session.dialect == PG:
                    session.run("SET lock_timeout = '300ms'")
                session.run(stmt)
                break
            except Exception as err:
                if not _lock_error(err, session.dialect) or attempt == attempts - 1:
                    raise
                retries += 1
                time.sleep(0.02 * (attempt + 1))
    return retries


def backfill(session: Session, job: Backfill, batch_size: int, between: Callable[[], None]) -> int:
    """The batched UPDATE over the key range as it stands now; ``between`` runs after each batch.
    Rows inserted later are the trigger's job. Returns the number of batches."""
    lo, hi = session.rows(f"SELECT MIN({job.key}), MAX({job.key}) FROM {job.table}")[0]
    if lo is None:
        return 0
    batches = 0
    sql = job.batch_sql()
    for start in range(int(lo), int(hi) + 1, batch_size):
        session.run(sql, {"lo": start, "hi": start + batch_size})
        batches += 1
        between()
    return batches


# ---- the writers ----------------------------------------------------------------------------------


class Writer(threading.Thread):
    """Loops: insert a row, update one of ``update_ids``, read both back. Records what it wrote
    (only writes that succeeded) and every error; never stops on an error."""

    def __init__(
        self,
        label: str,
        target: Target,
        table: str,
        column: str,
        value: Callable[[int], Any],
        update_ids: list[int],
        same: Callable[[Any, Any], bool],
        omitted_value: Any = _MISSING,
    ) -> None:
        super().__init__(name=f"{label}-writer", daemon=True)
        self.label, self.target, self.table, self.column = label, target, table, column
        self.value, self.update_ids, self.same, self.omitted_value = value, update_ids, same, omitted_value
        self.written: dict[int, tuple[Any, str]] = {}
        self.errors: list[str] = []
        self.rounds = 0
        self.finished = False
        self.halted = threading.Event()
        self.changed = threading.Condition()

    def run(self) -> None:
        session = self.target.connect()
        t, c = self.table, self.column
        try:
            while not self.halted.is_set() and self.rounds < MAX_ITERATIONS:
                i = self.rounds
                self._round(session, i, t, c)
                with self.changed:
                    self.rounds += 1
                    self.changed.notify_all()
        except BaseException as err:  # the loop itself broke: record it, never hang the test
            self.errors.append(f"{self.label} writer crashed: {err!r}")
        finally:
            session.close()
            with self.changed:
                self.finished = True
                self.changed.notify_all()

    def _round(self, session: Session, i: int, t: str, c: str) -> None:
        note = f"{self.label}-{i}"
        try:
            if self.omitted_value is not _MISSING and i % 5 == 4:
                new_id = session.insert(f"INSERT INTO {t} (note) VALUES (%s)", (note,))
                self.written[new_id] = (self.omitted_value, note)
            else:
                v = self.value(i)
                new_id = session.insert(f"INSERT INTO {t} ({c}, note) VALUES (%s, %s)", (v, note))
                self.written[new_id] = (v, note)
            target = self.update_ids[i % len(self.update_ids)]
            v = self.value(i + 1_000_000)
            if session.run(f"UPDATE {t} SET {c} = %s, note = %s WHERE id = %s", (v, note, target)) != 1:
                self.errors.append(f"{self.label} round {i}: UPDATE of id {target} matched no row")
            self.written[target] = (v, note)
            for rid in (new_id, target):
                got = session.rows(f"SELECT {c}, note FROM {t} WHERE id = %s", (rid,))
                wrote = self.written[rid]
                if len(got) != 1 or not self.same(got[0][0], wrote[0]) or got[0][1] != wrote[1]:
                    self.errors.append(f"{self.label} round {i}: read {got} for id {rid}, wrote {wrote}")
        except Exception as err:
            self.errors.append(f"{self.label} round {i}: {type(err).__name__}: {err}".strip())

    def wait_rounds(self, more: int) -> None:
        """Block until this writer has finished ``more`` further rounds (fails after WAIT_S)."""
        with self.changed:
            goal = self.rounds + more
            ok = self.changed.wait_for(lambda: self.rounds >= goal or self.finished, timeout=WAIT_S)
        assert ok and self.rounds >= goal, f"{self.label} writer stalled at round {self.rounds}: {self.errors[:3]}"

    def halt(self) -> None:
        self.halted.set()
        self.join(timeout=WAIT_S)
        assert not self.is_alive(), f"{self.label} writer did not stop"


@contextmanager
def running(writer: Writer) -> Iterator[Writer]:
    writer.start()
    try:
        yield writer
    finally:
        if writer.is_alive():
            writer.halt()


# ---- setup, planning, checks ----------------------------------------------------------------------


def _drop_everything(session: Session) -> None:
    """Empty the namespace: every view, table and function left by an earlier test goes."""
    if session.dialect == PG:
        for name, kind in session.rows(
            "SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'v') ORDER BY c.relkind DESC"
        ):
            session.run(f'DROP {"VIEW" if kind == "v" else "TABLE"} IF EXISTS "{name}" CASCADE')
        for (fn,) in session.rows(
            "SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname = current_schema()"
        ):
            session.run(f"DROP FUNCTION IF EXISTS {fn} CASCADE")
        return
    for name, kind in session.rows(
        "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
        "ORDER BY TABLE_TYPE DESC"
    ):
        session.run(f"DROP {'VIEW' if kind == 'VIEW' else 'TABLE'} IF EXISTS `{name}`")


def _create(session: Session, scenario: Scenario) -> None:
    for ddl in scenario.create:
        session.run(ddl)


def _reset_offline(target: Target, admin: Session) -> None:
    if target.dialect == PG:
        admin.run(f"DROP SCHEMA IF EXISTS {OFFLINE} CASCADE")
        admin.run(f"CREATE SCHEMA {OFFLINE}")
    else:
        admin.run(f"DROP DATABASE IF EXISTS `{target.namespace}_{OFFLINE}`")
        admin.run(f"CREATE DATABASE `{target.namespace}_{OFFLINE}`")


def drop_offline(target: Target) -> None:
    """Remove the offline copy's MySQL database (on PostgreSQL it is a schema of the scratch database,
    dropped with it)."""
    if target.dialect != MY:
        return
    admin = target.connect()
    try:
        admin.run(f"DROP DATABASE IF EXISTS `{target.namespace}_{OFFLINE}`")
    finally:
        admin.close()


def prepare(target: Target, scenario: Scenario) -> dict[int, tuple[Any, str]]:
    """Fresh table with ``scenario.rows`` rows; returns them as {id: (value, note)}."""
    admin = target.connect()
    try:
        _drop_everything(admin)
        _reset_offline(target, admin)
        _create(admin, scenario)
        seed = [(scenario.seed(i), f"seed-{i}") for i in range(scenario.rows)]
        with admin.raw.cursor() as cur:
            cur.executemany(f"INSERT INTO {scenario.table} ({scenario.column}, note) VALUES (%s, %s)", seed)
        rows = admin.rows(f"SELECT id, {scenario.column}, note FROM {scenario.table} ORDER BY id")
        return {int(r[0]): (r[1], r[2]) for r in rows}
    finally:
        admin.close()


@dataclass
class Planned:
    recipe: Recipe
    change: Change
    ctx: RecipeContext
    phase: str
    refusal: str | None
    steps: RecipeSteps | None


def plan(target: Target, statement: str) -> Planned:
    """Read the live schema, analyze ``statement`` and pick its recipe from the catalog, as the planner
    does with --dsn."""
    schema = load_live_schema(target.dsn, schemas=[target.namespace])
    ctx = RecipeContext(schema, target.dialect, target.version)
    for st in analyze_text(statement, target.dialect):
        for change in st.changes:
            phase = classify(change, schema, "release", target.dialect, target.version).phase
            recipe = find_recipe(change, phase, ctx)
            if recipe is None:
                continue
            refusal = recipe.refusal(change, ctx)
            steps = None if refusal else recipe.build(change, ctx)
            return Planned(recipe, change, ctx, phase, refusal, steps)
    raise AssertionError(f"no recipe applies to {statement!r}")


@dataclass
class Outcome:
    blue: Writer
    green: Writer | None
    retries: int
    batches: int
    expected: dict[int, tuple[Any, str]]


def exercise(
    target: Target, scenario: Scenario, steps: RecipeSteps, initial: dict[int, tuple[Any, str]], *, abort: bool = False
) -> Outcome:
    """Play expand, backfill, then (abort) or (green, decommission blue, contract) under live writers.
    ``initial``: the rows :func:`prepare` made (the table must be as it left it)."""
    seeded = sorted(initial)
    blue = Writer(
        "blue",
        target,
        scenario.table,
        scenario.column,
        scenario.blue_value,
        seeded[0::2],
        scenario.same,
        scenario.omitted_value,
    )
    green = Writer(
        "green",
        target,
        scenario.green_table,
        scenario.green_column,
        scenario.green_value,
        seeded[1::2],
        scenario.same,
        scenario.omitted_value,
    )
    admin = target.connect()
    retries = batches = 0
    try:
        with running(blue):
            blue.wait_rounds(3)
            for part in steps.expand:
                retries += execute(admin, part.sql, part.transactional)
                blue.wait_rounds(2)
            for job in steps.backfill:
                batches += backfill(admin, job, scenario.batch_size, lambda: blue.wait_rounds(1))
            blue.wait_rounds(2)
            if abort:
                for part in reversed(steps.expand):
                    assert part.abort, f"expand part without abort: {part.sql}"
                    retries += execute(admin, part.abort, part.transactional)
                    blue.wait_rounds(2)
            else:
                green.start()  # deploy green: both versions write at once
                green.wait_rounds(5)
                blue.wait_rounds(5)
        # blue is decommissioned: the context manager stopped it
        if not abort:
            if scenario.in_sync:
                (count,) = admin.rows(scenario.in_sync)[0]
                assert count == 0, f"{count} rows out of sync between the two columns after the overlap"
            green.wait_rounds(3)
            for part in steps.contract:
                retries += execute(admin, part.sql, part.transactional)
                green.wait_rounds(2)
    finally:
        if green.is_alive():
            green.halt()
        admin.close()
    expected = dict(initial)
    expected.update(blue.written)
    expected.update(green.written)
    return Outcome(blue, None if abort else green, retries, batches, expected)


def offline(target: Target, scenario: Scenario, expected: dict[int, tuple[Any, str]], *, apply: bool) -> None:
    """The offline migration: the same table in the scratch namespace, holding ``expected``, and the
    original statement applied to it (``apply``)."""
    session = target.connect(offline=True)
    try:
        _create(session, scenario)
        rows = [(rid, scenario.to_param(value), note) for rid, (value, note) in sorted(expected.items())]
        with session.raw.cursor() as cur:
            cur.executemany(f"INSERT INTO {scenario.table} (id, {scenario.column}, note) VALUES (%s, %s, %s)", rows)
        if apply:
            for stmt in statements(scenario.statement, target.dialect):
                session.run(stmt)
    finally:
        session.close()


def table_rows(target: Target, table: str, column: str, *, offline_copy: bool) -> list[tuple[Any, ...]]:
    session = target.connect(offline=offline_copy)
    try:
        return session.rows(f"SELECT id, {column}, note FROM {table} ORDER BY id")
    finally:
        session.close()


def columns(target: Target, table: str, *, offline_copy: bool) -> dict[str, tuple[Any, ...]]:
    """Type, nullability and default of each column but the key (whose sequence name differs)."""
    session = target.connect(offline=offline_copy)
    try:
        if target.dialect == PG:
            rows = session.rows(
                "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(d.adbin, d.adrelid) "
                "FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
                "WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped",
                (table,),
            )
        else:
            rows = session.rows(
                "SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT FROM information_schema.COLUMNS "
                "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s",
                (table,),
            )
        return {r[0]: tuple(r[1:]) for r in rows if r[0] != "id"}
    finally:
        session.close()


def relations(target: Target, *, offline_copy: bool) -> dict[str, str]:
    """Tables and views of the namespace (name -> kind), and leftovers of the recipes (bgm_ objects)."""
    session = target.connect(offline=offline_copy)
    try:
        if target.dialect == PG:
            found = {
                name: "view" if kind == "v" else "table"
                for name, kind in session.rows(
                    "SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'v')"
                )
            }
            for (name,) in session.rows(
                "SELECT proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                "WHERE n.nspname = current_schema()"
            ):
                found[name] = "function"
            for (name,) in session.rows(
                "SELECT t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = current_schema() AND NOT t.tgisinternal"
            ):
                found[name] = "trigger"
            return found
        found = {
            name: "view" if kind == "VIEW" else "table"
            for name, kind in session.rows(
                "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()"
            )
        }
        for (name,) in session.rows(
            "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()"
        ):
            found[name] = "trigger"
        return found
    finally:
        session.close()


def assert_matches_offline(target: Target, scenario: Scenario, outcome: Outcome, *, applied: bool) -> int:
    """The live table equals the offline migration of the same rows: rows, column facts, objects.
    Returns the number of rows compared."""
    offline(target, scenario, outcome.expected, apply=applied)
    table = scenario.green_table if applied else scenario.table
    column = scenario.green_column if applied else scenario.column
    live_rows = table_rows(target, table, column, offline_copy=False)
    want_rows = table_rows(target, table, column, offline_copy=True)
    assert len(live_rows) == len(want_rows) == len(outcome.expected)
    mismatched = [(a, b) for a, b in zip(live_rows, want_rows) if a != b]
    assert not mismatched, f"{len(mismatched)} rows differ from the offline migration, e.g. {mismatched[:3]}"
    assert columns(target, table, offline_copy=False) == columns(target, table, offline_copy=True)
    assert relations(target, offline_copy=False) == relations(target, offline_copy=True)
    return len(live_rows)


def assert_no_errors(outcome: Outcome) -> None:
    assert outcome.blue.rounds > 0 and not outcome.blue.errors, outcome.blue.errors[:5]
    if outcome.green is not None:
        assert outcome.green.rounds > 0 and not outcome.green.errors, outcome.green.errors[:5]
