"""The constraint and index recipes: the SQL they emit (PostgreSQL and MySQL), when they apply, and
why they refuse. Their behaviour on real servers is tests/integration/test_recipes_constraints.py."""

from __future__ import annotations

import pytest

from migrator.lint.classify import classify
from migrator.plan.inverse import READ_ONLY
from migrator.plan.model import PlanError
from migrator.plan.recipes import RecipeContext, RecipeSteps, all_recipes, find_recipe
from migrator.plan.recipes.add_required_column import AddRequiredColumn
from migrator.plan.recipes.base import Recipe
from migrator.plan.recipes.index import (
    alter_action,
    choose_name,
    clean_sql,
    index_column_names,
    object_name,
    pyformat_safe,
    quote_ident,
)
from migrator.schema.model import Schema
from migrator.sql.analyze import analyze_text
from migrator.sql.changes import Change

PG15 = (15, 999, 999)
MY80 = (8, 0, 999)
PG_DDL = """
CREATE TABLE accounts (id bigint, email text, name text, PRIMARY KEY (id));
CREATE TABLE orders (id bigint, user_id bigint, amount int, PRIMARY KEY (id));
CREATE TABLE events (id bigint, payload text);
"""
MY_DDL = """
CREATE TABLE accounts (id bigint, email varchar(100), name varchar(100), PRIMARY KEY (id));
CREATE TABLE orders (id bigint, user_id bigint, amount int, PRIMARY KEY (id));
CREATE TABLE events (id bigint NOT NULL, payload text);
"""
GUARD = (
    "SELECT CAST('bgmigrate: index ' || indexrelid::regclass::text || ' is INVALID (its CREATE INDEX CONCURRENTLY "
    "failed): DROP INDEX CONCURRENTLY IF EXISTS it, fix the cause, run the build again' AS integer) FROM pg_index "
    "WHERE indexrelid = '{}'::regclass AND NOT indisvalid;"
)


def schema_of(ddl: str, dialect: str, unit: str = "history") -> Schema:
    schema = Schema()
    for st in analyze_text(ddl, dialect):
        for change in st.changes:
            schema.apply(change, unit)
    return schema


def change_of(sql: str, dialect: str, text: bool = True) -> Change:
    (st,) = analyze_text(sql, dialect)
    (change,) = st.changes
    if text:
        change.attrs["statement"] = st.sql
    return change


def pick(
    sql: str, dialect: str = "postgres", version: tuple[int, int, int] = PG15, ddl: str | None = None, text: bool = True
) -> tuple[Recipe | None, Change, RecipeContext]:
    schema = schema_of(ddl if ddl is not None else (PG_DDL if dialect == "postgres" else MY_DDL), dialect)
    change = change_of(sql, dialect, text)
    ctx = RecipeContext(schema, dialect, version)
    phase = classify(change, schema, "plan", dialect, version).phase
    return find_recipe(change, phase, ctx), change, ctx


def steps(sql: str, name: str, **kw: object) -> RecipeSteps:
    recipe, change, ctx = pick(sql, **kw)  # type: ignore[arg-type]
    assert recipe is not None and recipe.name == name
    assert recipe.refusal(change, ctx) is None
    return recipe.build(change, ctx)


def sqls(built: RecipeSteps) -> tuple[list[tuple[str, str | None]], list[str], list[str]]:
    return (
        [(p.sql, p.abort) for p in built.expand],
        [b.batch_sql() for b in built.backfill],
        [p.sql for p in built.contract],
    )


# ---- discovery -----------------------------------------------------------------------------------


def test_each_recipe_is_discovered_from_its_own_module():
    found = {r.name: type(r).__module__.rsplit(".", 1)[-1] for r in all_recipes()}
    assert {
        k: v
        for k, v in found.items()
        if v in ("add_required_column", "set_not_null", "add_foreign_key", "add_check", "add_unique", "index")
    } == {
        "add_required_column": "add_required_column",
        "set_not_null": "set_not_null",
        "add_foreign_key": "add_foreign_key",
        "add_check": "add_check",
        "add_unique": "add_unique",
        "create_index": "index",
        "drop_index": "index",
    }
    for recipe in all_recipes():
        assert recipe.summary


