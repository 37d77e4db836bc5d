"""The SQL the rename-column, rename-table and change-type recipes emit, and when they refuse.

The schema is replayed from DDL, as the planner does without --dsn. Every statement a recipe emits
must also be readable by bgmigrate's own analyzer, since the planner attaches lock facts to it.
"""

from __future__ import annotations

import pytest

from migrator.lint.classify import classify
from migrator.plan.model import PlanError
from migrator.plan.recipes import Recipe, RecipeContext, RecipeSteps, all_recipes, find_recipe
from migrator.plan.recipes.change_type import ChangeColumnType
from migrator.plan.recipes.rename_column import RenameColumn, object_name, quote
from migrator.plan.recipes.rename_table import RenameTable
from migrator.schema.model import Schema
from migrator.sql.analyze import analyze_text
from migrator.sql.changes import Change, Op
from migrator.sql.split import split_statements

PG15, PG10, MARIADB, MYSQL80, MYSQL8020 = (15, 0, 0), (10, 0, 0), (10, 11, 0), (8, 0, 999), (8, 0, 20)

PG_USERS = """
CREATE TABLE users (
    id bigint NOT NULL,
    email text NOT NULL DEFAULT 'none',
    nickname text,
    code text,
    price numeric(12,4) NOT NULL DEFAULT 0,
    born timestamp,
    PRIMARY KEY (id)
);
"""
MY_USERS = """
CREATE TABLE users (
    id bigint NOT NULL AUTO_INCREMENT,
    email varchar(100) NOT NULL,
    nickname varchar(50) DEFAULT 'anon',
    code varchar(20) NOT NULL DEFAULT '0',
    PRIMARY KEY (id)
);
"""


def _schema(ddl: str, dialect: str) -> Schema:
    schema = Schema()
    for st in analyze_text(ddl, dialect):
        for change in st.changes:
            schema.apply(change, "history")
    return schema


def _change(sql: str, dialect: str, op: str) -> Change:
    changes = [c for st in analyze_text(sql, dialect) for c in st.changes if c.op == op]
    assert len(changes) == 1, changes
    return changes[0]


def _plan(
    sql: str, dialect: str = "postgres", version: tuple[int, int, int] = PG15, ddl: str | None = None
) -> tuple[Recipe | None, Change, RecipeContext]:
    schema = _schema(ddl if ddl is not None else (PG_USERS if dialect == "postgres" else MY_USERS), dialect)
    ctx = RecipeContext(schema, dialect, version)
    for st in analyze_text(sql, dialect):
        for change in st.changes:
            phase = classify(change, schema, "release", dialect, version).phase
            recipe = find_recipe(change, phase, ctx)
            if recipe is not None:
                return recipe, change, ctx
    return None, analyze_text(sql, dialect)[0].changes[0], ctx


def _steps(sql: str, dialect: str = "postgres", version: tuple[int, int, int] = PG15, **kw: str) -> RecipeSteps:
    recipe, change, ctx = _plan(sql, dialect, version, **kw)
    assert recipe is not None, f"no recipe for {sql}"
    assert recipe.refusal(change, ctx) is None, recipe.refusal(change, ctx)
    return recipe.build(change, ctx)


def _all_sql(steps: RecipeSteps) -> list[str]:
    out = [p.sql for p in steps.expand] + [p.abort or "" for p in steps.expand] + [p.sql for p in steps.contract]
    return out + [b.batch_sql() for b in steps.backfill]


def _assert_analyzable(steps: RecipeSteps, dialect: str) -> None:
    """bgmigrate's analyzer reads every emitted statement (no unknown or unparsable one)."""
    for text in _all_sql(steps):
        text = text.replace("%(lo)s", "1").replace("%(hi)s", "2")
        for st in analyze_text(text, dialect):
            assert st.problem is None, (st.sql, st.problem)
            assert all(c.op not in (Op.UNKNOWN, Op.SYNTAX_ERROR) for c in st.changes), st.sql


# ---- the catalog ------------------------------------------------------------------------------------


def test_the_recipes_are_discovered() -> None:
    names = {r.name: type(r) for r in all_recipes()}
    assert names["rename_column"] is RenameColumn
    assert names["rename_table"] is RenameTable
    assert names["change_column_type"] is ChangeColumnType
    for cls in (RenameColumn, RenameTable, ChangeColumnType):
        assert cls.dialects == ("postgres", "mysql") and cls.summary


