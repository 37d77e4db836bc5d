"""``--schema-from``: the schema read from a live PostgreSQL / MariaDB-MySQL (migrator.schema.live).

Each server gets a realistic schema built with SQL (foreign keys, NOT VALID and validated CHECKs,
unique/plain/expression indexes, an enum, views, a materialized view, ~1,000 rows, statistics);
the loaded model is checked fact by fact, against the model the history replay builds from the
same DDL (column types read alike), and end to end through the lint engine. Bad input (wrong
password, unreachable port, unknown database, a server that never answers, a held lock) gives a
one-line :class:`LiveSchemaError` that never holds the password, not even in its cause chain.
"""

from __future__ import annotations

import copy
import socket
import sys
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import psycopg
import pytest

from migrator.config import Settings
from migrator.lint.engine import FileLinter, RuleSet
from migrator.lint.results import StatementResult
from migrator.schema.live import LiveSchemaError, canonical_type, load_live_schema
from migrator.schema.model import Schema
from migrator.sql.analyze import analyze_text
from migrator.sql.types import compare_types

if TYPE_CHECKING:
    from db_servers import MySqlServer, PgServer

FAKE_PASSWORD = "Fake-S3cr3t@pw:42"  # holds '@' and ':' (percent-encoded in URLs)
ROWS = 1000

# ---- shared helpers ----------------------------------------------------------------------------------


def replayed(ddl: str, dialect: str) -> Schema:
    """The schema the history replay builds from ``ddl``."""
    schema = Schema()
    for st in analyze_text(ddl, dialect):
        assert st.problem is None, (st.sql, st.problem)
        for change in st.changes:
            schema.apply(change, "history.sql")
    return schema


def lint(schema: Schema, sql: str, dialect: str, version: str) -> StatementResult:
    """Lint one statement against (a copy of) ``schema`` as the release under review."""
    settings = Settings(dialect=dialect, target_version=version, cache=False)
    statements = analyze_text(sql, dialect)
    linter = FileLinter("release.sql", statements, copy.deepcopy(schema), settings, RuleSet(settings))
    linter.run()
    assert len(linter.results) == 1
    return linter.results[0]


