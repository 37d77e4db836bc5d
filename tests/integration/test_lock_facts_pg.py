"""Prove migrator/facts/locks.py against a real PostgreSQL, like eugene's ``trace``.

For each case the statement is classified by bgmigrate itself (``lint_text`` with the setup as
history, so the table is known and not new) and then run on the server:

- **lock**: inside a transaction, the relation locks this backend holds after the statement
  (``pg_locks``), strongest mode per relation, compared with bgmigrate's lock. Statements that
  cannot run in a transaction block (``CONCURRENTLY``, ``VACUUM``) run on their own connection
  while other sessions hold blocking locks; an observer reads that backend's ``pg_locks`` each
  time it waits (granted locks and the mode it is waiting for).
- **rewrite**: the relation got a new ``relfilenode`` *with data in it* (TRUNCATE also gets a new,
  empty file: that is not a copy).
- **scan**: the statement read at least every row of the relation, counted by this transaction's
  own statistics (``pg_stat_xact_user_tables``: ``seq_tup_read + idx_tup_fetch``, before/after).
  A validated CHECK that lets SET NOT NULL skip its scan reads 0 rows, so this tells scan from no
  scan. Not observable for statements outside a transaction (their counters are flushed
  asynchronously): those rows are checked for rewrite-or-not only, the scan is from the docs.

``NOT_EXERCISED`` lists every PostgreSQL row no case reaches, with the reason;
``test_every_row_is_exercised_or_explained`` keeps that list honest. ``GAPS`` pins statements where
bgmigrate's normalization (not the fact table) disagrees with the server; they fail once fixed so
they can move into ``CASES``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import psycopg
import pytest

from migrator.config import Settings
from migrator.facts.locks import LOCK_FACTS, LockFact, lookup
from migrator.lint.classify import Classified, classify
from migrator.lint.engine import StatementResult, lint_text
from migrator.schema.model import Schema
from migrator.sql.analyze import analyze_text
from migrator.sql.changes import Change
from migrator.trace.observe import MODES  # pg_locks mode names, weakest first

if TYPE_CHECKING:
    from db_servers import PgServer

ROWS = 200  # rows in t (and in every table a scan is measured on)

RANK = {mode: i for i, mode in enumerate(MODES.values())}

BASE = f"""
CREATE TABLE parent (id int PRIMARY KEY, name text);
INSERT INTO parent SELECT g, 'p' || g FROM generate_series(1, 50) g;
CREATE TABLE t (
  id int PRIMARY KEY,
  a int,
  s varchar(10),
  v varchar,
  n int,
  nn int NOT NULL,
  d int DEFAULT 1,
  ck int,
  parent_id int,
  CONSTRAINT t_ck_not_null CHECK (ck IS NOT NULL)
);
INSERT INTO t SELECT g, g, 's' || g, 'v' || g, g, g, g, g, 1 + g % 50 FROM generate_series(1, {ROWS}) g;
CREATE INDEX t_a_idx ON t (a);
"""
FK_NOT_VALID = "ALTER TABLE t ADD CONSTRAINT t_parent_fk FOREIGN KEY (parent_id) REFERENCES parent (id) NOT VALID;"
UNIQUE_INDEX = "CREATE UNIQUE INDEX t_s_key ON t (s);"
MATVIEW = "CREATE MATERIALIZED VIEW mv AS SELECT id, a FROM t;\nCREATE UNIQUE INDEX mv_id ON mv (id);"
VIEW = "CREATE VIEW v AS SELECT id, a FROM t;"
ENUM = "CREATE TYPE mood AS ENUM ('happy', 'sad');"
TRIGGER_FN = (
    "CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;\n"
    "CREATE TRIGGER t_touch BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION touch();"
)
PARTITIONS = f"""
CREATE TABLE pt (id int, k int) PARTITION BY RANGE (k);
CREATE TABLE pt_1 PARTITION OF pt FOR VALUES FROM (0) TO (1000);
INSERT INTO pt SELECT g, g FROM generate_series(1, {ROWS}) g;
CREATE TABLE pt_2 (id int, k int);
INSERT INTO pt_2 SELECT g, 1000 + g FROM generate_series(1, {ROWS}) g;
"""
WRITER = "INSERT INTO t (id, nn, ck) VALUES (100000, 0, 0)"  # an open write transaction on t


@dataclass(frozen=True)
class Case:
    """One statement exercising one LockFact row.

    ``row``: (op, variant) of the row bgmigrate must pick. ``table``: the relation whose lock is
    bgmigrate's statement lock. ``also``: other relations and the lock PostgreSQL must take there
    (what the row's note says; ``SAME`` means bgmigrate's lock). ``effect_on``: where the effect is
    measured; ``None`` compares the lock only (``why`` says why). ``blockers``: run outside a
    transaction, observed while it waits for these sessions.
    """

    id: str
    sql: str
    row: tuple[str, str]
    setup: str = ""
    table: str = "t"
    also: dict[str, str] = field(default_factory=dict)
    effect_on: str | None = "t"
    why: str = ""
    blockers: tuple[str, ...] = ()
    type_lock: str | None = None  # the lock is on this type, not a relation


SAME = "="

CASES: list[Case] = [
    # ---- columns ---------------------------------------------------------------------------------
    Case("add-column", "ALTER TABLE t ADD COLUMN x int", ("add_column", "*")),
    Case("add-column-constant-default", "ALTER TABLE t ADD COLUMN x int DEFAULT 5", ("add_column", "default")),
    Case(
        "add-column-stable-default", "ALTER TABLE t ADD COLUMN x timestamptz DEFAULT now()", ("add_column", "default")
    ),
    Case(
        "add-column-volatile-default",
        "ALTER TABLE t ADD COLUMN x float8 DEFAULT random()",
        ("add_column", "volatile_default"),
    ),
    Case(
        "add-column-generated-stored",
        "ALTER TABLE t ADD COLUMN x int GENERATED ALWAYS AS (a * 2) STORED",
        ("add_column", "generated_stored"),
    ),
    Case("add-column-serial", "ALTER TABLE t ADD COLUMN x serial", ("add_column", "serial")),
    Case(
        "add-column-identity",
        "ALTER TABLE t ADD COLUMN x bigint GENERATED ALWAYS AS IDENTITY",
        ("add_column", "serial"),
    ),
    Case(
        "add-column-references",
        "ALTER TABLE t ADD COLUMN x int REFERENCES parent (id)",
        ("add_column", "references"),
        also={"parent": "SHARE ROW EXCLUSIVE"},
    ),
    Case(
        "add-column-references-default",
        "ALTER TABLE t ADD COLUMN x int DEFAULT 1 REFERENCES parent (id)",
        ("add_column", "references_default"),
        also={"parent": "SHARE ROW EXCLUSIVE"},
    ),
    Case("add-column-unique", "ALTER TABLE t ADD COLUMN x int UNIQUE", ("add_column", "unique")),
    Case("drop-column", "ALTER TABLE t DROP COLUMN a", ("drop_column", "*")),
    Case("rename-column", "ALTER TABLE t RENAME COLUMN a TO b", ("rename_column", "*")),
    Case("alter-type-longer-varchar", "ALTER TABLE t ALTER COLUMN s TYPE varchar(20)", ("alter_column_type", "none")),
    Case("alter-type-varchar-to-text", "ALTER TABLE t ALTER COLUMN s TYPE text", ("alter_column_type", "none")),
    Case(
        "alter-type-unbounded-to-bounded-varchar",
        "ALTER TABLE t ALTER COLUMN v TYPE varchar(5)",
        ("alter_column_type", "scan"),
    ),
    Case("alter-type-int-to-bigint", "ALTER TABLE t ALTER COLUMN a TYPE bigint", ("alter_column_type", "*")),
    Case(
        "alter-type-using-cast",
        "ALTER TABLE t ALTER COLUMN s TYPE varchar(20) USING s::varchar(20)",
        ("alter_column_type", "none"),
        why="a USING that only casts the column keeps its value: the types decide",
    ),
    Case(
        "alter-type-using-changes-value",
        "ALTER TABLE t ALTER COLUMN s TYPE text USING s || ''",
        ("alter_column_type", "*"),
        why="binary-coercible types, but the USING expression computes new values",
    ),
    Case("set-not-null", "ALTER TABLE t ALTER COLUMN n SET NOT NULL", ("set_not_null", "*")),
    Case(
        "set-not-null-proven-by-check",
        "ALTER TABLE t ALTER COLUMN ck SET NOT NULL",
        ("set_not_null", "proven"),
    ),
    Case(
        "set-not-null-already",
        "ALTER TABLE t ALTER COLUMN nn SET NOT NULL",
        ("set_not_null", "already"),
        why="the column is NOT NULL already: PostgreSQL checks nothing",
    ),
    Case("drop-not-null", "ALTER TABLE t ALTER COLUMN nn DROP NOT NULL", ("drop_not_null", "*")),
    Case("set-default", "ALTER TABLE t ALTER COLUMN a SET DEFAULT 3", ("set_default", "*")),
    Case("drop-default", "ALTER TABLE t ALTER COLUMN d DROP DEFAULT", ("drop_default", "*")),
    # ---- constraints -----------------------------------------------------------------------------
    Case(
        "add-foreign-key",
        "ALTER TABLE t ADD CONSTRAINT t_fk FOREIGN KEY (parent_id) REFERENCES parent (id)",
        ("add_constraint", "foreign_key"),
        also={"parent": SAME},
    ),
    Case(
        "add-foreign-key-not-valid",
        "ALTER TABLE t ADD CONSTRAINT t_fk FOREIGN KEY (parent_id) REFERENCES parent (id) NOT VALID",
        ("add_constraint", "foreign_key_not_valid"),
        also={"parent": SAME},
    ),
    Case("add-check", "ALTER TABLE t ADD CONSTRAINT t_a_pos CHECK (a > 0)", ("add_constraint", "check")),
    Case(
        "add-check-not-valid",
        "ALTER TABLE t ADD CONSTRAINT t_a_pos CHECK (a > 0) NOT VALID",
        ("add_constraint", "check_not_valid"),
    ),
    Case(
        "validate-foreign-key",
        "ALTER TABLE t VALIDATE CONSTRAINT t_parent_fk",
        ("validate_constraint", "*"),
        setup=FK_NOT_VALID,
        also={"parent": "ROW SHARE"},
    ),
    Case(
        "validate-check",
        "ALTER TABLE t VALIDATE CONSTRAINT t_a_pos",
        ("validate_constraint", "*"),
        setup="ALTER TABLE t ADD CONSTRAINT t_a_pos CHECK (a > 0) NOT VALID;",
    ),
    Case("add-unique", "ALTER TABLE t ADD CONSTRAINT t_a_key UNIQUE (a)", ("add_constraint", "*")),
    Case(
        "add-exclude", "ALTER TABLE t ADD CONSTRAINT t_a_excl EXCLUDE USING btree (a WITH =)", ("add_constraint", "*")
    ),
    Case(
        "add-unique-using-index",
        "ALTER TABLE t ADD CONSTRAINT t_s_key UNIQUE USING INDEX t_s_key",
        ("add_constraint", "using_index"),
        setup=UNIQUE_INDEX,
    ),
    Case(
        "add-primary-key-using-index-nullable",
        "ALTER TABLE parent ADD CONSTRAINT parent_name_pk PRIMARY KEY USING INDEX parent_name_key",
        ("add_constraint", "using_index_scan"),
        setup="ALTER TABLE parent DROP CONSTRAINT parent_pkey;\nCREATE UNIQUE INDEX parent_name_key ON parent (name);",
        table="parent",
        effect_on="parent",
        why="PRIMARY KEY makes the nullable column NOT NULL, which reads every row",
    ),
    Case("drop-check", "ALTER TABLE t DROP CONSTRAINT t_ck_not_null", ("drop_constraint", "*")),
    Case(
        "drop-foreign-key",
        "ALTER TABLE t DROP CONSTRAINT t_parent_fk",
        ("drop_constraint", "*"),
        setup=FK_NOT_VALID,
        also={"parent": SAME},
    ),
    # ---- indexes ---------------------------------------------------------------------------------
    Case("create-index", "CREATE INDEX t_n_idx ON t (n)", ("create_index", "*")),
    Case(
        "create-index-concurrently",
        "CREATE INDEX CONCURRENTLY t_n_idx ON t (n)",
        ("create_index", "concurrently"),
        blockers=(WRITER,),
    ),
    Case("drop-index", "DROP INDEX t_a_idx", ("drop_index", "*")),
    Case(
        "drop-index-concurrently",
        "DROP INDEX CONCURRENTLY t_a_idx",
        ("drop_index", "concurrently"),
        blockers=(WRITER,),
    ),
    Case("reindex-table", "REINDEX TABLE t", ("reindex", "*")),
    Case("reindex-index", "REINDEX INDEX t_a_idx", ("reindex", "*")),
    Case(
        "reindex-table-concurrently",
        "REINDEX TABLE CONCURRENTLY t",
        ("reindex", "concurrently"),
        blockers=(WRITER,),
    ),
    # ---- tables and other objects ----------------------------------------------------------------
    Case(
        "create-table",
        "CREATE TABLE fresh (id int PRIMARY KEY, note text)",
        ("create_table", "*"),
        effect_on=None,
        why="a new table: nothing existing is read",
    ),
    Case(
        "create-table-references",
        "CREATE TABLE child (id int PRIMARY KEY, parent_id int REFERENCES parent (id))",
        ("create_table", "references"),
        table="parent",
        effect_on="parent",
        why="the new table's foreign key locks the existing referenced table; nothing is read",
    ),
    Case(
        "create-table-as",
        "CREATE TABLE copy_of_t AS SELECT * FROM t",
        ("create_table_as", "*"),
        effect_on=None,
        why="reads t (ACCESS SHARE) into a new table; nothing existing is locked against writes",
    ),
    Case(
        "create-view",
        "CREATE VIEW t_ids AS SELECT id FROM t",
        ("create_view", "*"),
        effect_on=None,
        why="a view stores no rows",
    ),
    Case("drop-table", "DROP TABLE t", ("drop_table", "*")),
    Case("rename-table", "ALTER TABLE t RENAME TO t_renamed", ("rename_table", "*")),
    Case("truncate", "TRUNCATE t", ("truncate", "*")),
    Case("set-unlogged", "ALTER TABLE t SET UNLOGGED", ("alter_table_storage", "*")),
    Case("owner-to", "ALTER TABLE t OWNER TO CURRENT_USER", ("alter_table_other", "*")),
    Case("set-statistics", "ALTER TABLE t ALTER COLUMN a SET STATISTICS 500", ("alter_table_other", "set statistics")),
    Case("cluster-on", "ALTER TABLE t CLUSTER ON t_a_idx", ("alter_table_other", "cluster on")),
    Case(
        "enable-trigger",
        "ALTER TABLE t ENABLE TRIGGER t_touch",
        ("alter_table_other", "enable trigger"),
        setup=TRIGGER_FN,
    ),
    Case(
        "disable-trigger",
        "ALTER TABLE t DISABLE TRIGGER t_touch",
        ("alter_table_other", "disable trigger"),
        setup=TRIGGER_FN,
    ),
    Case(
        "attach-partition",
        "ALTER TABLE pt ATTACH PARTITION pt_2 FOR VALUES FROM (1000) TO (2000)",
        ("attach_partition", "*"),
        setup=PARTITIONS,
        table="pt",
        also={"pt_2": "ACCESS EXCLUSIVE"},
        effect_on="pt_2",
        why="the partition being attached is scanned to check the bound",
    ),
    Case(
        "detach-partition",
        "ALTER TABLE pt DETACH PARTITION pt_1",
        ("detach_partition", "*"),
        setup=PARTITIONS,
        table="pt",
        also={"pt_1": "ACCESS EXCLUSIVE"},
        effect_on="pt_1",
    ),
    Case(
        "detach-partition-concurrently",
        "ALTER TABLE pt DETACH PARTITION pt_1 CONCURRENTLY",
        ("detach_partition", "concurrently"),
        setup=PARTITIONS,
        table="pt",
        also={"pt_1": "ACCESS EXCLUSIVE"},
        effect_on="pt_1",
        # 1st: waits for every transaction using pt; 2nd: the partition's ACCESS EXCLUSIVE waits.
        blockers=("SELECT count(*) FROM pt", "SELECT count(*) FROM pt_1"),
    ),
    Case(
        "vacuum-full",
        "VACUUM FULL t",
        ("vacuum", "full"),
        blockers=("LOCK TABLE t IN EXCLUSIVE MODE",),  # conflicts with every mode but ACCESS SHARE
    ),
    Case("vacuum", "VACUUM t", ("vacuum", "*"), blockers=("LOCK TABLE t IN EXCLUSIVE MODE",)),
    Case("cluster", "CLUSTER t USING t_a_idx", ("cluster", "*")),
    Case(
        "analyze",
        "ANALYZE t",
        ("analyze", "*"),
        effect_on=None,
        why="ANALYZE reads a sample of blocks, which the row counters do not count",
    ),
    Case(
        "refresh-matview",
        "REFRESH MATERIALIZED VIEW mv",
        ("refresh_materialized_view", "*"),
        setup=MATVIEW,
        table="mv",
        effect_on="mv",
    ),
    Case(
        "refresh-matview-concurrently",
        "REFRESH MATERIALIZED VIEW CONCURRENTLY mv",
        ("refresh_materialized_view", "concurrently"),
        setup=MATVIEW,
        table="mv",
        effect_on="mv",
    ),
    Case(
        "drop-view",
        "DROP VIEW v",
        ("drop_view", "*"),
        setup=VIEW,
        table="v",
        effect_on=None,
        why="a view stores no rows",
    ),
    Case(
        "drop-matview",
        "DROP MATERIALIZED VIEW mv",
        ("drop_view", "*"),
        setup=MATVIEW,
        table="mv",
        effect_on="mv",
    ),
    Case(
        "rename-view",
        "ALTER VIEW v RENAME TO v_renamed",
        ("rename_view", "*"),
        setup=VIEW,
        table="v",
        effect_on=None,
        why="a view stores no rows",
    ),
    Case(
        "add-enum-value",
        "ALTER TYPE mood ADD VALUE 'meh'",
        ("add_enum_value", "*"),
        setup=ENUM,
        type_lock="mood",
        effect_on=None,
        why="no table is touched",
    ),
    Case("insert", "INSERT INTO t (id, nn, ck) VALUES (100001, 1, 1)", ("insert", "*")),
    Case("update", "UPDATE t SET a = a + 1", ("update", "*")),
    Case("delete", "DELETE FROM t", ("delete", "*")),
    Case(
        "create-trigger",
        "CREATE TRIGGER t_audit AFTER INSERT ON t FOR EACH ROW EXECUTE FUNCTION touch()",
        ("create_object", "trigger"),
        setup=TRIGGER_FN,
    ),
    Case("drop-trigger", "DROP TRIGGER t_touch ON t", ("drop_object", "trigger"), setup=TRIGGER_FN),
    *[
        Case(
            f"lock-table-{mode.lower().replace(' ', '-')}",
            f"LOCK TABLE t IN {mode} MODE",
            ("lock_table", "*" if mode == "ACCESS EXCLUSIVE" else mode.lower().replace(" ", "_")),
        )
        for mode in MODES.values()
    ],
    Case("lock-table-default-mode", "LOCK TABLE t", ("lock_table", "*")),
]

# Rows no case above reaches on the servers this suite runs on, and why.
TESTED_MAJORS = (15, 16)  # the local server and the embedded pgserver wheel
NOT_EXERCISED: dict[tuple[str, str, int, int], str] = {
    ("add_column", "default", 0, 11): "describes PostgreSQL < 11",
    ("add_column", "references_default", 0, 11): "describes PostgreSQL < 11",
    ("attach_partition", "*", 0, 12): "describes PostgreSQL < 12",
    ("add_constraint", "not_null_not_valid", 18, 999): "ADD CONSTRAINT ... NOT NULL is PostgreSQL 18 syntax",
    ("add_constraint", "not_null", 0, 999): "ADD CONSTRAINT ... NOT NULL is PostgreSQL 18 syntax",
    ("alter_table_other", "index_set_tablespace", 0, 999): "needs a second tablespace, i.e. a directory owned "
    "by the server's OS user on the server's host, which a test cannot create for a DSN or embedded server",
}


@dataclass(frozen=True)
class Gap:
    """A statement bgmigrate normalizes wrongly: pinned so a fix shows up (and moves it to CASES)."""

    id: str
    sql: str
    relation: str  # where the server's lock is observed
    server_lock: str  # what the server takes there (asserted)
    reason: str
    setup: str = ""


GAPS: list[Gap] = [
    Gap(
        "lock-several-tables",
        "LOCK TABLE t, parent IN SHARE MODE",
        "parent",
        "SHARE",
        "the LOCK normalizer keeps only the first table",
    ),
    Gap(
        "analyze-table-name",
        "ANALYZE t",
        "t",
        "SHARE UPDATE EXCLUSIVE",
        "ANALYZE normalizes with table None (the lock is right, the table is lost)",
    ),
    Gap(
        "set-storage-parameter",
        "ALTER TABLE t SET (fillfactor = 70)",
        "t",
        "SHARE UPDATE EXCLUSIVE",
        "the change keeps action 'set' but not the parameter names; the lock depends on them "
        "(fillfactor, autovacuum_*: SHARE UPDATE EXCLUSIVE), so the row keeps the fail-safe ACCESS EXCLUSIVE",
    ),
]


# ---- bgmigrate's side ------------------------------------------------------------------------------


def bgmigrate(sql: str, setup: str, major: int) -> StatementResult:
    """bgmigrate's verdict on ``sql`` after ``setup`` as history (so its tables are known, not new)."""
    settings = Settings(dialect="postgres", target_version=str(major), cache=False)
    result = lint_text(sql + ";\n", settings, history=[setup])
    assert result.statements, f"bgmigrate found no statement in {sql!r}"
    return result.statements[-1]