# ---- rename column: PostgreSQL ------------------------------------------------------------------------


def test_pg_rename_column_sql() -> None:
    steps = _steps("ALTER TABLE users RENAME COLUMN email TO email_address;")
    add, sync = steps.expand
    assert add.sql == "ALTER TABLE users ADD COLUMN email_address text"
    assert add.abort == "ALTER TABLE users DROP COLUMN IF EXISTS email_address"
    fn = "bgm_sync_users_email_email_address"
    assert sync.sql == (
        f"CREATE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        "BEGIN\n"
        "  IF TG_OP = 'INSERT' THEN\n"
        "    IF NEW.email_address IS NULL THEN\n"
        "      NEW.email_address := NEW.email;\n"
        "    ELSE\n"
        "      NEW.email := NEW.email_address;\n"
        "    END IF;\n"
        "  ELSIF NEW.email_address IS DISTINCT FROM OLD.email_address THEN\n"
        "    NEW.email := NEW.email_address;\n"
        "  ELSIF NEW.email IS DISTINCT FROM OLD.email THEN\n"
        "    NEW.email_address := NEW.email;\n"
        "  END IF;\n"
        "  RETURN NEW;\n"
        "END\n"
        "$$;\n"
        f"CREATE TRIGGER {fn} BEFORE INSERT OR UPDATE ON users FOR EACH ROW EXECUTE FUNCTION {fn}()"
    )
    assert sync.abort == f"DROP TRIGGER IF EXISTS {fn} ON users;\nDROP FUNCTION IF EXISTS {fn}()"
    assert all(p.transactional for p in steps.expand + steps.contract)
    (backfill,) = steps.backfill
    assert (backfill.table, backfill.key) == ("users", "id")
    assert backfill.batch_sql() == (
        "UPDATE users SET email_address = email WHERE id >= %(lo)s AND id <= %(hi)s "
        "AND (email_address IS DISTINCT FROM email)"
    )
    swap, validate, set_not_null = steps.contract
    check = "bgm_users_email_address_not_null"
    assert swap.sql == (
        f"DROP TRIGGER IF EXISTS {fn} ON users;\n"
        f"DROP FUNCTION IF EXISTS {fn}();\n"
        "ALTER TABLE users DROP COLUMN email;\n"
        "ALTER TABLE users ALTER COLUMN email_address SET DEFAULT 'none';\n"
        f"ALTER TABLE users ADD CONSTRAINT {check} CHECK (email_address IS NOT NULL) NOT VALID"
    )
    assert validate.sql == f"ALTER TABLE users VALIDATE CONSTRAINT {check}"
    assert set_not_null.sql == (
        f"ALTER TABLE users ALTER COLUMN email_address SET NOT NULL;\nALTER TABLE users DROP CONSTRAINT {check}"
    )
    notes = " ".join(steps.notes)
    assert "green must read and write only email_address" in notes
    assert "NOT NULL" in notes and "default ('none') moves to email_address" in notes
    _assert_analyzable(steps, "postgres")


def test_a_column_level_primary_key_cuts_the_batches() -> None:
    ddl = "CREATE TABLE t (id bigint PRIMARY KEY, a text UNIQUE, b text);"
    steps = _steps("ALTER TABLE t RENAME b TO c;", ddl=ddl)
    assert steps.backfill[0].key == "id"
    recipe, change, ctx = _plan("ALTER TABLE t RENAME a TO d;", ddl=ddl)
    assert recipe is not None and "unique" in (recipe.refusal(change, ctx) or "")


def test_pg_rename_nullable_column_has_a_one_part_contract() -> None:
    steps = _steps("ALTER TABLE users RENAME nickname TO handle;")
    (swap,) = steps.contract
    assert swap.sql.endswith("ALTER TABLE users DROP COLUMN nickname")
    assert "NOT NULL" not in swap.sql and "SET DEFAULT" not in swap.sql
    assert not any("NOT NULL, so" in n for n in steps.notes)