def assert_no_secret(err: BaseException, secret: str = FAKE_PASSWORD) -> None:
    forms = {secret, quote(secret, safe=""), quote(secret)}
    printed = "".join(traceback.format_exception(err))
    texts = [str(err), repr(err), printed, str(getattr(err, "dsn", ""))]
    cause: BaseException | None = err.__cause__
    while cause is not None:
        texts += [str(cause), repr(cause)]
        cause = cause.__cause__
    for text in texts:
        for form in forms:
            assert form not in text, text
    assert "\n" not in str(err)
    assert err.__context__ is None  # the driver's own exception is not kept around


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def blackhole() -> Iterator[int]:
    """A TCP port that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    try:
        yield int(server.getsockname()[1])
    finally:
        server.close()


# ---- PostgreSQL --------------------------------------------------------------------------------------

PG_TABLES = """
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE SCHEMA billing;
CREATE TYPE billing.invoice_state AS ENUM ('open', 'paid', 'void');
CREATE TABLE accounts (
  id bigserial PRIMARY KEY,
  email varchar(20) NOT NULL,
  name character varying(80) DEFAULT 'anonymous',
  nickname text,
  code varchar(20),
  "DisplayName" text,
  mood mood DEFAULT 'ok',
  balance numeric(10,2) NOT NULL DEFAULT 0,
  tags text[],
  created_at timestamp with time zone NOT NULL DEFAULT now(),
  seen_at timestamp(3) without time zone,
  flags integer,
  score double precision,
  doubled integer GENERATED ALWAYS AS (flags * 2) STORED
);
CREATE TABLE billing.invoices (
  id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  account_id bigint NOT NULL REFERENCES accounts (id),
  state billing.invoice_state NOT NULL DEFAULT 'open',
  total numeric(12,2),
  CONSTRAINT invoices_total_positive CHECK (total >= 0),
  CONSTRAINT invoices_account_state_key UNIQUE (account_id, state)
);
CREATE TABLE events (id bigint, at date NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
"""
PG_REST = f"""
CREATE UNIQUE INDEX accounts_email_key ON accounts (email);
CREATE INDEX accounts_created_idx ON accounts (created_at, flags);
CREATE INDEX accounts_lower_email_idx ON accounts (lower(email));
INSERT INTO accounts (email, nickname, code, "DisplayName", flags)
  SELECT 'u' || g, 'n' || g, CASE WHEN g % 10 = 0 THEN NULL ELSE 'c' || g END, 'D' || g, g
  FROM generate_series(1, {ROWS}) g;
INSERT INTO billing.invoices (account_id, total) SELECT g, g FROM generate_series(1, 200) g;
INSERT INTO events SELECT g, DATE '2024-01-01' + (g % 300) FROM generate_series(1, 300) g;
ALTER TABLE accounts ADD CONSTRAINT accounts_nickname_not_null CHECK (nickname IS NOT NULL);
ALTER TABLE accounts ADD CONSTRAINT accounts_display_not_null CHECK ("DisplayName" IS NOT NULL);
ALTER TABLE accounts ADD CONSTRAINT accounts_code_not_null CHECK (code IS NOT NULL) NOT VALID;
ALTER TABLE billing.invoices ADD CONSTRAINT invoices_account_fk FOREIGN KEY (account_id)
  REFERENCES accounts (id) NOT VALID;
CREATE VIEW active_accounts AS SELECT id, email FROM accounts WHERE flags > 0;
CREATE MATERIALIZED VIEW billing.totals AS SELECT account_id, sum(total) AS total FROM billing.invoices GROUP BY 1;
ANALYZE;
"""


@pytest.fixture(scope="module")
def pg_live(pg_db: PgServer) -> tuple[Schema, PgServer]:
    with psycopg.connect(pg_db.dsn, autocommit=True) as conn:
        conn.execute(PG_TABLES + PG_REST)
    return load_live_schema(pg_db.dsn), pg_db


def test_pg_tables_views_enums_are_named_like_the_model(pg_live: tuple[Schema, PgServer]) -> None:
    schema, server = pg_live
    assert set(schema.tables) == {"accounts", "billing.invoices", "events", "events_2024"}
    assert schema.views == {"active_accounts": None, "billing.totals": None}
    assert schema.enums == {"mood": ["sad", "ok", "happy"], "billing.invoice_state": ["open", "paid", "void"]}
    assert schema.created == {}
    for table in schema.tables.values():
        assert table.known and table.created_in is None
        assert all(c.created_in is None for c in table.columns.values())
        assert all(c.created_in is None for c in table.constraints)
    assert schema.source is not None
    assert schema.source["kind"] == "live" and schema.source["dialect"] == "postgres"
    assert schema.source["server_version"].split(".")[0] == str(server.major)


def test_pg_columns(pg_live: tuple[Schema, PgServer]) -> None:
    schema, _ = pg_live
    cols = schema.tables["accounts"].columns
    assert list(cols)[:3] == ["id", "email", "name"]  # catalog order
    types = {name: c.type for name, c in cols.items()}
    assert types == {
        "id": "bigint",
        "email": "varchar(20)",
        "name": "varchar(80)",
        "nickname": "text",
        "code": "varchar(20)",
        "DisplayName": "text",
        "mood": "mood",
        "balance": "decimal(10, 2)",
        "tags": "text[]",
        "created_at": "timestamptz",
        "seen_at": "timestamp(3)",
        "flags": "int",
        "score": "double precision",
        "doubled": "int",
    }
    assert not cols["id"].nullable and not cols["email"].nullable and not cols["balance"].nullable
    assert cols["nickname"].nullable and cols["code"].nullable  # CHECKs prove, they do not set NOT NULL
    assert cols["id"].default == "nextval('accounts_id_seq'::regclass)"
    assert cols["name"].default == "'anonymous'::character varying"
    assert cols["mood"].default == "'ok'::mood"
    assert cols["created_at"].default == "now()"
    assert cols["nickname"].default is None
    assert cols["doubled"].default is None  # a generated column's expression is not a default
    invoices = schema.tables["billing.invoices"].columns
    assert invoices["id"].type == "int" and not invoices["id"].nullable and invoices["id"].default is None
    assert invoices["state"].type == "billing.invoice_state"
    assert invoices["state"].default == "'open'::billing.invoice_state"


def test_pg_types_read_like_the_replayed_history(pg_live: tuple[Schema, PgServer]) -> None:
    """Every column type loaded live is the 'same' type as the normalizer's for the same DDL."""
    schema, _ = pg_live
    history = replayed(PG_TABLES, "postgres")
    assert set(history.tables) == set(schema.tables)
    for name, table in history.tables.items():
        live = schema.tables[name]
        if name == "events_2024":  # PARTITION OF: the replay does not copy the parent's columns
            assert list(live.columns) == ["id", "at"]
            continue
        assert list(live.columns) == list(table.columns), name
        for col in table.columns.values():
            verdict = compare_types(live.columns[col.name].type, col.type, "postgres")
            assert verdict.compat == "same", (name, col.name, live.columns[col.name].type, col.type, verdict)
            assert live.columns[col.name].nullable == col.nullable, (name, col.name)
            assert (live.columns[col.name].default is None) == (col.default is None) or col.name in ("id",), (
                name,
                col.name,
            )


def test_pg_type_changes_compare_against_live_types(pg_live: tuple[Schema, PgServer]) -> None:
    schema, _ = pg_live
    cols = schema.tables["accounts"].columns
    wider = compare_types(cols["email"].type, "varchar(40)", "postgres")
    assert (wider.compat, wider.rewrite) == ("widening", "none")
    assert compare_types(cols["email"].type, "text", "postgres").rewrite == "none"
    assert compare_types(cols["email"].type, "varchar(10)", "postgres").compat == "narrowing"
    assert compare_types(cols["balance"].type, "numeric(12,2)", "postgres").rewrite == "none"
    assert compare_types(cols["flags"].type, "bigint", "postgres").rewrite == "rewrite"
    assert compare_types(cols["created_at"].type, "timestamp", "postgres").compat == "incompatible"
    assert compare_types(cols["tags"].type, "text", "postgres").compat == "incompatible"


def test_pg_constraints(pg_live: tuple[Schema, PgServer]) -> None:
    schema, _ = pg_live
    accounts = schema.tables["accounts"]
    by_name = {c.name: c for c in accounts.constraints}
    assert by_name["accounts_pkey"].kind == "primary_key" and by_name["accounts_pkey"].columns == ["id"]
    nickname = by_name["accounts_nickname_not_null"]
    assert (nickname.kind, nickname.validated, nickname.expression) == ("check", True, "(nickname IS NOT NULL)")
    assert nickname.columns == ["nickname"]
    assert by_name["accounts_display_not_null"].expression == '("DisplayName" IS NOT NULL)'
    code = by_name["accounts_code_not_null"]
    assert (code.kind, code.validated) == ("check", False)
    assert accounts.proves_not_null("nickname")
    assert accounts.proves_not_null("DisplayName")
    assert not accounts.proves_not_null("code")  # NOT VALID proves nothing
    assert not accounts.proves_not_null("email")
    invoices = {c.name: c for c in schema.tables["billing.invoices"].constraints}
    assert invoices["invoices_account_id_fkey"].kind == "foreign_key"
    assert invoices["invoices_account_id_fkey"].validated
    assert invoices["invoices_account_fk"].validated is False
    assert invoices["invoices_account_fk"].columns == ["account_id"]
    assert invoices["invoices_total_positive"].expression == "(total >= (0)::numeric)"
    assert invoices["invoices_account_state_key"].kind == "unique"
    assert invoices["invoices_account_state_key"].columns == ["account_id", "state"]


def test_pg_indexes(pg_live: tuple[Schema, PgServer]) -> None:
    schema, _ = pg_live
    assert schema.tables["accounts"].indexes == {
        "accounts_pkey": True,
        "accounts_email_key": True,
        "accounts_created_idx": False,
        "accounts_lower_email_idx": False,
    }
    assert schema.index_table["accounts_created_idx"] == "accounts"
    assert schema.index_table["billing.invoices_account_state_key"] == "billing.invoices"
    assert schema.index_columns["accounts_created_idx"] == ["created_at", "flags"]
    assert schema.index_columns["accounts_email_key"] == ["email"]
    assert schema.index_columns["accounts_lower_email_idx"] == ["lower(email::text)"]
    assert schema.index_columns["billing.invoices_account_state_key"] == ["account_id", "state"]


def test_pg_row_estimates_and_sizes(pg_live: tuple[Schema, PgServer]) -> None:
    schema, _ = pg_live
    accounts = schema.tables["accounts"]
    assert accounts.rows_estimate is not None and 0.9 * ROWS <= accounts.rows_estimate <= 1.1 * ROWS
    assert accounts.size_bytes is not None and accounts.size_bytes > 8192
    assert schema.tables["billing.invoices"].rows_estimate == 200
    events = schema.tables["events"]  # partitioned: the sum of its partitions
    assert events.rows_estimate == schema.tables["events_2024"].rows_estimate == 300
    assert events.size_bytes == schema.tables["events_2024"].size_bytes and (events.size_bytes or 0) > 0


def test_pg_schemas_filter(pg_live: tuple[Schema, PgServer]) -> None:
    _, server = pg_live
    only = load_live_schema(server.dsn, schemas=["billing"])
    assert set(only.tables) == {"billing.invoices"}
    assert only.enums == {"billing.invoice_state": ["open", "paid", "void"]}
    assert only.views == {"billing.totals": None}
    with pytest.raises(LiveSchemaError) as info:
        load_live_schema(server.dsn, schemas=["billing", "nope"])
    assert info.value.kind == "database" and "'nope'" in str(info.value)


def test_pg_loader_leaves_no_session_behind(pg_live: tuple[Schema, PgServer]) -> None:
    _, server = pg_live
    load_live_schema(server.dsn)
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        for _ in range(50):
            row = conn.execute(  # this module's own database: runner tests elsewhere use the same name
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'bgmigrate' "
                "AND datname = current_database()"
            ).fetchone()
            if row is not None and row[0] == 0:
                break
            time.sleep(0.02)
        assert row is not None and row[0] == 0


def test_pg_lint_engine_on_live_schema(pg_live: tuple[Schema, PgServer]) -> None:
    schema, _ = pg_live
    proven = lint(schema, "ALTER TABLE accounts ALTER COLUMN nickname SET NOT NULL;", "postgres", "15")
    assert (proven.phase, proven.lock, proven.rewrite) == ("contract", "ACCESS EXCLUSIVE", "none")
    quoted = lint(schema, 'ALTER TABLE accounts ALTER COLUMN "DisplayName" SET NOT NULL;', "postgres", "15")
    assert quoted.rewrite == "none"
    not_valid = lint(schema, "ALTER TABLE accounts ALTER COLUMN code SET NOT NULL;", "postgres", "15")
    assert (not_valid.phase, not_valid.rewrite) == ("contract", "scan")
    already = lint(schema, "ALTER TABLE accounts ALTER COLUMN email SET NOT NULL;", "postgres", "15")
    assert already.phase == "neutral"
    widen = lint(schema, "ALTER TABLE accounts ALTER COLUMN email TYPE varchar(40);", "postgres", "15")
    assert (widen.phase, widen.rewrite) == ("expand", "none")
    narrow = lint(schema, "ALTER TABLE accounts ALTER COLUMN email TYPE varchar(10);", "postgres", "15")
    assert (narrow.phase, narrow.rewrite) == ("contract", "rewrite")
    assert lint(schema, "ALTER TABLE accounts ALTER COLUMN nickname DROP DEFAULT;", "postgres", "15").phase == (
        "neutral"
    )
    assert lint(schema, "ALTER TABLE accounts ALTER COLUMN name DROP DEFAULT;", "postgres", "15").phase == "contract"
    validate = lint(schema, "ALTER TABLE billing.invoices VALIDATE CONSTRAINT invoices_account_fk;", "postgres", "15")
    assert validate.phase == "expand"
    drop = lint(schema, "DROP INDEX accounts_created_idx;", "postgres", "15")
    assert drop.phase == "contract" and drop.changes[0]["table"] == "accounts"
    # the schema handed in is not changed by linting a copy
    assert schema.tables["accounts"].columns["email"].type == "varchar(20)"


def test_pg_lock_held_by_another_session_times_out(pg_live: tuple[Schema, PgServer]) -> None:
    _, server = pg_live
    with psycopg.connect(server.dsn) as holder:
        holder.execute("LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE")
        started = time.perf_counter()
        with pytest.raises(LiveSchemaError) as info:
            load_live_schema(server.dsn, timeout_s=0.5)
        assert time.perf_counter() - started < 3
        holder.rollback()
    assert info.value.kind == "timeout"
    assert "timed out after 0.5 s" in str(info.value)


# -- bad input ---------------------------------------------------------------------------------------


def _pg_url(server: PgServer, **override: Any) -> str:
    """``server``'s connection as a URL with ``override`` (user, password, port, dbname)."""
    from psycopg.conninfo import conninfo_to_dict

    info = {k: str(v) for k, v in conninfo_to_dict(server.dsn).items() if v is not None}
    info.update({k: str(v) for k, v in override.items()})
    user = quote(info.get("user", "postgres"), safe="")
    password = f":{quote(info['password'], safe='')}" if info.get("password") else ""
    host = info.get("host", "127.0.0.1")
    query = ""
    if host.startswith("/"):  # the embedded server listens on a socket directory
        query = f"?host={quote(host, safe='')}"
        host = ""
    port = f":{info['port']}" if info.get("port") else ""
    return f"postgresql://{user}{password}@{host}{port}/{quote(info.get('dbname', 'postgres'), safe='')}{query}"


def test_pg_unknown_role_with_a_password(pg_live: tuple[Schema, PgServer]) -> None:
    _, server = pg_live
    dsn = _pg_url(server, user="bgm_no_such_role", password=FAKE_PASSWORD)
    with pytest.raises(LiveSchemaError) as info:
        load_live_schema(dsn, timeout_s=5)
    assert info.value.kind == "auth"
    assert str(info.value).startswith("cannot connect to postgresql://bgm_no_such_role:***@")
    assert_no_secret(info.value)


def test_pg_unreachable_port() -> None:
    dsn = f"postgresql://postgres:{quote(FAKE_PASSWORD, safe='')}@127.0.0.1:{free_port()}/postgres"
    with pytest.raises(LiveSchemaError) as info:
        load_live_schema(dsn, timeout_s=3)
    assert info.value.kind == "connect"
    assert_no_secret(info.value)


def test_pg_unknown_database(pg_live: tuple[Schema, PgServer]) -> None:
    _, server = pg_live
    dsn = _pg_url(server, password=FAKE_PASSWORD, dbname="bgm_no_such_db")
    with pytest.raises(LiveSchemaError) as info:
        load_live_schema(dsn, timeout_s=5)
    assert info.value.kind in ("database", "auth")  # "auth" where the server checks the password first
    assert_no_secret(info.value)


def test_pg_libpq_string_with_a_password() -> None:
    dsn = f"host=127.0.0.1 port={free_port()} user=postgres password='{FAKE_PASSWORD}' dbname=postgres"
    with pytest.raises(LiveSchemaError) as info:
        load_live_schema(dsn, timeout_s=3)
    assert "password=***" in str(info.value)
    assert_no_secret(info.value)


def test_pg_server_that_never_answers(blackhole: int) -> None:
    dsn = f"postgresql://postgres:{quote(FAKE_PASSWORD, safe='')}@127.0.0.1:{blackhole}/postgres"
    started = time.perf_counter()
    with pytest.raises(LiveSchemaError) as info:
        load_live_schema(dsn, timeout_s=1)  # libpq waits at least 2 s
    assert time.perf_counter() - started < 5
    assert info.value.kind == "timeout"
    assert_no_secret(info.value)


def test_invalid_dsn_is_a_live_schema_error() -> None:
    with pytest.raises(LiveSchemaError) as info:
        load_live_schema(f"sqlite://user:{FAKE_PASSWORD}@/x")
    assert info.value.kind == "dsn"
    assert_no_secret(info.value)
    with pytest.raises(LiveSchemaError) as info:
        load_live_schema(f"postgresql://user:{FAKE_PASSWORD}")  # no '@': the password would be the port
    assert_no_secret(info.value)


@pytest.mark.parametrize(
    ("dsn", "module"),
    [("postgresql://app:pw@db/app", "psycopg"), ("mysql://app:pw@db/app", "pymysql")],
)
def test_missing_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch, dsn: str, module: str) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # import raises ImportError
    with pytest.raises(LiveSchemaError) as info:
        load_live_schema(dsn)
    assert info.value.kind == "driver"
    assert "pip install 'bgmigrate[live]'" in str(info.value)
    assert_no_secret(info.value, "pw@db")


