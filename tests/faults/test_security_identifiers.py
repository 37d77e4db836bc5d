"""Identifiers in the SQL bgmigrate generates are quoted: a release on tables and columns whose names hold
quotes, spaces, capitals, non-ASCII letters and reserved words runs through every recipe (rename with
its sync trigger and batched backfill keyed on a quoted primary key, change of type, concurrent and
unique index builds, foreign key, CHECK, SET NOT NULL, table rename, dropped column), through a failed
index build and a kill, and through abort; on PostgreSQL and on MariaDB. The state side: the state
schema is validated and quoted, and release names, actors and errors are bound parameters, stored
verbatim (a name made to break out of a literal included)."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import mysql_faults as my
import pytest
from faults_harness import KILL_ENV, mark_gates, pg_dump_schema, run_ok
from runner_harness import Release, bgm, pg_exec, pg_rows

PG_BASE = """\
CREATE TABLE "user" ("ID" bigint PRIMARY KEY, "Email" text, "User Name" text);
CREATE TABLE "Order Items" ("Order ID" bigint PRIMARY KEY, "select" text NOT NULL, "we""ird" bigint, "naïve" text,
  "drop me" text);
CREATE TABLE "naïve ünïcode" (id bigint PRIMARY KEY, "ça" text);
CREATE TABLE "Old Name" ("Key" bigint PRIMARY KEY, "v" text);
"""
PG_RELEASE = '''\
ALTER TABLE "Order Items" RENAME COLUMN "select" TO "from";
ALTER TABLE "Order Items" ADD COLUMN "Group" text;
CREATE INDEX "Idx ""quoted""" ON "Order Items" ("we""ird");
ALTER TABLE "Order Items" ADD CONSTRAINT "FK ""user""" FOREIGN KEY ("we""ird") REFERENCES "user" ("ID");
ALTER TABLE "user" ALTER COLUMN "User Name" SET NOT NULL;
ALTER TABLE "user" ALTER COLUMN "Email" TYPE varchar(300);
ALTER TABLE "Order Items" ADD CONSTRAINT "chk ""x""" CHECK ("Order ID" > 0);
ALTER TABLE "naïve ünïcode" ADD CONSTRAINT "uq ça" UNIQUE ("ça");
ALTER TABLE "Old Name" RENAME TO "Nouveau Nom ""é""";
ALTER TABLE "Order Items" DROP COLUMN "drop me";
'''
SEED = """\
INSERT INTO "user" SELECT g, 'e' || g || '@x', 'name ' || g FROM generate_series(1, 50) g;
INSERT INTO "Order Items" SELECT g, 's' || chr(39) || g, 1 + g % 50, 'n' || g, 'd' || g FROM generate_series(1, 700) g;
INSERT INTO "naïve ünïcode" SELECT g, 'ç' || g FROM generate_series(1, 100) g;
INSERT INTO "Old Name" SELECT g, 'v' || g FROM generate_series(1, 10) g;
"""
HOSTILE = 'r\'); DROP TABLE "user"; --\u00e9 "x"'  # a release name made to break out of a SQL literal


def _columns(dsn: str, table: str) -> list[tuple[str, str, bool]]:
    return pg_rows(
        dsn,
        "SELECT attname, format_type(atttypid, atttypmod), attnotnull FROM pg_attribute "
        "WHERE attrelid = to_regclass(quote_ident(%s)) AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        (table,),
    )


@pytest.fixture
def weird(fresh_pg: str, tmp_path: Path) -> tuple[str, Release]:
    rel = Release.write(tmp_path / "release", PG_BASE, PG_RELEASE)
    pg_exec(fresh_pg, PG_BASE + SEED)
    return fresh_pg, rel


def test_quoted_identifiers_through_every_recipe_on_postgres(weird: tuple[str, Release]) -> None:
    dsn, rel = weird
    plan = json.loads(rel.plan.read_text())
    recipes = {s["recipe"] for s in plan["steps"] if s["recipe"]}
    assert {"rename_column", "change_column_type", "create_index", "add_foreign_key", "set_not_null", "add_check",
            "add_unique", "rename_table"} <= recipes  # fmt: skip
    before = pg_rows(dsn, 'SELECT "Order ID", "select" FROM "Order Items" ORDER BY 1')
    emails = pg_rows(dsn, 'SELECT "ID", "Email" FROM "user" ORDER BY 1')
    # a duplicate makes the unique build fail: the INVALID index "uq ça" is left, found and dropped by name
    pg_exec(dsn, """UPDATE "naïve ünïcode" SET "ça" = 'twin' WHERE id IN (3, 4)""")
    expand = ("expand", "--plan", str(rel.plan), "--dsn", dsn, "--batch-size", "50", "--release", HOSTILE)
    failed = bgm(*expand)
    assert failed.returncode == 1 and "could not create unique index" in failed.stderr, failed.stderr
    pg_exec(dsn, """UPDATE "naïve ünïcode" SET "ça" = 'ç4' WHERE id = 4""")
    killed = bgm(*expand, env={KILL_ENV: "batch:3"})  # inside the backfill keyed on "Order ID"
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    done = run_ok(*expand)
    assert 'dropping the INVALID index "uq ça" left by a failed build' in failed.stderr + killed.stderr + done.stderr
    mark_gates(dsn)
    run_ok("contract", "--dsn", dsn)

    assert _columns(dsn, "Order Items") == [
        ("Order ID", "bigint", True), ('we"ird', "bigint", False), ("naïve", "text", False),
        ("from", "text", True), ("Group", "text", False),
    ]  # fmt: skip
    assert _columns(dsn, "user") == [("ID", "bigint", True), ("User Name", "text", True),
                                     ("Email", "character varying(300)", False)]  # fmt: skip
    assert pg_rows(dsn, 'SELECT "Order ID", "from" FROM "Order Items" ORDER BY 1') == before
    assert pg_rows(dsn, 'SELECT "ID", "Email" FROM "user" ORDER BY 1') == emails
    assert pg_rows(dsn, 'SELECT count(*) FROM "Nouveau Nom ""é"""') == [(10,)]
    assert pg_rows(dsn, """SELECT to_regclass('"Old Name"')""") == [(None,)]  # the view blue read is gone
    constraints = dict(
        pg_rows(
            dsn,
            "SELECT conname, convalidated FROM pg_constraint "
            "WHERE contype IN ('f', 'c', 'u') AND connamespace = 'public'::regnamespace",
        )
    )
    assert constraints == {'FK "user"': True, 'chk "x"': True, "uq ça": True}
    index = "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)"
    assert pg_rows(dsn, index, ('"Idx ""quoted"""',)) == [(True,)]
    assert pg_rows(dsn, "SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal") == [(0,)]
    assert pg_rows(dsn, "SELECT count(*) FROM pg_proc WHERE proname LIKE 'bgm%%'") == [(0,)]
    assert pg_rows(dsn, "SELECT name, status FROM bgmigrate.releases") == [(HOSTILE, "contracted")]


def test_quoted_identifiers_through_abort_on_postgres(weird: tuple[str, Release], pg_server, tmp_path: Path) -> None:
    dsn, rel = weird
    pristine = pg_dump_schema(dsn)
    run_ok("expand", "--plan", str(rel.plan), "--dsn", dsn)
    assert pg_dump_schema(dsn) != pristine
    run_ok("abort", "--dsn", dsn)
    assert pg_dump_schema(dsn) == pristine  # every expand step undone by its quoted abort SQL


def test_the_state_schema_is_validated_and_quoted(weird: tuple[str, Release]) -> None:
    dsn, rel = weird
    for bad in ('x"; DROP TABLE "user"; --', "bgm state", "1abc", "é"):
        done = bgm("expand", "--plan", str(rel.plan), "--dsn", dsn, "--state-schema", bad)
        assert done.returncode == 2, (bad, done.stderr)
        assert "is not a plain identifier" in done.stderr and "Traceback" not in done.stderr
    assert pg_rows(dsn, "SELECT count(*) FROM information_schema.schemata WHERE schema_name LIKE 'bgm%%'") == [(0,)]
    run_ok("expand", "--plan", str(rel.plan), "--dsn", dsn, "--state-schema", "Deploy_State")  # capitals kept
    assert pg_rows(dsn, 'SELECT status FROM "Deploy_State".releases') == [("expanded",)]
    assert pg_rows(dsn, "SELECT to_regclass('deploy_state.releases')") == [(None,)]


def test_state_writes_use_bound_parameters(weird: tuple[str, Release], monkeypatch) -> None:
    """Every INSERT, UPDATE and DELETE on the state tables carries its values as parameters: no value
    (release name, actor, error text, plan) is ever spliced into the SQL text; they round-trip verbatim."""
    from migrator.plan.model import Plan
    from migrator.run.db import PostgresDatabase, connect
    from migrator.run.runner import Runner, RunOptions

    dsn, rel = weird
    writes: list[tuple[str, object]] = []
    original = PostgresDatabase.execute

    def spy(self, sql: str, params=None):  # type: ignore[no-untyped-def]
        if '"bgmigrate".' in sql and sql.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
            writes.append((sql, params))
        return original(self, sql, params)

    monkeypatch.setattr(PostgresDatabase, "execute", spy)
    actor = 'o\'neil "ops"; DROP TABLE "user"; -- é'
    plan = Plan.from_json(rel.plan.read_text())
    db = connect(dsn)
    try:
        runner = Runner(db, RunOptions(actor=actor, force=True, reason="it's \"urgent\"'); --"))
        pg_exec(dsn, """UPDATE "naïve ünïcode" SET "ça" = 'twin' WHERE id IN (3, 4)""")  # a step fails
        with pytest.raises(Exception, match="could not create unique index"):
            runner.expand(plan, HOSTILE)
        pg_exec(dsn, """UPDATE "naïve ünïcode" SET "ça" = 'ç4' WHERE id = 4""")
        runner.expand(plan, HOSTILE)
        runner.mark("switched", HOSTILE)
        runner.contract(HOSTILE)  # forced past the decommission gate, with the reason recorded
    finally:
        db.close()
    assert len(writes) > 50
    values = [HOSTILE, actor, "it's", "DROP TABLE", "could not create unique index", plan.sha256]
    for sql, params in writes:
        assert params, sql
        assert "'" not in sql.replace("'\\t'", ""), sql  # no literal at all in a state write
        assert not any(v in sql for v in values), sql
    assert pg_rows(dsn, "SELECT DISTINCT created_by FROM bgmigrate.releases") == [(actor,)]
    assert pg_rows(dsn, "SELECT name, status FROM bgmigrate.releases") == [(HOSTILE, "contracted")]
    forced = pg_rows(dsn, "SELECT detail FROM bgmigrate.events WHERE kind = 'forced'")
    assert json.loads(forced[0][0])["reason"] == "it's \"urgent\"'); --"
    failed = pg_rows(dsn, "SELECT detail FROM bgmigrate.events WHERE kind = 'step-failed'")
    assert 'could not create unique index "uq ça"' in json.loads(failed[0][0])["error"]
    assert pg_rows(dsn, 'SELECT count(*) FROM "user"') == [(50,)]


MY_BASE = """\
CREATE TABLE `Order Items` (`Order ID` bigint PRIMARY KEY, `select` varchar(50) NOT NULL, `we``ird` bigint,
  `naïve` varchar(20), `drop me` text);
CREATE TABLE `user` (`ID` bigint PRIMARY KEY, `Email` varchar(100));
"""
MY_RELEASE = """\
ALTER TABLE `Order Items` RENAME COLUMN `select` TO `from`;
ALTER TABLE `Order Items` ADD COLUMN `Group` varchar(20);
CREATE INDEX `Idx "quoted"` ON `Order Items` (`we``ird`);
ALTER TABLE `user` MODIFY `Email` varchar(100) NOT NULL;
ALTER TABLE `Order Items` DROP COLUMN `drop me`;
"""


def test_quoted_identifiers_on_mariadb(mysql_server, tmp_path: Path) -> None:
    rel = Release.write(tmp_path / "release", MY_BASE, MY_RELEASE, dialect="mysql")
    with my.my_database(mysql_server) as (server, dsn):
        my.execute(server, *[s for s in MY_BASE.split(";") if s.strip()])
        rows = ", ".join(f"({i}, 's''{i}', {i % 7}, 'n{i}', 'd{i}')" for i in range(1, 301))
        my.execute(server, f"INSERT INTO `Order Items` VALUES {rows}",
                   "INSERT INTO `user` VALUES " + ", ".join(f"({i}, 'e{i}@x')" for i in range(1, 21)))  # fmt: skip
        before = my.rows(server, "SELECT `Order ID`, `select` FROM `Order Items` ORDER BY 1")
        expand = ("expand", "--plan", str(rel.plan), "--dsn", dsn, "--batch-size", "40", "--release", HOSTILE)
        assert bgm(*expand, env={KILL_ENV: "batch:2"}).returncode == -signal.SIGKILL
        run_ok(*expand)
        mark_gates(dsn)
        run_ok("contract", "--dsn", dsn)
        columns = my.rows(
            server,
            "SELECT COLUMN_NAME, IS_NULLABLE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() "
            "AND TABLE_NAME = 'Order Items' ORDER BY ORDINAL_POSITION",
        )
        assert columns == [("Order ID", "NO"), ("we`ird", "YES"), ("naïve", "YES"), ("from", "NO"), ("Group", "YES")]
        assert my.rows(server, "SELECT `Order ID`, `from` FROM `Order Items` ORDER BY 1") == before
        assert my.rows(server, "SELECT INDEX_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() "
                               "AND INDEX_NAME <> 'PRIMARY'") == [('Idx "quoted"',)]  # fmt: skip
        assert my.rows(server, "SELECT IS_NULLABLE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() "
                               "AND TABLE_NAME = 'user' AND COLUMN_NAME = 'Email'") == [("NO",)]  # fmt: skip
        assert my.rows(server, f"SELECT name, status FROM `bgmigrate_{server.database}`.releases") == [
            (HOSTILE, "contracted")
        ]