def test_pg_rename_json_column_compares_text() -> None:
    ddl = "CREATE TABLE events (id bigint, payload json, PRIMARY KEY (id));"
    steps = _steps("ALTER TABLE events RENAME payload TO body;", ddl=ddl)
    assert "NEW.body::text IS DISTINCT FROM OLD.body::text" in steps.expand[1].sql
    assert steps.backfill[0].condition == "body::text IS DISTINCT FROM payload::text"


def test_pg_before_11_uses_execute_procedure_and_warns_about_set_not_null() -> None:
    steps = _steps("ALTER TABLE users RENAME email TO mail;", version=PG10)
    assert "FOR EACH ROW EXECUTE PROCEDURE bgm_sync_users_email_mail()" in steps.expand[1].sql
    assert any("Before PostgreSQL 12" in n for n in steps.notes)


def test_pg_names_are_quoted_and_qualified() -> None:
    ddl = 'CREATE TABLE billing."Order" (id bigint, "user" text, "Total" int, PRIMARY KEY (id));'
    steps = _steps('ALTER TABLE billing."Order" RENAME COLUMN "user" TO "Owner";', ddl=ddl)
    add, sync = steps.expand
    assert add.sql == 'ALTER TABLE billing."Order" ADD COLUMN "Owner" text'
    assert "CREATE FUNCTION billing.bgm_sync_Order_user_Owner()" not in sync.sql  # mixed case: quoted
    assert 'CREATE FUNCTION billing."bgm_sync_Order_user_Owner"()' in sync.sql
    assert 'NEW."Owner" := NEW."user";' in sync.sql
    assert 'ON billing."Order" FOR EACH ROW' in sync.sql
    assert steps.backfill[0].table == 'billing."Order"'
    _assert_analyzable(steps, "postgres")


def test_quote_only_when_needed() -> None:
    assert quote("email", "postgres") == "email"
    assert quote("order", "postgres") == '"order"'
    assert quote("Email", "postgres") == '"Email"'
    assert quote('we"ird', "postgres") == '"we""ird"'
    assert quote("email", "mysql") == "email"
    assert quote("Email", "mysql") == "Email"
    assert quote("order", "mysql") == "`order`"
    assert quote("a b", "mysql") == "`a b`"


def test_generated_names_fit_the_identifier_limit() -> None:
    long = "c" * 60
    pg = object_name("postgres", "sync", "t" * 40, long, long)
    my = object_name("mysql", "sync", "t" * 40, long, "ins")
    assert len(pg.encode()) <= 63 and len(my) <= 64
    assert pg != object_name("postgres", "sync", "t" * 40, long, long + "x")
    assert object_name("postgres", "sync", "users", "email") == "bgm_sync_users_email"


# ---- rename column: MySQL ---------------------------------------------------------------------------


def test_mysql_rename_column_sql() -> None:
    steps = _steps("ALTER TABLE users RENAME COLUMN email TO email_address;", "mysql", MARIADB)
    add, ins, upd = steps.expand
    assert add.sql == "ALTER TABLE users ADD COLUMN email_address varchar(100), ALGORITHM=INSTANT"
    assert add.abort == "ALTER TABLE users DROP COLUMN email_address, ALGORITHM=INSTANT"
    assert ins.sql == (
        "CREATE TRIGGER bgm_sync_users_email_ins BEFORE INSERT ON users FOR EACH ROW "
        "SET NEW.email_address = COALESCE(NEW.email_address, NEW.email), NEW.email = NEW.email_address"
    )
    assert upd.sql == (
        "CREATE TRIGGER bgm_sync_users_email_upd BEFORE UPDATE ON users FOR EACH ROW "
        "SET NEW.email = IF(NEW.email_address <=> OLD.email_address, NEW.email, NEW.email_address), "
        "NEW.email_address = IF(NEW.email <=> OLD.email, NEW.email_address, NEW.email)"
    )
    assert (ins.abort, upd.abort) == (
        "DROP TRIGGER IF EXISTS bgm_sync_users_email_ins",
        "DROP TRIGGER IF EXISTS bgm_sync_users_email_upd",
    )
    assert not any(p.transactional for p in steps.expand + steps.contract)
    assert steps.backfill[0].condition == "NOT (email_address <=> email)"
    # NOT NULL without default: the old column becomes a nullable placeholder before the triggers go
    assert [p.sql for p in steps.contract] == [
        "ALTER TABLE users DROP COLUMN email, ADD COLUMN email varchar(100), ALGORITHM=INSTANT",
        "DROP TRIGGER IF EXISTS bgm_sync_users_email_ins;\nDROP TRIGGER IF EXISTS bgm_sync_users_email_upd",
        "ALTER TABLE users DROP COLUMN email, ALGORITHM=INSTANT",
        "ALTER TABLE users MODIFY COLUMN email_address varchar(100) NOT NULL, ALGORITHM=INPLACE, LOCK=NONE",
    ]
    _assert_analyzable(steps, "mysql")


