"""No secret ever shown: every command runs with a DSN holding a recognisable password (given with
``--dsn`` and through ``BGMIGRATE_DSN``), on the paths that work and on those that fail (wrong
database, closed port, a mistyped or misplaced DSN, a failing step, a killed connection, a wrong
password on MariaDB), and the password appears in no output, no plan file, no state table row, no
file a hook or gate can see, no cache file and no exception text."""

from __future__ import annotations

import json
import shlex
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

import psycopg
from runner_harness import Release, bgm, bgm_popen, pg_exec, pg_rows, seed_sql

SECRET = "Tr0ub4dor&3-Canary-x9Q"  # a password nobody would print by accident; '&' needs care in URLs
FORMS = {SECRET, quote(SECRET, safe=""), quote(SECRET)}


def url_for(dsn: str, dbname: str | None = None, *, port: int | None = None) -> str:
    params = psycopg.conninfo.conninfo_to_dict(dsn)
    host = params.get("host", "127.0.0.1")
    if host.startswith("/"):  # an embedded server's socket directory
        where = f"/{dbname or params['dbname']}?host={host}"
        if port:
            where += f"&port={port}"
        return f"postgresql://{params.get('user', 'postgres')}:{SECRET}@{where}"
    return (
        f"postgresql://{params.get('user', 'postgres')}:{SECRET}@{host}:{port or params.get('port', 5432)}/"
        f"{dbname or params['dbname']}"
    )


class Leaks:
    """Every place looked at, and those holding the secret (in any of its encodings)."""

    def __init__(self) -> None:
        self.checked: list[str] = []
        self.found: list[str] = []

    def check(self, place: str, text: str | bytes) -> None:
        data = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
        self.checked.append(place)
        if any(form in data for form in FORMS):
            self.found.append(place)

    def run(self, label: str, *args: str, expect: int | tuple[int, ...], env: dict[str, str] | None = None) -> str:
        done = bgm(*args, env=env, timeout=180)
        self.check(f"{label}: stdout", done.stdout)
        self.check(f"{label}: stderr", done.stderr)
        codes = expect if isinstance(expect, tuple) else (expect,)
        assert done.returncode in codes, (label, done.returncode, done.stderr[-2000:])
        assert "Traceback" not in done.stderr, (label, done.stderr[-2000:])
        return done.stdout + done.stderr

    def state(self, label: str, dsn: str) -> None:
        for (table,) in pg_rows(dsn, "SELECT tablename FROM pg_tables WHERE schemaname = 'bgmigrate' ORDER BY 1"):
            rows = pg_rows(dsn, f"SELECT t::text FROM bgmigrate.{table} t")
            self.check(f"{label}: state table bgmigrate.{table} ({len(rows)} rows)", "\n".join(r[0] for r in rows))

    def files(self, label: str, root: Path) -> None:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            self.check(f"{label}: {path.name}", path.read_bytes())


def _traffic_config(root: Path) -> Path:
    """A command router on a state file, a gate command and hooks that show everything they are given."""
    api = root / "api"
    api.mkdir()
    split = api / "split.json"
    split.write_text('{"blue": 100, "green": 0}\n')
    seen = root / "seen"
    seen.mkdir()
    q = shlex.quote
    show = f"env; echo dsn=$BGMIGRATE_DSN; env > {q(str(seen))}/$BGMIGRATE_STAGE.env"
    get = f"cat {q(str(split))}; env > {q(str(seen))}/router-get.env"
    put = 'printf \'{"blue": %s, "green": %s}\\n\' {blue} {green} > ' + q(str(split))
    gate = f"env > {q(str(seen))}/gate.env; echo gate dsn=$BGMIGRATE_DSN"
    config = root / "bgmigrate.toml"
    lines = [
        "[traffic]",
        'router = "command"',
        'target = "shop"',
        'blue = "shop-v1"',
        'green = "shop-v2"',
        f"get = {json.dumps(get)}",
        f"set = {json.dumps(put)}",
        "[gates]",
        f"command = {json.dumps(gate)}",
        "[hooks]",
        *(f"{hook} = {json.dumps(show)}" for hook in ("deploy_green", "verify", "decommission_blue")),
        "[release]",
        'soak = "0s"',
    ]
    config.write_text("\n".join(lines) + "\n")
    return config