# ---- PostgreSQL SQL ------------------------------------------------------------------------------


def test_pg_add_required_column():
    built = steps(
        "ALTER TABLE accounts ADD COLUMN token text NOT NULL DEFAULT gen_random_uuid()::text", "add_required_column"
    )
    expand, backfill, contract = sqls(built)
    assert expand == [
        (
            "ALTER TABLE accounts ADD COLUMN IF NOT EXISTS token TEXT;",
            "ALTER TABLE accounts DROP COLUMN IF EXISTS token;",
        ),
        (
            "ALTER TABLE accounts ALTER COLUMN token SET DEFAULT CAST(GEN_RANDOM_UUID() AS TEXT);",
            "ALTER TABLE accounts ALTER COLUMN token DROP DEFAULT;",
        ),
    ]
    assert backfill == [
        "UPDATE accounts SET token = CAST(GEN_RANDOM_UUID() AS TEXT) WHERE id >= %(lo)s AND id <= %(hi)s "
        "AND (token IS NULL)"
    ]
    assert contract == [
        "ALTER TABLE accounts ADD CONSTRAINT accounts_token_not_null_check CHECK (token IS NOT NULL) NOT VALID;",
        "ALTER TABLE accounts VALIDATE CONSTRAINT accounts_token_not_null_check;",
        "ALTER TABLE accounts ALTER COLUMN token SET NOT NULL;",
        "ALTER TABLE accounts DROP CONSTRAINT IF EXISTS accounts_token_not_null_check;",
    ]
    assert "waits for contract" in built.notes[0] and "blue's UPDATEs" in built.notes[0]


def test_pg_add_required_column_keeps_the_column_definition():
    built = steps(
        "ALTER TABLE accounts ADD COLUMN code varchar(8) COLLATE \"C\" NOT NULL DEFAULT 'x%'",
        "add_required_column",
        version=(10, 23, 0),
    )
    assert built.expand[0].sql == 'ALTER TABLE accounts ADD COLUMN IF NOT EXISTS code VARCHAR(8) COLLATE "C";'
    assert built.backfill[0].assignments == "code = 'x%%'"  # the batch SQL is a pyformat template
    assert any("PostgreSQL before 12" in n for n in built.notes)


def test_pg_set_not_null():
    built = steps("ALTER TABLE accounts ALTER COLUMN email SET NOT NULL", "set_not_null")
    assert built.expand == [] and built.backfill == []
    assert [p.sql for p in built.contract] == [
        "ALTER TABLE accounts ADD CONSTRAINT accounts_email_not_null_check CHECK (email IS NOT NULL) NOT VALID;",
        "ALTER TABLE accounts VALIDATE CONSTRAINT accounts_email_not_null_check;",
        "ALTER TABLE accounts ALTER COLUMN email SET NOT NULL;",
        "ALTER TABLE accounts DROP CONSTRAINT IF EXISTS accounts_email_not_null_check;",
    ]
    assert "no scan" in built.contract[2].reason or "skips the scan" in built.contract[2].reason
    assert any("must be gone" in n for n in built.notes)


def test_pg_set_not_null_before_12_says_the_scan_stays():
    built = steps("ALTER TABLE accounts ALTER COLUMN email SET NOT NULL", "set_not_null", version=(11, 22, 0))
    assert "full scan" in built.contract[2].reason
    assert any("still scans" in n for n in built.notes)


