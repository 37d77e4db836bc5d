"""Probe the MySQL rows of migrator/facts/locks.py on a real MySQL or MariaDB server.

The rows model MySQL 8.0 online DDL: an algorithm (INSTANT / INPLACE / COPY), whether concurrent
DML is allowed, and whether the table is rebuilt. For each case the statement is classified by
bgmigrate (``lint_text`` with the setup as history) and run on a fresh table with an explicit
clause, from the cheapest to the dearest, until the server accepts one:

    ALGORITHM=INSTANT
    ALGORITHM=INPLACE, LOCK=NONE     (in place, concurrent DML allowed)
    ALGORITHM=INPLACE                (in place, DML blocked)
    ALGORITHM=COPY, LOCK=NONE        (MariaDB 11.2+ only)
    ALGORITHM=COPY

A refused clause fails before anything changes (ER_ALTER_OPERATION_NOT_SUPPORTED[_REASON]), so
the first accepted clause is what the server does by default. A rebuild shows as a new InnoDB
table id (``information_schema.INNODB_SYS_TABLES`` on MariaDB, ``INNODB_TABLES`` on MySQL).

On MariaDB the rows are read at ``MODEL_VERSION`` (they model MySQL 8.0, not MariaDB). Where
MariaDB 10.11 does something else, the case records what MariaDB does and why (``Diff``): the
MySQL rows are not changed for MariaDB. A ``Diff`` of kind ``row`` is different: there the MySQL
8.0 manual agrees with MariaDB and the row itself looks wrong. ``GAPS`` are statements bgmigrate
classifies wrongly (not a fact-table problem). Both are pinned: they fail once they stop differing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pymysql
import pytest

from migrator.config import Settings
from migrator.facts.locks import LOCK_FACTS, LockFact, lookup
from migrator.lint.classify import classify
from migrator.lint.engine import StatementResult, lint_text
from migrator.lint.rule import parse_version
from migrator.schema.model import Schema
from migrator.sql.analyze import analyze_text

if TYPE_CHECKING:
    from db_servers import MySqlServer

MODEL_VERSION = "8.0.40"  # the MySQL release whose rows are compared with MariaDB
ROWS = 200
NOT_SUPPORTED = {1845, 1846}  # ER_ALTER_OPERATION_NOT_SUPPORTED, ER_ALTER_OPERATION_NOT_SUPPORTED_REASON
PROBES = (
    ("INSTANT", "INSTANT", True),
    ("INPLACE, LOCK=NONE", "INPLACE", True),
    ("INPLACE", "INPLACE", False),
    ("COPY, LOCK=NONE", "COPY", True),
    ("COPY", "COPY", False),
)

SETUP = [
    "CREATE TABLE parent (id int PRIMARY KEY) ENGINE=InnoDB",
    """CREATE TABLE t (
  id int PRIMARY KEY,
  a int,
  s varchar(10),
  n int,
  nn int NOT NULL,
  d int DEFAULT 1,
  e enum('a', 'b'),
  parent_id int,
  KEY t_a_idx (a),
  CONSTRAINT t_parent_fk FOREIGN KEY (parent_id) REFERENCES parent (id),
  CONSTRAINT t_a_chk CHECK (a > -1000)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    "CREATE TABLE nopk (id int NOT NULL, a int) ENGINE=InnoDB",
]
HISTORY = ";\n".join(SETUP) + ";\n"

MARIADB_INSTANT = "https://mariadb.com/kb/en/innodb-online-ddl-operations-with-the-instant-alter-algorithm/"


@dataclass(frozen=True)
class Outcome:
    algorithm: str | None
    concurrent_dml: bool | None
    rebuild: bool


@dataclass(frozen=True)
class Diff:
    server: Outcome  # what MariaDB does (asserted)
    reason: str
    kind: str = "mariadb"  # "mariadb": MariaDB differs from MySQL 8.0; "row": the MySQL manual agrees with MariaDB


