"""The runner on the real PostgreSQL: a whole release, gates, resume, refusals, abort, dry run."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import psycopg
from runner_harness import (
    Release,
    bgm,
    pg_data,
    pg_exec,
    pg_rows,
    pg_schema,
    seed_sql,
    steps_state,
)

from migrator.plan.model import Plan


def _setup(dsn: str, tmp_path: Path, customers: int = 3000) -> Release:
    pg_exec(dsn, Release.write(tmp_path).migrations.joinpath("0001_base.sql").read_text() + seed_sql(customers))
    return Release(tmp_path, tmp_path / "migrations", tmp_path / "plan.json")


def test_whole_release_expand_gates_contract(fresh_pg: str, tmp_path: Path) -> None:
    rel = _setup(fresh_pg, tmp_path)
    before = pg_rows(fresh_pg, "SELECT id, email FROM customers ORDER BY id")

    done = bgm("expand", "--plan", str(rel.plan), "--dsn", fresh_pg, "--batch-size", "500")
    assert done.returncode == 0, done.stderr
    assert "release 0002_release: expanded" in done.stdout
    # blue's view still works: the old column is there, the new one filled by the backfill
    assert pg_rows(fresh_pg, "SELECT count(*) FROM customers WHERE email_address IS DISTINCT FROM email") == [(0,)]
    state = steps_state(fresh_pg)
    assert state["migrate-001"][0] == "done" and state["migrate-001"][3] == 3000  # every row once
    assert all(v[0] == "pending" for k, v in state.items() if k.startswith("contract"))
    # the trigger keeps both names in step for blue's and green's writes
    pg_exec(fresh_pg, "INSERT INTO customers (id, email) VALUES (99999, 'blue@example.com')")
    assert pg_rows(fresh_pg, "SELECT email_address FROM customers WHERE id = 99999") == [("blue@example.com",)]
    pg_exec(fresh_pg, "DELETE FROM customers WHERE id = 99999")

    refused = bgm("contract", "--dsn", fresh_pg)
    assert refused.returncode == 3
    assert "not recorded as switched and decommissioned" in refused.stderr
    assert pg_rows(fresh_pg, "SELECT count(*) FROM information_schema.columns WHERE column_name = 'email'") == [(1,)]

    assert bgm("mark", "decommissioned", "--dsn", fresh_pg).returncode == 3  # not switched yet
    assert bgm("mark", "switched", "--dsn", fresh_pg).returncode == 0
    assert bgm("mark", "decommissioned", "--dsn", fresh_pg).returncode == 0
    done = bgm("contract", "--dsn", fresh_pg, "--format", "json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["status"] == "contracted" and [s["id"] for s in report["steps"]] == [
        f"contract-00{i}" for i in range(1, 9)
    ]

    schema = pg_schema(fresh_pg)
    customers = "table customers: created_at timestamp with time zone not null, email_address text not null, id bigint"
    assert customers in schema
    assert "orders_customer_fk" in schema and "True)" in schema.split("orders_customer_fk")[1].splitlines()[0]
    assert "trigger" not in schema  # the sync trigger went with the old column
    assert "total integer not null" in schema
    assert pg_rows(fresh_pg, "SELECT id, email_address FROM customers ORDER BY id") == before

    status = json.loads(bgm("status", "--dsn", fresh_pg, "--format", "json").stdout)
    (release,) = status["releases"]
    assert release["status"] == "contracted" and release["switched_at"] and release["decommissioned_at"]
    kinds = [e["kind"] for e in release["events"]]
    assert kinds[:2] == ["expand-started", "expanded"] and kinds[-1] == "contracted"
    # a completed release does nothing when run again
    again = bgm("contract", "--dsn", fresh_pg, "--release", "0002_release")
    assert again.returncode == 0 and "already contracted" in again.stdout
    # a pipeline's hook retried after contract: the gates it records are already there
    for gate in ("switched", "decommissioned"):
        retried = bgm("mark", gate, "--dsn", fresh_pg)
        assert retried.returncode == 0 and f"already {gate}" in retried.stdout + retried.stderr, retried.stderr
    events = json.loads(bgm("status", "--dsn", fresh_pg, "--format", "json").stdout)["releases"][0]["events"]
    assert [e["kind"] for e in events].count("switched") == 1


def test_dry_run_prints_the_plan_sql_and_changes_nothing(fresh_pg: str, tmp_path: Path) -> None:
    rel = _setup(fresh_pg, tmp_path, customers=10)
    plan = Plan.from_json(rel.plan.read_text())
    done = bgm("expand", "--plan", str(rel.plan), "--dsn", fresh_pg, "--dry-run")
    assert done.returncode == 0, done.stderr
    for step in plan.steps:
        if step.stage == "expand":
            assert step.sql.rstrip(";") in done.stdout, step.id
    assert "UPDATE customers SET email_address = email WHERE id >= %(lo)s AND id <= %(hi)s" in done.stdout
    assert "SET lock_timeout = '2000ms'" in done.stdout
    assert pg_rows(fresh_pg, "SELECT count(*) FROM pg_namespace WHERE nspname = 'bgmigrate'") == [(0,)]
    assert "email_address" not in pg_schema(fresh_pg)
    # after expand, the dry run of contract shows contract's SQL and that the gates would refuse it
    assert bgm("expand", "--plan", str(rel.plan), "--dsn", fresh_pg).returncode == 0
    dry = bgm("contract", "--dsn", fresh_pg, "--dry-run")
    assert dry.returncode == 0
    assert "contract would be refused" in dry.stdout
    assert "ALTER TABLE customers DROP COLUMN email;" in dry.stdout
    assert "email" in pg_schema(fresh_pg).split("table customers:")[1].split("\n")[0]


def test_rerun_never_repeats_a_done_step_and_refuses_changed_sql(fresh_pg: str, tmp_path: Path) -> None:
    rel = _setup(fresh_pg, tmp_path, customers=50)
    assert bgm("expand", "--plan", str(rel.plan), "--dsn", fresh_pg).returncode == 0
    first = steps_state(fresh_pg)
    again = bgm("expand", "--plan", str(rel.plan), "--dsn", fresh_pg)
    assert again.returncode == 0 and "already expanded" in again.stdout
    assert steps_state(fresh_pg) == first

    # the same release re-planned with other SQL in a step that already ran: refused, nothing run
    (rel.migrations / "0002_release.sql").write_text(
        (rel.migrations / "0002_release.sql").read_text().replace("ADD COLUMN tier text", "ADD COLUMN tier varchar(20)")
    )
    other = tmp_path / "plan2.json"
    assert bgm("plan", str(rel.migrations), "--since", "0001_base.sql", "-o", str(other)).returncode == 0
    refused = bgm("expand", "--plan", str(other), "--dsn", fresh_pg)
    assert refused.returncode == 3
    assert "changes step expand-006, which already ran" in refused.stderr

    # a recorded checksum that no longer matches the plan (state edited by hand): refused
    pg_exec(fresh_pg, "UPDATE bgmigrate.steps SET checksum = 'x', status = 'pending' WHERE step_id = 'expand-001'")
    pg_exec(fresh_pg, "UPDATE bgmigrate.releases SET status = 'expanding'")
    refused = bgm("expand", "--plan", str(rel.plan), "--dsn", fresh_pg)
    assert refused.returncode == 3 and "expand-001" in refused.stderr and "differs" in refused.stderr


def test_edited_plan_bad_input_and_wrong_database_are_refused(fresh_pg: str, tmp_path: Path) -> None:
    rel = _setup(fresh_pg, tmp_path, customers=5)
    edited = tmp_path / "edited.json"
    edited.write_text(rel.plan.read_text().replace("ADD COLUMN tier text", "ADD COLUMN tier bigint"))
    done = bgm("expand", "--plan", str(edited), "--dsn", fresh_pg)
    assert done.returncode == 2 and "edited after it was made" in done.stderr and "Traceback" not in done.stderr

    assert bgm("expand", "--plan", str(rel.plan)).returncode == 2  # no DSN
    both = bgm("expand", str(rel.migrations), "--plan", str(rel.plan), "--dsn", fresh_pg)
    assert both.returncode == 2 and "not both" in both.stderr
    bad = bgm("expand", "--plan", str(rel.plan), "--dsn", fresh_pg, "--lock-timeout", "soon")
    assert bad.returncode == 2 and "not a duration" in bad.stderr
    missing = bgm("expand", "--plan", str(tmp_path / "nope.json"), "--dsn", fresh_pg)
    assert missing.returncode == 2 and "cannot read" in missing.stderr

    # the database is not in the state the plan was made for: refused before any step, named
    pg_exec(fresh_pg, "ALTER TABLE customers ALTER COLUMN email DROP NOT NULL")
    done = bgm("expand", "--plan", str(rel.plan), "--dsn", fresh_pg)
    assert done.returncode == 3
    assert "customers.email is NULL, the plan expects NOT NULL" in done.stderr
    assert "email_address" not in pg_schema(fresh_pg)

    # a newer state table version than this bgmigrate knows
    pg_exec(fresh_pg, "ALTER TABLE customers ALTER COLUMN email SET NOT NULL")
    assert bgm("status", "--dsn", fresh_pg).stdout.startswith("no release is recorded")
    assert bgm("expand", "--plan", str(rel.plan), "--dsn", fresh_pg).returncode == 0
    pg_exec(fresh_pg, "INSERT INTO bgmigrate.state_version VALUES (99, now(), 'future')")
    done = bgm("status", "--dsn", fresh_pg)
    assert done.returncode == 2 and "version 99, newer than this bgmigrate knows" in done.stderr


def test_source_form_plans_and_runs_in_one_go(fresh_pg: str, tmp_path: Path) -> None:
    rel = _setup(fresh_pg, tmp_path, customers=20)
    done = bgm("expand", str(rel.migrations), "--since", "0001_base.sql", "--dsn", fresh_pg, "-f", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "expanded"
    recorded = Plan.from_json(pg_rows(fresh_pg, "SELECT plan FROM bgmigrate.releases")[0][0])
    offline = Plan.from_json(rel.plan.read_text())
    # the same steps as 'bgmigrate plan' makes; planned against the database, they also carry its sizes
    assert [(s.id, s.sql) for s in recorded.steps] == [(s.id, s.sql) for s in offline.steps]
    assert recorded.steps[0].size_bytes and offline.steps[0].size_bytes is None


def test_contract_force_needs_a_reason_and_is_recorded(fresh_pg: str, tmp_path: Path) -> None:
    rel = _setup(fresh_pg, tmp_path, customers=10)
    assert bgm("expand", "--plan", str(rel.plan), "--dsn", fresh_pg).returncode == 0
    no_reason = bgm("contract", "--dsn", fresh_pg, "--force")
    assert no_reason.returncode == 2 and "--reason" in no_reason.stderr
    forced = bgm("contract", "--dsn", fresh_pg, "--force", "--reason", "blue scaled to zero by hand (INC-42)")
    assert forced.returncode == 0, forced.stderr
    events = pg_rows(fresh_pg, "SELECT kind, detail FROM bgmigrate.events WHERE kind = 'forced'")
    assert len(events) == 1 and "INC-42" in events[0][1] and "switched and decommissioned" in events[0][1]


def test_a_new_release_waits_for_the_previous_contract(fresh_pg: str, tmp_path: Path) -> None:
    rel = _setup(fresh_pg, tmp_path, customers=10)
    assert bgm("expand", "--plan", str(rel.plan), "--dsn", fresh_pg).returncode == 0
    (rel.migrations / "0003_next.sql").write_text("CREATE TABLE audit (id bigint PRIMARY KEY);\n")
    nxt = tmp_path / "next.json"
    planned = bgm("plan", str(rel.migrations), "--since", "0002_release.sql", "-o", str(nxt))
    assert planned.returncode == 0, planned.stderr
    refused = bgm("expand", "--plan", str(nxt), "--dsn", fresh_pg)
    assert refused.returncode == 3 and "0002_release (expanded) is still in progress" in refused.stderr
    assert pg_rows(fresh_pg, "SELECT to_regclass('audit')") == [(None,)]


def test_abort_undoes_expand_in_reverse_and_can_restart(fresh_pg: str, tmp_path: Path) -> None:
    rel = _setup(fresh_pg, tmp_path, customers=200)
    original_schema, original_data = pg_schema(fresh_pg), pg_data(fresh_pg)
    assert bgm("expand", "--plan", str(rel.plan), "--dsn", fresh_pg).returncode == 0
    assert pg_schema(fresh_pg) != original_schema

    dry = bgm("abort", "--dsn", fresh_pg, "--dry-run")
    assert dry.returncode == 0 and dry.stdout.index("expand-006") < dry.stdout.index("expand-001")
    done = bgm("abort", "--dsn", fresh_pg)
    assert done.returncode == 0, done.stderr
    assert pg_schema(fresh_pg) == original_schema
    assert pg_data(fresh_pg) == original_data
    state = steps_state(fresh_pg)
    assert {k: v[0] for k, v in state.items() if not k.startswith("contract")} == {
        **{f"expand-00{i}": "undone" for i in range(1, 7)},
        "migrate-001": "undone",
    }
    assert bgm("contract", "--dsn", fresh_pg).returncode == 3  # nothing in progress

    # expand again after the abort; once switched, abort is refused
    assert bgm("expand", "--plan", str(rel.plan), "--dsn", fresh_pg).returncode == 0
    assert bgm("mark", "switched", "--dsn", fresh_pg).returncode == 0
    refused = bgm("abort", "--dsn", fresh_pg)
    assert refused.returncode == 3 and "already switched" in refused.stderr
    assert "email_address" in pg_schema(fresh_pg)


def test_password_never_printed_nor_stored(fresh_pg: str, tmp_path: Path) -> None:
    rel = _setup(fresh_pg, tmp_path, customers=5)
    params = psycopg.conninfo.conninfo_to_dict(fresh_pg)
    secret = "Tr0ub4dor&3-runner"
    host, port = params.get("host", "127.0.0.1"), params.get("port", 5432)
    url = f"postgresql://{params.get('user', 'postgres')}:{secret}@{host}:{port}/{params['dbname']}"
    outputs = [
        bgm("expand", "--plan", str(rel.plan), "--dsn", url, "--dry-run"),
        bgm("expand", "--plan", str(rel.plan), "--dsn", url),
        bgm("status", "--dsn", url, "--format", "json"),
        bgm("contract", "--dsn", url),
        bgm("mark", "switched", "--dsn", url),
        bgm("abort", "--dsn", url),
        bgm("status", "--dsn", url.replace(params["dbname"], "no_such_db")),
        bgm("expand", "--plan", str(rel.plan), env={"BGMIGRATE_DSN": url.replace(params["dbname"], "no_such_db")}),
    ]
    assert [o.returncode for o in outputs] == [0, 0, 0, 3, 0, 3, 2, 2]
    for out in outputs:
        assert secret not in out.stdout + out.stderr
    assert "***" in outputs[-2].stderr and "no_such_db" in outputs[-2].stderr
    dump = "\n".join(
        str(row)
        for table in ("releases", "steps", "events", "runner")
        for row in pg_rows(fresh_pg, f"SELECT * FROM bgmigrate.{table}")
    )
    assert secret not in dump


def test_a_role_without_rights_gets_a_clear_message_not_a_traceback(fresh_pg: str, tmp_path: Path) -> None:
    rel = _setup(fresh_pg, tmp_path, customers=5)
    role = f"bgm_low_{uuid.uuid4().hex[:8]}"
    dbname = psycopg.conninfo.conninfo_to_dict(fresh_pg)["dbname"]
    pg_exec(fresh_pg, f'CREATE ROLE {role} LOGIN; REVOKE CREATE ON DATABASE "{dbname}" FROM PUBLIC')
    low = psycopg.conninfo.make_conninfo(fresh_pg, user=role)
    try:
        done = bgm("expand", "--plan", str(rel.plan), "--dsn", low)
        assert done.returncode == 2, done.stderr
        assert "cannot create or upgrade bgmigrate's state tables in 'bgmigrate'" in done.stderr
        assert "permission denied for database" in done.stderr and "Traceback" not in done.stderr
        assert bgm("expand", "--plan", str(rel.plan), "--dsn", fresh_pg).returncode == 0  # the owner can
        done = bgm("status", "--dsn", low)
        assert done.returncode == 2 and "may not use bgmigrate's state tables" in done.stderr
    finally:
        pg_exec(fresh_pg, f"DROP OWNED BY {role}; DROP ROLE {role}")


def test_state_tables_are_upgraded_by_a_later_version(fresh_pg: str, tmp_path: Path, monkeypatch) -> None:
    from migrator.run import state
    from migrator.run.db import connect
    from migrator.run.runner import Runner

    rel = _setup(fresh_pg, tmp_path, customers=5)
    assert bgm("expand", "--plan", str(rel.plan), "--dsn", fresh_pg).returncode == 0
    # a later bgmigrate adds state migration 2; its first run upgrades the tables, keeping the data
    monkeypatch.setattr(state, "STATE_VERSION", 3)
    monkeypatch.setitem(state.MIGRATIONS, 3, ["ALTER TABLE {s}.releases ADD COLUMN note {text} NULL"])
    db = connect(fresh_pg)
    try:
        Runner(db).mark("switched")
    finally:
        db.close()
    assert pg_rows(fresh_pg, "SELECT version FROM bgmigrate.state_version ORDER BY 1") == [(1,), (2,), (3,)]
    assert pg_rows(fresh_pg, "SELECT name, note, switched_at IS NOT NULL FROM bgmigrate.releases") == [
        ("0002_release", None, True)
    ]