def test_mysql_change_with_the_same_type_renames_with_the_default() -> None:
    sql = "ALTER TABLE users CHANGE nickname handle varchar(50) DEFAULT 'anon';"
    recipe, change, _ = _plan(sql, "mysql", MARIADB)
    assert isinstance(recipe, RenameColumn) and change.get("via") == "change"
    steps = _steps(sql, "mysql", MARIADB)
    assert [p.sql for p in steps.contract] == [
        "ALTER TABLE users ALTER COLUMN handle SET DEFAULT 'anon', ALGORITHM=INSTANT",
        "DROP TRIGGER IF EXISTS bgm_sync_users_nickname_ins;\nDROP TRIGGER IF EXISTS bgm_sync_users_nickname_upd",
        "ALTER TABLE users DROP COLUMN nickname, ALGORITHM=INSTANT",
    ]
    assert any("sets handle to NULL explicitly" in n for n in steps.notes)
    _assert_analyzable(steps, "mysql")


def test_mysql_online_clauses_follow_the_version() -> None:
    steps = _steps("ALTER TABLE users RENAME COLUMN email TO mail;", "mysql", MYSQL8020)
    assert steps.expand[0].sql.endswith("ADD COLUMN mail varchar(100), ALGORITHM=INSTANT")  # 8.0.12+
    assert (steps.expand[0].abort or "").endswith("DROP COLUMN mail, ALGORITHM=INPLACE, LOCK=NONE")  # INSTANT: 8.0.29
    steps = _steps("ALTER TABLE users RENAME COLUMN email TO mail;", "mysql", MYSQL80)
    assert (steps.expand[0].abort or "").endswith("ALGORITHM=INSTANT")


# ---- rename column: refusals ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ddl", "sql", "reason"),
    [
        ("CREATE TABLE t (id bigint, a text, PRIMARY KEY (id));", "ALTER TABLE u RENAME a TO b;", "is not known"),
        ("CREATE TABLE t (id bigint, a text);", "ALTER TABLE t RENAME a TO b;", "no single-column primary key"),
        ("CREATE TABLE t (id bigint, a text, PRIMARY KEY (id));", "ALTER TABLE t RENAME id TO b;", "primary key"),
        (
            "CREATE TABLE t (id bigint, a bigint, b bigint, PRIMARY KEY (id, a));",
            "ALTER TABLE t RENAME a TO c;",
            "no single-column primary key",
        ),
        (
            "CREATE TABLE t (id bigint, a serial, PRIMARY KEY (id));",
            "ALTER TABLE t RENAME a TO c;",
            "sequence or AUTO_INCREMENT",
        ),
        (
            "CREATE TABLE t (id bigint, a text, b text, PRIMARY KEY (id));",
            "ALTER TABLE t RENAME a TO b;",
            "already has a column b",
        ),
        (
            "CREATE TABLE t (id bigint, a text, PRIMARY KEY (id));\nCREATE INDEX t_a ON t (a);",
            "ALTER TABLE t RENAME a TO b;",
            "index t_a",
        ),
        (
            "CREATE TABLE t (id bigint, a int, PRIMARY KEY (id));\nALTER TABLE t ADD CONSTRAINT a_pos CHECK (a > 0);",
            "ALTER TABLE t RENAME a TO b;",
            "check a_pos",
        ),
        (
            "CREATE TABLE t (id bigint, a text, PRIMARY KEY (id));\nALTER TABLE t ADD CONSTRAINT t_a_key UNIQUE (a);",
            "ALTER TABLE t RENAME a TO b;",
            "unique t_a_key",
        ),
    ],
    ids=["unknown-table", "no-key", "key-column", "composite-key", "serial", "name-taken", "index", "check", "unique"],
)
def test_rename_column_refusals(ddl: str, sql: str, reason: str) -> None:
    change = _change(sql, "postgres", Op.RENAME_COLUMN)
    ctx = RecipeContext(_schema(ddl, "postgres"), "postgres", PG15)
    recipe = RenameColumn()
    refusal = recipe.refusal(change, ctx)
    assert refusal is not None and reason in refusal
    with pytest.raises(PlanError, match="rename_column: "):
        recipe.build(change, ctx)


