"""``bgmigrate compat`` on a real PostgreSQL: blue's queries against the release's expand, step by step.

The release renames a column. Applied as written (``--as-written``: what a pipeline that just runs
the migration before deploying green does), blue's queries that use the old name break at exactly
that statement; planned (the rename recipe: a new column, a two-way sync trigger, a backfill; the old
column dropped only by contract), every blue query keeps working, green's work on the expanded
schema, and the static check lists the contract step blue must be gone before.

``--blue-queries-from-pg-stat-statements``: this server offers the extension (pg_available_extensions)
but does not preload it (shared_preload_libraries), so its view cannot be read here: the tests check
the clear refusals (extension missing; not preloaded) and the parsing of recorded query texts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from runner_harness import bgm, pg_exec, pg_rows, pg_schema

from migrator.schema.model import Column, Schema, Table
from migrator.trace.queries import convert_placeholders, queries_from_rows
from migrator.trace.references import references

if TYPE_CHECKING:
    from db_servers import PgServer

BASE = """\
CREATE TABLE customers (id bigint PRIMARY KEY, email text NOT NULL, name text,
  created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint NOT NULL REFERENCES customers (id), total int);
"""
RELEASE = "SET lock_timeout = '2s';\nALTER TABLE customers RENAME COLUMN email TO email_address;\n"
BLUE = """\
SELECT id, email FROM customers WHERE id = $1;
-- DB-API and SQLAlchemy parameters
INSERT INTO customers (id, email, name) VALUES (%s, %s, %s);
UPDATE customers SET email = :email WHERE id = :id;
SELECT c.name, o.total FROM customers c JOIN orders o ON o.customer_id = c.id WHERE o.total > %(min)s;
SELECT count(*) FROM customers WHERE created_at > now() - interval '1 day' AND name LIKE '%%x';
SET application_name = 'blue';
"""
GREEN = """\
SELECT id, email_address FROM customers WHERE id = $1;
INSERT INTO customers (id, email_address, name) VALUES ($1, $2, $3);
"""
STEP_SQL = "ALTER TABLE customers RENAME COLUMN email TO email_address"


@pytest.fixture(scope="module")
def target(pg_db: PgServer) -> PgServer:
    pg_exec(pg_db.dsn, BASE)
    pg_exec(pg_db.dsn, "INSERT INTO customers (id, email) VALUES (1, 'a@example.com')")
    return pg_db


@pytest.fixture
def project(tmp_path: Path) -> Path:
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "0001_base.sql").write_text(BASE)
    (migrations / "0002_release.sql").write_text(RELEASE)
    (tmp_path / "blue.sql").write_text(BLUE)
    (tmp_path / "green.sql").write_text(GREEN)
    return tmp_path


def compat(project: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any], str]:
    done = bgm(
        "compat", str(project / "migrations"), "--since", "0001_base.sql", "--blue-queries", str(project / "blue.sql"),
        "--format", "json", *args, env={"BGMIGRATE_DSN": "", "BGMIGRATE_SCRATCH_SERVER": "", **(env or {})},
    )  # fmt: skip
    return done.returncode, json.loads(done.stdout) if done.stdout.strip() else {}, done.stderr


def test_direct_rename_breaks_blue_at_that_step(project: Path, pg_server: PgServer) -> None:
    code, data, stderr = compat(project, "--as-written", "--scratch-server", pg_server.dsn)
    assert code == 1, stderr
    broken = [f for f in data["findings"] if f["rule"] == "blue-query-broken"]
    assert {f["query"].rsplit("/", 1)[1] for f in broken} == {"blue.sql:1", "blue.sql:3", "blue.sql:4"}
    first = next(f for f in broken if f["query"].endswith("blue.sql:1"))
    assert first["sql"] == "SELECT id, email FROM customers WHERE id = $1"
    assert first["step"].endswith("migrations/0002_release.sql:2") and first["step_sql"] == STEP_SQL
    assert 'column "email" does not exist' in first["message"]
    blue = {r["source"].rsplit("/", 1)[1]: r for r in data["blue"]}
    assert blue["blue.sql:3"]["prepared_as"] == "INSERT INTO customers (id, email, name) VALUES ($1, $2, $3)"
    assert blue["blue.sql:4"]["prepared_as"] == "UPDATE customers SET email = $1 WHERE id = $2"
    assert blue["blue.sql:5"]["status"] == "ok" and blue["blue.sql:6"]["status"] == "ok"
    assert blue["blue.sql:7"]["status"] == "skipped"  # SET: not a query PREPARE takes
    # the SET statement is a step too, and broke nothing
    assert [s["sql"] for s in data["steps"]] == ["SET lock_timeout = '2s'", STEP_SQL]
    # the static check names the same step, and is not reported twice
    assert blue["blue.sql:1"]["removed_references"] == [
        {"reference": "customers.email", "step": first["step"], "stage": "as-written"}
    ]
    assert not [f for f in data["findings"] if f["rule"] == "blue-query-removed-reference"]


def test_text_output_names_query_and_step(project: Path, pg_server: PgServer) -> None:
    done = bgm(
        "compat", str(project / "migrations"), "--since", "0001_base.sql", "--blue-queries",
        str(project / "blue.sql"), "--as-written", "--scratch-server", pg_server.dsn,
    )  # fmt: skip
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("BROKEN") and "blue.sql:1" in line)
    assert lines[at + 1].strip().endswith(f"0002_release.sql:2: {STEP_SQL}")
    assert lines[at + 2].strip() == 'error: column "email" does not exist'


def test_planned_rename_keeps_blue_and_green_working(project: Path, target: PgServer) -> None:
    before = pg_schema(target.dsn)
    code, data, stderr = compat(
        project, "--green-queries", str(project / "green.sql"), "--dsn", target.dsn, "--sample-rows", "5"
    )
    assert code == 0, (stderr, data.get("findings"))
    assert data["mode"] == "plan" and data["findings"] == []
    assert [(s["id"], s["applied"]) for s in data["steps"]] == [
        ("expand-001", True),
        ("expand-002", True),
        ("migrate-001", True),
        ("contract-001", False),
        ("contract-002", False),
        ("contract-003", False),
    ]
    assert {r["status"] for r in data["blue"]} == {"ok", "skipped"}
    assert [r["status"] for r in data["green"]] == ["ok", "ok"]
    # blue's use of the old column ends with contract: blue must be decommissioned first
    needs = {r["source"].rsplit("/", 1)[1]: r["needs_decommission"] for r in data["blue"]}
    assert needs["blue.sql:1"] == [{"reference": "customers.email", "step": "contract-001"}]
    assert needs["blue.sql:5"] == []
    assert data["scratch"]["schema_from"].startswith("pg_dump --schema-only of ")
    assert pg_schema(target.dsn) == before  # the database behind --dsn is only read


def test_green_queries_checked(project: Path, pg_server: PgServer) -> None:
    (project / "green.sql").write_text(
        "SELECT id, email_address FROM customers;\nSELECT nickname FROM customers;\nSELECT email FROM customers;\n"
    )
    green = str(project / "green.sql")
    code, data, stderr = compat(project, "--green-queries", green, "--scratch-server", pg_server.dsn)
    assert code == 1, stderr
    rules = {(f["rule"], f["query"].rsplit("/", 1)[1], f["step"]) for f in data["findings"]}
    assert rules == {
        ("green-query-broken", "green.sql:2", "migrate-001"),  # fails on the expanded schema
        ("green-query-removed-reference", "green.sql:3", "contract-001"),  # works now, not after contract
    }
    broken = next(f for f in data["findings"] if f["rule"] == "green-query-broken")
    assert 'column "nickname" does not exist' in broken["message"]


def test_a_blue_query_that_fails_before_the_release_is_a_warning(project: Path, pg_server: PgServer) -> None:
    (project / "blue.sql").write_text("SELECT id FROM customers;\nSELECT id FROM no_such_table;\n")
    code, data, _ = compat(project, "--scratch-server", pg_server.dsn)
    assert code == 0
    assert [(f["rule"], f["severity"]) for f in data["findings"]] == [("query-fails-before-release", "warning")]


# ---- bad input ---------------------------------------------------------------------------------------


def test_unparseable_query_file(project: Path, pg_server: PgServer) -> None:
    (project / "blue.sql").write_text("SELECT id FROM customers;\n\nSELEC email FRM customers;\n")
    code, data, stderr = compat(project, "--scratch-server", pg_server.dsn)
    assert code == 2 and data["exit_code"] == 2
    assert f"{project / 'blue.sql'}:3: unparseable SQL in the query file: syntax error at or near" in stderr
    assert "Traceback" not in stderr  # read before any scratch database is created


def test_unreadable_query_file(project: Path) -> None:
    code, _, stderr = compat(project, "--green-queries", str(project / "missing.sql"))
    assert code == 2 and "cannot read the query file" in stderr and "missing.sql" in stderr
    (project / "blue.sql").write_bytes(b"SELECT '\xff\xfe'")
    code, _, stderr = compat(project)
    assert code == 2 and "is not UTF-8 text" in stderr
    (project / "blue.sql").write_text("-- nothing\n")
    code, _, stderr = compat(project)
    assert code == 2 and "holds no queries" in stderr


def test_no_blue_queries(project: Path) -> None:
    done = bgm("compat", str(project / "migrations"))
    assert done.returncode == 2 and "--blue-queries FILE or --blue-queries-from-pg-stat-statements" in done.stderr


# ---- pg_stat_statements ------------------------------------------------------------------------------


def test_pg_stat_statements_refusals(project: Path, fresh_pg: str) -> None:
    available = pg_rows(fresh_pg, "SELECT 1 FROM pg_available_extensions WHERE name = 'pg_stat_statements'")
    code, _, stderr = compat(project, "--blue-queries-from-pg-stat-statements", fresh_pg)
    assert code == 2 and "pg_stat_statements extension is not installed" in stderr
    if not available:
        return
    pg_exec(fresh_pg, "CREATE EXTENSION pg_stat_statements")
    preloaded = "pg_stat_statements" in pg_rows(fresh_pg, "SHOW shared_preload_libraries")[0][0]
    code, _data, stderr = compat(project, "--blue-queries-from-pg-stat-statements", fresh_pg)
    if preloaded:  # a server that records statements: the view is read (it may hold none of this database)
        assert code in (0, 1, 2), stderr
    else:
        assert code == 2 and "must be loaded via" in stderr and "shared_preload_libraries" in stderr


def test_recorded_query_texts_parse() -> None:
    rows = [
        ("SELECT id, email FROM customers WHERE id = $1", 120),
        ("UPDATE customers SET name = $1 WHERE id = $2", 40),
        ("SET application_name = $1", 30),
        ("SELECT id FROM customers WHERE email = 'cut at track_activity_query_si", 2),
        ("", 1),
    ]
    queries, left_out = queries_from_rows(rows)
    assert [(q.source, q.kind, q.text) for q in queries] == [
        ("pg_stat_statements #1 (120 calls)", "select", "SELECT id, email FROM customers WHERE id = $1"),
        ("pg_stat_statements #2 (40 calls)", "update", "UPDATE customers SET name = $1 WHERE id = $2"),
        ("pg_stat_statements #3 (30 calls)", "other", "SET application_name = $1"),
    ]
    assert left_out == 1


# ---- the pieces, without a database ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT $1, $2", ("SELECT $1, $2", 2)),
        ("SELECT %s, %s", ("SELECT $1, $2", 2)),
        ("SELECT :a, :b, :a", ("SELECT $1, $2, $1", 2)),
        ("SELECT %(a)s + %(a)s", ("SELECT $1 + $1", 1)),
        (
            "SELECT x::int, ':no', '%s', \"a:b\" FROM t WHERE y = :y",
            ("SELECT x::int, ':no', '%s', \"a:b\" FROM t WHERE y = $1", 1),
        ),
        ("SELECT 5 %% 2 -- :c\n, $$ :d %s $$, a[1:2]", ("SELECT 5 % 2 -- :c\n, $$ :d %s $$, a[1:2]", 0)),
        ("SELECT $2, :x", ("SELECT $2, $3", 3)),
    ],
)
def test_convert_placeholders(sql: str, expected: tuple[str, int]) -> None:
    assert convert_placeholders(sql) == expected


def _schema() -> Schema:
    schema = Schema()
    for name, cols in {"customers": ["id", "email", "name"], "orders": ["id", "customer_id", "total"]}.items():
        schema.tables[name] = Table(name, {c: Column(c, "text") for c in cols})
    schema.tables["sales.x"] = Table("sales.x", {"a": Column("a", "int")})
    return schema


@pytest.mark.parametrize(
    ("sql", "refs"),
    [
        ("SELECT id, email FROM customers WHERE id = $1", {"customers.id", "customers.email"}),
        (
            "SELECT c.email, total FROM customers c JOIN orders o ON o.customer_id = c.id",
            {"customers.email", "orders.total", "orders.customer_id", "customers.id"},
        ),
        ("UPDATE customers SET email = $1 WHERE id = $2", {"customers.email", "customers.id"}),
        ("INSERT INTO customers (id, name) VALUES ($1, $2)", {"customers.id", "customers.name"}),
        (
            "DELETE FROM orders WHERE customer_id IN (SELECT id FROM customers WHERE email = $1)",
            {"orders.customer_id", "customers.id", "customers.email"},
        ),
        ("WITH c AS (SELECT id FROM customers) SELECT id FROM c", {"customers.id"}),
        ("SELECT a FROM sales.x", {"sales.x.a"}),
        ("SELECT * FROM customers", set()),  # a star is not expanded: no column of its own
    ],
)
def test_static_references(sql: str, refs: set[str]) -> None:
    found, readable = references(sql, _schema())
    assert readable
    assert {f"{t}.{c}" for t, c in found if c} == refs
