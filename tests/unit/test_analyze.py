"""Parsing and normalization: sqlglot trees, the token fallback and PostgreSQL's own parser."""

from __future__ import annotations

import pytest

from migrator.sql.analyze import analyze_text


def one(sql: str, dialect: str = "postgres"):
    statements = analyze_text(sql, dialect)
    assert len(statements) == 1, statements
    return statements[0]


@pytest.mark.parametrize(
    ("sql", "op", "table", "attrs"),
    [
        ("ALTER TABLE t VALIDATE CONSTRAINT c", "validate_constraint", "t", {"constraint": "c"}),
        (
            "ALTER TYPE mood ADD VALUE 'meh' AFTER 'ok'",
            "add_enum_value",
            None,
            {"type_name": "mood", "value": "meh"},
        ),
        (
            "ALTER TABLE t ADD CONSTRAINT u UNIQUE USING INDEX t_a_idx",
            "add_constraint",
            "t",
            {"kind": "unique", "using_index": "t_a_idx"},
        ),
        ("VACUUM FULL t", "vacuum", "t", {"full": True}),
        ("VACUUM (VERBOSE, ANALYZE) t", "vacuum", "t", {"full": False}),
        ("REINDEX TABLE CONCURRENTLY t", "reindex", "t", {"concurrently": True}),
        ("REINDEX INDEX t_a_idx", "reindex", None, {"index": "t_a_idx", "concurrently": False}),
        ("CLUSTER t USING t_pkey", "cluster", "t", {"index": "t_pkey"}),
        (
            "ALTER TABLE t DETACH PARTITION t_2020 CONCURRENTLY",
            "detach_partition",
            "t",
            {"concurrently": True},
        ),
        (
            "ALTER TABLE ONLY public.t ADD CONSTRAINT fk FOREIGN KEY (a) REFERENCES u (id) NOT VALID",
            "add_constraint",
            "t",
            {"kind": "foreign_key", "not_valid": True, "references": "u"},
        ),
        (
            "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS i ON s.t (a)",
            "create_index",
            "s.t",
            {"unique": True, "concurrently": True, "if_not_exists": True},
        ),
        (
            'ALTER TABLE "Users" RENAME COLUMN "Email" TO email',
            "rename_column",
            "Users",
            {"new_name": "email"},
        ),
        (
            "ALTER TABLE t ADD COLUMN c uuid DEFAULT gen_random_uuid()",
            "add_column",
            "t",
            {"volatile_default": True},
        ),
        (
            "ALTER TABLE t ADD COLUMN c timestamptz DEFAULT now()",
            "add_column",
            "t",
            {"volatile_default": False},
        ),
        ("ALTER TABLE t ADD COLUMN c int NOT NULL", "add_column", "t", {"nullable": False, "default": None}),
        ("ALTER TABLE t ALTER COLUMN c TYPE bigint", "alter_column_type", "t", {"type": "bigint"}),
        ("DROP INDEX CONCURRENTLY IF EXISTS i", "drop_index", None, {"index": "i", "concurrently": True}),
        (
            "REFRESH MATERIALIZED VIEW CONCURRENTLY mv",
            "refresh_materialized_view",
            "mv",
            {"concurrently": True},
        ),
        ("CREATE DOMAIN posint AS int CHECK (VALUE > 0)", "create_domain", None, {"has_check": True}),
        ("LOCK TABLE t IN SHARE MODE", "lock_table", "t", {"mode": "SHARE"}),
    ],
)
def test_postgres_statements_normalize(sql, op, table, attrs):
    st = one(sql)
    assert st.problem is None, st.problem
    change = st.changes[0]
    assert change.op == op
    assert change.table == table
    for key, value in attrs.items():
        assert change.attrs.get(key) == value, (key, change.attrs)


def test_multi_action_alter_yields_one_change_per_action():
    st = one("ALTER TABLE t ADD COLUMN a int, DROP COLUMN b, ALTER COLUMN c SET NOT NULL")
    assert [(c.op, c.column) for c in st.changes] == [
        ("add_column", "a"),
        ("drop_column", "b"),
        ("set_not_null", "c"),
    ]


