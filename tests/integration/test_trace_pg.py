"""``bgmigrate trace`` on a real PostgreSQL: the locks each statement really takes, rewrites, and the
``trace-mismatch`` cross-check against the rule table (migrator/facts/locks.py).

One release of 47 statements of 40 kinds is traced once (through the CLI, with ``--dsn`` pointing at
this module's database, so the scratch database comes from ``pg_dump --schema-only``, and 20 sample
rows per table); each kind's observed lock mode is checked against the documented one, which is also
what bgmigrate's static classification says (one pinned exception: ATTACH PARTITION). The database
behind ``--dsn`` is compared before and after: schema, data and pg_dump output. The per-relation
observation mechanics are those of ``test_lock_facts_pg.py`` (which proves every row of the table on
its own); this file proves the command built on them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
import pytest
from runner_harness import bgm, pg_data, pg_exec, pg_rows, pg_schema

from migrator.sources.model import SourceFile
from migrator.trace.compare import RULE, compare
from migrator.trace.observe import Tracer
from migrator.trace.scratch import scratch_database
from migrator.trace.tracing import TracedItem, TraceReport

if TYPE_CHECKING:
    from db_servers import PgServer

AEL, EXCL, SREL, SHARE, SUEL, REL, RSL, ASL = (
    "ACCESS EXCLUSIVE",
    "EXCLUSIVE",
    "SHARE ROW EXCLUSIVE",
    "SHARE",
    "SHARE UPDATE EXCLUSIVE",
    "ROW EXCLUSIVE",
    "ROW SHARE",
    "ACCESS SHARE",
)

BASE = """\
CREATE TABLE parent (id int PRIMARY KEY, name text);
CREATE TABLE t (id int PRIMARY KEY, a int, s varchar(10), v varchar, n int, nn int NOT NULL, d int DEFAULT 1,
  ck int, parent_id int, CONSTRAINT t_ck_not_null CHECK (ck IS NOT NULL));