# ---- MySQL / MariaDB ---------------------------------------------------------------------------------

MYSQL_TABLES = """
CREATE TABLE accounts (
  id bigint unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY,
  email varchar(20) NOT NULL,
  name varchar(80) DEFAULT 'anonymous',
  note varchar(40) DEFAULT 'it''s',
  state enum('active','closed') NOT NULL DEFAULT 'active',
  balance decimal(10,2) NOT NULL DEFAULT 0.00,
  flags int DEFAULT 0,
  verified tinyint(1) NOT NULL DEFAULT 0,
  created_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
  profile json,
  bio text,
  UNIQUE KEY accounts_email_uq (email),
  KEY accounts_created_idx (created_at, flags),
  CONSTRAINT accounts_balance_positive CHECK (balance >= 0)
);
CREATE TABLE orders (
  id int NOT NULL PRIMARY KEY,
  account_id bigint unsigned NOT NULL,
  total decimal(12,2) NOT NULL,
  CONSTRAINT orders_account_fk FOREIGN KEY (account_id) REFERENCES accounts (id)
);
CREATE VIEW active_accounts AS SELECT id, email FROM accounts WHERE state = 'active';
"""


def mysql_url(server: MySqlServer, *, password: str | None = None, port: int | None = None, db: str = "") -> str:
    secret = server.password if password is None else password
    auth = quote(server.user, safe="") + (f":{quote(secret, safe='')}" if secret else "")
    return f"mysql://{auth}@{server.host}:{port or server.port}/{db or server.database or ''}"


