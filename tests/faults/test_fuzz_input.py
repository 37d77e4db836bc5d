"""Bad input is refused, never a crash: hypothesis feeds the linter mutated SQL from the fixture corpus
and the rules' own examples, SQL-token soup, random text and random bytes; plan files (mutated, then
re-sealed so the hash passes and the content is what is tested), configuration files and DSNs. Every
run ends with exit 0, 1 or 2 and, for 2, one ``bgmigrate: error:`` line; never a traceback or an
internal error. Pathological files (deep nesting, a 5 MB line, 20,000 statements, a FIFO, ...) and a
sample of the generated inputs go through the real command in its own process.

The runs are deterministic (``derandomize``: the same examples on every run, no example database)."""

from __future__ import annotations

import json
import os
import random
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from runner_harness import ROOT, bgm
from typer.testing import CliRunner

from migrator.cli import app

FUZZ = settings(
    derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck), print_blob=True
)
TOKENS = [
    "ALTER", "TABLE", "t", "ADD", "COLUMN", "c", "int", "NOT", "NULL", "DEFAULT", "(", ")", ";", ",", "'", '"',
    "$$", "$a$", "--", "/*", "*/", "CREATE", "UNIQUE", "INDEX", "CONCURRENTLY", "ON", "DROP", "UPDATE", "SET", "=",
    "WHERE", "BEGIN", "COMMIT", "ROLLBACK", "RENAME", "TO", "TYPE", "CONSTRAINT", "CHECK", "FOREIGN", "KEY",
    "REFERENCES", "PRIMARY", "\n", "E'\\'", "`", "s.t", "IF", "EXISTS", "VALIDATE", "USING", "INSERT", "INTO", "VALUES",
    "SELECT", "1", "-- bgmigrate: ignore[", "]", "-- bgmigrate: ignore-file[", "COPY", "FROM", "stdin", "\\.", "DO",
    "LANGUAGE", "plpgsql", "FUNCTION", "TRIGGER", "ENUM", "AS", "MODIFY", "ALGORITHM=INSTANT", "LOCK=NONE", "DELIMITER",
    "//", "VACUUM", "ANALYZE", "lock_timeout", "'2s'", "GENERATED", "ALWAYS", "IDENTITY", "PARTITION", "OF", "\x00",
    "é", "🙂", "\\", "%", "%(lo)s", "NOT VALID", "SEQUENCE", "VIEW", "MATERIALIZED", "EXTENSION", "SCHEMA",
]  # fmt: skip


@cache
def corpus() -> tuple[tuple[str, str], ...]:
    """(dialect, SQL) of every fixture and example migration and every rule example."""
    out: list[tuple[str, str]] = []
    for dialect, pattern in (("postgres", "fixtures/postgres/*.sql"), ("mysql", "fixtures/mysql/*.sql"),
                             ("postgres", "examples/migrations/postgres/*.sql"),
                             ("mysql", "examples/migrations/mysql/*.sql")):  # fmt: skip
        out += [(dialect, p.read_text(encoding="utf-8")) for p in sorted(ROOT.glob(pattern))]
    from migrator.lint.catalog import load_rules

    for rule in load_rules():
        for example in [*rule.bad, *rule.good]:
            dialect = example.dialect or ("mysql" if rule.dialects == ("mysql",) else "postgres")
            out.append((dialect, (example.setup or "") + "\n" + example.sql))
    return tuple(out)


@st.composite
def mutated_sql(draw: Any) -> tuple[str, bytes]:
    dialect, text = draw(st.sampled_from(corpus()))
    for _ in range(draw(st.integers(1, 6))):
        n = len(text)
        i, j = sorted((draw(st.integers(0, n)), draw(st.integers(0, n))))
        op = draw(st.sampled_from(["cut", "double", "insert", "truncate", "char", "rotate"]))
        if op == "cut":
            text = text[:i] + text[j:]
        elif op == "double":
            text = text[:i] + text[i:j] * 2 + text[j:]
        elif op == "insert":
            text = text[:i] + f" {draw(st.sampled_from(TOKENS))} " + text[i:]
        elif op == "truncate":
            text = text[:i]
        elif op == "char":
            text = text[:i] + draw(st.sampled_from(list("'\"();$`\\\n-*/{}[]\x00"))) + text[i + 1 :]
        else:
            text = text[j:] + text[:i] + text[i:j]
    return dialect, text.encode("utf-8", "surrogatepass")


