"""Suggested fixes rewrite the user's own statement."""

from __future__ import annotations

import pytest

from migrator.lint.fixes import concurrently, guarded, not_valid


@pytest.mark.parametrize(
    ("sql", "fixed"),
    [
        ("CREATE INDEX i ON t (a)", "CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a);"),
        ("create unique index i on t (a)", "create unique index CONCURRENTLY IF NOT EXISTS i on t (a);"),
        ("DROP INDEX i", "DROP INDEX CONCURRENTLY i;"),
        ("REINDEX (VERBOSE) TABLE t", "REINDEX (VERBOSE) TABLE CONCURRENTLY t;"),
        ("ALTER TABLE t DETACH PARTITION t_2020", "ALTER TABLE t DETACH PARTITION t_2020 CONCURRENTLY;"),
        ("REFRESH MATERIALIZED VIEW mv", "REFRESH MATERIALIZED VIEW CONCURRENTLY mv;"),
    ],
)
def test_concurrently(sql, fixed):
    assert concurrently(sql) == fixed


def test_not_valid_goes_on_the_constraint_action():
    assert not_valid("ALTER TABLE t ADD CONSTRAINT fk FOREIGN KEY (a) REFERENCES u (id)") == (
        "ALTER TABLE t ADD CONSTRAINT fk FOREIGN KEY (a) REFERENCES u (id) NOT VALID;"
    )
    assert not_valid("ALTER TABLE t ADD COLUMN c int, ADD CHECK (c IN (1, 2)), ADD COLUMN 'x,y' text") == (
        "ALTER TABLE t ADD COLUMN c int, ADD CHECK (c IN (1, 2)) NOT VALID, ADD COLUMN 'x,y' text;"
    )


@pytest.mark.parametrize(
    ("sql", "fixed"),
    [
        ("CREATE TABLE t (a int)", "CREATE TABLE IF NOT EXISTS t (a int);"),
        ("CREATE INDEX CONCURRENTLY i ON t (a)", "CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a);"),
        ("ALTER TABLE t ADD c int", "ALTER TABLE t ADD COLUMN IF NOT EXISTS c int;"),
        ("ALTER TABLE t DROP COLUMN c", "ALTER TABLE t DROP COLUMN IF EXISTS c;"),
        ("DROP INDEX CONCURRENTLY i", "DROP INDEX CONCURRENTLY IF EXISTS i;"),
        ("ALTER TYPE e ADD VALUE 'x'", "ALTER TYPE e ADD VALUE IF NOT EXISTS 'x';"),
    ],
)
def test_guarded(sql, fixed):
    assert guarded(sql) == fixed