@pytest.fixture(scope="module")
def mysql_live(mysql_db: MySqlServer) -> tuple[Schema, MySqlServer]:
    conn = mysql_db.connect()
    try:
        with conn.cursor() as cur:
            for statement in MYSQL_TABLES.split(";"):
                if statement.strip():
                    cur.execute(statement)
            cur.executemany("INSERT INTO accounts (email) VALUES (%s)", [(f"u{i}",) for i in range(ROWS)])
            cur.executemany("INSERT INTO orders VALUES (%s, %s, %s)", [(i, i, i) for i in range(1, 101)])
            cur.execute("ANALYZE TABLE accounts, orders")
            cur.fetchall()
    finally:
        conn.close()
    return load_live_schema(mysql_url(mysql_db)), mysql_db


def test_mysql_tables_views_and_source(mysql_live: tuple[Schema, MySqlServer]) -> None:
    schema, server = mysql_live
    assert set(schema.tables) == {"accounts", "orders"}  # the DSN's database: unqualified
    assert schema.views == {"active_accounts": None}
    assert schema.enums == {}
    assert schema.source is not None and schema.source["dialect"] == "mysql"
    assert schema.source["server"] == ("MariaDB" if server.is_mariadb else "MySQL")
    for table in schema.tables.values():
        assert table.known and table.created_in is None