def test_pg_add_foreign_key_names_an_unnamed_one_like_postgres():
    built = steps(
        "ALTER TABLE orders ADD FOREIGN KEY (user_id) REFERENCES accounts (id) ON DELETE CASCADE", "add_foreign_key"
    )
    assert sqls(built) == (
        [
            (
                "ALTER TABLE orders ADD CONSTRAINT orders_user_id_fkey FOREIGN KEY (user_id) REFERENCES accounts (id) "
                "ON DELETE CASCADE NOT VALID;",
                "ALTER TABLE orders DROP CONSTRAINT IF EXISTS orders_user_id_fkey;",
            )
        ],
        [],
        ["ALTER TABLE orders VALIDATE CONSTRAINT orders_user_id_fkey;"],
    )
    assert any(n.startswith("Caveat of adding the foreign key in expand") for n in built.notes)


def test_pg_add_check():
    built = steps("ALTER TABLE orders ADD CONSTRAINT amount_ok CHECK (amount >= 0) NO INHERIT", "add_check")
    assert sqls(built) == (
        [
            (
                "ALTER TABLE orders ADD CONSTRAINT amount_ok CHECK (amount >= 0) NO INHERIT NOT VALID;",
                "ALTER TABLE orders DROP CONSTRAINT IF EXISTS amount_ok;",
            )
        ],
        [],
        ["ALTER TABLE orders VALIDATE CONSTRAINT amount_ok;"],
    )
    unnamed = steps("ALTER TABLE orders ADD CHECK (amount >= 0 AND user_id > 0)", "add_check")
    assert unnamed.expand[0].sql.startswith("ALTER TABLE orders ADD CONSTRAINT orders_check CHECK")


def test_pg_add_unique():
    built = steps("ALTER TABLE accounts ADD UNIQUE (email)", "add_unique")
    assert sqls(built) == (
        [
            (
                "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS accounts_email_key ON accounts (email);",
                "DROP INDEX CONCURRENTLY IF EXISTS accounts_email_key;",
            ),
            (GUARD.format("accounts_email_key"), READ_ONLY),
        ],
        [],
        ["ALTER TABLE accounts ADD CONSTRAINT accounts_email_key UNIQUE USING INDEX accounts_email_key;"],
    )
    assert [p.transactional for p in built.expand] == [False, True]
    assert any("DROP INDEX CONCURRENTLY IF EXISTS accounts_email_key" in n and "INVALID" in n for n in built.notes)


def test_pg_add_unique_carries_nulls_include_and_deferral():
    built = steps(
        "ALTER TABLE accounts ADD CONSTRAINT one_email UNIQUE NULLS NOT DISTINCT (email, name) INCLUDE (id) "
        "DEFERRABLE INITIALLY DEFERRED",
        "add_unique",
    )
    assert built.expand[0].sql == (
        "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS one_email ON accounts (email, name) INCLUDE (id) "
        "NULLS NOT DISTINCT;"
    )
    assert built.contract[-1].sql == (
        "ALTER TABLE accounts ADD CONSTRAINT one_email UNIQUE USING INDEX one_email DEFERRABLE INITIALLY DEFERRED;"
    )


def test_pg_add_primary_key_makes_the_columns_not_null_first():
    built = steps("ALTER TABLE events ADD PRIMARY KEY (id)", "add_unique")
    assert built.expand[0].sql == "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS events_pkey ON events (id);"
    assert [p.sql for p in built.contract] == [
        "ALTER TABLE events ADD CONSTRAINT events_id_not_null_check CHECK (id IS NOT NULL) NOT VALID;",
        "ALTER TABLE events VALIDATE CONSTRAINT events_id_not_null_check;",
        "ALTER TABLE events ALTER COLUMN id SET NOT NULL;",
        "ALTER TABLE events DROP CONSTRAINT IF EXISTS events_id_not_null_check;",
        "ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY USING INDEX events_pkey;",
    ]
    known = steps("ALTER TABLE t ADD PRIMARY KEY (id)", "add_unique", ddl="CREATE TABLE t (id bigint NOT NULL);")
    assert [p.sql for p in known.contract] == ["ALTER TABLE t ADD CONSTRAINT t_pkey PRIMARY KEY USING INDEX t_pkey;"]


