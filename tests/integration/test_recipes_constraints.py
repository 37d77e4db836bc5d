"""The constraint and index recipes on a real PostgreSQL and MariaDB, with blue writing meanwhile.

Each test builds twin copies of ~2,000 rows: ``online`` gets the recipe's expand and backfill while
a blue thread inserts and updates with the *old* schema (it never names a new column), then the
contract once blue has stopped; ``offline`` gets blue's writes replayed and the original statement,
as an offline migration would run it. Blue must see no error; schema and data must match the
offline twin. Aborting after expand must give back the original schema. Failure paths (a NULL, an
orphan, a duplicate) must stop the plan where the plan says, and leave what the plan says.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from constraint_harness import (
    Blue,
    MyTwin,
    PgTwin,
    Planned,
    my_data,
    my_schema,
    pg_data,
    pg_schema,
    recipe_for,
    replay,
    run_online,
)

if TYPE_CHECKING:
    from db_servers import MySqlServer, PgServer

PG15 = (15, 999, 999)
ROWS = 2000

# ---- PostgreSQL ----------------------------------------------------------------------------------

ACCOUNTS = f"""
CREATE TABLE accounts (id bigint, email text, name text, PRIMARY KEY (id));
INSERT INTO accounts SELECT g, 'user' || g || '@example.com', 'name ' || g FROM generate_series(1, {ROWS}) g;
"""
ORDERS = f"""
CREATE TABLE users (id bigint, name text, PRIMARY KEY (id));
INSERT INTO users SELECT g, 'user ' || g FROM generate_series(1, 200) g;
CREATE TABLE orders (id bigint, user_id bigint, amount integer, PRIMARY KEY (id));
INSERT INTO orders SELECT g, g % 200 + 1, g FROM generate_series(1, {ROWS}) g;
"""
EVENTS = f"""
CREATE TABLE events (id bigint, payload text);
INSERT INTO events SELECT g, 'event ' || g FROM generate_series(1, {ROWS}) g;
"""


def account_writes(i: int) -> list[tuple[str, tuple[Any, ...]]]:
    """Blue's writes to accounts: it knows id, email and name only."""
    return [
        ("INSERT INTO {t} (id, email, name) VALUES (%s, %s, %s)", (ROWS + 1 + i, f"blue{i}@example.com", f"blue {i}")),
        ("UPDATE {t} SET name = %s WHERE id = %s", (f"renamed {i}", i % ROWS + 1)),
    ]


def order_writes(i: int) -> list[tuple[str, tuple[Any, ...]]]:
    """Blue's writes to orders (valid references and amounts) and to users."""
    return [
        ("INSERT INTO {t} (id, user_id, amount) VALUES (%s, %s, %s)", (ROWS + 1 + i, i % 200 + 1, i)),
        ("UPDATE {t} SET amount = amount + 1 WHERE id = %s", (i % ROWS + 1,)),
        ("INSERT INTO users (id, name) VALUES (%s, %s)", (1000 + i, f"blue user {i}")),
    ]


def event_writes(i: int) -> list[tuple[str, tuple[Any, ...]]]:
    return [
        ("INSERT INTO {t} (id, payload) VALUES (%s, %s)", (ROWS + 1 + i, f"blue {i}")),
        ("UPDATE {t} SET payload = %s WHERE id = %s", (f"changed {i}", i % ROWS + 1)),
    ]


@pytest.fixture
def pg(pg_db: PgServer) -> Iterator[PgTwin]:
    twin = PgTwin(pg_db.dsn)
    try:
        yield twin
    finally:
        twin.close()


def plan(sql: str, ddl: str, name: str, version: tuple[int, int, int] = PG15, dialect: str = "postgres") -> Planned:
    planned = recipe_for(sql, ddl, dialect, version)
    assert planned.recipe.name == name
    assert planned.refusal is None, planned.refusal
    assert planned.steps is not None
    return planned


def migrate_pg(pg: PgTwin, ddl: str, sql: str, table: str, writes: Any, planned: Planned) -> tuple[Blue, int]:
    """Online: recipe under blue; offline: blue's writes replayed, then ``sql``. Returns blue and batches."""
    assert planned.steps is not None
    pg.setup(ddl)
    with Blue(pg.blue_connect, writes, table) as blue:
        batches = run_online(pg.online, planned.steps, blue)
    assert blue.errors == [], blue.errors[:5]
    replay(pg.offline, blue, table)
    pg.offline.execute(sql)
    return blue, batches