def rows_hit(sql: str, setup: str, major: int) -> list[tuple[Change, Classified]]:
    """The changes of ``sql`` and the LockFact row each one gets, the way the engine classifies them."""
    schema = Schema()
    for st in analyze_text(setup, "postgres"):
        for ch in st.changes:
            schema.apply(ch, "<history>")
    return [
        (ch, classify(ch, schema, "<migration>", "postgres", (major, 0, 0)))
        for st in analyze_text(sql + ";\n", "postgres")
        for ch in st.changes
    ]


def lock_for(st: StatementResult, relation: str) -> str | None:
    """bgmigrate's strongest lock among the changes that name ``relation``."""
    modes = [c["lock"] for c in st.changes if c["lock"] and c["table"] == relation]
    return max(modes, key=RANK.__getitem__, default=None)


# ---- the server's side -----------------------------------------------------------------------------


@dataclass
class Observed:
    locks: dict[str, set[str]]  # relation -> modes held or waited for
    effect: dict[str, str]  # relation -> none | scan | rewrite ("not-rewrite" when scans are invisible)
    type_locks: set[str] = field(default_factory=set)

    def strongest(self, relation: str) -> str | None:
        return max(self.locks.get(relation, ()), key=RANK.__getitem__, default=None)


Q_RELATIONS = """
SELECT c.relname, c.oid::int FROM pg_class c
WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p', 'm', 'v')
"""
Q_FILES = "SELECT oid::int, relfilenode::int, pg_relation_size(oid) FROM pg_class WHERE oid = ANY(%s)"
Q_READS = """
SELECT relid::int, coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0)
FROM pg_stat_xact_user_tables WHERE relid = ANY(%s)
"""
Q_MY_LOCKS = """
SELECT relation::int, mode FROM pg_locks
WHERE pid = pg_backend_pid() AND locktype = 'relation' AND granted AND relation = ANY(%s)
"""
Q_MY_TYPE_LOCKS = """
SELECT mode FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'object' AND granted
AND classid = 'pg_type'::regclass AND objid = %s::regtype
"""
Q_THEIR_LOCKS = "SELECT relation::int, mode, granted FROM pg_locks WHERE pid = %s"
Q_BLOCKED_BY = "SELECT pg_blocking_pids(%s)"