@dataclass(frozen=True)
class Case:
    id: str
    sql: str  # an ALTER TABLE the ALGORITHM clause can be appended to (or OPTIMIZE TABLE, see probe)
    row: tuple[str, str]
    table: str = "t"
    after: str | None = None  # the table's name afterwards (RENAME)
    probe: bool = True  # False: the statement takes no ALGORITHM clause; only the rebuild is observed
    mariadb: Diff | None = None


CASES: list[Case] = [
    Case("add-column", "ALTER TABLE t ADD COLUMN x int", ("add_column", "*")),
    Case("add-column-constant-default", "ALTER TABLE t ADD COLUMN x int DEFAULT 5", ("add_column", "*")),
    Case("add-column-virtual", "ALTER TABLE t ADD COLUMN x int AS (a * 2) VIRTUAL", ("add_column", "*")),
    Case("add-column-after", "ALTER TABLE t ADD COLUMN x int AFTER id", ("add_column", "*")),
    Case(
        "add-column-expression-default",
        "ALTER TABLE t ADD COLUMN x int DEFAULT (a + 1)",
        ("add_column", "expression_default"),
    ),
    Case(
        "add-column-now-default",
        "ALTER TABLE t ADD COLUMN x datetime DEFAULT (now())",
        ("add_column", "expression_default"),
        mariadb=Diff(
            Outcome("INSTANT", True, False),
            "MariaDB adds a column whose default is the current timestamp instantly (the value is taken once "
            f"for the existing rows): {MARIADB_INSTANT} (ADD COLUMN) and 'ALTER TABLE Improvements in MariaDB "
            "Server 10.3' (ADD COLUMN d DATETIME DEFAULT current_timestamp() under alter_algorithm=instant)",
        ),
    ),
    Case(
        "add-column-stored",
        "ALTER TABLE t ADD COLUMN x int AS (a * 2) STORED",
        ("add_column", "stored_generated"),
    ),
    Case(
        "add-column-auto-increment",
        "ALTER TABLE nopk ADD COLUMN x int AUTO_INCREMENT PRIMARY KEY",
        ("add_column", "auto_increment"),
        table="nopk",
    ),
    Case("drop-column", "ALTER TABLE t DROP COLUMN n", ("drop_column", "*")),
    Case("rename-column", "ALTER TABLE t RENAME COLUMN n TO n2", ("rename_column", "*")),
    Case("change-same-type", "ALTER TABLE t CHANGE n n2 int", ("rename_column", "*")),
    Case("enum-append", "ALTER TABLE t MODIFY e enum('a', 'b', 'c')", ("alter_column_type", "instant")),
    Case(
        "varchar-longer",
        "ALTER TABLE t MODIFY s varchar(20)",
        ("alter_column_type", "inplace"),
        mariadb=Diff(
            Outcome("INSTANT", True, False),
            f"MariaDB extends CHAR/VARCHAR instantly (MDEV-15563): {MARIADB_INSTANT}; MySQL 8.0 does it "
            "in place (Extending VARCHAR column size: Instant No, In Place Yes)",
        ),
    ),
    Case(
        "varchar-past-255-bytes",
        "ALTER TABLE t MODIFY s varchar(100)",
        ("alter_column_type", "*"),
        mariadb=Diff(
            Outcome("INSTANT", True, False),
            f"MariaDB extends VARCHAR instantly also past 255 bytes for ROW_FORMAT=DYNAMIC (MDEV-15563): "
            f"{MARIADB_INSTANT}; MySQL 8.0 needs a table copy when the length prefix grows from 1 to 2 bytes",
        ),
    ),
    Case("int-to-bigint", "ALTER TABLE t MODIFY a bigint", ("alter_column_type", "*")),
    Case("set-default", "ALTER TABLE t ALTER COLUMN a SET DEFAULT 3", ("set_default", "*")),
    Case("drop-default", "ALTER TABLE t ALTER COLUMN d DROP DEFAULT", ("drop_default", "*")),
    Case("add-index", "ALTER TABLE t ADD INDEX t_n_idx (n)", ("create_index", "*")),
    Case("add-unique", "ALTER TABLE t ADD CONSTRAINT t_s_key UNIQUE (s)", ("create_index", "*")),
    Case("drop-index", "ALTER TABLE t DROP INDEX t_a_idx", ("drop_index", "*")),
    Case(
        "add-foreign-key",
        "ALTER TABLE t ADD CONSTRAINT t_a_fk FOREIGN KEY (a) REFERENCES parent (id)",
        ("add_constraint", "foreign_key"),
    ),
    Case(
        "add-check",
        "ALTER TABLE t ADD CONSTRAINT t_n_chk CHECK (n > 0)",
        ("add_constraint", "check"),
    ),
    Case("modify-not-null", "ALTER TABLE t MODIFY n int NOT NULL", ("alter_column_type", "rebuild")),
    Case("modify-null", "ALTER TABLE t MODIFY nn int NULL", ("alter_column_type", "rebuild")),
    Case("add-primary-key", "ALTER TABLE nopk ADD PRIMARY KEY (id)", ("add_constraint", "primary_key"), table="nopk"),
    Case(
        "drop-check",
        "ALTER TABLE t DROP CONSTRAINT t_a_chk",
        ("drop_constraint", "*"),
        mariadb=Diff(
            Outcome("INSTANT", True, False),
            f"MariaDB drops a CHECK constraint instantly (MDEV-16331): {MARIADB_INSTANT}",
        ),
    ),
    Case(
        "drop-foreign-key",
        "ALTER TABLE t DROP FOREIGN KEY t_parent_fk",
        ("drop_constraint", "*"),
        mariadb=Diff(
            Outcome("INSTANT", True, False),
            "MariaDB drops a FOREIGN KEY with ALGORITHM=INSTANT (metadata only; MariaDB's ALGORITHM ladder is "
            "COPY < INPLACE < NOCOPY < INSTANT); MySQL 8.0 lists it as In Place Yes, Instant No",
        ),
    ),
    Case("rename-table", "ALTER TABLE t RENAME TO t_renamed", ("rename_table", "*"), after="t_renamed"),
    Case("engine-rebuild", "ALTER TABLE t ENGINE=InnoDB", ("alter_table_storage", "*")),
    Case("force-rebuild", "ALTER TABLE t FORCE", ("alter_table_storage", "*")),
    Case("optimize", "OPTIMIZE TABLE t", ("optimize_table", "*"), probe=False),
]