def assert_same_as_offline(pg: PgTwin, table: str, columns: str = "*") -> None:
    assert pg_schema(pg.online, table) == pg_schema(pg.offline, table)
    assert pg_data(pg.online, table, columns) == pg_data(pg.offline, table, columns)


def test_add_required_column_with_a_constant_default_for_a_server_that_rewrites(pg: PgTwin) -> None:
    """PostgreSQL 10 rewrites the table for any default: the recipe; run here on the real server."""
    sql = "ALTER TABLE accounts ADD COLUMN status text NOT NULL DEFAULT 'active'"
    planned = plan(sql, ACCOUNTS, "add_required_column", version=(10, 23, 0))
    blue, batches = migrate_pg(pg, ACCOUNTS, sql, "accounts", account_writes, planned)
    assert batches >= 2  # the backfill really ran in batches
    assert_same_as_offline(pg, "accounts")
    assert ("status", "text", True, "'active'::text") in pg_schema(pg.online, "accounts")["columns"]
    assert pg.online.scalar(f"SELECT count(*) FROM accounts WHERE id > {ROWS}") == blue.rounds


def test_add_required_column_with_a_volatile_default(pg: PgTwin) -> None:
    sql = "ALTER TABLE accounts ADD COLUMN token text NOT NULL DEFAULT gen_random_uuid()::text"
    planned = plan(sql, ACCOUNTS, "add_required_column")
    migrate_pg(pg, ACCOUNTS, sql, "accounts", account_writes, planned)
    assert pg_schema(pg.online, "accounts") == pg_schema(pg.offline, "accounts")
    assert pg_data(pg.online, "accounts", "id, email, name") == pg_data(pg.offline, "accounts", "id, email, name")
    # random values cannot match the offline twin's; they must be there, and distinct, as offline
    total, filled, distinct = pg.online.rows("SELECT count(*), count(token), count(DISTINCT token) FROM accounts")[0]
    assert total == filled == distinct


def test_add_required_column_abort_gives_back_the_original_table(pg: PgTwin) -> None:
    sql = "ALTER TABLE accounts ADD COLUMN token text NOT NULL DEFAULT gen_random_uuid()::text"
    planned = plan(sql, ACCOUNTS, "add_required_column")
    assert planned.steps is not None
    pg.setup(ACCOUNTS)
    before = pg_schema(pg.online, "accounts")
    with Blue(pg.blue_connect, account_writes, "accounts") as blue:
        for part in planned.steps.expand:
            pg.online.run(part)
            blue.wait_rounds(2)
        pg.online.abort(planned.steps)
        blue.wait_rounds(2)
    assert blue.errors == []
    assert pg_schema(pg.online, "accounts") == before
    replay(pg.offline, blue, "accounts")
    assert pg_data(pg.online, "accounts") == pg_data(pg.offline, "accounts")


def test_why_the_not_null_check_waits_for_contract(pg: PgTwin) -> None:
    """The placement decision, on the server: a CHECK (c IS NOT NULL) NOT VALID added before the backfill
    finishes breaks blue's updates of rows not backfilled yet; blue's inserts survive only thanks to the
    DEFAULT. So the recipe adds the check in contract."""
    import psycopg

    sql = "ALTER TABLE accounts ADD COLUMN status text NOT NULL DEFAULT 'active'"
    planned = plan(sql, ACCOUNTS, "add_required_column", version=(10, 23, 0))
    assert planned.steps is not None
    pg.setup(ACCOUNTS)
    add_column, set_default = planned.steps.expand
    pg.online.run(add_column)
    check = planned.steps.contract[0]
    assert "CHECK (status IS NOT NULL) NOT VALID" in check.sql
    pg.online.run(check)  # what the recipe does NOT do: the check in expand
    with pytest.raises(psycopg.errors.CheckViolation):  # blue's insert, no default yet
        pg.online.execute("INSERT INTO accounts (id, email, name) VALUES (-1, 'x', 'x')")
    pg.online.run(set_default)
    pg.online.execute("INSERT INTO accounts (id, email, name) VALUES (-2, 'y', 'y')")  # the default saves inserts
    with pytest.raises(psycopg.errors.CheckViolation):  # ...not blue's update of a row still NULL
        pg.online.execute("UPDATE accounts SET name = 'renamed' WHERE id = 1")