def test_pg_create_index_keeps_the_definition():
    built = steps("CREATE INDEX orders_big_idx ON orders USING btree (amount) WHERE amount > 100", "create_index")
    assert sqls(built) == (
        [
            (
                "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_big_idx ON orders USING btree (amount) "
                "WHERE amount > 100;",
                "DROP INDEX CONCURRENTLY IF EXISTS orders_big_idx;",
            ),
            (GUARD.format("orders_big_idx"), READ_ONLY),
        ],
        [],
        [],
    )


def test_pg_create_index_names_an_unnamed_one_like_postgres():
    built = steps("CREATE INDEX ON orders (lower(user_id::text), amount)", "create_index")
    assert built.expand[0].sql == (
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_lower_amount_idx ON orders (lower(user_id::text), amount);"
    )
    schema_qualified = steps("CREATE INDEX i ON app.orders (amount)", "create_index", ddl="")
    assert schema_qualified.expand[0].abort == "DROP INDEX CONCURRENTLY IF EXISTS app.i;"


def test_pg_create_index_leaves_string_literals_as_written():
    built = steps("create index i on orders (amount) -- partial\n where amount::text <> 'two  spaces'", "create_index")
    assert built.expand[0].sql == (
        "create index CONCURRENTLY IF NOT EXISTS i on orders (amount) where amount::text <> 'two  spaces';"
    )


def test_pg_unique_index_carries_the_caveat():
    built = steps("CREATE UNIQUE INDEX orders_u ON orders (user_id, amount)", "create_index")
    assert built.expand[0].sql.startswith("CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS orders_u")
    assert any("rejects duplicates" in n for n in built.notes)


def test_pg_drop_index():
    built = steps("DROP INDEX IF EXISTS orders_big_idx", "drop_index")
    assert sqls(built) == ([], [], ["DROP INDEX CONCURRENTLY IF EXISTS orders_big_idx;"])
    assert built.contract[0].transactional is False


# ---- MySQL SQL -----------------------------------------------------------------------------------


def test_mysql_add_required_column():
    built = steps(
        "ALTER TABLE accounts ADD COLUMN token varchar(36) NOT NULL DEFAULT (uuid()) COMMENT 'who' AFTER id",
        "add_required_column",
        dialect="mysql",
        version=MY80,
    )
    assert sqls(built) == (
        [
            (
                "ALTER TABLE accounts ADD COLUMN token VARCHAR(36) COMMENT 'who' AFTER id, ALGORITHM=INSTANT;",
                "ALTER TABLE accounts DROP COLUMN token;",
            ),
            (
                "ALTER TABLE accounts ALTER COLUMN token SET DEFAULT (UUID()), ALGORITHM=INSTANT;",
                "ALTER TABLE accounts ALTER COLUMN token DROP DEFAULT;",
            ),
        ],
        ["UPDATE accounts SET token = (UUID()) WHERE id >= %(lo)s AND id <= %(hi)s AND (token IS NULL)"],
        [
            "ALTER TABLE accounts MODIFY COLUMN token VARCHAR(36) NOT NULL DEFAULT (UUID()) COMMENT 'who', "
            "ALGORITHM=INPLACE, LOCK=NONE;"
        ],
    )
    old = steps(
        "ALTER TABLE accounts ADD COLUMN token varchar(36) NOT NULL DEFAULT (uuid()) AFTER id",
        "add_required_column",
        dialect="mysql",
        version=(8, 0, 20),
    )
    assert old.expand[0].sql.endswith(", ALGORITHM=INPLACE, LOCK=NONE;")  # INSTANT anywhere only from 8.0.29


def test_mysql_set_not_null_restates_the_column_in_place():
    built = steps(
        "ALTER TABLE accounts MODIFY email varchar(100) NOT NULL", "set_not_null", dialect="mysql", version=MY80
    )
    assert sqls(built) == (
        [],
        [],
        ["ALTER TABLE accounts MODIFY email varchar(100) NOT NULL, ALGORITHM=INPLACE, LOCK=NONE;"],
    )
    # a MODIFY that also changes the type is not a plain NOT NULL
    recipe, _, _ = pick("ALTER TABLE accounts MODIFY email varchar(50) NOT NULL", dialect="mysql", version=MY80)
    assert recipe is None or recipe.name != "set_not_null"