NOT_EXERCISED: dict[tuple[str, str, str, str], str] = {
    ("add_column", "not_last", "8.0.12", "8.0.29"): "describes MySQL 8.0.12-8.0.28; MariaDB has no such limit",
    ("add_column", "*", "0.0.0", "999.0.0"): "describes MySQL < 8.0.12 (no INSTANT)",
    ("drop_column", "*", "0.0.0", "999.0.0"): "describes MySQL < 8.0.29 (no INSTANT DROP COLUMN)",
    ("rename_column", "*", "0.0.0", "999.0.0"): "describes MySQL < 8.0.28 (no INSTANT RENAME COLUMN)",
    ("set_not_null", "*", "0.0.0", "999.0.0"): "no MySQL statement reaches it: MODIFY ... NOT NULL is classified "
    "as alter_column_type (variant rebuild)",
    ("drop_not_null", "*", "0.0.0", "999.0.0"): "no MySQL statement reaches it: MODIFY ... NULL is classified "
    "as alter_column_type (variant rebuild)",
    ("add_constraint", "foreign_key_unchecked", "0.0.0", "999.0.0"): "needs SET foreign_key_checks = 0 earlier in "
    "the session; the harness probes one statement at a time",
    ("add_constraint", "not_enforced", "0.0.0", "999.0.0"): "MariaDB has no CHECK ... NOT ENFORCED",
    ("add_constraint", "*", "0.0.0", "999.0.0"): "no MySQL statement reaches it: ADD CONSTRAINT ... UNIQUE "
    "normalizes to create_index",
    ("drop_table", "*", "0.0.0", "999.0.0"): "metadata lock only: DROP TABLE takes no ALGORITHM clause to probe",
    ("truncate", "*", "0.0.0", "999.0.0"): "metadata lock only: TRUNCATE takes no ALGORITHM clause to probe",
}