def test_add_required_column_without_default_is_refused(pg: PgTwin) -> None:
    planned = recipe_for("ALTER TABLE accounts ADD COLUMN status text NOT NULL", ACCOUNTS, "postgres", PG15)
    assert planned.phase == "breaking"
    assert planned.refusal is not None
    assert "needs a value for existing rows: add DEFAULT … or a backfill UPDATE" in planned.refusal


def test_set_not_null(pg: PgTwin) -> None:
    sql = "ALTER TABLE accounts ALTER COLUMN email SET NOT NULL"
    planned = plan(sql, ACCOUNTS, "set_not_null")
    assert planned.steps is not None and planned.steps.expand == []
    migrate_pg(pg, ACCOUNTS, sql, "accounts", account_writes, planned)
    assert_same_as_offline(pg, "accounts")
    assert ("email", "text", True, None) in pg_schema(pg.online, "accounts")["columns"]


def _rows_read(runner: Any, table: str) -> int:
    """Rows read from ``table`` by this session's not yet reported statistics: compare before/after."""
    return int(
        runner.scalar(
            "SELECT seq_tup_read + coalesce(idx_tup_fetch, 0) FROM pg_stat_xact_user_tables "
            f"WHERE relid = '{table}'::regclass"
        )
    )


def test_set_not_null_reads_no_row_once_the_check_is_validated(pg: PgTwin) -> None:
    """The point of the check: on PostgreSQL 12+ SET NOT NULL then holds ACCESS EXCLUSIVE without scanning."""
    planned = plan("ALTER TABLE accounts ALTER COLUMN email SET NOT NULL", ACCOUNTS, "set_not_null")
    assert planned.steps is not None
    pg.setup(ACCOUNTS)
    add, validate, set_not_null, drop = planned.steps.contract
    pg.online.run(add)
    pg.online.run(validate)
    with pg.online.conn.transaction():
        before = _rows_read(pg.online, "accounts")
        pg.online.execute(set_not_null.sql)
        assert _rows_read(pg.online, "accounts") - before == 0
    with pg.offline.conn.transaction():  # the plain statement, for contrast, reads every row
        before = _rows_read(pg.offline, "accounts")
        pg.offline.execute("ALTER TABLE accounts ALTER COLUMN email SET NOT NULL")
        assert _rows_read(pg.offline, "accounts") - before >= ROWS
    pg.online.run(drop)


def test_set_not_null_with_a_null_left_stops_at_validate(pg: PgTwin) -> None:
    import psycopg

    planned = plan("ALTER TABLE accounts ALTER COLUMN email SET NOT NULL", ACCOUNTS, "set_not_null")
    assert planned.steps is not None
    pg.setup(ACCOUNTS + "UPDATE accounts SET email = NULL WHERE id = 7;")
    add, validate, *_ = planned.steps.contract
    pg.online.run(add)
    with pytest.raises(psycopg.errors.CheckViolation):
        pg.online.run(validate)
    schema = pg_schema(pg.online, "accounts")
    assert ("email", "text", False, None) in schema["columns"]  # still nullable
    checks = [c[:3] for c in schema["constraints"] if c[1] == "c"]
    assert checks == [("accounts_email_not_null_check", "c", False)]  # NOT VALID: new rows are checked


def test_add_foreign_key(pg: PgTwin) -> None:
    sql = "ALTER TABLE orders ADD FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE"
    planned = plan(sql, ORDERS, "add_foreign_key")
    migrate_pg(pg, ORDERS, sql, "orders", order_writes, planned)
    assert_same_as_offline(pg, "orders")
    (fk,) = [c for c in pg_schema(pg.online, "orders")["constraints"] if c[1] == "f"]
    assert fk[:3] == ("orders_user_id_fkey", "f", True)
    assert "ON DELETE CASCADE" in fk[3]


