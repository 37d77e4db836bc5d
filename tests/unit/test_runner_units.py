"""The runner's pure parts: durations, Cloud SQL DSN options, checksums, release names, dry-run
scripts, abort SQL for plain statements and the plan's expected table shapes."""

from __future__ import annotations

from pathlib import Path

import pytest

from migrator.dsn import parse_dsn
from migrator.plan.expects import differences, fingerprint, table_shapes
from migrator.plan.inverse import READ_ONLY, inverse_sql
from migrator.plan.model import Plan
from migrator.run.cloudsql import cloudsql_options
from migrator.run.durations import format_duration, parse_duration
from migrator.run.render import dry_run_script
from migrator.run.runner import release_name_for, step_checksum
from migrator.schema.live.errors import LiveSchemaError
from migrator.schema.model import Column, Schema, Table
from migrator.sql.changes import Change, Op

GOLDEN = Path(__file__).resolve().parents[2] / "fixtures" / "plans"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("2s", 2.0), ("500ms", 0.5), ("1.5s", 1.5), ("2min", 120.0), ("1h", 3600.0), ("3", 3.0), (" 250 ms ", 0.25)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["soon", "-1s", "2 weeks", "1.2.3s"])
def test_bad_durations_name_the_option(text: str) -> None:
    with pytest.raises(ValueError, match="--lock-timeout"):
        parse_duration(text, what="--lock-timeout")


def test_format_duration() -> None:
    assert [format_duration(x) for x in (0.0123, 2.5, 600)] == ["12 ms", "2.5 s", "10.0 min"]


def test_cloudsql_options_from_the_dsn() -> None:
    assert cloudsql_options(parse_dsn("postgresql://app:pw@db.internal/app")) is None
    opts = cloudsql_options(
        parse_dsn("postgresql://sa-deploy@proj.iam@/app?cloudsql_instance=proj:europe-west1:main&cloudsql_iam=true")
    )
    assert opts is not None and (opts.instance, opts.iam, opts.ip_type) == ("proj:europe-west1:main", True, "PUBLIC")
    assert opts.connector_kwargs() == {"ip_type": "PUBLIC", "enable_iam_auth": True, "refresh_strategy": "lazy"}
    dsn = parse_dsn("mysql://app:s3cret@/app?cloudsql_instance=proj:us-central1:db&cloudsql_ip_type=private")
    opts = cloudsql_options(dsn)
    assert opts is not None and opts.ip_type == "PRIVATE"
    assert opts.connect_kwargs(dsn) == {"user": "app", "db": "app", "password": "s3cret"}
    iam = parse_dsn("postgresql://sa@proj.iam:ignored@/app?cloudsql_instance=p:r:i&cloudsql_iam=true")
    assert "password" not in cloudsql_options(iam).connect_kwargs(iam)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("dsn", "message"),
    [
        ("postgresql://u@/db?cloudsql_instance=proj:main", "PROJECT:REGION:INSTANCE"),
        ("postgresql://u@/db?cloudsql_instance=p:r:i&cloudsql_ip_type=vpn", "public, private or psc"),
        ("postgresql://u@/db?cloudsql_instance=p:r:i&cloudsql_iam=maybe", "true or false"),
        ("postgresql://u@/db?cloudsql_iam=true", "need cloudsql_instance"),
        ("postgresql://u@/db?cloudsql_instance=p:r:i&sslmode=require", "no other parameters"),
        ("postgresql:///db?cloudsql_instance=p:r:i", "needs a user name"),
    ],
)
def test_bad_cloudsql_options(dsn: str, message: str) -> None:
    with pytest.raises(LiveSchemaError, match=message):
        cloudsql_options(parse_dsn(dsn))


def _plan(name: str = "rename_column") -> Plan:
    return Plan.from_json((GOLDEN / name / "plan.json").read_text())


def test_step_checksum_covers_what_runs() -> None:
    plan = _plan()
    step = plan.steps[0]
    base = step_checksum(step)
    for field, value in (
        ("sql", step.sql + " "),
        ("abort", "DROP"),
        ("lock_timeout", "9s"),
        ("statement_timeout", "1s"),
    ):
        changed = type(step)(**{**step.__dict__, field: value})
        assert step_checksum(changed) != base, field
    assert step_checksum(type(step)(**{**step.__dict__, "reason": "other words"})) == base  # prose is not SQL


def test_release_name_is_the_last_source() -> None:
    plan = _plan()
    assert release_name_for(plan) == "0002_release"
    plan.sources = []
    assert release_name_for(plan) == plan.sha256[:12]