@pytest.mark.parametrize(
    ("sql", "op", "attrs"),
    [
        ("ALTER TABLE t CHANGE a b int", "rename_column", {"new_name": "b"}),
        ("ALTER TABLE t RENAME COLUMN a TO b", "rename_column", {"new_name": "b"}),
        ("RENAME TABLE a TO b", "rename_table", {"new_name": "b"}),
        (
            "ALTER TABLE t ADD COLUMN b int, ALGORITHM=COPY, LOCK=SHARED",
            "add_column",
            {"algorithm": "COPY", "lock_clause": "SHARED"},
        ),
        (
            "ALTER TABLE t MODIFY a varchar(10) NOT NULL",
            "alter_column_type",
            {"nullable": False, "redefine": True},
        ),
        ("CREATE INDEX i ON t (a) ALGORITHM=INPLACE LOCK=NONE", "create_index", {"algorithm": "INPLACE"}),
        ("OPTIMIZE TABLE t", "optimize_table", {}),
    ],
)
def test_mysql_statements_normalize(sql, op, attrs):
    st = one(sql, "mysql")
    assert st.problem is None, st.problem
    ops = [c.op for c in st.changes]
    assert op in ops
    change = st.changes[ops.index(op)]
    for key, value in attrs.items():
        assert change.attrs.get(key) == value, (key, change.attrs)


@pytest.mark.parametrize(
    ("sql", "line", "column"),
    [
        ("ALTER TABLE a ADD COLUM x int", 1, 27),
        ("CREATE TABLE t (id int,)", 1, 24),
        ("SELECT 1;\nALTER TABLE t\n  ADD CONSTRAINT c CHEK (a > 0)", 3, 20),
    ],
)
def test_real_syntax_errors_are_found_with_position(sql, line, column):
    st = analyze_text(sql, "postgres")[-1]
    assert st.problem is not None and st.problem.kind == "syntax"
    assert (st.problem.line, st.problem.column) == (line, column)


@pytest.mark.parametrize(
    "sql",
    [
        "CLUSTER accounts USING accounts_pkey",
        "ALTER TABLE t ALTER COLUMN c SET STATISTICS 500",
        "CREATE EXTENSION IF NOT EXISTS pgcrypto",
        "COMMENT ON COLUMN t.c IS 'x;y'",
        "ALTER TABLE t OWNER TO app",
        "START TRANSACTION",
        "ALTER TYPE mood RENAME VALUE 'a' TO 'b'",
    ],
)
def test_valid_statements_are_never_syntax_errors(sql):
    st = one(sql)
    assert st.problem is None, st.problem
    assert st.changes[0].op not in ("unknown", "syntax_error")


def test_valid_but_unmodelled_statement_is_unclassified_not_a_syntax_error():
    st = one("DO $$ BEGIN PERFORM 1; END $$")
    assert st.problem is not None and st.problem.kind == "unclassified"


def test_syntax_error_does_not_stop_the_file():
    statements = analyze_text("ALTER TABLE a ADD COLUM x int;\nALTER TABLE a ADD COLUMN y int;", "postgres")
    assert statements[0].problem is not None
    assert statements[1].problem is None and statements[1].changes[0].op == "add_column"


@pytest.mark.parametrize(
    ("sql", "dialect"),
    [
        ("SET lock_timeout = '2s'", "postgres"),
        ("SET lock_timeout TO '2s'", "postgres"),
        ("SET LOCAL statement_timeout = '1min'", "postgres"),
        ("SET SESSION lock_wait_timeout = 5", "mysql"),
        ("SET @@session.lock_wait_timeout = 5", "mysql"),
        ("SET foreign_key_checks = 0", "mysql"),
        ("COMMENT ON TABLE t IS 'a; b'", "postgres"),
        ("BEGIN", "postgres"),
        ("START TRANSACTION", "mysql"),
        ("COMMIT WORK", "postgres"),
        ("END", "postgres"),
        ("ROLLBACK", "postgres"),
    ],
)
def test_fast_path_reads_what_the_parser_reads(sql, dialect, monkeypatch):
    """Session settings, transaction control and comments skip sqlglot: same changes either way."""
    fast = [c.to_json() for c in one(sql, dialect).changes]
    monkeypatch.setenv("BGMIGRATE_NO_FAST_PATH", "1")
    slow = [c.to_json() for c in one(sql, dialect).changes]
    assert fast == slow