def test_add_foreign_key_abort_and_orphans(pg: PgTwin) -> None:
    import psycopg

    sql = "ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id)"
    planned = plan(sql, ORDERS, "add_foreign_key")
    assert planned.steps is not None
    pg.setup(ORDERS)
    before = pg_schema(pg.online, "orders")
    with Blue(pg.blue_connect, order_writes, "orders") as blue:
        pg.online.run(planned.steps.expand[0])
        blue.wait_rounds(2)
        pg.online.abort(planned.steps)
    assert blue.errors == []
    assert pg_schema(pg.online, "orders") == before
    # an orphan that was there before: the NOT VALID add lets it be, VALIDATE refuses it
    pg.online.execute("INSERT INTO orders (id, user_id, amount) VALUES (-1, 999999, 1)")
    pg.online.run(planned.steps.expand[0])
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        pg.online.run(planned.steps.contract[0])
    (fk,) = [c for c in pg_schema(pg.online, "orders")["constraints"] if c[1] == "f"]
    assert fk[:3] == ("orders_user_fk", "f", False)


def test_add_check(pg: PgTwin) -> None:
    sql = "ALTER TABLE orders ADD CHECK (amount >= 0)"
    planned = plan(sql, ORDERS, "add_check")
    migrate_pg(pg, ORDERS, sql, "orders", order_writes, planned)
    assert_same_as_offline(pg, "orders")  # the unnamed check gets PostgreSQL's own name
    assert ("orders_amount_check", "c", True, "CHECK ((amount >= 0))") in pg_schema(pg.online, "orders")["constraints"]


def test_add_check_abort_and_a_violating_row(pg: PgTwin) -> None:
    import psycopg

    planned = plan("ALTER TABLE orders ADD CONSTRAINT amount_ok CHECK (amount >= 0)", ORDERS, "add_check")
    assert planned.steps is not None
    pg.setup(ORDERS + "UPDATE orders SET amount = -5 WHERE id = 3;")
    before = pg_schema(pg.online, "orders")
    with Blue(pg.blue_connect, lambda i: order_writes(i)[:1], "orders") as blue:  # inserts only
        pg.online.run(planned.steps.expand[0])
        blue.wait_rounds(2)
        with pytest.raises(psycopg.errors.CheckViolation):
            pg.online.run(planned.steps.contract[0])
        pg.online.abort(planned.steps)
    assert blue.errors == []
    assert pg_schema(pg.online, "orders") == before


def test_add_unique(pg: PgTwin) -> None:
    sql = "ALTER TABLE accounts ADD UNIQUE (email)"
    planned = plan(sql, ACCOUNTS, "add_unique")
    migrate_pg(pg, ACCOUNTS, sql, "accounts", account_writes, planned)
    assert_same_as_offline(pg, "accounts")
    indexes = pg_schema(pg.online, "accounts")["indexes"]
    assert ("accounts_email_key", True, True) in [i[:3] for i in indexes]
    assert ("accounts_email_key", "u", True) in [c[:3] for c in pg_schema(pg.online, "accounts")["constraints"]]


def test_add_unique_caveat_duplicates_fail_from_expand_on(pg: PgTwin) -> None:
    """The caveat the plan writes: uniqueness starts with the index build, not with the constraint."""
    import psycopg

    planned = plan("ALTER TABLE accounts ADD UNIQUE (email)", ACCOUNTS, "add_unique")
    assert planned.steps is not None
    pg.setup(ACCOUNTS)
    for part in planned.steps.expand:
        pg.online.run(part)
    with pytest.raises(psycopg.errors.UniqueViolation):
        pg.online.execute("INSERT INTO accounts (id, email, name) VALUES (-1, 'user1@example.com', 'dup')")
    assert any("Uniqueness starts with the index build" in n for n in planned.steps.notes)


