"""The rename-column, rename-table and change-type recipes on real servers, under live traffic.

Each test builds a table of 2,000 rows, picks the recipe the way the planner does (live schema,
classifier phase, recipe catalog), then plays the release with recipe_harness: a blue writer on the
old names during expand and backfill, a green writer on the new names from deploy to after
contract. Neither may see an error, and the result must equal the offline migration of the same
rows. The abort tests undo expand while blue writes and must leave the original table and data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from recipe_harness import (
    Scenario,
    Target,
    Writer,
    assert_matches_offline,
    assert_no_errors,
    drop_offline,
    execute,
    exercise,
    mysql_target,
    pg_target,
    plan,
    prepare,
)

from migrator.plan.recipes.base import Part
from migrator.plan.recipes.rename_table import RenameTable


@pytest.fixture(scope="module")
def pg(pg_db: Any) -> Target:
    return pg_target(pg_db.dsn)


@pytest.fixture(scope="module")
def maria(mysql_db: Any) -> Iterator[Target]:
    target = mysql_target(mysql_db)
    try:
        yield target
    finally:
        drop_offline(target)


def _text_or_int(got: Any, wrote: Any) -> bool:
    """Green reads the column's old type until contract and the new one after: both must match."""
    return (got is None and wrote is None) or str(got) == str(wrote)


def _json_same(got: Any, wrote: Any) -> bool:
    return got == getattr(wrote, "obj", wrote)


def _json(value: Any) -> Any:
    from psycopg.types.json import Json

    if value is None or isinstance(value, Json):
        return value
    return Json(value)


# ---- scenarios -------------------------------------------------------------------------------------

PG_RENAME_NOT_NULL = Scenario(
    create=["CREATE TABLE users (id bigserial PRIMARY KEY, email text NOT NULL DEFAULT 'none', note text)"],
    table="users",
    column="email",
    new_column="email_address",
    statement="ALTER TABLE users RENAME COLUMN email TO email_address;",
    seed=lambda i: f"user{i}@example.com",
    blue_value=lambda i: f"blue{i}@example.com",
    green_value=lambda i: f"green{i}@example.com",
    omitted_value="none",
    in_sync="SELECT count(*) FROM users WHERE email IS DISTINCT FROM email_address",
)

PG_RENAME_JSON = Scenario(
    create=["CREATE TABLE events (id bigserial PRIMARY KEY, payload json, note text)"],
    table="events",
    column="payload",
    new_column="body",
    statement="ALTER TABLE events RENAME payload TO body;",
    seed=lambda i: _json(None if i % 10 == 0 else {"seed": i}),
    blue_value=lambda i: _json(None if i % 7 == 0 else {"blue": i}),
    green_value=lambda i: _json(None if i % 7 == 0 else {"green": i, "tags": ["a", "b"]}),
    same=_json_same,
    to_param=_json,
    in_sync="SELECT count(*) FROM events WHERE payload::text IS DISTINCT FROM body::text",
)

PG_RENAME_TABLE = Scenario(
    create=[
        "CREATE TABLE accounts (id bigserial PRIMARY KEY, name text NOT NULL, note text)",
        "CREATE UNIQUE INDEX accounts_name_key ON accounts (name)",
    ],
    table="accounts",
    column="name",
    new_table="customers",
    statement="ALTER TABLE accounts RENAME TO customers;",
    seed=lambda i: f"seed-{i}",
    blue_value=lambda i: f"blue-{i}",
    green_value=lambda i: f"green-{i}",
)

PG_RETYPE_USING = Scenario(
    create=["CREATE TABLE orders (id bigserial PRIMARY KEY, code text, note text)"],
    table="orders",
    column="code",
    statement="ALTER TABLE orders ALTER COLUMN code TYPE integer USING code::integer;",
    seed=lambda i: None if i % 9 == 0 else str(i * 7),
    blue_value=lambda i: str(100_000 + i),
    green_value=lambda i: str(200_000 + i),  # digits: valid as text (before contract) and integer (after)
    same=_text_or_int,
    in_sync="SELECT count(*) FROM orders WHERE code_new IS DISTINCT FROM code::integer",
)

PG_RETYPE_NARROWING = Scenario(
    create=["CREATE TABLE prices (id bigserial PRIMARY KEY, amount numeric(12,4) NOT NULL DEFAULT 0, note text)"],
    table="prices",
    column="amount",
    statement="ALTER TABLE prices ALTER COLUMN amount TYPE numeric(10,2);",
    seed=lambda i: Decimal(i * 7) / Decimal(10_000) + Decimal(i),
    blue_value=lambda i: (Decimal(i) / Decimal(3)).quantize(Decimal("0.0001")),  # rounded by the conversion
    green_value=lambda i: Decimal(i) / Decimal(4),  # two decimals: the same value in both types
    omitted_value=Decimal(0),
    in_sync="SELECT count(*) FROM prices WHERE amount_new IS DISTINCT FROM amount::numeric(10,2)",
)