def test_dry_run_script_is_the_plan_sql_with_timeouts() -> None:
    plan = _plan()
    script = dry_run_script(plan, ("expand", "migrate"), None, command="expand", release_name="r1", batch_size=250)
    assert script.startswith("-- bgmigrate expand --dry-run: release r1, plan sha256 " + plan.sha256)
    for step in plan.steps:
        if step.stage == "expand":
            assert step.sql.rstrip(";") in script
        if step.stage == "contract":
            assert step.sql.rstrip(";") not in script
    assert "backfill in batches of 250 on id" in script
    assert "SET lock_timeout = '2000ms'; SET statement_timeout = '5000ms';" in script
    assert "SET lock_timeout = '2000ms'; SET statement_timeout = '0';" in script  # backfills have none
    overridden = dry_run_script(plan, ("expand",), None, command="expand", release_name="r1", lock_timeout=0.2)
    assert "SET lock_timeout = '200ms'" in overridden
    undo = dry_run_script(plan, ("expand",), None, command="abort", release_name="r1", undo=True)
    assert "nothing to run" in undo  # nothing recorded as run: nothing to undo


def test_mysql_dry_run_sets_metadata_lock_wait() -> None:
    script = dry_run_script(_plan("mysql_change"), ("expand",), None, command="expand", release_name="r")
    assert "SET SESSION lock_wait_timeout = 2, SESSION innodb_lock_wait_timeout = 2;" in script


@pytest.mark.parametrize(
    ("change", "dialect", "expected"),
    [
        (Change(Op.ADD_COLUMN, "users", "nick"), "postgres", "ALTER TABLE users DROP COLUMN IF EXISTS nick"),
        (Change(Op.ADD_COLUMN, "users", "nick"), "mysql", "ALTER TABLE users DROP COLUMN nick"),
        (
            Change(Op.ADD_COLUMN, "Users", "Nick Name"),
            "postgres",
            'ALTER TABLE "Users" DROP COLUMN IF EXISTS "Nick Name"',
        ),
        (Change(Op.ADD_COLUMN, "users", "order"), "postgres", 'ALTER TABLE users DROP COLUMN IF EXISTS "order"'),
        (Change(Op.CREATE_TABLE, "app.audit"), "postgres", "DROP TABLE IF EXISTS app.audit"),
        (
            Change(Op.CREATE_INDEX, "app.users", attrs={"index": "users_nick", "concurrently": True}),
            "postgres",
            "DROP INDEX CONCURRENTLY IF EXISTS app.users_nick",
        ),
        (Change(Op.CREATE_INDEX, "users", attrs={"index": "users_nick"}), "mysql", "DROP INDEX users_nick ON users"),
        (
            Change(Op.ADD_CONSTRAINT, "orders", attrs={"constraint": "fk_u", "kind": "foreign_key"}),
            "mysql",
            "ALTER TABLE orders DROP FOREIGN KEY fk_u",
        ),
        (Change(Op.SELECT), "postgres", READ_ONLY),
        (Change(Op.ADD_COLUMN, "users", "nick", attrs={"if_not_exists": True}), "postgres", None),  # may pre-exist
        (Change(Op.DROP_NOT_NULL, "users", "nick"), "postgres", None),  # no safe inverse: abort refuses
        (Change(Op.ADD_CONSTRAINT, "orders", attrs={"kind": "check"}), "postgres", None),  # unnamed
    ],
)
def test_inverse_sql(change: Change, dialect: str, expected: str | None) -> None:
    assert inverse_sql([change], dialect) == expected


def test_expected_shapes_compare_normalized_types() -> None:
    history = Schema()
    history.tables["users"] = Table(
        "users", columns={"id": Column("id", "int", False), "email": Column("email", "varchar(200)", False)}
    )
    expects = table_shapes(history, ["users", '"users"', "created_later"])
    assert expects == {"users": [["email", "varchar(200)", False], ["id", "int", False]]}
    live = Schema()
    live.tables["users"] = Table(
        "users",
        columns={"id": Column("id", "integer", False), "email": Column("email", "character varying(200)", False)},
    )
    assert differences(expects, live) == []
    live.tables["users"].columns["email"] = Column("email", "text", True)
    live.tables["users"].columns["extra"] = Column("extra", "int", True)
    assert differences(expects, live) == [
        "users.email is text, the plan expects varchar(200)",
        "users.email is NULL, the plan expects NOT NULL",
        "users.extra exists, the plan does not expect it",
    ]
    assert differences(expects, Schema()) == ["table users does not exist"]
    assert fingerprint(expects) == fingerprint(
        {"users": [["email", "character varying(200)", False], ["id", "int4", False]]}
    )


def test_dry_run_shows_the_alembic_stamp() -> None:
    plan = _plan()
    plan.alembic = {"version_table": "alembic_version", "revisions": ["b2", "c3"], "from": ["a1"], "heads": ["c3"]}
    script = dry_run_script(plan, ("contract",), None, command="contract", release_name="r")
    assert script.rstrip().endswith("records the release contracted: alembic_version rows a1, b2 replaced by c3")
    assert "alembic_version" not in dry_run_script(plan, ("expand",), None, command="expand", release_name="r")