def test_mysql_columns_match_the_replayed_history(mysql_live: tuple[Schema, MySqlServer]) -> None:
    """Types, nullability and defaults read exactly as the normalizer writes them for the same DDL
    (the classifier compares MySQL defaults as text: MODIFY that drops a default is a contract)."""
    schema, _ = mysql_live
    history = replayed(MYSQL_TABLES, "mysql")
    for name in ("accounts", "orders"):
        live, replay = schema.tables[name].columns, history.tables[name].columns
        assert list(live) == list(replay)
        for col in replay.values():
            got = live[col.name]
            assert (got.type, got.nullable, got.default) == (col.type, col.nullable, col.default), col.name
    cols = schema.tables["accounts"].columns
    assert cols["email"].type == "varchar(20)"
    assert cols["id"].type == "bigint unsigned"
    assert cols["flags"].type == "int"
    assert cols["verified"].type == "tinyint(1)"
    assert cols["state"].type == "enum('active', 'closed')"
    assert cols["balance"].type == "decimal(10, 2)"
    assert cols["profile"].type == "json"  # MariaDB: LONGTEXT + CHECK (json_valid(profile))
    assert cols["note"].default == "'it''s'"
    assert cols["created_at"].default == "CURRENT_TIMESTAMP()"
    assert cols["bio"].default is None and cols["bio"].nullable
    wider = compare_types(cols["email"].type, "varchar(40)", "mysql")
    assert (wider.compat, wider.rewrite) == ("widening", "inplace")
    assert compare_types(cols["state"].type, "enum('active','closed','frozen')", "mysql").rewrite == "instant"