def test_add_unique_with_a_duplicate_leaves_an_invalid_index_the_guard_catches(pg: PgTwin) -> None:
    import psycopg

    planned = plan("ALTER TABLE accounts ADD CONSTRAINT email_once UNIQUE (email)", ACCOUNTS, "add_unique")
    assert planned.steps is not None
    pg.setup(ACCOUNTS + "UPDATE accounts SET email = 'user1@example.com' WHERE id = 2;")
    before = pg_schema(pg.online, "accounts")
    build, guard = planned.steps.expand
    with pytest.raises(psycopg.errors.UniqueViolation):
        pg.online.run(build)
    assert [i[:2] for i in pg_schema(pg.online, "accounts")["indexes"]] == [
        ("accounts_pkey", True),
        ("email_once", False),
    ]
    pg.online.run(build)  # IF NOT EXISTS: "succeeds" over the INVALID leftover...
    with pytest.raises(psycopg.errors.InvalidTextRepresentation, match="email_once is INVALID"):
        pg.online.run(guard)  # ...and the guard stops the plan
    pg.online.abort(planned.steps)  # what the plan says to do: drop it concurrently
    assert pg_schema(pg.online, "accounts") == before
    pg.online.execute("UPDATE accounts SET email = 'user2@example.com' WHERE id = 2")
    for part in (build, guard, *planned.steps.contract):
        pg.online.run(part)
    assert ("email_once", "u", True) in [c[:3] for c in pg_schema(pg.online, "accounts")["constraints"]]


def test_add_primary_key(pg: PgTwin) -> None:
    sql = "ALTER TABLE events ADD PRIMARY KEY (id)"
    planned = plan(sql, EVENTS, "add_unique")
    migrate_pg(pg, EVENTS, sql, "events", event_writes, planned)
    assert_same_as_offline(pg, "events")
    schema = pg_schema(pg.online, "events")
    assert ("events_pkey", "p", True, "PRIMARY KEY (id)") in schema["constraints"]
    assert ("id", "bigint", True, None) in schema["columns"]


def test_create_index(pg: PgTwin) -> None:
    sql = "CREATE INDEX orders_big_idx ON orders USING btree (amount) WHERE amount > 100"
    planned = plan(sql, ORDERS, "create_index")
    migrate_pg(pg, ORDERS, sql, "orders", order_writes, planned)
    assert_same_as_offline(pg, "orders")
    assert ("orders_big_idx", True, True) in [i[:3] for i in pg_schema(pg.online, "orders")["indexes"]]


def test_create_unnamed_expression_index_gets_postgres_own_name(pg: PgTwin) -> None:
    sql = "CREATE INDEX ON accounts (lower(email))"
    planned = plan(sql, ACCOUNTS, "create_index")
    migrate_pg(pg, ACCOUNTS, sql, "accounts", account_writes, planned)
    assert_same_as_offline(pg, "accounts")
    assert "accounts_lower_idx" in [i[0] for i in pg_schema(pg.online, "accounts")["indexes"]]


def test_create_index_abort(pg: PgTwin) -> None:
    planned = plan("CREATE INDEX orders_amount_idx ON orders (amount)", ORDERS, "create_index")
    assert planned.steps is not None
    pg.setup(ORDERS)
    before = pg_schema(pg.online, "orders")
    with Blue(pg.blue_connect, order_writes, "orders") as blue:
        for part in planned.steps.expand:
            pg.online.run(part)
            blue.wait_rounds(2)
        pg.online.abort(planned.steps)
        blue.wait_rounds(2)
    assert blue.errors == []
    assert pg_schema(pg.online, "orders") == before


def test_drop_index(pg: PgTwin) -> None:
    ddl = ORDERS + "CREATE INDEX orders_amount_idx ON orders (amount);"
    sql = "DROP INDEX orders_amount_idx"
    planned = plan(sql, ddl, "drop_index")
    assert planned.steps is not None and planned.steps.expand == []
    migrate_pg(pg, ddl, sql, "orders", order_writes, planned)
    assert_same_as_offline(pg, "orders")
    assert [i[0] for i in pg_schema(pg.online, "orders")["indexes"]] == ["orders_pkey"]


# ---- MariaDB / MySQL -----------------------------------------------------------------------------


def server_version(server: MySqlServer) -> tuple[int, int, int]:
    m = re.match(r"(\d+)\.(\d+)\.(\d+)", server.version)
    assert m, server.version
    major, minor, patch = (int(x) for x in m.groups())
    return major, minor, patch


def my_rows(table: str, columns: str, row: Any) -> str:
    values = ", ".join(row(g) for g in range(1, ROWS + 1))
    return f"INSERT INTO {table} ({columns}) VALUES {values};"