CREATE INDEX t_a_idx ON t (a);
CREATE TABLE u (id int PRIMARY KEY, note text);
CREATE TABLE gone (id int);
CREATE VIEW v_t AS SELECT id FROM t;
CREATE MATERIALIZED VIEW mv AS SELECT id, n FROM t;
CREATE UNIQUE INDEX mv_id ON mv (id);
CREATE TYPE mood AS ENUM ('happy', 'sad');
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER t_touch BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION touch();
CREATE TABLE pt (id int, k int) PARTITION BY RANGE (k);
CREATE TABLE pt_1 PARTITION OF pt FOR VALUES FROM (1000) TO (2000);
CREATE TABLE pt_2 (id int, k int);
"""
REAL_ROWS = "INSERT INTO parent SELECT g, 'real ' || g FROM generate_series(1, 5) g;"


@dataclass(frozen=True)
class Kind:
    """A statement kind, and the lock mode PostgreSQL documents for it on each relation named."""

    id: str
    sql: str
    locks: dict[str, str]
    effect: str | None = None  # rewrite | scan | none (None: not asserted)


KINDS: list[Kind] = [
    Kind("add-column", "ALTER TABLE t ADD COLUMN x int", {"t": AEL}, "none"),
    Kind("add-column-constant-default", "ALTER TABLE t ADD COLUMN x2 int DEFAULT 5", {"t": AEL}, "none"),
    Kind("add-column-volatile-default", "ALTER TABLE t ADD COLUMN r float8 DEFAULT random()", {"t": AEL}, "rewrite"),
    Kind("alter-type-int-to-bigint", "ALTER TABLE t ALTER COLUMN a TYPE bigint", {"t": AEL}, "rewrite"),
    Kind("alter-type-binary-coercible", "ALTER TABLE t ALTER COLUMN s TYPE varchar(20)", {"t": AEL}, "none"),
    Kind("set-not-null", "ALTER TABLE t ALTER COLUMN n SET NOT NULL", {"t": AEL}, "scan"),
    Kind("drop-not-null", "ALTER TABLE t ALTER COLUMN nn DROP NOT NULL", {"t": AEL}, "none"),
    Kind("set-default", "ALTER TABLE t ALTER COLUMN d SET DEFAULT 3", {"t": AEL}, "none"),
    Kind("drop-default", "ALTER TABLE t ALTER COLUMN d DROP DEFAULT", {"t": AEL}, "none"),
    Kind(
        "add-foreign-key-not-valid",
        "ALTER TABLE t ADD CONSTRAINT t_parent_fk FOREIGN KEY (parent_id) REFERENCES parent (id) NOT VALID",
        {"t": SREL, "parent": SREL},
        "none",
    ),
    Kind("validate-foreign-key", "ALTER TABLE t VALIDATE CONSTRAINT t_parent_fk", {"t": SUEL, "parent": RSL}, "scan"),
    Kind("add-check-not-valid", "ALTER TABLE t ADD CONSTRAINT t_a_pos CHECK (a > 0) NOT VALID", {"t": AEL}, "none"),
    Kind("add-check", "ALTER TABLE t ADD CONSTRAINT t_a_pos2 CHECK (a > 0)", {"t": AEL}, "scan"),
    Kind("create-index", "CREATE INDEX t_n_idx ON t (n)", {"t": SHARE}, "scan"),
    Kind("create-index-concurrently", "CREATE INDEX CONCURRENTLY t_v_idx ON t (v)", {"t": SUEL}),
    Kind("drop-index", "DROP INDEX t_n_idx", {"t": AEL}, "none"),
    Kind("drop-index-concurrently", "DROP INDEX CONCURRENTLY t_v_idx", {"t": SUEL}),
    Kind("reindex-index", "REINDEX INDEX t_a_idx", {"t": SHARE}, "scan"),
    Kind("reindex-table-concurrently", "REINDEX TABLE CONCURRENTLY t", {"t": SUEL}),
    Kind("rename-column", "ALTER TABLE u RENAME COLUMN note TO body", {"u": AEL}, "none"),
    Kind("drop-column", "ALTER TABLE u DROP COLUMN body", {"u": AEL}, "none"),
    Kind("rename-table", "ALTER TABLE u RENAME TO u2", {"u": AEL}, "none"),
    Kind(
        "create-table-references",
        "CREATE TABLE child (id int PRIMARY KEY, parent_id int REFERENCES parent (id))",
        {"parent": SREL},
        "none",
    ),
    Kind("create-view", "CREATE VIEW t_ids AS SELECT id FROM t", {"t": ASL}, "none"),
    Kind("set-statistics", "ALTER TABLE t ALTER COLUMN a SET STATISTICS 500", {"t": SUEL}, "none"),
    Kind("cluster-on", "ALTER TABLE t CLUSTER ON t_a_idx", {"t": SUEL}, "none"),
    Kind("disable-trigger", "ALTER TABLE t DISABLE TRIGGER t_touch", {"t": SREL}, "none"),
    Kind(
        "create-trigger",
        "CREATE TRIGGER t_audit AFTER INSERT ON t FOR EACH ROW EXECUTE FUNCTION touch()",
        {"t": SREL},
        "none",
    ),
    Kind("drop-trigger", "DROP TRIGGER t_audit ON t", {"t": AEL}, "none"),
    Kind(
        "attach-partition",
        "ALTER TABLE pt ATTACH PARTITION pt_2 FOR VALUES FROM (0) TO (1000)",
        {"pt": SUEL, "pt_2": AEL},
        "scan",
    ),
    Kind("detach-partition", "ALTER TABLE pt DETACH PARTITION pt_1", {"pt": AEL, "pt_1": AEL}, "none"),
    Kind("refresh-matview", "REFRESH MATERIALIZED VIEW mv", {"mv": AEL}, "rewrite"),
    Kind("refresh-matview-concurrently", "REFRESH MATERIALIZED VIEW CONCURRENTLY mv", {"mv": EXCL}, "scan"),
    Kind("add-enum-value", "ALTER TYPE mood ADD VALUE 'meh'", {"mood": EXCL}, "none"),
    Kind("lock-table", "LOCK TABLE gone IN SHARE ROW EXCLUSIVE MODE", {"gone": SREL}, "none"),
    Kind("insert", "INSERT INTO u2 (id) VALUES (100000)", {"u2": REL}, "none"),
    Kind("update", "UPDATE t SET a = a + 1", {"t": REL}, "scan"),
    Kind("set-unlogged", "ALTER TABLE gone SET UNLOGGED", {"gone": AEL}, "rewrite"),
    Kind("delete", "DELETE FROM gone", {"gone": REL}, "scan"),
    Kind("vacuum", "VACUUM t", {"t": SUEL}),
    Kind("vacuum-full", "VACUUM FULL t", {"t": AEL}, "rewrite"),
    Kind("cluster", "CLUSTER t USING t_a_idx", {"t": AEL}, "rewrite"),
    Kind("analyze", "ANALYZE t", {"t": SUEL}),
    Kind("truncate", "TRUNCATE gone", {"gone": AEL}, "none"),
    Kind("drop-view", "DROP VIEW v_t", {"v_t": AEL}, "none"),
    Kind("drop-matview", "DROP MATERIALIZED VIEW mv", {"mv": AEL}, "none"),
    Kind("drop-table", "DROP TABLE gone", {"gone": AEL}, "none"),
]
# The statement's static lock (bgmigrate's) is the parent's; the partition's is the rule table's
# partition_lock, which trace reports as static "also" and compares on the partition alone.
PARTITIONS = {"attach-partition": "pt_2", "detach-partition": "pt_1"}
SAMPLE_ROWS = 20


def env_with_pg_dump() -> dict[str, str]:
    """PATH with a pg_dump: the system's, else the one bundled with the pgserver wheel."""
    if shutil.which("pg_dump"):
        return {}
    import pgserver  # type: ignore[import-not-found]

    bundled = Path(pgserver.__file__).parent / "pginstall" / "bin"
    return {"PATH": f"{bundled}{os.pathsep}{os.environ.get('PATH', '')}"}