def test_mysql_constraints_and_indexes(mysql_live: tuple[Schema, MySqlServer]) -> None:
    schema, _ = mysql_live
    accounts = schema.tables["accounts"]
    kinds = {(c.name, c.kind) for c in accounts.constraints}
    assert {(None, "primary_key"), ("accounts_email_uq", "unique"), ("accounts_balance_positive", "check")} <= kinds
    check = accounts.constraint("accounts_balance_positive")
    assert check is not None and check.validated and "balance" in (check.expression or "")
    assert accounts.indexes == {"accounts_email_uq": True, "accounts_created_idx": False}
    assert schema.index_columns["accounts_created_idx"] == ["created_at", "flags"]
    assert schema.index_table["accounts_email_uq"] == "accounts"
    orders = schema.tables["orders"]
    fk = orders.constraint("orders_account_fk")
    assert fk is not None and fk.kind == "foreign_key" and fk.columns == ["account_id"] and fk.validated
    assert not orders.columns["id"].nullable


def test_mysql_row_estimates_and_sizes(mysql_live: tuple[Schema, MySqlServer]) -> None:
    schema, _ = mysql_live
    accounts = schema.tables["accounts"]
    assert accounts.rows_estimate is not None and 0.5 * ROWS <= accounts.rows_estimate <= 2 * ROWS
    assert accounts.size_bytes is not None and accounts.size_bytes > 0
    assert (schema.tables["orders"].size_bytes or 0) > 0