def _files(conn: psycopg.Connection[Any], oids: list[int]) -> dict[int, tuple[int, int]]:
    return {oid: (node, size) for oid, node, size in conn.execute(Q_FILES, (oids,))}


def _reads(conn: psycopg.Connection[Any], oids: list[int]) -> dict[int, int]:
    return {oid: int(n) for oid, n in conn.execute(Q_READS, (oids,))}


def _effect(
    oid: int,
    before: dict[int, tuple[int, int]],
    after: dict[int, tuple[int, int]],
    reads: int | None,
    rows: int,
) -> str:
    old, new = before.get(oid), after.get(oid)
    if old is not None and new is not None and new[0] != old[0] and new[1] > 0:
        return "rewrite"
    if reads is None:
        return "not-rewrite"
    return "scan" if rows > 0 and reads >= rows else "none"


@pytest.fixture(scope="module")
def server(pg_db: PgServer) -> Iterator[PgServer]:
    with psycopg.connect(pg_db.dsn, autocommit=True) as conn:
        track = conn.execute("SHOW track_counts").fetchone()
        assert track is not None and track[0] == "on", f"track_counts is off on {pg_db.shown}: scans cannot be observed"
    yield pg_db


class Scratch:
    """A schema of its own for one case, with the setup run and committed."""

    def __init__(self, server: PgServer, name: str, setup: str) -> None:
        self.server = server
        self.schema = "c_" + "".join(ch if ch.isalnum() else "_" for ch in name)[:50]
        self.options = f"-c search_path={self.schema}"
        self.conn = self.connect()
        self.conn.execute(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")
        self.conn.execute(f"CREATE SCHEMA {self.schema}")
        self.conn.execute(setup)
        self.relations: dict[str, int] = dict(self.conn.execute(Q_RELATIONS).fetchall())
        self.rows: dict[int, int] = {}
        for name_, oid in self.relations.items():
            if name_ in ("t", "parent", "pt_1", "pt_2", "mv"):
                count = self.conn.execute(f"SELECT count(*) FROM {name_}").fetchone()
                self.rows[oid] = int(count[0]) if count else 0

    def connect(self, autocommit: bool = True) -> psycopg.Connection[Any]:
        return psycopg.connect(self.server.dsn, autocommit=autocommit, options=self.options)

    def close(self) -> None:
        self.conn.execute(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")
        self.conn.close()

    def names(self, by_oid: dict[int, Any]) -> dict[str, Any]:
        back = {oid: name for name, oid in self.relations.items()}
        return {back[oid]: value for oid, value in by_oid.items() if oid in back}

    # -- in a transaction ---------------------------------------------------------------------------
    def run_in_transaction(self, sql: str, type_name: str | None = None) -> Observed:
        oids = list(self.relations.values())
        conn = self.conn
        with conn.transaction(force_rollback=True):
            files0, reads0 = _files(conn, oids), _reads(conn, oids)
            conn.execute(sql)
            held: dict[int, set[str]] = {}
            for oid, mode in conn.execute(Q_MY_LOCKS, (oids,)):
                held.setdefault(oid, set()).add(MODES[mode])
            type_locks = {MODES[m] for (m,) in conn.execute(Q_MY_TYPE_LOCKS, (type_name,))} if type_name else set()
            files1, reads1 = _files(conn, oids), _reads(conn, oids)
        effect = {
            oid: _effect(oid, files0, files1, reads1.get(oid, 0) - reads0.get(oid, 0), self.rows.get(oid, 0))
            for oid in oids
        }
        return Observed(self.names(held), self.names(effect), type_locks)

    # -- outside a transaction, observed while it waits -----------------------------------------------
    def run_blocked(self, sql: str, blockers: tuple[str, ...]) -> Observed:
        oids = list(self.relations.values())
        files0 = _files(self.conn, oids)
        holders = [self.connect(autocommit=False) for _ in blockers]
        for conn, blocker in zip(holders, blockers):
            conn.execute(blocker)  # opens the transaction that blocks
        runner = self.connect()
        pid = runner.info.backend_pid
        failure: list[BaseException] = []

        def run() -> None:
            try:
                runner.execute(sql)
            except BaseException as err:  # reported by the main thread
                failure.append(err)

        thread = threading.Thread(target=run, daemon=True)
        seen: dict[int, set[str]] = {}
        pids = [conn.info.backend_pid for conn in holders]
        released: set[int] = set()
        try:
            thread.start()
            deadline = time.monotonic() + 20
            while thread.is_alive() and time.monotonic() < deadline:
                rows = self.conn.execute(Q_THEIR_LOCKS, (pid,)).fetchall()
                for relation, mode, _granted in rows:
                    if relation in oids:
                        seen.setdefault(relation, set()).add(MODES[mode])
                if any(not granted for _r, _m, granted in rows):
                    # It is waiting (and stays so until its blocker goes): release exactly that blocker.
                    blocked_by = self.conn.execute(Q_BLOCKED_BY, (pid,)).fetchone()
                    for i, holder_pid in enumerate(pids):
                        if i not in released and blocked_by and holder_pid in blocked_by[0]:
                            holders[i].rollback()
                            released.add(i)
                time.sleep(0.005)
        finally:
            for conn in holders:
                conn.rollback()
                conn.close()
            thread.join(30)
            runner.close()
        assert not thread.is_alive(), f"{sql!r} did not finish after its blockers were released"
        if failure:
            raise failure[0]
        waited = [blockers[i] for i in sorted(released)]
        assert len(released) == len(blockers), (
            f"{sql!r} waited only for {waited} of its blockers {list(blockers)}: its locks could not be observed"
        )
        files1 = _files(self.conn, oids)
        effect = {oid: _effect(oid, files0, files1, None, self.rows.get(oid, 0)) for oid in oids}
        return Observed(self.names(seen), self.names(effect))


def _scratch(server: PgServer, name: str, setup: str) -> Scratch:
    try:
        return Scratch(server, name, setup)
    except psycopg.Error as err:  # a broken setup is a test bug: say which
        pytest.fail(f"setup for {name} failed on {server.shown}: {err}", pytrace=False)


# ---- tests -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_lock_fact_matches_server(case: Case, server: PgServer) -> None:
    setup = BASE + case.setup
    st = bgmigrate(case.sql, setup, server.major)
    hit = rows_hit(case.sql, setup, server.major)
    rows = [(c.lock.op, c.lock.variant) for _, c in hit if c.lock is not None]
    assert case.row in rows, (
        f"{case.sql!r} should exercise row {case.row}; bgmigrate picked {rows or 'no row'} for changes "
        f"{[(ch.op, ch.table, c.variant) for ch, c in hit]}"
    )
    scratch = _scratch(server, case.id, setup)
    try:
        if case.blockers:
            observed = scratch.run_blocked(case.sql, case.blockers)
        else:
            observed = scratch.run_in_transaction(case.sql, case.type_lock)
    finally:
        scratch.close()
    where = f"{case.sql!r} on PostgreSQL {server.major}"

    if case.type_lock:
        assert max(observed.type_locks, key=RANK.__getitem__, default=None) == st.lock, (
            f"{where}: lock on type {case.type_lock}: server {sorted(observed.type_locks)}, bgmigrate {st.lock}"
        )
    elif st.lock is None:  # "no lock worth reporting": nothing beyond ACCESS SHARE on what existed
        strong = {rel: mode for rel in observed.locks if (mode := observed.strongest(rel)) != "ACCESS SHARE"}
        assert not strong, f"{where}: bgmigrate reports no lock, the server took {strong}"
    else:
        assert observed.strongest(case.table) == st.lock, (
            f"{where}: lock on {case.table}: server {observed.strongest(case.table)} "
            f"(all: {observed.locks}), bgmigrate {st.lock}"
        )
    for relation, expected in case.also.items():
        want = st.lock if expected == SAME else expected
        assert observed.strongest(relation) == want, (
            f"{where}: lock on {relation}: server {observed.strongest(relation)}, expected {want}"
        )

    if case.effect_on is not None:
        seen = observed.effect[case.effect_on]
        if seen == "not-rewrite":  # outside a transaction: only rewrite-or-not is observable
            assert st.rewrite != "rewrite", f"{where}: bgmigrate says rewrite, {case.effect_on} kept its files"
        else:
            assert seen == st.rewrite, f"{where}: effect on {case.effect_on}: server {seen}, bgmigrate {st.rewrite}"


@pytest.mark.parametrize("gap", GAPS, ids=[g.id for g in GAPS])
def test_known_normalizer_gap_still_differs(gap: Gap, server: PgServer) -> None:
    setup = BASE + gap.setup
    st = bgmigrate(gap.sql, setup, server.major)
    scratch = _scratch(server, gap.id, setup)
    try:
        observed = scratch.run_in_transaction(gap.sql)
    finally:
        scratch.close()
    assert observed.strongest(gap.relation) == gap.server_lock, (
        f"{gap.sql!r}: the server's lock on {gap.relation} is {observed.strongest(gap.relation)}, "
        f"not {gap.server_lock} as recorded"
    )
    assert lock_for(st, gap.relation) != gap.server_lock, (
        f"{gap.sql!r}: bgmigrate now reports {gap.server_lock} on {gap.relation}: the gap ({gap.reason}) "
        "is fixed, move the statement into CASES"
    )


def _key(fact: LockFact) -> tuple[str, str, int, int]:
    return fact.op, fact.variant, fact.min[0], fact.max[0]


def test_every_row_is_exercised_or_explained() -> None:
    """Every PostgreSQL row is the one some case hits on a tested server, or says why not."""
    rows = {_key(f) for f in LOCK_FACTS if f.dialect == "postgres"}
    exercised = set()
    for case in CASES:
        for major in TESTED_MAJORS:
            fact = lookup(case.row[0], case.row[1], "postgres", (major, 0, 0))
            if fact is not None:
                exercised.add(_key(fact))
    missing = sorted(rows - exercised - set(NOT_EXERCISED))
    assert not missing, f"PostgreSQL lock facts with no integration case and no reason in NOT_EXERCISED: {missing}"
    stale = sorted(set(NOT_EXERCISED) - (rows - exercised))
    assert not stale, f"NOT_EXERCISED names rows that are gone or now exercised: {stale}"