def test_mysql_add_foreign_key():
    built = steps(
        "ALTER TABLE orders ADD CONSTRAINT orders_account_fk FOREIGN KEY (user_id) REFERENCES accounts (id)",
        "add_foreign_key",
        dialect="mysql",
        version=MY80,
    )
    assert sqls(built) == (
        [
            (
                "SET foreign_key_checks = 0;\n"
                "ALTER TABLE orders ADD CONSTRAINT orders_account_fk FOREIGN KEY (user_id) REFERENCES accounts (id), "
                "ALGORITHM=INPLACE, LOCK=NONE;\n"
                "SET foreign_key_checks = 1;",
                "ALTER TABLE orders DROP FOREIGN KEY orders_account_fk, DROP INDEX orders_account_fk, "
                "ALGORITHM=INPLACE, LOCK=NONE;",
            )
        ],
        [],
        [
            "SELECT (SELECT 'no orphan rows' UNION ALL SELECT 'orphan rows: orders_account_fk does not hold' FROM "
            "orders c WHERE c.user_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM accounts p WHERE p.id = c.user_id) "
            "LIMIT 2) AS orders_account_fk_verified;"
        ],
    )
    indexed = steps(
        "ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (user_id) REFERENCES accounts (id)",
        "add_foreign_key",
        dialect="mysql",
        version=MY80,
        ddl=MY_DDL + "CREATE INDEX orders_user_idx ON orders (user_id, amount);",
    )
    assert indexed.expand[0].abort == "ALTER TABLE orders DROP FOREIGN KEY fk, ALGORITHM=INPLACE, LOCK=NONE;"


def test_mysql_unique_index_and_primary_key():
    unique = steps("ALTER TABLE accounts ADD UNIQUE (email)", "add_unique", dialect="mysql", version=MY80)
    assert sqls(unique) == (
        [
            (
                "ALTER TABLE accounts ADD UNIQUE email (email), ALGORITHM=INPLACE, LOCK=NONE;",
                "ALTER TABLE accounts DROP INDEX email, ALGORITHM=INPLACE, LOCK=NONE;",
            )
        ],
        [],
        [],
    )
    pk = steps("ALTER TABLE events ADD PRIMARY KEY (id)", "add_unique", dialect="mysql", version=MY80)
    assert sqls(pk) == ([], [], ["ALTER TABLE events ADD PRIMARY KEY (id), ALGORITHM=INPLACE, LOCK=NONE;"])


def test_mysql_indexes():
    create = steps(
        "CREATE INDEX orders_amount_idx ON orders (amount) ALGORITHM=COPY",
        "create_index",
        dialect="mysql",
        version=MY80,
    )
    assert sqls(create) == (
        [
            (
                "CREATE INDEX orders_amount_idx ON orders (amount) ALGORITHM=INPLACE LOCK=NONE;",
                "ALTER TABLE orders DROP INDEX orders_amount_idx, ALGORITHM=INPLACE, LOCK=NONE;",
            )
        ],
        [],
        [],
    )
    added = steps("ALTER TABLE orders ADD INDEX (amount)", "create_index", dialect="mysql", version=MY80)
    assert added.expand[0].sql == "ALTER TABLE orders ADD INDEX amount (amount), ALGORITHM=INPLACE, LOCK=NONE;"
    again = steps(
        "ALTER TABLE orders ADD INDEX (amount, id)",
        "create_index",
        dialect="mysql",
        version=MY80,
        ddl=MY_DDL + "CREATE INDEX amount ON orders (amount);",
    )
    assert again.expand[0].abort == "ALTER TABLE orders DROP INDEX amount_2, ALGORITHM=INPLACE, LOCK=NONE;"
    drop = steps("DROP INDEX orders_amount_idx ON orders", "drop_index", dialect="mysql", version=MY80)
    assert sqls(drop) == ([], [], ["ALTER TABLE orders DROP INDEX orders_amount_idx, ALGORITHM=INPLACE, LOCK=NONE;"])