def dump(dsn: str) -> str:
    exe = shutil.which("pg_dump", path=env_with_pg_dump().get("PATH"))
    assert exe, "no pg_dump"
    out = subprocess.run([exe, "--schema-only", "--dbname", dsn], capture_output=True, text=True, check=True).stdout
    return "\n".join(line for line in out.splitlines() if not line.startswith("\\"))  # \restrict carries a nonce


def write_release(root: Path, release: str, base: str = BASE) -> Path:
    migrations = root / "migrations"
    migrations.mkdir(parents=True, exist_ok=True)
    (migrations / "0001_base.sql").write_text(base)
    (migrations / "0002_release.sql").write_text(release)
    return migrations


def scratch_exists(server: PgServer, name: str) -> bool:
    return bool(pg_rows(server.dsn, "SELECT 1 FROM pg_database WHERE datname = %s", (name,)))


@dataclass
class Traced:
    data: dict[str, Any]
    returncode: int
    stderr: str
    before: tuple[str, dict[str, str], str]
    after: tuple[str, dict[str, str], str]

    def item(self, kind: Kind) -> dict[str, Any]:
        matches = [s for s in self.data["statements"] if s["sql"] == kind.sql]
        assert len(matches) == 1, f"{kind.sql!r} traced {len(matches)} times"
        return matches[0]


@pytest.fixture(scope="module")
def traced(pg_db: PgServer, pg_server: PgServer, tmp_path_factory: pytest.TempPathFactory) -> Traced:
    pg_exec(pg_db.dsn, BASE)
    pg_exec(pg_db.dsn, REAL_ROWS)
    migrations = write_release(tmp_path_factory.mktemp("trace"), ";\n".join(k.sql for k in KINDS) + ";\n")

    def state() -> tuple[str, dict[str, str], str]:
        return pg_schema(pg_db.dsn), pg_data(pg_db.dsn), dump(pg_db.dsn)

    before = state()
    done = bgm(
        "trace",
        str(migrations / "0002_release.sql"),
        "--dsn",
        pg_db.dsn,
        "--sample-rows",
        str(SAMPLE_ROWS),
        "--format",
        "json",
        env={**env_with_pg_dump(), "BGMIGRATE_SCRATCH_SERVER": ""},
    )
    assert done.stdout, done.stderr
    return Traced(json.loads(done.stdout), done.returncode, done.stderr, before, state())