MY_RENAME_NOT_NULL = Scenario(
    create=[
        "CREATE TABLE users (id bigint AUTO_INCREMENT PRIMARY KEY, email varchar(100) NOT NULL, note varchar(100))"
    ],
    table="users",
    column="email",
    new_column="email_address",
    statement="ALTER TABLE users RENAME COLUMN email TO email_address;",
    seed=lambda i: f"user{i}@example.com",
    blue_value=lambda i: f"blue{i}@example.com",
    green_value=lambda i: f"green{i}@example.com",
    in_sync="SELECT count(*) FROM users WHERE NOT (email <=> email_address)",
)

MY_CHANGE_NULLABLE = Scenario(
    create=[
        "CREATE TABLE people (id bigint AUTO_INCREMENT PRIMARY KEY, nickname varchar(50) DEFAULT 'anon', "
        "note varchar(100))"
    ],
    table="people",
    column="nickname",
    new_column="handle",
    statement="ALTER TABLE people CHANGE nickname handle varchar(50) DEFAULT 'anon';",
    seed=lambda i: None if i % 11 == 0 else f"nick{i}",
    blue_value=lambda i: None if i % 6 == 0 else f"blue{i}",
    # NULL only in updates: while the trigger runs, an INSERT of an explicit NULL into the new column of a
    # column with a default is indistinguishable from blue's insert and gets the default (the plan says so)
    green_value=lambda i: None if i >= 1_000_000 and i % 6 == 0 else f"green{i}",
    omitted_value="anon",
    in_sync="SELECT count(*) FROM people WHERE NOT (nickname <=> handle)",
)

MY_RENAME_TABLE = Scenario(
    create=[
        "CREATE TABLE accounts (id bigint AUTO_INCREMENT PRIMARY KEY, name varchar(60) NOT NULL, "
        "note varchar(100), UNIQUE KEY accounts_name_key (name))"
    ],
    table="accounts",
    column="name",
    new_table="customers",
    statement="RENAME TABLE accounts TO customers;",
    seed=lambda i: f"seed-{i}",
    blue_value=lambda i: f"blue-{i}",
    green_value=lambda i: f"green-{i}",
)

MY_RETYPE = Scenario(
    create=[
        "CREATE TABLE orders (id bigint AUTO_INCREMENT PRIMARY KEY, code varchar(20) NOT NULL DEFAULT '0', "
        "note varchar(100))"
    ],
    table="orders",
    column="code",
    statement="ALTER TABLE orders MODIFY code int NOT NULL DEFAULT 0;",
    seed=lambda i: str(i * 7),
    blue_value=lambda i: str(100_000 + i),
    green_value=lambda i: str(200_000 + i),
    same=_text_or_int,
    omitted_value="0",
    in_sync="SELECT count(*) FROM orders WHERE NOT (code_new <=> CAST(code AS SIGNED))",
)


def _apply(target: Target, scenario: Scenario, recipe: str) -> None:
    initial = prepare(target, scenario)
    planned = plan(target, scenario.statement)
    assert planned.recipe.name == recipe
    assert planned.refusal is None, planned.refusal
    assert planned.steps is not None
    outcome = exercise(target, scenario, planned.steps, initial)
    assert_no_errors(outcome)
    assert outcome.blue.rounds >= 10 and outcome.green is not None and outcome.green.rounds >= 10
    if planned.steps.backfill:
        assert outcome.batches >= 4  # 2,000 rows in batches of 500: the writers ran between batches
    rows = assert_matches_offline(target, scenario, outcome, applied=True)
    assert rows > scenario.rows


def _abort(target: Target, scenario: Scenario, recipe: str) -> None:
    initial = prepare(target, scenario)
    planned = plan(target, scenario.statement)
    assert planned.recipe.name == recipe and planned.steps is not None
    outcome = exercise(target, scenario, planned.steps, initial, abort=True)
    assert_no_errors(outcome)
    assert_matches_offline(target, scenario, outcome, applied=False)


# ---- PostgreSQL ------------------------------------------------------------------------------------


def test_pg_rename_column_not_null_with_default(pg: Target) -> None:
    _apply(pg, PG_RENAME_NOT_NULL, "rename_column")


def test_pg_rename_json_column(pg: Target) -> None:
    """json has no equality operator: the trigger and the backfill compare its text."""
    _apply(pg, PG_RENAME_JSON, "rename_column")


def test_pg_rename_table(pg: Target) -> None:
    _apply(pg, PG_RENAME_TABLE, "rename_table")


def test_pg_change_type_with_using(pg: Target) -> None:
    _apply(pg, PG_RETYPE_USING, "change_column_type")


def test_pg_change_type_narrowing_not_null(pg: Target) -> None:
    _apply(pg, PG_RETYPE_NARROWING, "change_column_type")