MY_ACCOUNTS = "CREATE TABLE accounts (id bigint, email varchar(100), name varchar(100), PRIMARY KEY (id));\n" + my_rows(
    "accounts", "id, email, name", lambda g: f"({g}, 'user{g}@example.com', 'name {g}')"
)
MY_ORDERS = (
    "CREATE TABLE users (id bigint, name varchar(100), PRIMARY KEY (id));\n"
    + "INSERT INTO users (id, name) VALUES "
    + ", ".join(f"({g}, 'user {g}')" for g in range(1, 201))
    + ";\nCREATE TABLE orders (id bigint, user_id bigint, amount int, PRIMARY KEY (id));\n"
    + my_rows("orders", "id, user_id, amount", lambda g: f"({g}, {g % 200 + 1}, {g})")
)
MY_EVENTS = "CREATE TABLE events (id bigint NOT NULL, payload varchar(100));\n" + my_rows(
    "events", "id, payload", lambda g: f"({g}, 'event {g}')"
)


@pytest.fixture
def my(mysql_db: MySqlServer) -> Iterator[MyTwin]:
    twin = MyTwin(mysql_db)
    try:
        yield twin
    finally:
        twin.close()


def migrate_my(my: MyTwin, ddl: str, sql: str, table: str, writes: Any, planned: Planned) -> Blue:
    assert planned.steps is not None
    my.setup(ddl)
    with Blue(my.blue_connect, writes, table) as blue:
        run_online(my.online, planned.steps, blue)
    assert blue.errors == [], blue.errors[:5]
    replay(my.offline, blue, table)
    my.offline.execute(sql)
    return blue


def my_plan(sql: str, ddl: str, name: str, server: MySqlServer) -> Planned:
    return plan(sql, ddl, name, version=server_version(server), dialect="mysql")


def assert_my_same_as_offline(my: MyTwin, table: str, columns: str = "*") -> None:
    assert my_schema(my.online, table) == my_schema(my.offline, table)
    assert my_data(my.online, table, columns) == my_data(my.offline, table, columns)


def test_mysql_set_not_null_in_place(my: MyTwin, mysql_db: MySqlServer) -> None:
    sql = "ALTER TABLE accounts MODIFY email varchar(100) NOT NULL"
    planned = my_plan(sql, MY_ACCOUNTS, "set_not_null", mysql_db)
    assert planned.steps is not None and "ALGORITHM=INPLACE, LOCK=NONE" in planned.steps.contract[0].sql
    migrate_my(my, MY_ACCOUNTS, sql, "accounts", account_writes, planned)
    assert_my_same_as_offline(my, "accounts")
    assert "`email` varchar(100) NOT NULL" in my_schema(my.online, "accounts")


def test_mysql_add_required_column_with_expression_default(my: MyTwin, mysql_db: MySqlServer) -> None:
    sql = "ALTER TABLE accounts ADD COLUMN token varchar(36) NOT NULL DEFAULT (uuid())"
    planned = my_plan(sql, MY_ACCOUNTS, "add_required_column", mysql_db)
    migrate_my(my, MY_ACCOUNTS, sql, "accounts", account_writes, planned)
    assert my_schema(my.online, "accounts") == my_schema(my.offline, "accounts")
    assert my_data(my.online, "accounts", "id, email, name") == my_data(my.offline, "accounts", "id, email, name")
    total, filled, distinct = my.online.rows("SELECT COUNT(*), COUNT(token), COUNT(DISTINCT token) FROM accounts")[0]
    assert total == filled == distinct


def test_mysql_add_required_column_abort(my: MyTwin, mysql_db: MySqlServer) -> None:
    sql = "ALTER TABLE accounts ADD COLUMN token varchar(36) NOT NULL DEFAULT (uuid())"
    planned = my_plan(sql, MY_ACCOUNTS, "add_required_column", mysql_db)
    assert planned.steps is not None
    my.setup(MY_ACCOUNTS)
    before = my_schema(my.online, "accounts")
    with Blue(my.blue_connect, account_writes, "accounts") as blue:
        for part in planned.steps.expand:
            my.online.run(part)
            blue.wait_rounds(2)
        my.online.abort(planned.steps)
        blue.wait_rounds(2)
    assert blue.errors == []
    assert my_schema(my.online, "accounts") == before