def strongest(locks: list[dict[str, Any]], relation: str) -> str | None:
    from migrator.facts.locks import LOCK_STRENGTH

    modes = [lk["mode"] for lk in locks if lk["relation"] == relation]
    return max(modes, key=LOCK_STRENGTH.__getitem__, default=None)


def test_at_least_25_statement_kinds() -> None:
    assert len({k.id for k in KINDS}) == len(KINDS) >= 25


@pytest.mark.parametrize("kind", KINDS, ids=[k.id for k in KINDS])
def test_traced_lock_matches_documented(kind: Kind, traced: Traced) -> None:
    item = traced.item(kind)
    assert item["status"] == "traced", item
    observed = item["observed"]
    for relation, mode in kind.locks.items():
        assert strongest(observed["locks"], relation) == mode, (
            f"{kind.sql!r}: {relation} {strongest(observed['locks'], relation)}, documented {mode}: {observed['locks']}"
        )
    # bgmigrate's static lock (from the rule table) is the documented one too
    partition = PARTITIONS.get(kind.id)
    assert item["static"]["also"] == ({partition: kind.locks[partition]} if partition else {}), item["static"]
    on_table = [mode for relation, mode in kind.locks.items() if relation != partition]
    top = max(on_table, key=lambda m: [ASL, RSL, REL, SUEL, SHARE, SREL, EXCL, AEL].index(m))
    assert (item["static"]["lock"] or ASL) == top, f"{kind.sql!r}: static {item['static']}, documented {top}"
    if kind.effect is not None:
        assert observed["effect"] == kind.effect, f"{kind.sql!r}: {observed}"
    if kind.sql.split()[0].upper() == "VACUUM" or ("CONCURRENTLY" in kind.sql and "REFRESH" not in kind.sql):
        assert observed["in_transaction"] is False


def test_rewrite_detected_for_volatile_default_and_type_change(traced: Traced) -> None:
    for kind_id in ("add-column-volatile-default", "alter-type-int-to-bigint"):
        observed = traced.item(next(k for k in KINDS if k.id == kind_id))["observed"]
        assert observed["rewritten"] == ["t"], observed
        assert "t_pkey" in {i["index"] for i in observed["indexes_rebuilt"]}
    constant = traced.item(next(k for k in KINDS if k.id == "add-column-constant-default"))["observed"]
    assert constant["rewritten"] == [] and constant["indexes_rebuilt"] == []


def test_no_mismatch_between_the_rule_table_and_the_server(traced: Traced) -> None:
    assert traced.data["findings"] == []
    assert traced.returncode == 0
    assert traced.data["summary"]["traced"] == len(KINDS)


def test_database_behind_dsn_unchanged(traced: Traced, pg_server: PgServer) -> None:
    assert traced.after[0] == traced.before[0], "schema changed"
    assert traced.after[1] == traced.before[1], "data changed"
    assert traced.after[2] == traced.before[2], "pg_dump --schema-only output changed"
    scratch = traced.data["scratch"]
    assert scratch["schema_from"].startswith("pg_dump --schema-only of ")
    assert scratch["sample_rows"] == SAMPLE_ROWS and scratch["kept"] is False
    assert not scratch_exists(pg_server, scratch["database"]), "the scratch database was not dropped"


# ---- the cross-check against a deliberately wrong rule ------------------------------------------------