# ---- refusals ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "dialect", "version", "ddl", "text", "reason"),
    [
        (
            "ALTER TABLE accounts ADD COLUMN s text NOT NULL",
            "postgres",
            PG15,
            None,
            True,
            "a NOT NULL column without a default needs a value for existing rows: add DEFAULT … or a backfill UPDATE "
            "in the release",
        ),
        ("ALTER TABLE accounts ADD COLUMN s varchar(9) NOT NULL", "mysql", MY80, None, True, "needs a value"),
        (
            "ALTER TABLE events ADD COLUMN s text NOT NULL DEFAULT random()::text",
            "postgres",
            PG15,
            None,
            True,
            "no single-column primary key",
        ),
        (
            "ALTER TABLE accounts ADD COLUMN s text NOT NULL DEFAULT random()::text UNIQUE",
            "postgres",
            PG15,
            None,
            True,
            "also declares UNIQUE",
        ),
        (
            "ALTER TABLE accounts ADD COLUMN s text NOT NULL DEFAULT random()::text",
            "postgres",
            PG15,
            None,
            False,
            "change.attrs['statement']",
        ),
        ("CREATE INDEX i ON orders (amount)", "postgres", PG15, None, False, "method, WHERE, INCLUDE"),
        ("CREATE INDEX i ON orders (amount)", "postgres", (14, 2, 0), None, True, "14.0-14.3"),
        ("CREATE INDEX i ON ONLY orders (amount)", "postgres", PG15, None, True, "ATTACH PARTITION"),
        ("DROP INDEX i CASCADE", "postgres", PG15, None, True, "cannot CASCADE"),
        ("DROP INDEX accounts_pkey", "postgres", PG15, None, True, "backs the primary key constraint"),
        (
            "ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (user_id) REFERENCES accounts (id)",
            "postgres",
            PG15,
            None,
            False,
            "ON DELETE / ON UPDATE",
        ),
        ("ALTER TABLE orders ADD CONSTRAINT c CHECK (amount > 0)", "mysql", MY80, None, True, "there is no NOT VALID"),
        (
            "ALTER TABLE accounts ADD CONSTRAINT u UNIQUE (email) WITH (fillfactor = 70)",
            "postgres",
            PG15,
            None,
            True,
            "not carried over",
        ),
    ],
)
def test_refusals(sql, dialect, version, ddl, text, reason):
    recipe, change, ctx = pick(sql, dialect=dialect, version=version, ddl=ddl, text=text)
    assert recipe is not None
    refusal = recipe.refusal(change, ctx)
    assert refusal is not None and reason in refusal
    with pytest.raises(PlanError):
        recipe.build(change, ctx)


def test_mysql_check_refusal_gives_the_manual_alternatives():
    recipe, change, ctx = pick("ALTER TABLE orders ADD CHECK (amount > 0)", dialect="mysql", version=MY80)
    assert recipe is not None
    refusal = recipe.refusal(change, ctx) or ""
    assert "NOT ENFORCED" in refusal and "Manual alternatives" in refusal and "triggers" in refusal


