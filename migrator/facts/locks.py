"""Lock and rewrite facts per operation, dialect and server version: the one table bgmigrate reads.

Each row says, for an operation (and a variant of it, computed from the
change and the schema), which lock the server takes, what it does to the
table while holding it (``none``: catalog only; ``scan``: reads every row;
``rewrite``: copies the table and its indexes), and where that fact comes
from. For MySQL the row also gives the online-DDL algorithm and whether
concurrent DML is allowed; ``lock`` stays a PostgreSQL lock-mode name or
``None``, so MySQL rows carry ``None`` there.

Rows are matched top to bottom: the first row whose op, variant, dialect and
version range match wins. Versions are ``(major, minor, patch)`` tuples;
``min`` is inclusive, ``max`` exclusive.

The PostgreSQL rows are checked against a real server (locks from ``pg_locks``,
rewrites from ``relfilenode``, scans from the transaction's row counters) by
``tests/integration/test_lock_facts_pg.py``; the MySQL rows' algorithms are probed
on MariaDB by ``tests/integration/test_lock_facts_mysql.py``. A row those tests
cannot exercise is listed there with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass

PG_ALTER = "https://www.postgresql.org/docs/current/sql-altertable.html"
PG_LOCKS = "https://www.postgresql.org/docs/current/explicit-locking.html"
PG_INDEX = "https://www.postgresql.org/docs/current/sql-createindex.html"
PG_DROPINDEX = "https://www.postgresql.org/docs/current/sql-dropindex.html"
PG_REINDEX = "https://www.postgresql.org/docs/current/sql-reindex.html"
PG_VACUUM = "https://www.postgresql.org/docs/current/sql-vacuum.html"
PG_CLUSTER = "https://www.postgresql.org/docs/current/sql-cluster.html"
PG_TRUNCATE = "https://www.postgresql.org/docs/current/sql-truncate.html"
PG_ENUM = "https://www.postgresql.org/docs/current/sql-altertype.html"
PG_MATVIEW = "https://www.postgresql.org/docs/current/sql-refreshmaterializedview.html"
PG11_DEFAULTS = "https://www.postgresql.org/docs/11/release-11.html (ADD COLUMN with non-null default)"
PG_NEW_FK_COLUMN = (
    "https://www.postgresql.org/docs/current/sql-altertable.html; src/backend/parser/parse_utilcmd.c "
    "(transformFKConstraints: a foreign key on a column added with a NULL default is not validated)"
)
MY_ONLINE = "https://dev.mysql.com/doc/refman/8.0/en/innodb-online-ddl-operations.html"
MY_MDL = "https://dev.mysql.com/doc/refman/8.0/en/metadata-locking.html"

ACCESS_EXCLUSIVE = "ACCESS EXCLUSIVE"
EXCLUSIVE = "EXCLUSIVE"
SHARE_ROW_EXCLUSIVE = "SHARE ROW EXCLUSIVE"
SHARE = "SHARE"
SHARE_UPDATE_EXCLUSIVE = "SHARE UPDATE EXCLUSIVE"
ROW_EXCLUSIVE = "ROW EXCLUSIVE"
ROW_SHARE = "ROW SHARE"
ACCESS_SHARE = "ACCESS SHARE"

# Lock modes that block ordinary reads (SELECT) or writes (INSERT/UPDATE/DELETE) of the table.
BLOCKS_READS = frozenset({ACCESS_EXCLUSIVE})
BLOCKS_WRITES = frozenset({ACCESS_EXCLUSIVE, EXCLUSIVE, SHARE_ROW_EXCLUSIVE, SHARE})
# Table lock modes from weakest to strongest, and what a statement does to the table, from cheapest.
LOCK_STRENGTH = {
    ACCESS_SHARE: 0,
    "ROW SHARE": 1,
    ROW_EXCLUSIVE: 2,
    SHARE_UPDATE_EXCLUSIVE: 3,
    SHARE: 4,
    SHARE_ROW_EXCLUSIVE: 5,
    EXCLUSIVE: 6,
    ACCESS_EXCLUSIVE: 7,
}
EFFECT_COST = {"none": 0, "scan": 1, "rewrite": 2}

Version = tuple[int, int, int]
ANY: Version = (0, 0, 0)
NEVER: Version = (999, 0, 0)


@dataclass(frozen=True, slots=True)
class LockFact:
    op: str
    variant: str  # "*" matches any variant
    dialect: str
    lock: str | None
    effect: str  # none | scan | rewrite
    source: str
    min: Version = ANY
    max: Version = NEVER
    algorithm: str | None = None  # MySQL: INSTANT | INPLACE | COPY
    concurrent_dml: bool = True  # MySQL: can other sessions write meanwhile?
    note: str = ""
    # PostgreSQL ATTACH / DETACH PARTITION: the lock on the partition the statement names (``lock`` is
    # the parent's); stronger than the parent's for ATTACH
    partition_lock: str | None = None

    @property
    def blocks_reads(self) -> bool:
        if self.dialect == "mysql":
            return False
        return self.lock in BLOCKS_READS

    @property
    def blocks_writes(self) -> bool:
        if self.dialect == "mysql":
            return not self.concurrent_dml
        return self.lock in BLOCKS_WRITES


P, M = "postgres", "mysql"
AEL, SREL, SUEL = ACCESS_EXCLUSIVE, SHARE_ROW_EXCLUSIVE, SHARE_UPDATE_EXCLUSIVE

LOCK_FACTS: tuple[LockFact, ...] = (
    # ---- PostgreSQL: columns ---------------------------------------------------------------------
    LockFact(
        "add_column",
        "volatile_default",
        P,
        AEL,
        "rewrite",
        PG_ALTER,
        note="volatile default is evaluated per row",
    ),
    LockFact("add_column", "generated_stored", P, AEL, "rewrite", PG_ALTER, note="stored generated column"),
    LockFact("add_column", "serial", P, AEL, "rewrite", PG_ALTER, note="serial/identity fills every row"),
    LockFact("add_column", "default", P, AEL, "rewrite", PG11_DEFAULTS, max=(11, 0, 0)),
    LockFact("add_column", "default", P, AEL, "none", PG11_DEFAULTS, min=(11, 0, 0)),
    LockFact(
        "add_column",
        "references",
        P,
        AEL,
        "none",
        PG_NEW_FK_COLUMN,
        note="also SHARE ROW EXCLUSIVE on the referenced table; the new column is all NULL, so the "
        "foreign key is not validated",
    ),
    LockFact(
        "add_column",
        "references_default",
        P,
        AEL,
        "rewrite",
        PG11_DEFAULTS,
        max=(11, 0, 0),
        note="also SHARE ROW EXCLUSIVE on the referenced table",
    ),
    LockFact(
        "add_column",
        "references_default",
        P,
        AEL,
        "scan",
        PG_NEW_FK_COLUMN,
        min=(11, 0, 0),
        note="also SHARE ROW EXCLUSIVE on the referenced table; the default fills every row, so the "
        "foreign key is validated: both tables are read under the lock",
    ),
    LockFact(
        "add_column", "unique", P, AEL, "scan", PG_ALTER, note="builds the UNIQUE / PRIMARY KEY index under the lock"
    ),
    LockFact("add_column", "*", P, AEL, "none", PG_ALTER),
    LockFact("drop_column", "*", P, AEL, "none", PG_ALTER, note="space is reclaimed by later rewrites"),
    LockFact("rename_column", "*", P, AEL, "none", PG_ALTER),
    LockFact("alter_column_type", "none", P, AEL, "none", PG_ALTER, note="binary coercible: no rewrite"),
    LockFact(
        "alter_column_type",
        "scan",
        P,
        AEL,
        "rewrite",
        PG_ALTER,
        note="a check of existing values (e.g. varchar to varchar(n)) is no cheaper: PostgreSQL rewrites "
        "unless the new type is binary coercible with no tighter limit",
    ),
    LockFact("alter_column_type", "*", P, AEL, "rewrite", PG_ALTER, note="table and indexes rewritten"),
    LockFact(
        "set_not_null",
        "proven",
        P,
        AEL,
        "none",
        PG_ALTER,
        min=(12, 0, 0),
        note="a validated CHECK proves no NULLs",
    ),
    LockFact("set_not_null", "already", P, AEL, "none", PG_ALTER, note="the column is NOT NULL already: no scan"),
    LockFact("set_not_null", "*", P, AEL, "scan", PG_ALTER),
    LockFact("drop_not_null", "*", P, AEL, "none", PG_ALTER),
    LockFact("set_default", "*", P, AEL, "none", PG_ALTER),
    LockFact("drop_default", "*", P, AEL, "none", PG_ALTER),
    # ---- PostgreSQL: constraints -----------------------------------------------------------------
    LockFact("add_constraint", "foreign_key_not_valid", P, SREL, "none", PG_ALTER, note="on both tables"),
    LockFact(
        "add_constraint",
        "foreign_key",
        P,
        SREL,
        "scan",
        PG_ALTER,
        note="on both tables; writes to both blocked",
    ),
    LockFact("add_constraint", "check_not_valid", P, AEL, "none", PG_ALTER),
    LockFact("add_constraint", "check", P, AEL, "scan", PG_ALTER),
    LockFact("add_constraint", "not_null_not_valid", P, AEL, "none", PG_ALTER, min=(18, 0, 0)),
    LockFact("add_constraint", "not_null", P, AEL, "scan", PG_ALTER),
    LockFact("add_constraint", "using_index", P, AEL, "none", PG_ALTER, note="adopts an existing unique index"),
    LockFact("add_constraint", "using_index_scan", P, AEL, "scan", PG_ALTER, note="PRIMARY KEY on nullable columns"),
    LockFact("add_constraint", "*", P, AEL, "scan", PG_ALTER, note="builds a unique index under the lock"),
    LockFact("drop_constraint", "*", P, AEL, "none", PG_ALTER, note="a foreign key also locks the referenced table"),
    LockFact(
        "validate_constraint",
        "*",
        P,
        SUEL,
        "scan",
        PG_ALTER,
        note="reads and writes continue; a foreign key also takes ROW SHARE on the referenced table",
    ),
    # ---- PostgreSQL: indexes ---------------------------------------------------------------------
    LockFact(
        "create_index",
        "concurrently",
        P,
        SUEL,
        "scan",
        PG_INDEX,
        note="two scans; waits for older transactions",
    ),
    LockFact("create_index", "*", P, SHARE, "scan", PG_INDEX, note="writes blocked for the whole build"),
    LockFact("drop_index", "concurrently", P, SUEL, "none", PG_DROPINDEX),
    LockFact("drop_index", "*", P, AEL, "none", PG_DROPINDEX),
    LockFact(
        "reindex",
        "concurrently",
        P,
        SUEL,
        "scan",
        PG_REINDEX,
        min=(12, 0, 0),
        note="builds new index files from a full read of the table; the table keeps its files",
    ),
    LockFact(
        "reindex",
        "*",
        P,
        SHARE,
        "scan",
        PG_REINDEX,
        note="ACCESS EXCLUSIVE on the index itself; rebuilds the index from a full read of the table, "
        "the table keeps its files",
    ),
    # ---- PostgreSQL: tables and other objects ----------------------------------------------------
    LockFact(
        "create_table",
        "references",
        P,
        SREL,
        "none",
        PG_ALTER,
        note="a FOREIGN KEY to an existing table takes SHARE ROW EXCLUSIVE on that table",
    ),
    LockFact("create_table", "*", P, None, "none", PG_LOCKS),
    LockFact("create_table_as", "*", P, None, "none", PG_LOCKS),
    LockFact("drop_table", "*", P, AEL, "none", PG_LOCKS),
    LockFact("rename_table", "*", P, AEL, "none", PG_ALTER),
    LockFact("truncate", "*", P, AEL, "none", PG_TRUNCATE),
    LockFact("alter_table_storage", "*", P, AEL, "rewrite", PG_ALTER, note="SET TABLESPACE / LOGGED / UNLOGGED"),
    LockFact(
        "alter_table_other",
        "index_set_tablespace",
        P,
        AEL,
        "rewrite",
        "https://www.postgresql.org/docs/current/sql-alterindex.html",
        note="ALTER INDEX ... SET TABLESPACE copies the index",
    ),
    LockFact("alter_table_other", "set statistics", P, SUEL, "none", PG_ALTER),
    LockFact("alter_table_other", "cluster on", P, SUEL, "none", PG_ALTER),
    LockFact("alter_table_other", "enable trigger", P, SREL, "none", PG_ALTER),
    LockFact("alter_table_other", "disable trigger", P, SREL, "none", PG_ALTER),
    LockFact(
        "alter_table_other",
        "*",
        P,
        AEL,
        "none",
        PG_ALTER,
        note="most ALTER TABLE forms; SET (storage parameters) takes less for some parameters "
        "(fillfactor, autovacuum_*: SHARE UPDATE EXCLUSIVE), but the change does not say which",
    ),
    LockFact(
        "attach_partition",
        "*",
        P,
        SUEL,
        "scan",
        PG_ALTER,
        min=(12, 0, 0),
        note="on the parent; ACCESS EXCLUSIVE on the partition being attached (and on a default "
        "partition), which is scanned unless a CHECK implies the bound",
        partition_lock=AEL,
    ),
    LockFact("attach_partition", "*", P, AEL, "scan", PG_ALTER, max=(12, 0, 0), partition_lock=AEL),
    LockFact(
        "detach_partition",
        "concurrently",
        P,
        SUEL,
        "none",
        PG_ALTER,
        min=(14, 0, 0),
        note="on the parent; its second transaction takes ACCESS EXCLUSIVE on the partition",
        partition_lock=AEL,
    ),
    LockFact(
        "detach_partition", "*", P, AEL, "none", PG_ALTER, note="on the parent and the partition", partition_lock=AEL
    ),
    LockFact("vacuum", "full", P, AEL, "rewrite", PG_VACUUM),
    LockFact("vacuum", "*", P, SUEL, "scan", PG_VACUUM),
    LockFact("cluster", "*", P, AEL, "rewrite", PG_CLUSTER),
    LockFact("analyze", "*", P, SUEL, "scan", PG_LOCKS),
    LockFact(
        "refresh_materialized_view",
        "concurrently",
        P,
        EXCLUSIVE,
        "scan",
        PG_MATVIEW,
        note="reads continue; the new contents are diffed against the old and applied as row "
        "changes, the view keeps its files",
    ),
    LockFact("refresh_materialized_view", "*", P, AEL, "rewrite", PG_MATVIEW),
    LockFact("drop_view", "*", P, AEL, "none", PG_LOCKS),
    LockFact("rename_view", "*", P, AEL, "none", PG_ALTER),
    LockFact("create_view", "*", P, None, "none", PG_LOCKS),
    LockFact(
        "add_enum_value",
        "*",
        P,
        EXCLUSIVE,
        "none",
        PG_ENUM,
        note="on the type; cannot be used in the same transaction before PG 12",
    ),
    LockFact("lock_table", "access_share", P, ACCESS_SHARE, "none", PG_LOCKS),
    LockFact("lock_table", "row_share", P, ROW_SHARE, "none", PG_LOCKS),
    LockFact("lock_table", "row_exclusive", P, ROW_EXCLUSIVE, "none", PG_LOCKS),
    LockFact("lock_table", "share_update_exclusive", P, SUEL, "none", PG_LOCKS),
    LockFact("lock_table", "share", P, SHARE, "none", PG_LOCKS),
    LockFact("lock_table", "share_row_exclusive", P, SREL, "none", PG_LOCKS),
    LockFact("lock_table", "exclusive", P, EXCLUSIVE, "none", PG_LOCKS),
    LockFact("lock_table", "*", P, AEL, "none", PG_LOCKS, note="ACCESS EXCLUSIVE, also when no mode is named"),
    LockFact("insert", "*", P, ROW_EXCLUSIVE, "none", PG_LOCKS),
    LockFact("update", "*", P, ROW_EXCLUSIVE, "scan", PG_LOCKS),
    LockFact("delete", "*", P, ROW_EXCLUSIVE, "scan", PG_LOCKS),
    LockFact(
        "create_object",
        "trigger",
        P,
        SREL,
        "none",
        "https://www.postgresql.org/docs/current/sql-createtrigger.html",
    ),
    LockFact(
        "drop_object",
        "trigger",
        P,
        AEL,
        "none",
        "https://www.postgresql.org/docs/current/sql-droptrigger.html",
    ),
    # ---- MySQL 8 online DDL ----------------------------------------------------------------------
    LockFact(
        "add_column",
        "stored_generated",
        M,
        None,
        "rewrite",
        MY_ONLINE,
        algorithm="COPY",
        concurrent_dml=False,
    ),
    LockFact(
        "add_column",
        "auto_increment",
        M,
        None,
        "rewrite",
        MY_ONLINE,
        algorithm="INPLACE",
        concurrent_dml=False,
        note="rebuilds the table with LOCK=SHARED at least: no concurrent DML",
    ),
    LockFact(
        "add_column",
        "expression_default",
        M,
        None,
        "rewrite",
        MY_ONLINE,
        algorithm="COPY",
        concurrent_dml=False,
    ),
    LockFact(
        "add_column",
        "not_last",
        M,
        None,
        "rewrite",
        MY_ONLINE,
        min=(8, 0, 12),
        max=(8, 0, 29),
        algorithm="INPLACE",
        note="INSTANT only at the last position before 8.0.29",
    ),
    LockFact("add_column", "*", M, None, "none", MY_ONLINE, min=(8, 0, 12), algorithm="INSTANT"),
    LockFact(
        "add_column",
        "*",
        M,
        None,
        "rewrite",
        MY_ONLINE,
        algorithm="INPLACE",
        note="rebuilds the table; DML allowed",
    ),
    LockFact("drop_column", "*", M, None, "none", MY_ONLINE, min=(8, 0, 29), algorithm="INSTANT"),
    LockFact(
        "drop_column",
        "*",
        M,
        None,
        "rewrite",
        MY_ONLINE,
        algorithm="INPLACE",
        note="rebuilds the table; DML allowed",
    ),
    LockFact("rename_column", "*", M, None, "none", MY_ONLINE, min=(8, 0, 28), algorithm="INSTANT"),
    LockFact("rename_column", "*", M, None, "none", MY_ONLINE, algorithm="INPLACE"),
    LockFact("alter_column_type", "instant", M, None, "none", MY_ONLINE, algorithm="INSTANT"),
    LockFact("alter_column_type", "inplace", M, None, "none", MY_ONLINE, algorithm="INPLACE"),
    LockFact(
        "alter_column_type",
        "rebuild",
        M,
        None,
        "rewrite",
        MY_ONLINE,
        algorithm="INPLACE",
        note="NULL / NOT NULL changes rebuild the table in place; concurrent DML allowed",
    ),
    LockFact(
        "alter_column_type",
        "*",
        M,
        None,
        "rewrite",
        MY_ONLINE,
        algorithm="COPY",
        concurrent_dml=False,
        note="data type change copies the table",
    ),
    LockFact(
        "set_not_null",
        "*",
        M,
        None,
        "rewrite",
        MY_ONLINE,
        algorithm="INPLACE",
        note="rebuilds the table; DML allowed",
    ),
    LockFact("drop_not_null", "*", M, None, "rewrite", MY_ONLINE, algorithm="INPLACE"),
    LockFact("set_default", "*", M, None, "none", MY_ONLINE, algorithm="INSTANT"),
    LockFact("drop_default", "*", M, None, "none", MY_ONLINE, algorithm="INSTANT"),
    LockFact("create_index", "*", M, None, "scan", MY_ONLINE, algorithm="INPLACE"),
    LockFact("drop_index", "*", M, None, "none", MY_ONLINE, algorithm="INPLACE"),
    LockFact(
        "add_constraint",
        "foreign_key_unchecked",
        M,
        None,
        "none",
        MY_ONLINE,
        algorithm="INPLACE",
        note="with foreign_key_checks=0 existing rows are not checked",
    ),
    LockFact(
        "add_constraint",
        "foreign_key",
        M,
        None,
        "rewrite",
        MY_ONLINE,
        algorithm="COPY",
        concurrent_dml=False,
        note="INPLACE only with foreign_key_checks=0",
    ),
    LockFact(
        "add_constraint",
        "not_enforced",
        M,
        None,
        "none",
        "https://dev.mysql.com/doc/refman/8.0/en/create-table-check-constraints.html",
        note="NOT ENFORCED: declared only, existing rows are not read; the manual names no algorithm for it",
    ),
    LockFact("add_constraint", "check", M, None, "rewrite", MY_ONLINE, algorithm="COPY", concurrent_dml=False),
    LockFact(
        "add_constraint",
        "primary_key",
        M,
        None,
        "rewrite",
        MY_ONLINE,
        algorithm="INPLACE",
        note="rebuilds the table",
    ),
    LockFact("add_constraint", "*", M, None, "scan", MY_ONLINE, algorithm="INPLACE"),
    LockFact("drop_constraint", "*", M, None, "none", MY_ONLINE, algorithm="INPLACE"),
    LockFact("rename_table", "*", M, None, "none", MY_ONLINE, algorithm="INSTANT"),
    LockFact("drop_table", "*", M, None, "none", MY_MDL),
    LockFact("truncate", "*", M, None, "none", MY_MDL),
    LockFact(
        "alter_table_storage",
        "*",
        M,
        None,
        "rewrite",
        MY_ONLINE,
        algorithm="INPLACE",
        note="ENGINE= rebuilds the table",
    ),
    LockFact("optimize_table", "*", M, None, "rewrite", MY_ONLINE, algorithm="INPLACE"),
)


def _version_ok(fact: LockFact, version: Version) -> bool:
    return fact.min <= version < fact.max


_BY_KEY: dict[tuple[str, str], list[LockFact]] = {}
for _fact in LOCK_FACTS:
    _BY_KEY.setdefault((_fact.op, _fact.dialect), []).append(_fact)


def lookup(op: str, variant: str, dialect: str, version: Version) -> LockFact | None:
    for fact in _BY_KEY.get((op, dialect), ()):
        if (fact.variant == "*" or fact.variant == variant) and _version_ok(fact, version):
            return fact
    return None