def test_mysql_add_foreign_key_in_place_then_verified(my: MyTwin, mysql_db: MySqlServer) -> None:
    sql = "ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id)"
    planned = my_plan(sql, MY_ORDERS, "add_foreign_key", mysql_db)
    migrate_my(my, MY_ORDERS, sql, "orders", order_writes, planned)
    assert_my_same_as_offline(my, "orders")
    assert my.online.scalar("SELECT @@foreign_key_checks") == 1  # set back after the in-place add


def test_mysql_add_foreign_key_abort_and_orphans(my: MyTwin, mysql_db: MySqlServer) -> None:
    import pymysql  # type: ignore[import-untyped]

    sql = "ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id)"
    planned = my_plan(sql, MY_ORDERS, "add_foreign_key", mysql_db)
    assert planned.steps is not None
    my.setup(MY_ORDERS)
    before = my_schema(my.online, "orders")
    with Blue(my.blue_connect, order_writes, "orders") as blue:
        my.online.run(planned.steps.expand[0])
        blue.wait_rounds(2)
        my.online.abort(planned.steps)
    assert blue.errors == []
    assert my_schema(my.online, "orders") == before
    # an orphan already there: the in-place add lets it be, the contract verification refuses it
    my.online.execute("INSERT INTO orders (id, user_id, amount) VALUES (-1, 999999, 1)")
    my.online.run(planned.steps.expand[0])
    with pytest.raises(pymysql.err.OperationalError, match="more than 1 row"):
        my.online.run(planned.steps.contract[0])


def test_mysql_add_check_is_refused(mysql_db: MySqlServer) -> None:
    planned = recipe_for(
        "ALTER TABLE orders ADD CONSTRAINT amount_ok CHECK (amount >= 0)", MY_ORDERS, "mysql", server_version(mysql_db)
    )
    assert planned.recipe.name == "add_check"
    assert (
        planned.refusal is not None and "no NOT VALID" in planned.refusal and "Manual alternatives" in planned.refusal
    )


def test_mysql_add_unique(my: MyTwin, mysql_db: MySqlServer) -> None:
    sql = "ALTER TABLE accounts ADD UNIQUE KEY accounts_email_key (email)"
    planned = my_plan(sql, MY_ACCOUNTS, "add_unique", mysql_db)
    migrate_my(my, MY_ACCOUNTS, sql, "accounts", account_writes, planned)
    assert_my_same_as_offline(my, "accounts")
    assert "UNIQUE KEY `accounts_email_key` (`email`)" in my_schema(my.online, "accounts")


def test_mysql_add_primary_key(my: MyTwin, mysql_db: MySqlServer) -> None:
    sql = "ALTER TABLE events ADD PRIMARY KEY (id)"
    planned = my_plan(sql, MY_EVENTS, "add_unique", mysql_db)
    assert planned.steps is not None and planned.steps.expand == []
    migrate_my(my, MY_EVENTS, sql, "events", event_writes, planned)
    assert_my_same_as_offline(my, "events")
    assert "PRIMARY KEY (`id`)" in my_schema(my.online, "events")


def test_mysql_create_and_drop_index(my: MyTwin, mysql_db: MySqlServer) -> None:
    sql = "CREATE INDEX orders_amount_idx ON orders (amount)"
    planned = my_plan(sql, MY_ORDERS, "create_index", mysql_db)
    migrate_my(my, MY_ORDERS, sql, "orders", order_writes, planned)
    assert_my_same_as_offline(my, "orders")
    assert "KEY `orders_amount_idx` (`amount`)" in my_schema(my.online, "orders")
    ddl = MY_ORDERS + "\nCREATE INDEX orders_amount_idx ON orders (amount);"
    drop = my_plan("DROP INDEX orders_amount_idx ON orders", ddl, "drop_index", mysql_db)
    assert drop.steps is not None
    with Blue(my.blue_connect, lambda i: order_writes(i + 5000), "orders") as blue:  # new ids
        run_online(my.online, drop.steps, blue)
    assert blue.errors == []
    replay(my.offline, blue, "orders")
    my.offline.execute("DROP INDEX orders_amount_idx ON orders")
    assert_my_same_as_offline(my, "orders")