def test_no_command_shows_the_password(pg_server, fresh_pg: str, mysql_server, tmp_path: Path, figures) -> None:
    leaks = Leaks()
    rel = Release.write(tmp_path / "release")
    base = (rel.migrations / "0001_base.sql").read_text() + seed_sql(30)
    pg_exec(fresh_pg, base)
    url = url_for(fresh_pg)
    other = f"bgm_sec_{int(time.time() * 1000) % 10**9}"
    pg_exec(pg_server.dsn, f'CREATE DATABASE "{other}"')
    try:
        other_dsn = psycopg.conninfo.make_conninfo(pg_server.dsn, dbname=other)
        pg_exec(other_dsn, base)
        other_url = url_for(other_dsn)
        config = _traffic_config(tmp_path)
        plan, md = tmp_path / "plan.json", tmp_path / "plan.md"
        release_sql = str(rel.migrations / "0002_release.sql")
        try:
            # -- reading: lint against the live schema, plan with sizes, verify
            leaks.run("lint --schema-from", "lint", "--schema-from", url, release_sql, expect=(0, 1))
            leaks.run(
                "plan --dsn", "plan", str(rel.migrations), "--since", "0001_base.sql", "--dsn", url, "-o", str(plan),
                "--markdown", str(md), expect=0,
            )  # fmt: skip
            leaks.run("verify-plan --dsn", "verify-plan", str(plan), "--dsn", url, expect=0)
            since = ("--since", "0001_base.sql")
            leaks.run("trace --dsn", "trace", str(rel.migrations), *since, "--dsn", other_url, expect=(0, 1))
            blue = tmp_path / "blue.sql"
            blue.write_text("SELECT id, email FROM customers WHERE id = $1;\n")
            leaks.run("compat --dsn", "compat", str(rel.migrations), *since, "--dsn", other_url,
                      "--blue-queries", str(blue), expect=(0, 1))  # fmt: skip
            server_url = url_for(pg_server.dsn, "postgres")
            leaks.run("demo --dsn", "demo", "--dsn", server_url, "--rows", "50", "--step-seconds", "0",
                      "--clients", "1", expect=(0, 1))  # fmt: skip
            leaks.run("expand --dry-run", "expand", "--plan", str(plan), "--dsn", url, "--dry-run", expect=0)
            # -- the whole flow, the DSN in the environment (hooks, gates and router commands run under it)
            leaks.run(
                "release (BGMIGRATE_DSN)", "release", "--plan", str(plan), "--config", str(config),
                "--steps", "50,100", "--interval", "0", expect=0, env={"BGMIGRATE_DSN": url},
            )  # fmt: skip
            leaks.run("status --format json", "status", "--format", "json", expect=0, env={"BGMIGRATE_DSN": url})
            leaks.state("after release", fresh_pg)
            # -- each command on its own, on a second database
            leaks.run("expand", "expand", "--plan", str(plan), "--dsn", other_url, expect=0)
            leaks.run("status", "status", "--dsn", other_url, expect=0)
            leaks.run(
                "switch", "switch", "--dsn", other_url, "--config", str(config), "--steps", "100", "--interval", "0",
                expect=0, env={"BGMIGRATE_DSN": other_url},
            )  # fmt: skip
            leaks.run("rollback", "rollback", "--config", str(config), expect=0, env={"BGMIGRATE_DSN": other_url})
            leaks.run("contract refused", "contract", "--dsn", other_url, expect=3)
            leaks.run("mark switched", "mark", "switched", "--dsn", other_url, expect=0)
            leaks.run("abort refused", "abort", "--dsn", other_url, expect=3)
            leaks.run("mark decommissioned", "mark", "decommissioned", "--dsn", other_url, "-f", "json", expect=0)
            leaks.run("contract --dry-run", "contract", "--dsn", other_url, "--dry-run", expect=0)
            leaks.run("contract", "contract", "--dsn", other_url, "--format", "json", expect=0)
            leaks.state("after expand, marks, contract", other_dsn)
        finally:
            pg_exec(pg_server.dsn, f'DROP DATABASE IF EXISTS "{other}" WITH (FORCE)')

        # -- failures: each message says what went wrong, never with the password
        nodb = url_for(fresh_pg, "no_such_db_x")
        closed = url_for(fresh_pg, port=1)
        libpq = f"host=127.0.0.1 port=1 user=postgres password='{SECRET}' dbname=x connect_timeout=2"
        for label, args in {
            "status, no such database": ["status", "--dsn", nodb],
            "expand, closed port": ["expand", "--plan", str(plan), "--dsn", closed],
            "status, libpq string, closed port": ["status", "--dsn", libpq],
            "lint --schema-from, no such database": ["lint", "--schema-from", nodb, release_sql],
            "plan --dsn, closed port": ["plan", str(rel.migrations), "--since", "0001_base.sql", "--dsn", closed],
            "verify-plan --dsn, no such database": ["verify-plan", str(plan), "--dsn", nodb],
            "status, scheme missing": ["status", "--dsn", url.split("://", 1)[1] + "?sslmode=disable"],
            "status, scheme mistyped": ["status", "--dsn", url.replace("://", "//", 1) + "?sslmode=disable"],
            "status, DSN given as an argument": ["status", url],
            "expand, DSN given as the sources": ["expand", url],
            "lint, DSN given as a path": ["lint", url],
            "verify-plan, DSN given as the plan": ["verify-plan", url],
            "lint --config, DSN given as the config": ["lint", "--config", url, release_sql],
            "rules, DSN given as a rule": ["rules", url],
            "switch, DSN given as the router": ["switch", "--router", url, "--dsn", url],
            "trace, no such database": ["trace", str(rel.migrations), "--since", "0001_base.sql", "--dsn", nodb],
        }.items():
            leaks.run(label, *args, expect=2)
        mysql_url = f"mysql://{mysql_server.user}:{SECRET}@{mysql_server.host}:{mysql_server.port}/mysql"
        out = leaks.run("status, MariaDB, wrong password", "status", "--dsn", mysql_url, expect=2)
        assert "Access denied" in out

        # -- a failing step and a killed connection: the error is stored in the state tables and printed
        history = (rel.migrations / "0001_base.sql").read_text() + (rel.migrations / "0002_release.sql").read_text()
        unique = "CREATE UNIQUE INDEX customers_name_key ON customers (name);\n"
        fail_rel = Release.write(tmp_path / "failing", base=history, release=unique)
        pg_exec(fresh_pg, "UPDATE customers SET name = 'twin' WHERE id IN (7, 8)")
        leaks.run("expand, step fails", "expand", "--plan", str(fail_rel.plan), "--dsn", url, "--release", "r2",
                  "--force", "--reason", "test", expect=1)  # fmt: skip
        runner = bgm_popen("expand", "--plan", str(fail_rel.plan), "--dsn", url, "--release", "r3", "--force",
                           "--reason", "test", "--lock-timeout", "5s")  # fmt: skip
        with psycopg.connect(fresh_pg, autocommit=True) as blocker:
            blocker.execute("BEGIN")
            blocker.execute("UPDATE customers SET name = name WHERE id = 1")
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and pg_rows(
                fresh_pg, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'bgmigrate' "
                "AND wait_event_type = 'Lock' AND datname = current_database()"
            ) != [(1,)]:  # fmt: skip
                time.sleep(0.05)
            pg_exec(fresh_pg, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = "
                              "'bgmigrate' AND pid <> pg_backend_pid() AND datname = current_database()")  # fmt: skip
            out, err = runner.communicate(timeout=60)
            blocker.execute("ROLLBACK")
        leaks.check("expand, connection killed: stdout", out)
        leaks.check("expand, connection killed: stderr", err)
        assert runner.returncode == 1 and "lost the connection" in err, err
        leaks.state("after the failures", fresh_pg)

        # -- files: the plan and its review, what hooks, gates and router commands were given, the lint cache
        leaks.check("plan.json", plan.read_text())
        leaks.check("plan.md", md.read_text())
        leaks.files("hook, gate and router environments", tmp_path / "seen")
        leaks.files("lint cache", Path(__import__("os").environ["BGMIGRATE_CACHE_DIR"]))
        leaks.check("exception texts", _exception_texts(url, nodb, closed, rel))
    finally:
        figures.record("secrets", places=len(leaks.checked), leaks=len(leaks.found), where=leaks.found)
    assert sorted((tmp_path / "seen").glob("*.env")), "the hooks and gates did not run"
    assert leaks.found == [], "\n".join(leaks.found)