def test_rename_column_only_for_breaking_renames() -> None:
    """A column created in this release is renamed freely (expand): no recipe."""
    ddl = "CREATE TABLE t (id bigint, PRIMARY KEY (id));"
    schema = _schema(ddl, "postgres")
    ctx = RecipeContext(schema, "postgres", PG15)
    add = _change("ALTER TABLE t ADD COLUMN a text;", "postgres", Op.ADD_COLUMN)
    schema.apply(add, "release")
    rename = _change("ALTER TABLE t RENAME a TO b;", "postgres", Op.RENAME_COLUMN)
    phase = classify(rename, schema, "release", "postgres", PG15).phase
    assert phase == "expand"
    assert not RenameColumn().applies(rename, phase, ctx)
    assert RenameColumn().applies(rename, "breaking", ctx)
    assert not RenameColumn().applies(rename, "breaking", RecipeContext(schema, "sqlite", PG15))


# ---- rename table -----------------------------------------------------------------------------------


def test_pg_rename_table_sql() -> None:
    steps = _steps("ALTER TABLE users RENAME TO customers;")
    (part,) = steps.expand
    assert part.sql == (
        "ALTER TABLE users RENAME TO customers;\n"
        "CREATE VIEW users WITH (security_invoker = true) AS SELECT * FROM customers"
    )
    assert [raw.sql for raw in split_statements(part.sql, "postgres")] == part.sql.split(";\n")
    assert part.transactional
    assert part.abort == "DROP VIEW IF EXISTS users;\nALTER TABLE customers RENAME TO users"
    assert [p.sql for p in steps.contract] == ["DROP VIEW IF EXISTS users"]
    assert not steps.backfill
    notes = " ".join(steps.notes)
    assert "ON CONFLICT" in notes and "TRUNCATE" in notes and "full copy" in notes and "GRANT" in notes
    _assert_analyzable(steps, "postgres")


def test_pg_rename_table_before_15_has_no_security_invoker() -> None:
    steps = _steps("ALTER TABLE users RENAME TO customers;", version=(14, 0, 0))
    assert steps.expand[0].sql.endswith("CREATE VIEW users AS SELECT * FROM customers")
    assert any("row-level security" in n for n in steps.notes)


def test_pg_rename_table_in_a_schema() -> None:
    ddl = "CREATE TABLE billing.invoices (id bigint, PRIMARY KEY (id));"
    steps = _steps("ALTER TABLE billing.invoices RENAME TO bills;", ddl=ddl)
    assert steps.expand[0].sql == (
        "ALTER TABLE billing.invoices RENAME TO bills;\n"
        "CREATE VIEW billing.invoices WITH (security_invoker = true) AS SELECT * FROM billing.bills"
    )
    assert (
        steps.expand[0].abort == "DROP VIEW IF EXISTS billing.invoices;\nALTER TABLE billing.bills RENAME TO invoices"
    )


def test_mysql_rename_table_is_reversed() -> None:
    steps = _steps("RENAME TABLE users TO customers;", "mysql", MARIADB)
    (view,) = steps.expand
    assert view.sql == "CREATE ALGORITHM=MERGE SQL SECURITY INVOKER VIEW customers AS SELECT * FROM users"
    assert view.abort == "DROP VIEW IF EXISTS customers" and not view.transactional
    assert [p.sql for p in steps.contract] == [
        "CREATE TABLE IF NOT EXISTS customers_bgm_swap LIKE users;\n"
        "CREATE OR REPLACE ALGORITHM=MERGE SQL SECURITY INVOKER VIEW customers_bgm_link AS SELECT * FROM "
        "customers_bgm_swap",
        "RENAME TABLE customers_bgm_swap TO customers_bgm_void, users TO customers_bgm_swap, "
        "customers_bgm_link TO users",
        "RENAME TABLE customers TO customers_bgm_parked, customers_bgm_swap TO customers",
        "DROP VIEW IF EXISTS customers_bgm_parked, users;\nDROP TABLE IF EXISTS customers_bgm_void",
    ]
    assert not any(p.transactional for p in steps.contract)
    assert any("commits implicitly" in n for n in steps.notes)
    assert any("sorts after customers" in n for n in steps.notes)
    _assert_analyzable(steps, "mysql")