# ---- when they do not apply ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "dialect", "version", "ddl"),
    [
        ("ALTER TABLE accounts ADD COLUMN s text NOT NULL DEFAULT 'x'", "postgres", PG15, None),  # catalog only
        ("ALTER TABLE accounts ADD COLUMN s varchar(9) NOT NULL DEFAULT 'x'", "mysql", MY80, None),  # instant
        ("ALTER TABLE accounts ADD COLUMN s text", "postgres", PG15, None),
        ("CREATE INDEX CONCURRENTLY i ON orders (amount)", "postgres", PG15, None),
        ("CREATE INDEX i ON orders (amount) ALGORITHM=INPLACE LOCK=NONE", "mysql", MY80, None),
        ("DROP INDEX CONCURRENTLY i", "postgres", PG15, None),
        ("ALTER TABLE orders ADD CONSTRAINT c CHECK (amount > 0) NOT VALID", "postgres", PG15, None),
        (
            "ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (user_id) REFERENCES accounts (id) NOT VALID",
            "postgres",
            PG15,
            None,
        ),
        ("ALTER TABLE accounts ADD CONSTRAINT u UNIQUE USING INDEX u", "postgres", PG15, None),
        ("ALTER TABLE t ALTER COLUMN c SET NOT NULL", "postgres", PG15, "CREATE TABLE t (c int NOT NULL);"),
        (
            "ALTER TABLE t ALTER COLUMN c SET NOT NULL",
            "postgres",
            PG15,
            "CREATE TABLE t (c int); ALTER TABLE t ADD CONSTRAINT c_nn CHECK (c IS NOT NULL);",
        ),
    ],
)
def test_does_not_apply(sql, dialect, version, ddl):
    recipe, _, _ = pick(sql, dialect=dialect, version=version, ddl=ddl)
    assert recipe is None, recipe.name


def test_proven_not_null_still_needs_the_recipe_before_12():
    ddl = (
        "CREATE TABLE t (id bigint, c int, PRIMARY KEY (id)); ALTER TABLE t ADD CONSTRAINT c_nn CHECK (c IS NOT NULL);"
    )
    built = steps("ALTER TABLE t ALTER COLUMN c SET NOT NULL", "set_not_null", ddl=ddl, version=(11, 0, 0))
    assert "full scan" in built.contract[2].reason


def test_tables_created_in_the_release_are_left_alone():
    schema = schema_of("CREATE TABLE fresh (id bigint, c int, PRIMARY KEY (id));", "postgres", unit="plan")
    ctx = RecipeContext(schema, "postgres", PG15)
    for sql in (
        "CREATE INDEX i ON fresh (c)",
        "ALTER TABLE fresh ALTER COLUMN c SET NOT NULL",
        "ALTER TABLE fresh ADD CHECK (c > 0)",
        "ALTER TABLE fresh ADD UNIQUE (c)",
        "ALTER TABLE fresh ADD COLUMN d text NOT NULL DEFAULT random()::text",
    ):
        change = change_of(sql, "postgres")
        assert find_recipe(change, "expand", ctx) is None, sql


def test_add_required_column_applies_to_rewriting_defaults_only():
    recipe = AddRequiredColumn()
    ctx = RecipeContext(schema_of(PG_DDL, "postgres"), "postgres", PG15)
    volatile = change_of("ALTER TABLE accounts ADD COLUMN s text NOT NULL DEFAULT clock_timestamp()::text", "postgres")
    constant = change_of("ALTER TABLE accounts ADD COLUMN s text NOT NULL DEFAULT 'x'", "postgres")
    assert recipe.applies(volatile, "expand", ctx)
    assert not recipe.applies(constant, "expand", ctx)
    assert recipe.applies(constant, "expand", RecipeContext(ctx.schema, "postgres", (10, 23, 0)))


# ---- what the planner will make of the SQL -------------------------------------------------------

BLUE_SAFE = [  # (sql, dialect, version): every expand part is expand or neutral for the lint engine itself
    ("ALTER TABLE accounts ADD COLUMN token text NOT NULL DEFAULT gen_random_uuid()::text", "postgres", PG15),
    ("ALTER TABLE orders ADD FOREIGN KEY (user_id) REFERENCES accounts (id)", "postgres", PG15),
    ("ALTER TABLE orders ADD CHECK (amount >= 0)", "postgres", PG15),
    ("CREATE INDEX i ON orders (amount)", "postgres", PG15),
    ("ALTER TABLE accounts ADD COLUMN token varchar(36) NOT NULL DEFAULT (uuid())", "mysql", MY80),
    ("CREATE INDEX i ON orders (amount)", "mysql", MY80),
]


