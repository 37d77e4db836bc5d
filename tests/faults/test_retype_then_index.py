"""Found by the fault suite: a column retyped by the change-type recipe (new column, trigger, backfill;
contract drops the old column and renames the new one into place) and indexed or made UNIQUE later in the
same release. Built in expand, the index would be built on the old column and dropped with it by contract
(a plain index lost without a word; a UNIQUE constraint's ``ADD CONSTRAINT ... USING INDEX`` failing in
contract). The planner refuses such a release and names the release boundary; with the boundary, the
two releases run to the end and the index exists on the retyped column."""

from __future__ import annotations

from pathlib import Path

import pytest
from faults_harness import mark_gates
from runner_harness import bgm, pg_exec, pg_rows

BASE = "CREATE TABLE accounts (id bigint PRIMARY KEY, email text);\n"
RETYPE = "ALTER TABLE accounts ALTER COLUMN email TYPE varchar(300);\n"
LATER = {  # what the release does to the retyped column next, and the object that must exist at the end
    "unique constraint": (
        "ALTER TABLE accounts ADD CONSTRAINT accounts_email_key UNIQUE (email);\n",
        "SELECT count(*) FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid "
        "AND a.attnum = ANY (c.conkey) WHERE c.conname = 'accounts_email_key' AND a.attname = 'email' "
        "AND format_type(a.atttypid, a.atttypmod) = 'character varying(300)'",
    ),
    "index": (
        "CREATE INDEX accounts_email_idx ON accounts (email);\n",
        "SELECT count(*) FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
        "AND a.attnum = ANY (i.indkey) WHERE i.indexrelid = to_regclass('accounts_email_idx') AND i.indisvalid "
        "AND a.attname = 'email' AND format_type(a.atttypid, a.atttypmod) = 'character varying(300)'",
    ),
    "expression index": (
        "CREATE INDEX accounts_email_lower_idx ON accounts (lower(email));\n",
        "SELECT count(*) FROM pg_index WHERE indexrelid = to_regclass('accounts_email_lower_idx') AND indisvalid",
    ),
}


def _release(fresh_pg: str, migrations: Path, since: str, plan: Path) -> None:
    planned = bgm("plan", str(migrations), "--since", since, "-o", str(plan))
    assert planned.returncode == 0, planned.stderr
    assert bgm("expand", "--plan", str(plan), "--dsn", fresh_pg).returncode == 0
    mark_gates(fresh_pg)
    done = bgm("contract", "--dsn", fresh_pg)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("case", sorted(LATER))
def test_a_retyped_column_indexed_in_the_same_release_is_refused(fresh_pg: str, tmp_path: Path, case: str) -> None:
    later, exists = LATER[case]
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "0001_base.sql").write_text(BASE)
    (migrations / "0002_release.sql").write_text(RETYPE + later)
    plan = tmp_path / "plan.json"
    refused = bgm("plan", str(migrations), "--since", "0001_base.sql", "-o", str(plan))
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "reordering conflict" in refused.stderr and "the same column accounts.email" in refused.stderr
    assert "0002_release.sql:1" in refused.stderr and "0002_release.sql:2" in refused.stderr
    assert not plan.exists()

    # the boundary the message asks for: the retype released first, the index in the next release
    (migrations / "0002_release.sql").write_text(RETYPE)
    pg_exec(fresh_pg, BASE + "INSERT INTO accounts SELECT g, 'a' || g || '@x' FROM generate_series(1, 20) g;")
    _release(fresh_pg, migrations, "0001_base.sql", tmp_path / "first.json")
    (migrations / "0003_release.sql").write_text(later)
    _release(fresh_pg, migrations, "0002_release.sql", tmp_path / "second.json")
    assert pg_rows(fresh_pg, exists) == [(1,)]
    assert pg_rows(fresh_pg, "SELECT count(*), count(DISTINCT email) FROM accounts") == [(20, 20)]