def test_mysql_rename_table_to_a_long_name_swaps_directly_and_says_so() -> None:
    new = "c" * 60
    steps = _steps(f"RENAME TABLE users TO {new};", "mysql", MARIADB)
    swap, drop = steps.contract
    assert swap.sql.startswith(f"RENAME TABLE {new} TO bgm_") and swap.sql.endswith(f", users TO {new}")
    assert drop.sql.startswith("DROP VIEW IF EXISTS bgm_")
    assert any("error 1356" in n for n in steps.notes)
    _assert_analyzable(steps, "mysql")


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("ALTER TABLE users RENAME TO users;", "its own name"),
        ("ALTER TABLE users RENAME TO others;", "exists already"),
    ],
)
def test_rename_table_refusals(sql: str, reason: str) -> None:
    ddl = PG_USERS + "CREATE TABLE others (id bigint, PRIMARY KEY (id));"
    change = _change(sql, "postgres", Op.RENAME_TABLE)
    refusal = RenameTable().refusal(change, RecipeContext(_schema(ddl, "postgres"), "postgres", PG15))
    assert refusal is not None and reason in refusal


def test_rename_table_refuses_a_move_to_another_database() -> None:
    change = _change("RENAME TABLE app.users TO archive.users;", "mysql", Op.RENAME_TABLE)
    refusal = RenameTable().refusal(change, RecipeContext(_schema(MY_USERS, "mysql"), "mysql", MARIADB))
    assert refusal is not None and "another schema" in refusal


def test_rename_type_is_not_a_table_rename() -> None:
    change = _change("ALTER TYPE mood RENAME TO feeling;", "postgres", Op.RENAME_TABLE)
    ctx = RecipeContext(Schema(), "postgres", PG15)
    assert change.get("object") == "type"
    assert not RenameTable().applies(change, "breaking", ctx)


# ---- change type ------------------------------------------------------------------------------------


def test_pg_change_type_with_using_sql() -> None:
    steps = _steps("ALTER TABLE users ALTER COLUMN code TYPE integer USING code::integer;")
    add, sync = steps.expand
    assert add.sql == "ALTER TABLE users ADD COLUMN code_new int"
    assert add.abort == "ALTER TABLE users DROP COLUMN IF EXISTS code_new"
    fn = "bgm_retype_users_code"
    assert sync.sql == (
        f"CREATE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        "BEGIN\n"
        "  NEW.code_new := CAST(NEW.code AS int);\n"
        "  RETURN NEW;\n"
        "END\n"
        "$$;\n"
        f"CREATE TRIGGER {fn} BEFORE INSERT OR UPDATE ON users FOR EACH ROW EXECUTE FUNCTION {fn}()"
    )
    assert steps.backfill[0].batch_sql() == (
        "UPDATE users SET code_new = CAST(code AS int) WHERE id >= %(lo)s AND id <= %(hi)s "
        "AND (code_new IS DISTINCT FROM CAST(code AS int))"
    )
    (swap,) = steps.contract
    assert swap.sql == (
        f"DROP TRIGGER IF EXISTS {fn} ON users;\n"
        f"DROP FUNCTION IF EXISTS {fn}();\n"
        "ALTER TABLE users DROP COLUMN code;\n"
        "ALTER TABLE users RENAME COLUMN code_new TO code"
    )
    notes = " ".join(steps.notes)
    assert "blue and green both read and write code" in notes and "nothing reads or writes code_new" in notes
    assert "cached plan must not change result type" in notes
    _assert_analyzable(steps, "postgres")