def test_the_secret_test_covers_every_command() -> None:
    """A new command joins test_no_command_shows_the_password (run with the DSN holding the password)."""
    import inspect

    from typer.main import get_command

    from migrator.cli import app

    source = inspect.getsource(test_no_command_shows_the_password)
    missing = [name for name in get_command(app).commands if f'"{name}"' not in source]
    assert missing == [], f"commands not run with the password in the DSN: {missing}"


def _exception_texts(url: str, nodb: str, closed: str, rel: Release) -> str:
    """str() and repr() of what the library raises for bad connections (what a caller would log)."""
    from migrator.dsn import parse_dsn
    from migrator.plan.make import make_plan
    from migrator.run.db import connect

    texts = [repr(parse_dsn(url)), str(parse_dsn(url))]
    for dsn in (nodb, closed, url.split("://", 1)[1] + "?x=1"):
        for call in (lambda d=dsn: connect(d, timeout_s=3), lambda d=dsn: make_plan([rel.migrations], dsn=d)):
            try:
                call()
            except Exception as err:
                texts += [str(err), repr(err), repr(err.args)]
    return "\n".join(texts)


def test_hooks_gates_and_router_commands_are_not_given_the_dsn(tmp_path: Path, monkeypatch) -> None:
    """What runs the user's own commands drops BGMIGRATE_DSN from their environment (the README's promise
    for hooks: BGMIGRATE_RELEASE, _STAGE, _BLUE, _GREEN and _TARGET, never the DSN)."""
    from migrator.traffic.command import CommandRouter
    from migrator.traffic.gates import _command
    from migrator.traffic.router import RouterConfig

    monkeypatch.setenv("BGMIGRATE_DSN", f"postgresql://app:{SECRET}@db/app")
    ok, detail = _command('env; test -z "$BGMIGRATE_DSN"', None)
    assert ok and SECRET not in detail
    out = tmp_path / "env"
    router = CommandRouter(
        RouterConfig(kind="command", options={"get": f"env > {shlex.quote(str(out))}; echo 0", "set": "true"})
    )
    router.current()
    assert SECRET not in out.read_text() and "BGMIGRATE_DSN" not in out.read_text()
    env = subprocess.run(["env"], capture_output=True, text=True).stdout
    assert SECRET in env  # the test's own environment did hold it