token_soup = st.tuples(
    st.sampled_from(["postgres", "mysql"]), st.lists(st.sampled_from(TOKENS), max_size=80).map(" ".join)
).map(lambda t: (t[0], t[1].encode()))
random_text = st.tuples(st.sampled_from(["postgres", "mysql"]), st.text(max_size=600)).map(
    lambda t: (t[0], t[1].encode("utf-8", "surrogatepass"))
)
random_bytes = st.tuples(st.sampled_from(["postgres", "mysql"]), st.binary(max_size=2000))
SQL_INPUTS = {"mutated corpus": (mutated_sql(), 500), "token soup": (token_soup, 300),
              "random text": (random_text, 200), "random bytes": (random_bytes, 200)}  # fmt: skip


def _invoke(args: list[str]) -> Any:
    result = CliRunner().invoke(app, args, catch_exceptions=True)
    output = (result.stdout or "") + (result.stderr or "")
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{args}: {type(result.exception).__name__}: {result.exception}"
    )
    assert result.exit_code in (0, 1, 2), (args, result.exit_code, output[-2000:])
    assert "Traceback" not in output and "internal error" not in output
    if result.exit_code == 2:
        assert "bgmigrate: error: " in (result.stderr or ""), (args, output[-2000:])
    return result


@pytest.fixture
def production(monkeypatch) -> None:
    """The CLI as users run it (tests/conftest.py sets BGMIGRATE_DEBUG for the other tests)."""
    monkeypatch.delenv("BGMIGRATE_DEBUG", raising=False)


@pytest.mark.parametrize("family", sorted(SQL_INPUTS))
def test_lint_never_crashes(family: str, production, tmp_path: Path, figures) -> None:
    strategy, examples = SQL_INPUTS[family]
    path = tmp_path / "0001_fuzz.sql"
    count = {"cases": 0, "exit": {0: 0, 1: 0, 2: 0}}

    @settings(FUZZ, max_examples=examples)
    @given(case=strategy, fmt=st.sampled_from(["text", "json", "sarif", "github"]), statements=st.booleans())
    def lint(case: tuple[str, bytes], fmt: str, statements: bool) -> None:
        dialect, data = case
        path.write_bytes(data)
        args = ["lint", str(path), "--dialect", dialect, "--format", fmt, "--no-cache", "--jobs", "1"]
        result = _invoke([*args, "--statements"] if statements and fmt == "text" else args)
        if fmt in ("json", "sarif"):
            json.loads(result.stdout)  # machine-readable output stays parseable
        count["cases"] += 1
        count["exit"][result.exit_code] += 1

    try:
        lint()
    finally:
        figures.record("fuzz", target=f"lint: {family}", cases=count["cases"], exits=count["exit"])
    assert count["cases"] >= examples * 0.9


def _pathological(root: Path) -> dict[str, Path]:
    files = {
        "5,000 nested parentheses": "SELECT " + "(" * 5000 + "1" + ")" * 5000 + ";\n",
        "3,000 nested parentheses in a CHECK": "ALTER TABLE t ADD CONSTRAINT c CHECK ("
        + "(" * 3000
        + "a > 1"
        + ")" * 3000
        + ");\n",
        "a 5 MB line": "INSERT INTO t VALUES ('" + "x" * 5_000_000 + "');\n",
        "a 2 MB unterminated string": "UPDATE t SET a = '" + "y" * 2_000_000 + "\n",
        "an unterminated dollar quote": "DO $$" + "BEGIN " * 200_000 + "\n",
        "100,000 comment openers": "/*" * 100_000 + "\n",
        "20,000 statements": "".join(f"ALTER TABLE t{i} ADD COLUMN c int;\n" for i in range(20_000)),
        "a 100,000-character identifier": f'ALTER TABLE "{"a" * 100_000}" RENAME COLUMN b TO c;\n',
        "1,000,000 semicolons": ";" * 1_000_000,
        "100,001 quotes": "'" * 100_001,
        "nested comments 50,000 deep": "/* " * 50_000 + " */" * 50_000 + " SELECT 1;",
        "a 100,000-rule suppression": "-- bgmigrate: ignore[" + "x," * 100_000 + "]\nALTER TABLE t ADD COLUMN c int;\n",
    }
    out = {}
    for i, (name, text) in enumerate(files.items()):
        out[name] = root / f"{i:04d}_case.sql"
        out[name].write_text(text)
    for name, data in {"UTF-16": "ALTER TABLE t ADD COLUMN c int;".encode("utf-16"),
                       "NUL bytes": b"ALTER TABLE t\x00 ADD COLUMN c int;\n",
                       "a BOM and CRLF": b"\xef\xbb\xbfALTER TABLE t ADD COLUMN c int;\r\n",
                       "invalid UTF-8": b"ALTER TABLE t ADD COLUMN \xff\xfe int;\n"}.items():  # fmt: skip
        out[name] = root / f"{len(out):04d}_case.sql"
        out[name].write_bytes(data)
    return out