def test_pg_narrowing_converts_by_assignment_and_keeps_not_null_and_default() -> None:
    steps = _steps("ALTER TABLE users ALTER COLUMN price TYPE numeric(10,2);")
    assert "NEW.price_new := NEW.price;" in steps.expand[1].sql
    assert steps.backfill[0].assignments == "price_new = price"
    assert steps.backfill[0].condition == "price_new IS DISTINCT FROM CAST(price AS decimal(10, 2))"
    swap, validate, set_not_null = steps.contract
    assert swap.sql.endswith(
        "ALTER TABLE users RENAME COLUMN price_new TO price;\n"
        "ALTER TABLE users ALTER COLUMN price SET DEFAULT 0;\n"
        "ALTER TABLE users ADD CONSTRAINT bgm_users_price_not_null CHECK (price IS NOT NULL) NOT VALID"
    )
    assert validate.sql == "ALTER TABLE users VALIDATE CONSTRAINT bgm_users_price_not_null"
    assert set_not_null.sql.startswith("ALTER TABLE users ALTER COLUMN price SET NOT NULL;")
    assert any("by assignment" in n for n in steps.notes)
    _assert_analyzable(steps, "postgres")


def test_pg_using_over_other_columns_is_evaluated_on_the_row() -> None:
    steps = _steps("ALTER TABLE users ALTER COLUMN code TYPE integer USING length(code) + length(nickname);")
    assert "NEW.code_new := (SELECT LENGTH(code) + LENGTH(nickname) FROM (SELECT NEW.*) AS users);" in (
        steps.expand[1].sql
    )
    assert steps.backfill[0].assignments == "code_new = (LENGTH(code) + LENGTH(nickname))"


def test_pg_incompatible_without_using_casts() -> None:
    steps = _steps("ALTER TABLE users ALTER COLUMN born TYPE date;")
    assert "NEW.born_new := CAST(NEW.born AS date);" in steps.expand[1].sql
    steps = _steps("ALTER TABLE users ALTER COLUMN code TYPE json USING code::json;")
    assert steps.backfill[0].condition == "code_new IS NULL"  # json has no equality operator


def test_mysql_change_type_sql() -> None:
    sql = "ALTER TABLE users MODIFY code int NOT NULL DEFAULT 0;"
    steps = _steps(sql, "mysql", MARIADB)
    add, ins, upd = steps.expand
    assert add.sql == "ALTER TABLE users ADD COLUMN code_new int, ALGORITHM=INSTANT"
    assert ins.sql == (
        "CREATE TRIGGER bgm_retype_users_code_ins BEFORE INSERT ON users FOR EACH ROW SET NEW.code_new = NEW.code"
    )
    assert upd.sql == (
        "CREATE TRIGGER bgm_retype_users_code_upd BEFORE UPDATE ON users FOR EACH ROW SET NEW.code_new = NEW.code"
    )
    assert steps.backfill[0].batch_sql() == (
        "UPDATE users SET code_new = code WHERE id >= %(lo)s AND id <= %(hi)s AND (code_new IS NULL)"
    )
    assert [p.sql for p in steps.contract] == [
        "ALTER TABLE users ALTER COLUMN code_new SET DEFAULT 0, ALGORITHM=INSTANT",
        "ALTER TABLE users DROP COLUMN code, RENAME COLUMN code_new TO code, ADD COLUMN code_new int, "
        "ALGORITHM=INSTANT",
        "DROP TRIGGER IF EXISTS bgm_retype_users_code_ins;\nDROP TRIGGER IF EXISTS bgm_retype_users_code_upd",
        "ALTER TABLE users DROP COLUMN code_new, ALGORITHM=INSTANT",
        "ALTER TABLE users MODIFY COLUMN code int NOT NULL DEFAULT 0, ALGORITHM=INPLACE, LOCK=NONE",
    ]
    assert not any(p.transactional for p in steps.expand + steps.contract)
    _assert_analyzable(steps, "mysql")


def test_mysql_modify_states_nullability_and_default() -> None:
    """MODIFY restates the column: the statement's NULL / DEFAULT win over the old column's."""
    steps = _steps("ALTER TABLE users MODIFY code int;", "mysql", MARIADB)
    assert steps.contract[0].sql == (
        "ALTER TABLE users DROP COLUMN code, RENAME COLUMN code_new TO code, ADD COLUMN code_new int, ALGORITHM=INSTANT"
    )
    assert len(steps.contract) == 3  # nullable and without default now: no SET DEFAULT, no MODIFY ... NOT NULL