def test_mysql_lint_engine_on_live_schema(mysql_live: tuple[Schema, MySqlServer]) -> None:
    schema, _ = mysql_live
    keep = lint(schema, "ALTER TABLE accounts MODIFY name varchar(100) DEFAULT 'anonymous';", "mysql", "8.0")
    assert keep.phase == "expand"
    drops = lint(schema, "ALTER TABLE accounts MODIFY name varchar(100);", "mysql", "8.0")
    assert drops.phase == "contract"  # MODIFY without DEFAULT drops the live default
    same = lint(schema, "ALTER TABLE accounts MODIFY email varchar(20) NOT NULL;", "mysql", "8.0")
    assert same.phase == "neutral"
    tighten = lint(schema, "ALTER TABLE accounts MODIFY bio text NOT NULL;", "mysql", "8.0")
    assert tighten.phase == "contract"


def test_mysql_schemas_are_databases(mysql_live: tuple[Schema, MySqlServer]) -> None:
    _, server = mysql_live
    with pytest.raises(LiveSchemaError) as info:
        load_live_schema(mysql_url(server), schemas=[server.database or "", "bgm_no_such_db"])
    assert info.value.kind == "database"
    with pytest.raises(LiveSchemaError) as info:
        load_live_schema(mysql_url(server, db="").rsplit("/", 1)[0])
    assert "names no database" in str(info.value)


def test_mysql_wrong_password(mysql_live: tuple[Schema, MySqlServer]) -> None:
    _, server = mysql_live
    with pytest.raises(LiveSchemaError) as info:
        load_live_schema(mysql_url(server, password=FAKE_PASSWORD), timeout_s=5)
    assert info.value.kind == "auth"
    assert "Access denied" in str(info.value) and ":***@" in str(info.value)
    assert_no_secret(info.value)


def test_mysql_unreachable_port(mysql_live: tuple[Schema, MySqlServer]) -> None:
    _, server = mysql_live
    with pytest.raises(LiveSchemaError) as info:
        load_live_schema(mysql_url(server, password=FAKE_PASSWORD, port=free_port()), timeout_s=3)
    assert info.value.kind == "connect"
    assert_no_secret(info.value)


def test_mysql_unknown_database(mysql_live: tuple[Schema, MySqlServer]) -> None:
    _, server = mysql_live
    with pytest.raises(LiveSchemaError) as info:
        load_live_schema(mysql_url(server, db="bgm_no_such_db"), timeout_s=5)
    assert info.value.kind == "database"
    assert "bgm_no_such_db" in str(info.value)
    with pytest.raises(LiveSchemaError) as info:
        load_live_schema(mysql_url(server, password=FAKE_PASSWORD, db="bgm_no_such_db"), timeout_s=5)
    assert_no_secret(info.value)


def test_mysql_server_that_never_answers(blackhole: int, mysql_live: tuple[Schema, MySqlServer]) -> None:
    _, server = mysql_live
    started = time.perf_counter()
    with pytest.raises(LiveSchemaError) as info:
        load_live_schema(mysql_url(server, password=FAKE_PASSWORD, port=blackhole), timeout_s=0.5)
    assert time.perf_counter() - started < 3
    assert info.value.kind == "timeout"
    assert_no_secret(info.value)


# ---- the loader's pure helpers -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("catalog", "dialect", "expected"),
    [
        ("character varying(20)", "postgres", "varchar(20)"),
        ("character varying", "postgres", "varchar"),
        ("timestamp with time zone", "postgres", "timestamptz"),
        ("timestamp(3) with time zone", "postgres", "timestamptz(3)"),
        ("time(3) without time zone", "postgres", "time(3)"),
        ("numeric(10,2)", "postgres", "decimal(10, 2)"),
        ("text[]", "postgres", "text[]"),
        ("character varying(10)[]", "postgres", "varchar(10)[]"),
        ("integer", "postgres", "int"),
        ("double precision", "postgres", "double precision"),
        ("bit varying(5)", "postgres", "bit varying(5)"),  # sqlglot would say 'bit': the meaning wins
        ("interval(3)", "postgres", "interval(3)"),
        ("billing.invoice_state", "postgres", "billing.invoice_state"),
        ("int(11)", "mysql", "int"),
        ("bigint(20) unsigned", "mysql", "bigint unsigned"),
        ("int(10) unsigned zerofill", "mysql", "int unsigned"),
        ("tinyint(1)", "mysql", "tinyint(1)"),
        ("decimal(10,2)", "mysql", "decimal(10, 2)"),
        ("enum('a','b')", "mysql", "enum('a', 'b')"),
        ("float unsigned", "mysql", "float unsigned"),
    ],
)
def test_canonical_type(catalog: str, dialect: str, expected: str) -> None:
    assert canonical_type(catalog, dialect) == expected
    if dialect == "postgres":
        assert compare_types(canonical_type(catalog, dialect), catalog, dialect).compat == "same"