@pytest.mark.slow
def test_pathological_files_through_the_command(tmp_path: Path, figures) -> None:
    cases = _pathological(tmp_path)
    outcomes = {}
    for name, path in cases.items():
        done = bgm("lint", str(path), "--no-cache", timeout=120)
        outcomes[name] = done.returncode
        assert done.returncode in (0, 1, 2), (name, done.returncode, done.stderr[-1000:])
        assert "Traceback" not in done.stderr + done.stdout and "internal error" not in done.stderr, name
    figures.record("fuzz", target="lint: pathological files", cases=len(cases), exits=outcomes)
    # the whole directory at once, as one history
    done = bgm("lint", str(tmp_path), "--no-cache", "--format", "json", timeout=300)
    assert done.returncode in (0, 1) and "Traceback" not in done.stderr
    assert json.loads(done.stdout)["summary"]["files"] == len(cases)


def test_special_files_in_a_directory_are_skipped_not_read_forever(tmp_path: Path) -> None:
    """A FIFO named like a migration in a directory would block the scan forever; a symlink loop would
    recurse. (A FIFO named on the command line is read: ``lint <(git show HEAD:m.sql)``.)"""
    migrations = tmp_path / "migrations"
    (migrations / "sub").mkdir(parents=True)
    (migrations / "0001_a.sql").write_text("ALTER TABLE t ADD COLUMN c int;\n")
    os.mkfifo(migrations / "0002_pipe.sql")
    (migrations / "sub" / "loop").symlink_to(migrations, target_is_directory=True)
    done = bgm("lint", str(migrations), "--no-cache", "--format", "json", timeout=60)
    assert done.returncode in (0, 1), done.stderr
    assert json.loads(done.stdout)["summary"]["files"] == 1


def test_a_sample_of_fuzz_inputs_through_the_command(tmp_path: Path, figures) -> None:
    """End to end: the real ``bgmigrate lint`` process, with no BGMIGRATE_DEBUG, on 12 generated files."""
    rng = random.Random(20261204)
    texts = [t for _, t in corpus()]
    cases = []
    for i in range(12):
        base = rng.choice(texts)
        cut = rng.randrange(len(base) + 1)
        data = (base[:cut] + rng.choice(TOKENS) + base[cut:][:: -1 if i % 3 == 0 else 1]).encode()
        if i % 4 == 0:
            data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400)))
        path = tmp_path / f"{i:04d}_sample.sql"
        path.write_bytes(data)
        cases.append(path)
    for path in cases:
        for fmt in ("text", "json"):
            done = bgm("lint", str(path), "--no-cache", "--format", fmt)
            assert done.returncode in (0, 1, 2), (path.read_bytes()[:300], done.returncode, done.stderr[-1000:])
            assert "Traceback" not in done.stderr and "internal error" not in done.stderr
    figures.record("fuzz", target="lint: sample through the command", cases=2 * len(cases))


# ---- plan files ----------------------------------------------------------------------------------------


@cache
def _real_plan() -> dict[str, Any]:
    from migrator.plan.make import make_plan

    root = Path(__import__("tempfile").mkdtemp(prefix="bgm-fuzz-plan-"))
    (root / "0001_base.sql").write_text(
        "CREATE TABLE customers (id bigint PRIMARY KEY, email text NOT NULL, name text);\n"
        "CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint NOT NULL, total int);\n"
    )
    (root / "0002_release.sql").write_text(
        "ALTER TABLE customers RENAME COLUMN email TO email_address;\n"
        "CREATE INDEX orders_customer_idx ON orders (customer_id);\n"
        "ALTER TABLE orders ALTER COLUMN total SET NOT NULL;\n"
    )
    plan, _ = make_plan([root], since="0001_base.sql")
    return json.loads(plan.to_json())