def test_mysql_before_rename_column_syntax_the_swap_uses_change() -> None:
    steps = _steps("ALTER TABLE users MODIFY code int NOT NULL DEFAULT 0;", "mysql", (5, 7, 40))
    assert steps.contract[1].sql == (
        "ALTER TABLE users DROP COLUMN code, CHANGE COLUMN code_new code int DEFAULT 0, ADD COLUMN code_new int, "
        "ALGORITHM=INPLACE, LOCK=NONE"
    )
    assert steps.expand[0].sql.endswith("ADD COLUMN code_new int, ALGORITHM=INPLACE, LOCK=NONE")
    _assert_analyzable(steps, "mysql")


@pytest.mark.parametrize(
    ("sql", "dialect", "applies"),
    [
        ("ALTER TABLE users ALTER COLUMN code TYPE integer USING code::integer;", "postgres", True),  # incompatible
        ("ALTER TABLE users ALTER COLUMN price TYPE numeric(10,2);", "postgres", True),  # narrowing
        ("ALTER TABLE users ALTER COLUMN price TYPE numeric;", "postgres", False),  # widening
        ("ALTER TABLE users ALTER COLUMN code TYPE varchar;", "postgres", False),  # same
        ("ALTER TABLE users MODIFY code varchar(10) NOT NULL DEFAULT '0';", "mysql", True),  # narrowing
        ("ALTER TABLE users MODIFY code varchar(40) NOT NULL DEFAULT '0';", "mysql", False),  # widening
        ("ALTER TABLE users MODIFY nickname varchar(50) NOT NULL DEFAULT 'anon';", "mysql", False),  # NOT NULL only
    ],
)
def test_change_type_applies_to_narrowing_and_incompatible_only(sql: str, dialect: str, applies: bool) -> None:
    recipe, _, _ = _plan(sql, dialect, PG15 if dialect == "postgres" else MARIADB)
    assert isinstance(recipe, ChangeColumnType) is applies


@pytest.mark.parametrize(
    ("ddl", "sql", "reason"),
    [
        ("CREATE TABLE t (id bigint, PRIMARY KEY (id));", "ALTER TABLE t ALTER COLUMN a TYPE int;", "is not known"),
        (
            "CREATE TABLE t (id bigint, a text, a_new int, PRIMARY KEY (id));",
            "ALTER TABLE t ALTER COLUMN a TYPE int USING a::int;",
            "already has a column a_new",
        ),
        (
            "CREATE TABLE t (id bigint, a text, PRIMARY KEY (id));\nCREATE UNIQUE INDEX t_a ON t (a);",
            "ALTER TABLE t ALTER COLUMN a TYPE int USING a::int;",
            "index t_a",
        ),
        ("CREATE TABLE t (id text, PRIMARY KEY (id));", "ALTER TABLE t ALTER COLUMN id TYPE int;", "primary key"),
    ],
    ids=["unknown-type", "shadow-taken", "index", "key"],
)
def test_change_type_refusals(ddl: str, sql: str, reason: str) -> None:
    change = _change(sql, "postgres", Op.ALTER_COLUMN_TYPE)
    ctx = RecipeContext(_schema(ddl, "postgres"), "postgres", PG15)
    refusal = ChangeColumnType().refusal(change, ctx)
    assert refusal is not None and reason in refusal
    assert "manual alternative" in refusal


def test_every_expand_part_has_an_abort() -> None:
    cases = [
        ("ALTER TABLE users RENAME COLUMN email TO mail;", "postgres", PG15),
        ("ALTER TABLE users RENAME TO customers;", "postgres", PG15),
        ("ALTER TABLE users ALTER COLUMN code TYPE integer USING code::integer;", "postgres", PG15),
        ("ALTER TABLE users RENAME COLUMN email TO mail;", "mysql", MARIADB),
        ("RENAME TABLE users TO customers;", "mysql", MARIADB),
        ("ALTER TABLE users MODIFY code int NOT NULL DEFAULT 0;", "mysql", MARIADB),
    ]
    for sql, dialect, version in cases:
        steps = _steps(sql, dialect, version)
        assert steps.expand and all(p.abort for p in steps.expand), sql
        assert steps.contract and steps.notes, sql