@pytest.fixture
def scratch(pg_server: PgServer) -> Iterator[Any]:
    history = [SourceFile(Path("0001_base.sql"), "0001_base.sql", BASE.encode())]
    with scratch_database(dsn=None, scratch_server=pg_server.dsn, history=history, sample_rows=10) as db:
        yield db
    assert not scratch_exists(pg_server, db.name)


def test_wrong_expectation_is_a_trace_mismatch(scratch: Any) -> None:
    tracer = Tracer(scratch)
    try:
        tracer.mark_existing()
        type_change = tracer.run(["ALTER TABLE t ALTER COLUMN a TYPE text"], op="alter_column_type")
        check = tracer.run(["ALTER TABLE t ADD CONSTRAINT t_a_set CHECK (a IS NOT NULL)"], op="add_constraint")
    finally:
        tracer.close()
    assert type_change.strongest() == (AEL, ["t"]) and type_change.rewritten == ["t"]
    # what the rule table says: no mismatch
    assert compare(AEL, "rewrite", type_change) == []
    assert compare(AEL, "scan", check) == []
    # a synthetic, wrong static record: each wrong fact is reported
    wrong = compare(SHARE, "none", type_change)
    assert [m.kind for m in wrong] == ["lock", "rewrite"]
    assert wrong[0].message == "took ACCESS EXCLUSIVE on t; the rule table says SHARE"
    assert [m.kind for m in compare(None, "scan", check)] == ["lock"]
    scan = compare(AEL, "none", check)
    assert [m.kind for m in scan] == ["scan"] and "read all 10 rows" in scan[0].message
    report = TraceReport({}, "15")
    report.items.append(TracedItem("x.sql:1", "ALTER ...", "alter_column_type", SHARE, "none", mismatches=wrong))
    assert [(f["rule"], f["kind"]) for f in report.findings()] == [(RULE, "lock"), (RULE, "rewrite")]
    assert report.failed


def test_scratch_dropped_when_the_work_fails(pg_server: PgServer) -> None:
    name = None
    with pytest.raises(RuntimeError), scratch_database(dsn=None, scratch_server=pg_server.dsn) as db:
        name = db.name
        assert scratch_exists(pg_server, name)
        raise RuntimeError("boom")
    assert name is not None and not scratch_exists(pg_server, name)


# ---- the other ways to get a scratch database, plan --trace ------------------------------------------


RELEASE = "ALTER TABLE t ADD COLUMN x float8 DEFAULT random();\nCREATE INDEX CONCURRENTLY t_n_idx ON t (n);\n"