def _digest(data: dict[str, Any]) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=20)
    | st.sampled_from(["expand", "contract", "switch", "2s", "1min", "-1s", "%(lo)s", "", "x" * 300]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=8,
)  # fmt: skip


def _paths(value: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [here]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*here, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*here, i))
    return out


@st.composite
def mutated_plan(draw: Any) -> str:
    data = json.loads(json.dumps(_real_plan()))
    data.pop("sha256")
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(data) if p]
        path = draw(st.sampled_from(paths))
        parent = data
        for key in path[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(json_values)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=12))] = draw(json_values)
    if draw(st.booleans()) or draw(st.booleans()):  # mostly re-sealed: the content is what gets tested
        data["sha256"] = _digest(data)
    return json.dumps(data)


plan_files = st.one_of(
    mutated_plan(), mutated_plan(), mutated_plan(), json_values.map(json.dumps), st.text(max_size=300)
)


def test_malformed_plan_files_are_refused(production, tmp_path: Path, figures) -> None:
    path = tmp_path / "plan.json"
    count = {"cases": 0, "refused": 0}

    @settings(FUZZ, max_examples=300)
    @given(text=plan_files)
    def feed(text: str) -> None:
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        for args in (["verify-plan", str(path)], ["expand", "--plan", str(path), "--dry-run"]):
            result = _invoke(args)
            assert result.exit_code in (0, 2), (args, result.exit_code)
            count["refused"] += result.exit_code == 2
        count["cases"] += 1

    try:
        feed()
    finally:
        figures.record("fuzz", target="plan files", cases=count["cases"], refused=count["refused"])


# ---- configuration files -------------------------------------------------------------------------------

LINT_KEYS = [
    "dialect",
    "target-version",
    "format",
    "fail-on",
    "exclude",
    "severity",
    "assume-in-transaction",
    "lock-timeout-from-runner",
    "cache",
    "cache-dir",
    "jobs",
    "since",
    "schema-from",
    "use-env",
    "bogus",
]
SECTION_KEYS = {
    "traffic": ["router", "target", "blue", "green", "project", "region", "api_endpoint", "anonymous", "timeout",
                "steps", "interval", "get", "set", "health", "settle_s", "poll_interval_s", "path_matcher"],
    "gates": ["probe_url", "probe_timeout", "probe_successes", "router_health", "max_error_ratio", "error_window",
              "command", "bogus"],
    "hooks": ["deploy_green", "verify", "decommission_blue", "timeout"],
    "release": ["soak", "blue_application_name"],
}  # fmt: skip
TOML_VALUES = ['"x"', '""', "0", "-1", "1.5", "true", "[]", '["a"]', "[1, 2]", "{}", "{a = 1}", '{a = "error"}',
               '"15"', '"8.0.29"', '"postgres"', '"mysql"', '"json"', '"warning"', '"10,50,100"', "[10, 50, 100]",
               "[100]", '"2s"', "nan", "inf", "-inf", "1e400", '"cloudrun"', '"command"', '"local"', '"urlmap"',
               '"gateway"', '"istio"', "1979-05-27T07:32:00Z", '"ünï"', "99999999999999999999", '"-5min"']  # fmt: skip


@st.composite
def config_files(draw: Any) -> str:
    nested = draw(st.booleans())
    prefix = "tool.bgmigrate." if nested else ""
    lines = ["[tool.bgmigrate]"] if nested else []
    for _ in range(draw(st.integers(0, 5))):
        lines.append(f"{draw(st.sampled_from(LINT_KEYS))} = {draw(st.sampled_from(TOML_VALUES))}")
    for section, keys in SECTION_KEYS.items():
        if draw(st.booleans()):
            lines.append(f"[{prefix}{section}]")
            for _ in range(draw(st.integers(0, 5))):
                lines.append(f"{draw(st.sampled_from(keys))} = {draw(st.sampled_from(TOML_VALUES))}")
    text = "\n".join(dict.fromkeys(lines)) + "\n"
    if draw(st.integers(0, 9)) == 0:  # and sometimes no longer TOML at all
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(list("[]=\"'\n{\x00"))) + text[at:]
    return text