@dataclass(frozen=True)
class Gap:
    id: str
    sql: str
    server: Outcome  # what the server does (asserted)
    reason: str
    table: str = "t"


GAPS: list[Gap] = [
    Gap(
        "replace-primary-key",
        "ALTER TABLE t DROP PRIMARY KEY, ADD PRIMARY KEY (id, nn)",
        Outcome("INPLACE", True, True),
        "DROP PRIMARY KEY, ADD PRIMARY KEY in one statement normalizes to op 'unknown' (no row at all)",
    ),
]


# ---- bgmigrate's side ------------------------------------------------------------------------------


def target_version(server: MySqlServer) -> str:
    if server.is_mariadb:
        return MODEL_VERSION
    return server.version.split("-")[0]


def bgmigrate(sql: str, version: str) -> tuple[StatementResult, list[LockFact]]:
    settings = Settings(dialect="mysql", target_version=version, cache=False)
    result = lint_text(sql + ";\n", settings, history=[HISTORY])
    assert result.statements, f"bgmigrate found no statement in {sql!r}"
    schema = Schema()
    for st in analyze_text(HISTORY, "mysql"):
        for ch in st.changes:
            schema.apply(ch, "<history>")
    facts = [
        c.lock
        for st in analyze_text(sql + ";\n", "mysql")
        for ch in st.changes
        if (c := classify(ch, schema, "<migration>", "mysql", parse_version(version))).lock is not None
    ]
    return result.statements[-1], facts


def claimed(st: StatementResult, facts: list[LockFact]) -> Outcome:
    dml = all(f.concurrent_dml for f in facts) if facts else None
    return Outcome(st.algorithm, dml, st.rewrite == "rewrite")


# ---- the server's side -----------------------------------------------------------------------------


class Scratch:
    def __init__(self, server: MySqlServer) -> None:
        self.server = server
        self.conn = server.connect()
        self.mariadb = server.is_mariadb

    def close(self) -> None:
        self.conn.close()

    def execute(self, sql: str, args: Any = None) -> list[tuple[Any, ...]]:
        with self.conn.cursor() as cur:
            cur.execute(sql, args)
            return list(cur.fetchall())

    def reset(self) -> None:
        for table in ("t_renamed", "t", "nopk", "parent"):
            self.execute(f"DROP TABLE IF EXISTS {table}")
        for ddl in SETUP:
            self.execute(ddl)
        with self.conn.cursor() as cur:
            cur.executemany("INSERT INTO parent (id) VALUES (%s)", [(i,) for i in range(1, 51)])
            cur.executemany(
                "INSERT INTO t (id, a, s, n, nn, d, e, parent_id) VALUES (%s, %s, %s, %s, %s, %s, 'a', %s)",
                [(i, 1 + i % 50, f"s{i}", i, i, i, 1 + i % 50) for i in range(1, ROWS + 1)],
            )
            cur.executemany("INSERT INTO nopk (id, a) VALUES (%s, %s)", [(i, i) for i in range(1, ROWS + 1)])

    def table_id(self, table: str) -> int | None:
        view = "INNODB_SYS_TABLES" if self.mariadb else "INNODB_TABLES"
        rows = self.execute(
            f"SELECT table_id FROM information_schema.{view} WHERE name = %s", (f"{self.server.database}/{table}",)
        )
        return int(rows[0][0]) if rows else None

    def observe(self, case_sql: str, table: str, after: str | None, probe: bool) -> Outcome:
        self.reset()
        before = self.table_id(table)
        assert before is not None, f"no InnoDB table id for {table}: cannot observe rebuilds"
        if not probe:
            self.execute(case_sql)
            return Outcome(None, None, self.table_id(after or table) != before)
        refused: list[str] = []
        for clause, algorithm, dml in PROBES:
            try:
                self.execute(f"{case_sql}, ALGORITHM={clause}")
            except pymysql.err.MySQLError as err:
                if err.args and err.args[0] in NOT_SUPPORTED:
                    refused.append(f"{clause}: {err.args[1] if len(err.args) > 1 else err}")
                    continue
                raise
            return Outcome(algorithm, dml, self.table_id(after or table) != before)
        raise AssertionError(f"{case_sql!r}: every ALGORITHM was refused: {refused}")