def test_replay_into_embedded_postgres(tmp_path: Path) -> None:
    migrations = write_release(tmp_path, RELEASE)
    done = bgm(
        "trace", str(migrations), "--since", "0001_base.sql", "--format", "json",
        env={"BGMIGRATE_SCRATCH_SERVER": "", "BGMIGRATE_DSN": ""},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["scratch"]["server"].startswith("embedded PostgreSQL")
    assert data["scratch"]["schema_from"] == "replay of 1 migration(s) before the release"
    rows = {s["line"]: s["observed"] for s in data["statements"]}
    assert rows[1]["lock"] == AEL and rows[1]["rewritten"] == ["t"]
    assert rows[2]["lock"] == SUEL and rows[2]["in_transaction"] is False


def test_keep_leaves_the_scratch_database(tmp_path: Path, pg_server: PgServer) -> None:
    migrations = write_release(tmp_path, RELEASE)
    done = bgm("trace", str(migrations), "--since", "0001_base.sql", "--scratch-server", pg_server.dsn, "--keep")
    assert done.returncode == 0, done.stderr
    name = next(w for w in done.stdout.split() if w.startswith("bgm_scratch_"))
    try:
        assert scratch_exists(pg_server, name)
        kept = pg_server.dsn_for(name)
        columns = pg_rows(kept, "SELECT column_name FROM information_schema.columns WHERE table_name = 't'")
        assert ("x",) in columns  # the release applied
    finally:
        pg_exec(pg_server.dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_plan_trace_in_markdown(tmp_path: Path, pg_server: PgServer) -> None:
    migrations = write_release(tmp_path, "ALTER TABLE t RENAME COLUMN s TO label;\n")
    plan_md = tmp_path / "plan.md"
    done = bgm(
        "plan", str(migrations), "--since", "0001_base.sql", "-o", str(tmp_path / "plan.json"),
        "--markdown", str(plan_md), "--trace", env={"BGMIGRATE_SCRATCH_SERVER": pg_server.dsn},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    text = plan_md.read_text()
    section = text[text.index("## Trace") :]
    assert "| expand-001 | ACCESS EXCLUSIVE; none | ACCESS EXCLUSIVE on t;" in section
    assert "| contract-001 |" in section and "The trace agrees with the plan." in section
    without = bgm("plan", str(migrations), "--since", "0001_base.sql", "--trace")
    assert without.returncode == 2 and "give --markdown FILE too" in without.stderr


# ---- bad input: exit 2, a clear message, nothing changed -----------------------------------------------


def test_pg_dump_missing(tmp_path: Path, pg_db: PgServer, traced: Traced) -> None:
    migrations = write_release(tmp_path, RELEASE)
    empty = tmp_path / "bin"
    empty.mkdir()
    done = bgm("trace", str(migrations / "0002_release.sql"), "--dsn", pg_db.dsn, env={"PATH": str(empty)})
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("bgmigrate: error: pg_dump not found on PATH") and "Traceback" not in done.stderr
    assert pg_schema(pg_db.dsn) == traced.before[0]


def test_no_permission_to_create_the_scratch_database(tmp_path: Path, pg_db: PgServer, pg_server: PgServer) -> None:
    role = f"bgm_nocreatedb_{uuid.uuid4().hex[:8]}"
    pg_exec(pg_server.dsn, f"CREATE ROLE {role} LOGIN NOCREATEDB")
    try:
        before = pg_schema(pg_db.dsn), pg_data(pg_db.dsn)
        limited = psycopg.conninfo.make_conninfo(pg_server.dsn, user=role, password="s3cret-pw")
        migrations = write_release(tmp_path, RELEASE)
        done = bgm(
            "trace", str(migrations / "0002_release.sql"), "--dsn", pg_db.dsn, "--scratch-server", limited,
            env=env_with_pg_dump(),
        )  # fmt: skip
        assert done.returncode == 2, done.stderr
        assert "cannot create a scratch database" in done.stderr and "needs CREATEDB" in done.stderr
        assert "s3cret-pw" not in done.stderr + done.stdout
        assert (pg_schema(pg_db.dsn), pg_data(pg_db.dsn)) == before
    finally:
        pg_exec(pg_server.dsn, f"DROP ROLE IF EXISTS {role}")


def test_bad_release_and_options(tmp_path: Path) -> None:
    missing = bgm("trace", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "path not found" in missing.stderr
    fmt = bgm("trace", str(write_release(tmp_path, RELEASE)), "--format", "xml")
    assert fmt.returncode == 2 and "unknown format" in fmt.stderr
    mysql = bgm("trace", str(write_release(tmp_path, RELEASE)), "--dsn", "mysql://root@127.0.0.1/x")
    assert mysql.returncode == 2 and "PostgreSQL only" in mysql.stderr


def test_failing_statement_is_a_finding(tmp_path: Path, pg_server: PgServer) -> None:
    release = "ALTER TABLE t ADD COLUMN x int;\nALTER TABLE t DROP COLUMN nope;\nDROP TABLE t;\n"
    migrations = write_release(tmp_path, release)
    done = bgm(
        "trace", str(migrations), "--since", "0001_base.sql", "--scratch-server", pg_server.dsn, "--format", "json"
    )
    assert done.returncode == 1, done.stderr
    data = json.loads(done.stdout)
    assert [s["status"] for s in data["statements"]] == ["traced", "failed", "not-run"]
    assert data["findings"][0]["rule"] == "trace-statement-failed"
    assert 'column "nope" of relation "t" does not exist' in data["findings"][0]["message"]