def test_malformed_configuration_files_are_refused(production, tmp_path: Path, figures) -> None:
    sql = tmp_path / "0001_a.sql"
    sql.write_text("ALTER TABLE t ADD COLUMN c int;\n")
    config = tmp_path / "bgmigrate.toml"
    count = {"cases": 0}

    @settings(FUZZ, max_examples=200)
    @given(text=st.one_of(config_files(), config_files(), st.text(max_size=200)))
    def feed(text: str) -> None:
        config.write_text(text, encoding="utf-8", errors="surrogatepass")
        for args in (
            ["lint", "--config", str(config), "--no-cache", "--jobs", "1", str(sql)],
            ["plan", "--config", str(config), str(sql)],
            ["switch", "--config", str(config)],  # no --dsn: the settings are read first (rollback reads them alike)
            ["release", "--config", str(config), "--plan", str(tmp_path / "missing.json")],
        ):
            _invoke(args)
        count["cases"] += 1

    try:
        feed()
    finally:
        figures.record("fuzz", target="configuration files", cases=count["cases"])


# ---- DSNs ----------------------------------------------------------------------------------------------

PASSWORD_CHARS = st.sampled_from(list("abcXYZ0189-_.~!$&'()*+,;=:@/?#%[] \\\"é"))
passwords = st.lists(PASSWORD_CHARS, min_size=4, max_size=16).map(lambda cs: "Pw7Q" + "".join(cs))
plain = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8)


@st.composite
def dsns(draw: Any) -> tuple[str, str]:
    """(connection string, its password): URLs and libpq strings, well formed or broken elsewhere."""
    from urllib.parse import quote

    password = draw(passwords)
    if draw(st.booleans()):
        scheme = draw(st.sampled_from(["postgresql://", "postgres://", "mysql://", "mariadb://", "postgresql+psycopg://",
                                       "mysql+pymysql://", "postgresql//", "postgresql:/", "jdbc:postgresql://", "",
                                       "http://", "POSTGRESQL://"]))  # fmt: skip
        secret = quote(password, safe="") if draw(st.booleans()) else password
        host = draw(st.sampled_from(["127.0.0.1", "db", "[::1]", "[::1", "h1,h2", "", "db:", "db:5432", "db:99999",
                                     "db:x", "db:5432,db2:5433"]))  # fmt: skip
        path = draw(st.sampled_from(["/app", "", "/", "/a/b", "/app?sslmode=require", "/app?sslmode", "/app?a=1&b",
                                     "/app?password=x", "/ app", "/app#frag", "/app?host=/tmp"]))  # fmt: skip
        return f"{scheme}{draw(plain)}:{secret}@{host}{path}", password
    quoted = "'" + password.replace("\\", "\\\\").replace("'", "\\'") + "'"
    pairs = [f"host={draw(plain)}", f"dbname={draw(plain)}", f"password={quoted}"]
    pairs += draw(
        st.lists(
            st.sampled_from(
                [
                    "port=5432",
                    "port=x",
                    "port=1,2",
                    "user=app",
                    "bogus=1",
                    "sslmode=",
                    "host",
                    "=x",
                    "options='-c x=1",
                    "application_name=a b",
                ]
            ),
            max_size=2,
        )
    )
    return " ".join(draw(st.permutations(pairs))), password


def test_dsns_parse_or_are_refused_and_never_show_the_password(figures) -> None:
    from urllib.parse import quote

    from migrator.dsn import DsnError, mask_dsn, mask_secrets, parse_dsn

    count = {"cases": 0, "refused": 0}

    @settings(FUZZ, max_examples=1500)
    @given(case=dsns())
    def check(case: tuple[str, str]) -> None:
        text, password = case
        forms = {password, quote(password, safe=""), quote(password)}
        try:
            dsn = parse_dsn(text)
        except DsnError as err:
            count["refused"] += 1
            shown = str(err)
            assert "\n" not in shown
        else:
            shown = f"{dsn} {dsn!r} {dsn.masked} {dsn.scrub(text)}"
        shown += " " + mask_dsn(text)
        assert not any(form in shown for form in forms), (text, shown)
        if "://" in text and "@" in text and not any(c.isspace() for c in password):
            # free text: a password is what runs from "user:" to the last "@" of the word (a space in a
            # password ends the word; only the DSN's own scrub() can find it then)
            assert not any(form in mask_secrets(f"error near {text} here") for form in forms), text
        count["cases"] += 1

    try:
        check()
    finally:
        figures.record("fuzz", target="DSNs", cases=count["cases"], refused=count["refused"])


