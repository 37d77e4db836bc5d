"""MariaDB/MySQL helpers of the fault suite: a fresh database per test (and its bgmigrate state
database), the release of tests/integration/test_runner_mysql.py, the schema as ``SHOW CREATE TABLE``
prints it and the rows of every table."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from runner_harness import Release, my_database  # noqa: F401 (the fault tests use it from here)
from runner_harness import my_exec as execute
from runner_harness import my_rows as rows

BASE = """\
CREATE TABLE customers (id bigint PRIMARY KEY, email varchar(200) NOT NULL, name varchar(100),
  created_at datetime NOT NULL DEFAULT CURRENT_TIMESTAMP, fax varchar(40));
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint NOT NULL, total int, status varchar(20));
"""
RELEASE = """\
ALTER TABLE customers RENAME COLUMN email TO email_address;
CREATE INDEX orders_customer_idx ON orders (customer_id);
ALTER TABLE customers ADD COLUMN tier varchar(20);
UPDATE orders SET status = 'new' WHERE status IS NULL;
ALTER TABLE orders MODIFY total int NOT NULL;
ALTER TABLE customers DROP COLUMN fax;
"""


def seed(server: Any, customers: int) -> None:
    execute(server, *[s for s in BASE.split(";") if s.strip()])

    def fax(i: int) -> str:
        return f"'+1-555-{i}'" if i % 3 == 0 else "NULL"

    def status(i: int) -> str:
        return "NULL" if i % 4 == 0 else "'paid'"

    values = ", ".join(
        f"({i}, 'user{i}@example.com', 'name {i}', '2024-01-01 00:00:00', {fax(i)})" for i in range(1, customers + 1)
    )
    orders = ", ".join(f"({i}, {1 + i % customers}, {i % 100}, {status(i)})" for i in range(1, 2 * customers + 1))
    execute(server, f"INSERT INTO customers VALUES {values}", f"INSERT INTO orders VALUES {orders}")


def write_release(root: Path) -> Release:
    return Release.write(root, BASE, RELEASE, dialect="mysql")


def schema(server: Any) -> dict[str, str]:
    """``SHOW CREATE TABLE`` of every table (AUTO_INCREMENT counters left out), and the triggers left."""
    out = {}
    for (table,) in rows(server, "SHOW TABLES"):
        text = rows(server, f"SHOW CREATE TABLE `{table}`")[0][1]
        out[table] = re.sub(r" AUTO_INCREMENT=\d+", "", text)
    out["(triggers)"] = repr(rows(server, "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE "
                                          "TRIGGER_SCHEMA = DATABASE() ORDER BY 1"))  # fmt: skip
    return out


def data(server: Any) -> dict[str, list[str]]:
    out = {}
    for (table,) in rows(server, "SHOW TABLES"):
        out[table] = sorted(repr(r) for r in rows(server, f"SELECT * FROM `{table}`"))
    return out


def steps(server: Any) -> dict[str, tuple[Any, ...]]:
    """{step: (status, attempts, statements_done, backfill_rows)}"""
    sql = f"SELECT step_id, status, attempts, statements_done, backfill_rows FROM `bgmigrate_{server.database}`.steps"
    return {r[0]: r[1:] for r in rows(server, sql)}