@pytest.mark.parametrize(("sql", "dialect", "version"), BLUE_SAFE)
def test_expand_parts_are_expand_for_the_lint_engine(sql, dialect, version):
    recipe, change, ctx = pick(sql, dialect=dialect, version=version)
    assert recipe is not None
    built = recipe.build(change, ctx)
    for part in built.expand:
        for st in analyze_text(part.sql, dialect):
            assert st.problem is None, (part.sql, st.problem)
            for ch in st.changes:
                phase = classify(ch, ctx.schema, "plan", dialect, ctx.version).phase
                assert phase in ("expand", "neutral"), (part.sql, phase)


@pytest.mark.parametrize(
    ("sql", "dialect", "version"),
    [
        *BLUE_SAFE,
        ("ALTER TABLE accounts ALTER COLUMN email SET NOT NULL", "postgres", PG15),
        ("ALTER TABLE accounts ADD UNIQUE (email)", "postgres", PG15),
        ("ALTER TABLE events ADD PRIMARY KEY (id)", "postgres", PG15),
        ("DROP INDEX i", "postgres", PG15),
        ("ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (user_id) REFERENCES accounts (id)", "mysql", MY80),
        ("ALTER TABLE accounts MODIFY email varchar(100) NOT NULL", "mysql", MY80),
        ("ALTER TABLE accounts ADD UNIQUE (email)", "mysql", MY80),
        ("DROP INDEX i ON orders", "mysql", MY80),
    ],
)
def test_every_statement_emitted_is_read_by_the_lint_engine(sql, dialect, version):
    recipe, change, ctx = pick(sql, dialect=dialect, version=version)
    assert recipe is not None
    built = recipe.build(change, ctx)
    for part in [*built.expand, *built.contract]:
        for text in filter(None, (part.sql, part.abort)):
            for st in analyze_text(text, dialect):
                assert st.problem is None, (text, st.problem)
                assert all(ch.op not in ("unknown", "syntax_error") for ch in st.changes), text
    for backfill in built.backfill:
        (st,) = analyze_text(backfill.batch_sql() % {"lo": 1, "hi": 2}, dialect)
        assert st.problem is None and st.changes[0].op == "update"


# ---- helpers -------------------------------------------------------------------------------------


def test_default_names_follow_postgres():
    assert object_name("accounts", "email", "key") == "accounts_email_key"
    assert object_name("t", None, "pkey") == "t_pkey"
    long = object_name("a" * 40, "b" * 40, "fkey")
    assert len(long) == 63 and long == "a" * 29 + "_" + "b" * 28 + "_fkey"
    assert choose_name("t", "c", "check", {"t_c_check", "t_c_check1"}) == "t_c_check2"
    assert index_column_names(["lower(email)", '"Mixed"', "amount DESC", "(a + b)"]) == [
        "lower",
        "Mixed",
        "amount",
        "expr",
    ]


def test_identifiers_are_quoted_only_when_needed():
    assert quote_ident("email", "postgres") == "email"
    assert quote_ident("order", "postgres") == '"order"'
    assert quote_ident("Email", "postgres") == '"Email"'
    assert quote_ident("Email", "mysql") == "Email"
    assert quote_ident("key", "mysql") == "`key`"


def test_statement_text_helpers():
    assert clean_sql("ALTER TABLE t -- why\n  ADD CHECK (a > 0) /* c */;") == "ALTER TABLE t ADD CHECK (a > 0)"
    assert clean_sql("SELECT 'a  --  b'") == "SELECT 'a  --  b'"
    checks = [
        c
        for st in analyze_text("ALTER TABLE t ADD COLUMN x int, ADD CONSTRAINT c CHECK (a IN (1, 2))", "postgres")
        for c in st.changes
        if c.op == "add_constraint"
    ]
    assert alter_action(
        checks[0], "ALTER TABLE t ADD COLUMN x int, ADD CONSTRAINT c CHECK (a IN (1, 2))", "postgres"
    ) == ("t", "ADD CONSTRAINT c CHECK (a IN (1, 2))")
    assert pyformat_safe("a LIKE 'x%'") == "a LIKE 'x%%'"