@pytest.mark.parametrize(
    ("row", "quoted", "expected"),
    [
        ({"COLUMN_DEFAULT": "x", "DATA_TYPE": "varchar", "EXTRA": ""}, False, "'x'"),
        ({"COLUMN_DEFAULT": "it's", "DATA_TYPE": "varchar", "EXTRA": ""}, False, "'it''s'"),
        ({"COLUMN_DEFAULT": "0", "DATA_TYPE": "int", "EXTRA": ""}, False, "0"),
        ({"COLUMN_DEFAULT": "1.50", "DATA_TYPE": "decimal", "EXTRA": ""}, False, "1.50"),
        (
            {"COLUMN_DEFAULT": "CURRENT_TIMESTAMP", "DATA_TYPE": "timestamp", "EXTRA": "DEFAULT_GENERATED"},
            False,
            "CURRENT_TIMESTAMP()",
        ),
        ({"COLUMN_DEFAULT": "uuid()", "DATA_TYPE": "char", "EXTRA": "DEFAULT_GENERATED"}, False, "(UUID())"),
        ({"COLUMN_DEFAULT": None, "DATA_TYPE": "int", "EXTRA": ""}, False, None),
        ({"COLUMN_DEFAULT": None, "DATA_TYPE": "int", "EXTRA": "VIRTUAL GENERATED"}, False, None),
        ({"COLUMN_DEFAULT": "'x'", "DATA_TYPE": "varchar", "EXTRA": ""}, True, "'x'"),
        ({"COLUMN_DEFAULT": "NULL", "DATA_TYPE": "varchar", "EXTRA": ""}, True, None),
        ({"COLUMN_DEFAULT": "'NULL'", "DATA_TYPE": "varchar", "EXTRA": ""}, True, "'NULL'"),
        ({"COLUMN_DEFAULT": "current_timestamp()", "DATA_TYPE": "timestamp", "EXTRA": ""}, True, "CURRENT_TIMESTAMP()"),
    ],
)
def test_mysql_default_text(row: dict[str, Any], quoted: bool, expected: str | None) -> None:
    """MySQL 8 stores bare values (quoted=False), MariaDB 10.2.7+ SQL text (quoted=True)."""
    from migrator.schema.live import _mysql_default

    assert _mysql_default(row, quoted) == expected


def test_cli_lints_against_the_live_schema(pg_live: tuple[Schema, PgServer], tmp_path: Path) -> None:
    """`bgmigrate lint --schema-from DSN`: the live schema decides, end to end through the CLI."""
    import json
    import os

    from typer.testing import CliRunner

    from migrator.cli import app

    _, server = pg_live
    migration = tmp_path / "0001_release.sql"
    migration.write_text(
        "SET lock_timeout = '1s';\n"
        "ALTER TABLE accounts ALTER COLUMN nickname SET NOT NULL;\n"  # proven by a validated CHECK: no scan
        "ALTER TABLE accounts ALTER COLUMN code SET NOT NULL;\n"  # its CHECK is NOT VALID: full scan
    )
    old = Path.cwd()
    os.chdir(tmp_path)
    try:
        res = CliRunner().invoke(
            app, ["lint", "--format", "json", "--schema-from", server.dsn, str(migration)], catch_exceptions=False
        )
        bad = CliRunner().invoke(
            app, ["lint", "--dialect", "mysql", "--schema-from", server.dsn, str(migration)], catch_exceptions=False
        )
    finally:
        os.chdir(old)
    data = json.loads(res.output)
    nickname, code = (s for s in data["statements"] if s["operation"] == "set_not_null")
    assert nickname["rewrite"] == "none" and code["rewrite"] == "scan"
    scans = [f for f in data["findings"] if f["rule"] == "adding-not-nullable-field"]
    assert [f["line"] for f in scans] == [3]
    assert bad.exit_code == 2 and "is a postgres database but the dialect is mysql" in bad.output