@pytest.fixture(scope="module")
def scratch(mysql_db: MySqlServer) -> Any:
    s = Scratch(mysql_db)
    try:
        yield s
    finally:
        s.close()


# ---- tests -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_mysql_lock_fact_matches_server(case: Case, scratch: Scratch) -> None:
    server = scratch.server
    version = target_version(server)
    st, facts = bgmigrate(case.sql, version)
    rows = [(f.op, f.variant) for f in facts]
    assert case.row in rows, f"{case.sql!r} should exercise MySQL row {case.row}; bgmigrate picked {rows or 'none'}"
    fact = next(f for f in facts if (f.op, f.variant) == case.row)
    expected = Outcome(fact.algorithm, fact.concurrent_dml, fact.effect == "rewrite")
    assert claimed(st, facts) == expected, f"{case.sql!r}: the statement's summary disagrees with its row"
    observed = scratch.observe(case.sql, case.table, case.after, case.probe)
    if not case.probe:
        expected = Outcome(None, None, expected.rebuild)
    where = f"{case.sql!r} on {server.version} (rows read at MySQL {version})"
    diff = case.mariadb if server.is_mariadb else None
    if diff is None:
        assert observed == expected, f"{where}: server {observed}, row {expected}"
        return
    assert observed == diff.server, f"{where}: server {observed}, recorded MariaDB behaviour {diff.server}"
    assert observed != expected, (
        f"{where}: MariaDB now matches the row {expected}; drop the recorded difference ({diff.reason})"
    )


@pytest.mark.parametrize("gap", GAPS, ids=[g.id for g in GAPS])
def test_mysql_known_classification_gap(gap: Gap, scratch: Scratch) -> None:
    version = target_version(scratch.server)
    st, facts = bgmigrate(gap.sql, version)
    observed = scratch.observe(gap.sql, gap.table, None, True)
    assert observed == gap.server, f"{gap.sql!r}: server {observed}, recorded {gap.server}"
    assert claimed(st, facts) != observed, (
        f"{gap.sql!r}: bgmigrate now matches the server ({observed}): the gap ({gap.reason}) is fixed, "
        "move it into CASES"
    )


def _key(fact: LockFact) -> tuple[str, str, str, str]:
    return fact.op, fact.variant, ".".join(map(str, fact.min)), ".".join(map(str, fact.max))


def test_every_mysql_row_is_exercised_or_explained() -> None:
    rows = {_key(f) for f in LOCK_FACTS if f.dialect == "mysql"}
    version = parse_version(MODEL_VERSION)
    exercised = {_key(f) for case in CASES if (f := lookup(case.row[0], case.row[1], "mysql", version)) is not None}
    missing = sorted(rows - exercised - set(NOT_EXERCISED))
    assert not missing, f"MySQL lock facts with no integration case and no reason in NOT_EXERCISED: {missing}"
    stale = sorted(set(NOT_EXERCISED) - (rows - exercised))
    assert not stale, f"NOT_EXERCISED names rows that are gone or now exercised: {stale}"