@pytest.mark.parametrize(
    ("scenario", "recipe"),
    [
        (PG_RENAME_NOT_NULL, "rename_column"),
        (PG_RENAME_TABLE, "rename_table"),
        (PG_RETYPE_USING, "change_column_type"),
    ],
    ids=["rename_column", "rename_table", "change_type"],
)
def test_pg_abort_restores_the_original(pg: Target, scenario: Scenario, recipe: str) -> None:
    _abort(pg, scenario, recipe)


def test_pg_refuses_a_column_with_an_index(pg: Target) -> None:
    """The live schema knows the index: dropping the old column would drop it, so the recipe refuses."""
    scenario = Scenario(
        create=[
            "CREATE TABLE tagged (id bigserial PRIMARY KEY, tag text, note text)",
            "CREATE INDEX tagged_tag_idx ON tagged (tag) WHERE tag IS NOT NULL",
        ],
        table="tagged",
        column="tag",
        statement="ALTER TABLE tagged RENAME COLUMN tag TO label;",
        seed=str,
        blue_value=str,
        green_value=str,
        rows=10,
    )
    prepare(pg, scenario)
    planned = plan(pg, scenario.statement)
    assert planned.recipe.name == "rename_column"
    assert planned.refusal is not None and "index tagged_tag_idx" in planned.refusal
    assert "manual alternative" in planned.refusal


# ---- MariaDB / MySQL -------------------------------------------------------------------------------


def test_mysql_rename_column_not_null_without_default(maria: Target) -> None:
    """The NOT NULL column without default is swapped for a nullable placeholder before the triggers go,
    so green's inserts (which never name it) do not fail between the non-transactional DDL steps."""
    _apply(maria, MY_RENAME_NOT_NULL, "rename_column")


def test_mysql_change_with_the_same_type_is_a_rename(maria: Target) -> None:
    _apply(maria, MY_CHANGE_NULLABLE, "rename_column")


def test_mysql_rename_table(maria: Target) -> None:
    _apply(maria, MY_RENAME_TABLE, "rename_table")


def _green_name(k: int) -> Callable[[int], str]:
    return lambda i: f"g{k}-{i}"


def _burst(target: Target, contract: list[Part], trials: int = 8, writers: int = 4) -> tuple[list[str], int]:
    """``trials`` times: the expanded table (accounts, and the view customers over it), ``writers`` green
    writers hammering the view, and ``contract`` run while they do. Returns the writers' errors and the
    number of rows found missing afterwards (a row a writer wrote and did not find in customers)."""
    errors: list[str] = []
    missing = 0
    for _ in range(trials):
        initial = prepare(target, MY_RENAME_TABLE)
        planned = plan(target, MY_RENAME_TABLE.statement)
        assert planned.steps is not None
        admin = target.connect()
        try:
            for part in planned.steps.expand:
                execute(admin, part.sql, part.transactional)
            ids = sorted(initial)
            green = [
                Writer(
                    f"green{k}", target, "customers", "name", lambda i, k=k: f"g{k}-{i}", ids[k::writers], str.__eq__
                )
                for k in range(writers)
            ]
            for writer in green:
                writer.start()
            for writer in green:
                writer.wait_rounds(3)
            for part in contract:
                execute(admin, part.sql, part.transactional)
            for writer in green:
                writer.wait_rounds(3)
                writer.halt()
                errors.extend(writer.errors)
            found = {int(r[0]) for r in admin.rows("SELECT id FROM customers")}
            missing += sum(1 for writer in green for rid in writer.written if rid not in found)
        finally:
            admin.close()
    return errors, missing


def test_mysql_rename_table_contract_under_a_burst_of_green_statements(maria: Target) -> None:
    """accounts sorts before customers: one RENAME TABLE swapping the view and the table would hold
    accounts while it waits for green's statements on the view, which wait for accounts, and MariaDB fails
    them (error 1356). The recipe's contract moves the table to a name that sorts after customers first;
    green's statements then wait for the swap and none fails. The direct swap is run too, to show the
    burst is strong enough to catch the race."""
    prepare(maria, MY_RENAME_TABLE)
    planned = plan(maria, MY_RENAME_TABLE.statement)
    assert planned.steps is not None
    errors, missing = _burst(maria, planned.steps.contract)
    assert not errors, errors[:5]
    assert missing == 0
    direct_errors, _ = _burst(maria, RenameTable()._mysql_direct_swap("accounts", "customers"))
    assert any("1356" in e for e in direct_errors), (
        "the direct swap survived the burst: this server may not have the lock-order race the recipe avoids "
        "(or the burst is too weak to show it)"
    )


def test_mysql_change_type(maria: Target) -> None:
    _apply(maria, MY_RETYPE, "change_column_type")


@pytest.mark.parametrize(
    ("scenario", "recipe"),
    [
        (MY_RENAME_NOT_NULL, "rename_column"),
        (MY_RENAME_TABLE, "rename_table"),
        (MY_RETYPE, "change_column_type"),
    ],
    ids=["rename_column", "rename_table", "change_type"],
)
def test_mysql_abort_restores_the_original(maria: Target, scenario: Scenario, recipe: str) -> None:
    _abort(maria, scenario, recipe)