MALFORMED_DSNS = [  # each refused by the parser or pointing at a closed port: none reaches a database
    " ",
    "postgresql://u:Pw7Qsecret@[::1/app",
    "postgresql://u:Pw7Qsecret@db:x/a",
    "postgresql://u:Pw7Qsecret@db:99999/a",
    "u:Pw7Qsecret@db/app?sslmode=require",
    "postgresql//u:Pw7Qsecret@db/app?x=1",
    "host=db password='Pw7Qsecret",
    "host=db password=Pw7Q secret",
    "host=db bogus=1 password=Pw7Qsecret",
    "mysql://u:Pw7Qsecret@h1,h2/app",
    "mysql://u:Pw7Qsecret@db/a/b",
    "oracle://u:Pw7Qsecret@db/app",
    "postgresql://u:Pw7Qsecret@db/app?sslmode",
    "postgresql://u:Pw7Q secret@db/app?x=a b",
    "host=db port=1,x",
    "postgresql://u:Pw7Qsecret@127.0.0.1:1/app?connect_timeout=x",
    "\x00",
    "é" * 5000,
]


@pytest.mark.parametrize("command", ["status", "expand", "lint"])
def test_malformed_dsns_through_the_command(command: str, tmp_path: Path) -> None:
    sql = tmp_path / "0001_a.sql"
    sql.write_text("ALTER TABLE t ADD COLUMN c int;\n")
    from migrator.dsn import DsnError, parse_dsn

    for text in MALFORMED_DSNS:
        if "\x00" in text:
            continue  # no process takes a NUL in its arguments
        try:
            parse_dsn(text)
            assert "127.0.0.1:1/" in text, f"{text!r} would reach a real database"
        except DsnError:
            pass
        args = {"status": ["status", "--dsn", text], "expand": ["expand", str(sql), "--dsn", text],
                "lint": ["lint", "--schema-from", text, str(sql)]}[command]  # fmt: skip
        done = bgm(*args, timeout=60)
        assert done.returncode == 2, (text, done.returncode, done.stderr[-500:])
        assert done.stderr.startswith("bgmigrate: error: ") and done.stderr.count("\n") == 1, (text, done.stderr)
        assert "Pw7Q" not in done.stderr + done.stdout, (text, done.stderr)


def test_the_fuzz_runs_are_reproducible() -> None:
    """derandomize: the same examples every run (CI and a laptop see the same cases)."""

    def run_once() -> list[Any]:
        seen: list[Any] = []

        @settings(FUZZ, max_examples=20)
        @given(case=mutated_sql())
        def collect(case: tuple[str, bytes]) -> None:
            seen.append(case)

        collect()
        return seen

    first, second = run_once(), run_once()
    assert first == second and len(first) == 20


@pytest.mark.parametrize(
    "text",
    [
        '[gates]\nprobe_successes = "x"\n',
        "[gates]\nprobe_successes = 1e400\n",
        "[gates]\nprobe_successes = [1]\n",
        "[gates]\nprobe_successes = 0\n",
        "[release]\nsoak = []\n",
        "[release]\nsoak = nan\n",
        '[traffic]\nrouter = "command"\nget = "true"\nset = "true"\ntimeout = inf\n',
        "[hooks]\ntimeout = {a = 1}\n",
        "[traffic]\ninterval = true\n",
    ],
)
def test_configuration_values_of_the_wrong_type_are_refused(production, tmp_path: Path, text: str) -> None:
    """What the configuration fuzz found (each was an internal error, exit 4): one line, exit 2."""
    config = tmp_path / "bgmigrate.toml"
    config.write_text(text)
    result = _invoke(["switch", "--config", str(config)])
    assert result.exit_code == 2 and str(config) in result.stderr, result.stderr
