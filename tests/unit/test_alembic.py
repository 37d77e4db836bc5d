"""Alembic source: detection, revision graph, offline rendering, origins, bad input, cache."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from migrator.lint.cache import Cache
from migrator.sources import alembic as alembic_source
from migrator.sources.alembic import (
    find_project,
    is_alembic_project,
    load_alembic,
    order_revisions,
    read_header,
)
from migrator.sources.model import SourceError, SourceFile
from migrator.sql.split import split_statements

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures" / "alembic"
LINEAR = FIXTURES / "linear"
MERGE = FIXTURES / "merge_heads"
EXPAND_CONTRACT = FIXTURES / "expand_contract"


# ---- helpers ------------------------------------------------------------------------------------


def revision(rev: str, down: object = None, body: str = "pass", *, head: str = "", labels: object = None) -> str:
    """The text of a revision file; ``body`` is the body of upgrade() (dedented, re-indented)."""
    body = textwrap.indent(textwrap.dedent(body).strip("\n"), "    ")
    return (
        f'"""revision {rev}"""\n\nimport sqlalchemy as sa\nfrom alembic import op\n{head}\n'
        f"revision = {rev!r}\ndown_revision = {down!r}\nbranch_labels = {labels!r}\ndepends_on = None\n\n\n"
        f"def upgrade():\n{body}\n\n\ndef downgrade():\n    pass\n"
    )


def project(tmp_path: Path, files: dict[str, str], *, ini: bool = True) -> Path:
    """An Alembic project in ``tmp_path/proj`` with the given files under versions/."""
    root = tmp_path / "proj"
    (root / "versions").mkdir(parents=True)
    (root / "env.py").write_text("raise RuntimeError('env.py must not run')\n")
    if ini:
        (root / "alembic.ini").write_text("[alembic]\nscript_location = %(here)s\n")
    for name, text in files.items():
        path = root / "versions" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def load(path: Path, dialect: str = "postgres", **kwargs) -> list[SourceFile]:
    return load_alembic(path, dialect, kwargs.pop("cwd", path), **kwargs)


def statements(source: SourceFile) -> list[str]:
    return [st.sql for st in split_statements(source.data.decode(), "postgres")]


def op_statements(source: SourceFile) -> list[str]:
    return [sql for sql in statements(source) if sql not in ("BEGIN", "COMMIT")]


def line_of(path: Path, snippet: str) -> int:
    """The 1-based line of the only line of ``path`` holding ``snippet``."""
    found = [n for n, line in enumerate(path.read_text().splitlines(), 1) if snippet in line]
    assert len(found) == 1, (path, snippet, found)
    return found[0]


def where(source: SourceFile, sql_start: str) -> str:
    """``file:line`` that the statement starting with ``sql_start`` maps back to."""
    hits = [st for st in split_statements(source.data.decode(), "postgres") if st.sql.startswith(sql_start)]
    assert len(hits) == 1, (sql_start, statements(source))
    return f"{source.path.name}:{source.origin_line(hits[0].line)}"


def by_rev(sources: list[SourceFile]) -> dict[str, SourceFile]:
    return {s.revision: s for s in sources if s.revision}


# ---- detection and project layout ---------------------------------------------------------------


def test_detection(tmp_path: Path):
    assert is_alembic_project(LINEAR)
    assert is_alembic_project(LINEAR / "alembic.ini")
    script_dir = project(tmp_path, {}, ini=False)
    assert is_alembic_project(script_dir)  # env.py + versions/
    sql_dir = tmp_path / "sql"
    sql_dir.mkdir()
    (sql_dir / "0001.sql").write_text("SELECT 1;")
    assert not is_alembic_project(sql_dir)
    assert not is_alembic_project(sql_dir / "0001.sql")
    assert not is_alembic_project(tmp_path / "missing")
    assert not is_alembic_project(LINEAR / "versions")


def test_ini_locations(tmp_path: Path):
    found = find_project(EXPAND_CONTRACT / "alembic.ini", ROOT)
    assert found.script_dir.resolve() == EXPAND_CONTRACT.resolve()
    assert [p.resolve() for p in found.version_dirs] == [
        (EXPAND_CONTRACT / "versions").resolve(),
        (EXPAND_CONTRACT / "versions" / "expand").resolve(),
        (EXPAND_CONTRACT / "versions" / "contract").resolve(),
    ]
    # a relative script_location is relative to the ini file's directory
    root = tmp_path / "app"
    (root / "db" / "versions").mkdir(parents=True)
    (root / "db" / "env.py").write_text("")
    (root / "alembic.ini").write_text("[alembic]\nscript_location = db\nprepend_sys_path = .\n")
    (root / "db" / "versions" / "a1_x.py").write_text(revision("a1"))
    found = find_project(root, tmp_path)
    assert found.script_dir == root / "db" and found.version_dirs == [root / "db" / "versions"]
    assert found.sys_path == [str(root.resolve())]
    assert [s.display for s in load_alembic(root, "postgres", tmp_path)] == ["app/db/versions/a1_x.py"]


def test_display_relative_to_cwd():
    sources = load_alembic(LINEAR, "postgres", ROOT)
    assert sources[0].display == "fixtures/alembic/linear/versions/0001_create_accounts_and_orders.py"
    assert sources[0].path == LINEAR / "versions" / "0001_create_accounts_and_orders.py"
    assert sources[0].label.endswith("(1c0a5e1f2b01)")


def test_header_forms():
    assert read_header('revision = "a"\ndown_revision = None\n') == {"revision": "a", "down_revision": None}
    text = (
        '"""doc\n\nrevision = "not me"\n"""\n'
        "from typing import Sequence, Union\n"
        'revision: str = "b1"\n'
        "down_revision: Union[str, Sequence[str], None] = (\n"
        '    "a1",  # the left parent\n'
        "    'a2',\n"
        ")\n"
        "branch_labels: Union[str, Sequence[str], None] = ('expand',)  # Neutron style\r\n"
        "depends_on = None\n"
    )
    assert read_header(text) == {
        "revision": "b1",
        "down_revision": ("a1", "a2"),
        "branch_labels": ("expand",),
        "depends_on": None,
    }
    assert read_header("import os\nx = 1\n") is None  # a helper module beside the revisions


# ---- revision graph -----------------------------------------------------------------------------


def test_linear_order_and_metadata():
    sources = load(LINEAR)
    assert [s.revision for s in sources] == [
        "1c0a5e1f2b01",
        "2d7b9a3c4e02",
        "3e8c1b4d5f03",
        "4f9d2c5e6a04",
        "5a0e3d6f7b05",
    ]
    assert all(s.branches == () for s in sources)
    assert all(s.notes == [] for s in sources)
    assert sources[0].display == "versions/0001_create_accounts_and_orders.py"


def test_merge_and_two_heads_order():
    sources = load(MERGE)
    # base; the two branches off it (ties broken by revision id); the merge; the two heads
    assert [s.revision for s in sources] == [
        "8f2a1c3d4b5e",
        "3b7e5a9c1d24",
        "c41d9e7f0a12",
        "e9d0f1a2b3c4",
        "17b2c3d4e5f6",
        "a5c6d7e8f901",
    ]
    merge = by_rev(sources)["e9d0f1a2b3c4"]
    assert merge.data == b"BEGIN;\n\nCOMMIT;\n\n"  # an empty merge revision: nothing but its transaction


def test_expand_contract_branches_and_depends_on():
    sources = load(EXPAND_CONTRACT)
    assert [(s.revision, s.branches) for s in sources] == [
        ("0d1e2f3a4b5c", ()),  # the common base: a branch point, no label
        ("5e6f7a8b9c0d", ("expand",)),
        ("6f7a8b9c0d1e", ("expand",)),
        ("7a8b9c0d1e2f", ("expand",)),
        ("9c0d1e2f3a4b", ("contract",)),  # depends_on the last expand revision: after it
        ("ab1c2d3e4f5a", ("contract",)),
    ]
    assert sources[2].display == "versions/expand/6f7a8b9c0d1e_invoices_paid_at.py"


@pytest.mark.parametrize("fixture", [LINEAR, MERGE, EXPAND_CONTRACT])
def test_graph_agrees_with_alembic(fixture: Path):
    """Alembic's own script directory: the same revisions, our order respects its graph, and
    every revision carries the branch labels Alembic gives it."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(Config(str(fixture / "alembic.ini")))
    theirs = {r.revision: r for r in script.walk_revisions()}
    ours = load(fixture)
    assert {s.revision for s in ours} == set(theirs)
    position = {s.revision: i for i, s in enumerate(ours)}
    for s in ours:
        rev = theirs[s.revision]
        for parent in (*rev._versioned_down_revisions, *rev._resolved_dependencies):
            assert position[parent] < position[s.revision]
        assert s.branches == tuple(sorted(rev.branch_labels))


def test_branch_label_covers_the_unbranched_stretch_above(tmp_path: Path):
    """Alembic applies a label to the labelled revision's descendants and to its ancestors up to
    the nearest branch point: here r0 and a1 are on the 'feature' branch too."""
    root = project(
        tmp_path,
        {
            "r0.py": revision("r0"),
            "a1.py": revision("a1", "r0"),
            "b1.py": revision("b1", "a1", labels=("feature",)),
            "c1.py": revision("c1", "b1"),
        },
    )
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(Config(str(root / "alembic.ini")))
    ours = {s.revision: s.branches for s in load(root)}
    assert ours == {rid: tuple(sorted(script.get_revision(rid).branch_labels)) for rid in ours}
    assert ours == {"r0": ("feature",), "a1": ("feature",), "b1": ("feature",), "c1": ("feature",)}


def test_order_ties_are_broken_by_revision_id(tmp_path: Path):
    root = project(
        tmp_path,
        {f"{rid}.py": revision(rid, "0base" if rid != "0base" else None) for rid in ("0base", "zz", "mm", "aa")},
    )
    assert [s.revision for s in load(root)] == ["0base", "aa", "mm", "zz"]


# ---- rendering ----------------------------------------------------------------------------------


def test_rendered_sql_postgres():
    revs = by_rev(load(LINEAR))
    assert op_statements(revs["2d7b9a3c4e02"]) == [
        "ALTER TABLE orders ADD COLUMN status TEXT",
        "CREATE INDEX CONCURRENTLY ix_orders_status ON orders (status)",
        "ALTER TABLE orders ADD COLUMN updated_by TEXT",
    ]
    assert op_statements(revs["3e8c1b4d5f03"]) == [
        "CREATE INDEX ix_orders_account_id ON orders (account_id)",
        "CREATE UNIQUE INDEX ix_accounts_email ON accounts (email)",
        "UPDATE orders SET status = 'paid' WHERE status IS NULL",  # the raw SQL's own ';' is not doubled
        "UPDATE accounts SET email = lower(email) WHERE email <> lower(email)",
    ]
    assert op_statements(revs["4f9d2c5e6a04"]) == [
        "ALTER TABLE orders RENAME COLUMN note TO comment",  # alter_column(new_column_name=...)
        "ALTER TABLE accounts ADD COLUMN display_name TEXT",  # batch_alter_table: plain ALTERs on PostgreSQL
        "ALTER TABLE accounts ALTER COLUMN email TYPE VARCHAR(320)",
    ]
    assert op_statements(revs["5a0e3d6f7b05"]) == ["ALTER TABLE orders DROP COLUMN updated_by"]
    create = op_statements(revs["1c0a5e1f2b01"])[0]
    assert create.startswith("CREATE TABLE accounts (") and "GENERATED BY DEFAULT AS IDENTITY" in create


def test_transactions_as_alembic_runs_them():
    """PostgreSQL has transactional DDL: each revision in BEGIN/COMMIT; autocommit_block() commits
    before its body and begins again after it."""
    source = by_rev(load(LINEAR))["2d7b9a3c4e02"]
    assert statements(source) == [
        "BEGIN",
        "ALTER TABLE orders ADD COLUMN status TEXT",
        "COMMIT",
        "CREATE INDEX CONCURRENTLY ix_orders_status ON orders (status)",
        "BEGIN",
        "ALTER TABLE orders ADD COLUMN updated_by TEXT",
        "COMMIT",
    ]
    upgrade, block = line_of(source.path, "def upgrade"), line_of(source.path, "autocommit_block()")
    assert [source.origin_line(st.line) for st in split_statements(source.data.decode())] == [
        upgrade,
        line_of(source.path, 'sa.Column("status"'),
        block,
        line_of(source.path, "op.create_index("),
        block,
        line_of(source.path, 'Column("updated_by"'),
        upgrade,
    ]
    plain = by_rev(load(LINEAR, transactional=False))["2d7b9a3c4e02"]
    assert statements(plain) == op_statements(source)


def test_rendered_sql_mysql():
    revs = by_rev(load(LINEAR, "mysql"))
    # no transactional DDL on MySQL, no CONCURRENTLY
    assert statements(revs["2d7b9a3c4e02"]) == [
        "ALTER TABLE orders ADD COLUMN status TEXT",
        "CREATE INDEX ix_orders_status ON orders (status)",
        "ALTER TABLE orders ADD COLUMN updated_by TEXT",
    ]
    assert statements(revs["4f9d2c5e6a04"])[0] == "ALTER TABLE orders CHANGE note comment TEXT NULL"
    assert "AUTO_INCREMENT" in statements(revs["1c0a5e1f2b01"])[0]


def test_every_statement_is_terminated(tmp_path: Path):
    root = project(
        tmp_path,
        {
            "a1.py": revision(
                "a1",
                body="""
                op.execute("UPDATE t SET a = 1;;  ")
                op.execute("UPDATE t SET b = 2 -- trailing comment")
                op.execute("UPDATE t SET c = 3; UPDATE t SET d = 4")
                op.execute(";")
                op.execute("UPDATE t\\r\\nSET e = 5")
                """,
            )
        },
    )
    source = load(root, transactional=False)[0]
    text = source.data.decode()
    assert ";;" not in text and "\r" not in text
    assert statements(source) == [
        "UPDATE t SET a = 1",
        "UPDATE t SET b = 2",  # the splitter keeps the comment out; the ';' went on the next line
        "UPDATE t SET c = 3",
        "UPDATE t SET d = 4",
        "UPDATE t\nSET e = 5",
    ]
    lines = [where(source, f"UPDATE t SET {c}") for c in "abcd"]
    expected = [line_of(source.path, f"SET {c} =") for c in "abc"]
    assert lines == [f"a1.py:{n}" for n in (*expected, expected[-1])]


# ---- origins --------------------------------------------------------------------------------------


def test_each_statement_maps_to_its_op_call():
    revs = by_rev(load(LINEAR))
    first = revs["1c0a5e1f2b01"]
    path = first.path
    calls = [n for n, line in enumerate(path.read_text().splitlines(), 1) if "op.create_table(" in line]
    assert where(first, "CREATE TABLE accounts") == f"{path.name}:{calls[0]}"  # a multi-line call: its first line
    assert where(first, "CREATE TABLE orders") == f"{path.name}:{calls[1]}"
    # every line of the multi-line statement maps to the call
    hit = next(st for st in split_statements(first.data.decode()) if st.sql.startswith("CREATE TABLE accounts"))
    assert {first.origin_line(n) for n in range(hit.line, hit.end_line + 1)} == {calls[0]}

    second = revs["2d7b9a3c4e02"]
    name, p2 = second.path.name, second.path
    status, index, helper = (
        line_of(p2, 'Column("status"'),
        line_of(p2, "op.create_index("),
        line_of(p2, 'Column("updated_by"'),
    )
    assert where(second, "ALTER TABLE orders ADD COLUMN status") == f"{name}:{status}"
    assert where(second, "CREATE INDEX CONCURRENTLY") == f"{name}:{index}"
    # an op inside a helper function of the revision file: the helper's line, not the call site
    assert where(second, "ALTER TABLE orders ADD COLUMN updated_by") == f"{name}:{helper}"

    fourth = revs["4f9d2c5e6a04"]
    name, p4 = fourth.path.name, fourth.path
    rename = line_of(p4, 'new_column_name="comment"')
    assert where(fourth, "ALTER TABLE orders RENAME COLUMN") == f"{name}:{rename}"
    # batch_alter_table: each batch_op.* line, not the `with` line
    added, altered = line_of(p4, 'Column("display_name"'), line_of(p4, "type_=sa.String(320), existing")
    assert where(fourth, "ALTER TABLE accounts ADD COLUMN display_name") == f"{name}:{added}"
    assert where(fourth, "ALTER TABLE accounts ALTER COLUMN email TYPE") == f"{name}:{altered}"
    # BEGIN / COMMIT map to `def upgrade`
    last = revs["5a0e3d6f7b05"]
    assert where(last, "COMMIT") == f"{last.path.name}:{line_of(last.path, 'def upgrade')}"


def test_origins_cover_every_line():
    for source in load(EXPAND_CONTRACT):
        origins = source.origins or []
        n_lines = source.data.decode().count("\n")
        covered = [n for o in origins for n in range(o.first, o.last + 1)]
        assert covered == list(range(1, n_lines + 1)), source.display


def test_ops_in_loops_and_nested_helpers(tmp_path: Path):
    text = revision(
        "a1",
        head=(
            "\n\ndef _index(table):\n    op.create_index(f'ix_{table}', table, ['id'])\n"
            "\n\ndef _twice(table):\n    _index(table)\n"
        ),
        body="""
        for table in ("t1", "t2"):
            _twice(table)
        op.execute(
            sa.text(
                "UPDATE t1 SET a = 1"
            )
        )
        """,
    )
    source = load(project(tmp_path, {"a1.py": text}), transactional=False)[0]
    path = source.path
    assert where(source, "CREATE INDEX ix_t1") == f"a1.py:{line_of(path, 'op.create_index')}"
    assert where(source, "CREATE INDEX ix_t2") == f"a1.py:{line_of(path, 'op.create_index')}"
    assert where(source, "UPDATE t1") == f"a1.py:{line_of(path, 'op.execute(')}"


# ---- comments --------------------------------------------------------------------------------------


def test_comment_block_above_an_op_is_passed_through():
    source = by_rev(load(LINEAR))["3e8c1b4d5f03"]
    path = source.path
    lines = source.data.decode().splitlines()
    index = lines.index("CREATE UNIQUE INDEX ix_accounts_email ON accounts (email);")
    assert lines[index - 2 : index] == [
        "-- expect: contract [add-unique-tightening, multiple-locks-in-transaction]",
        "-- bgmigrate: ignore[require-concurrent-index-creation] accounts has a few hundred rows",
    ]
    # the comment lines map to the Python comment lines, the statement to the op call
    assert source.origin_line(index) == line_of(path, "bgmigrate: ignore[require-concurrent")
    assert source.origin_line(index + 1) == line_of(path, '"ix_accounts_email", "accounts"')


def test_comments_file_directives_and_strings(tmp_path: Path):
    text = revision(
        "a1",
        head="\n# bgmigrate: ignore-file[prefer-robust-stmts] Alembic tracks what ran\n",
        body='''
        # a plain comment, then a blank line: detached

        # bgmigrate: ignore[renaming-column] nothing reads it yet
        op.alter_column("t", "a", new_column_name="b")
        x = """
        # not a comment: inside a string
        """
        op.execute("UPDATE t SET b = 1")
        ''',
    )
    source = load(project(tmp_path, {"a1.py": text}), transactional=False)[0]
    assert source.data.decode().splitlines() == [
        "-- bgmigrate: ignore-file[prefer-robust-stmts] Alembic tracks what ran",
        "",
        "-- bgmigrate: ignore[renaming-column] nothing reads it yet",
        "ALTER TABLE t RENAME COLUMN a TO b;",
        "",
        "UPDATE t SET b = 1;",
        "",
    ]
    assert source.origin_line(1) == line_of(source.path, "ignore-file[")
    assert source.origin_line(3) == line_of(source.path, "ignore[renaming-column]")


# ---- bad input -----------------------------------------------------------------------------------------


def bad(tmp_path: Path, files: dict[str, str], **kwargs) -> str:
    root = project(tmp_path, files)
    with pytest.raises(SourceError) as caught:
        load_alembic(root, "postgres", tmp_path, **kwargs)
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def test_syntax_error(tmp_path: Path):
    message = bad(tmp_path, {"a1.py": revision("a1"), "b2.py": revision("b2", "a1", body="op.execute(")})
    line = line_of(tmp_path / "proj" / "versions" / "b2.py", "op.execute(")
    assert message.startswith(f"proj/versions/b2.py:{line}: cannot import the revision: SyntaxError")


def test_import_error(tmp_path: Path):
    message = bad(tmp_path, {"a1.py": revision("a1", head="import no_such_module_here\n")})
    assert message.startswith("proj/versions/a1.py:5: cannot import the revision: ModuleNotFoundError")
    assert "no_such_module_here" in message


def test_module_level_exception(tmp_path: Path):
    message = bad(tmp_path, {"a1.py": revision("a1", head="raise SystemExit(3)\n")})
    assert message.startswith("proj/versions/a1.py:5: cannot import the revision: SystemExit")


def test_unknown_down_revision(tmp_path: Path):
    message = bad(tmp_path, {"a1.py": revision("a1"), "b2.py": revision("b2", "zz9")})
    assert message == "proj/versions/b2.py: down_revision 'zz9' names no revision in the project"


def test_unknown_depends_on(tmp_path: Path):
    text = revision("b2", "a1").replace("depends_on = None", "depends_on = 'nope'")
    message = bad(tmp_path, {"a1.py": revision("a1"), "b2.py": text})
    assert message == "proj/versions/b2.py: depends_on 'nope' names no revision or branch label"


def test_duplicate_revision_id(tmp_path: Path):
    message = bad(tmp_path, {"a1.py": revision("a1"), "a1_again.py": revision("a1")})
    assert message == "proj/versions/a1_again.py: revision id a1 is also defined in proj/versions/a1.py"


def test_cycle(tmp_path: Path):
    files = {"a1.py": revision("a1"), "b2.py": revision("b2", "c3"), "c3.py": revision("c3", "b2")}
    message = bad(tmp_path, files)
    assert message == "proj/versions/b2.py: revision b2 is in a down_revision cycle (b2 -> c3 -> b2)"
    message = bad(tmp_path / "self", {"a1.py": revision("a1", "a1")})
    assert message == "proj/versions/a1.py: revision a1 is in a down_revision cycle (a1 -> a1)"


def test_duplicate_branch_label(tmp_path: Path):
    files = {"a1.py": revision("a1", labels="x"), "b2.py": revision("b2", labels="x")}
    assert bad(tmp_path, files) == "proj/versions/b2.py: branch label 'x' is already used by proj/versions/a1.py"


def test_missing_down_revision_and_bad_values(tmp_path: Path):
    text = revision("a1").replace("down_revision = None\n", "")
    assert "has no down_revision" in bad(tmp_path / "1", {"a1.py": text})
    text = revision("a1").replace("down_revision = None", "down_revision = 42")
    assert bad(tmp_path / "2", {"a1.py": text}).startswith("proj/versions/a1.py: down_revision must be a string")


def test_no_upgrade_function(tmp_path: Path):
    text = revision("a1").replace("def upgrade():", "def upgrade_v2():")
    assert bad(tmp_path, {"a1.py": text}) == "proj/versions/a1.py: revision a1 has no upgrade() function"


def test_bad_ini(tmp_path: Path):
    (tmp_path / "alembic.ini").write_text("[alembic]\nsqlalchemy.url = x\n")
    with pytest.raises(SourceError, match=r"^alembic.ini: \[alembic\] has no script_location$"):
        load_alembic(tmp_path / "alembic.ini", "postgres", tmp_path)
    (tmp_path / "alembic.ini").write_text("[alembic]\nscript_location = nowhere\n")
    with pytest.raises(SourceError, match=r"^alembic.ini: script_location 'nowhere' is not a directory$"):
        load_alembic(tmp_path, "postgres", tmp_path)
    (tmp_path / "alembic.ini").write_text("[other]\n")
    with pytest.raises(SourceError, match="no \\[alembic\\] section"):
        load_alembic(tmp_path, "postgres", tmp_path)


def test_dynamic_header_is_imported(tmp_path: Path):
    text = (
        revision("b2", "a1")
        .replace("down_revision = 'a1'", "down_revision = PARENT")
        .replace("from alembic import op\n", "from alembic import op\n\nPARENT = 'a' + '1'\n")
    )
    sources = load(project(tmp_path, {"a1.py": revision("a1"), "b2.py": text}))
    assert [s.revision for s in sources] == ["a1", "b2"]


def test_non_revision_files_are_skipped(tmp_path: Path):
    root = project(tmp_path, {"a1.py": revision("a1"), "_helpers.py": "X = 1\n", "__init__.py": ""})
    assert [s.revision for s in load(root)] == ["a1"]


def test_get_bind_renders_what_it_can(tmp_path: Path):
    body = """
    op.add_column("t", sa.Column("a", sa.Text()))
    conn = op.get_bind()
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("UPDATE t SET a = 'x'"))
    for row in conn.execute(sa.text("SELECT id FROM t")):
        op.execute(f"UPDATE t SET a = 'y' WHERE id = {row.id}")
    op.drop_column("t", "b")
    """
    source = load(project(tmp_path, {"a1.py": revision("a1", body=body)}), transactional=False)[0]
    assert statements(source) == [
        "ALTER TABLE t ADD COLUMN a TEXT",
        "UPDATE t SET a = 'x'",
        "SELECT id FROM t",
        "ALTER TABLE t DROP COLUMN b",
    ]
    loop = line_of(source.path, "for row in conn.execute")
    assert source.notes == [
        f"line {loop}: a query result through op.get_bind() is empty offline: code depending on it was not rendered"
    ]


def test_reflection_is_a_note_and_the_rest_is_rendered(tmp_path: Path):
    body = """
    op.add_column("t", sa.Column("a", sa.Text()))
    columns = sa.inspect(op.get_bind()).get_columns("t")
    op.drop_column("t", columns[0]["name"])
    """
    source = load(project(tmp_path, {"a1.py": revision("a1", body=body)}), transactional=False)[0]
    assert statements(source) == ["ALTER TABLE t ADD COLUMN a TEXT"]
    line = line_of(source.path, "sa.inspect(")
    assert source.notes == [
        f"line {line}: cannot be rendered offline (reflection (sqlalchemy.inspect, autoload_with) needs a "
        "database connection): the rest of upgrade() is not linted"
    ]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("op.get_bind().connection.cursor()", "AttributeError: op.get_bind().connection needs a database connection"),
        (
            'op.bulk_insert(sa.table("t", sa.column("id")), [{"id": 1}])',
            "CompileError: No literal value renderer is available",
        ),
        (
            'with op.batch_alter_table("t", recreate="always") as b:\n    b.drop_column("x")',
            "CommandError: This operation cannot proceed in --sql mode",
        ),
        ('op.get_bind().execute(sa.text("UPDATE t SET a = :a"), {"a": 1})', "TypeError: op.get_bind().execute()"),
    ],
)
def test_ops_that_cannot_render_offline(tmp_path: Path, body: str, expected: str):
    text = revision("a1", body='op.execute("SELECT 1")\n' + body)
    source = load(project(tmp_path, {"a1.py": text}), transactional=False)[0]
    assert statements(source) == ["SELECT 1"]
    assert len(source.notes) == 1 and expected in source.notes[0], source.notes
    assert source.notes[0].startswith(f"line {line_of(source.path, body.splitlines()[0])}: cannot be rendered offline")


def test_typed_bulk_insert_renders(tmp_path: Path):
    table = 'sa.table("t", sa.column("id", sa.Integer), sa.column("n", sa.Text))'
    body = f'op.bulk_insert({table}, [{{"id": 1, "n": "a\'b"}}])'
    source = load(project(tmp_path, {"a1.py": revision("a1", body=body)}), transactional=False)[0]
    assert statements(source) == ["INSERT INTO t (id, n) VALUES (1, 'a''b')"]


def test_revisions_cannot_leak_into_sys_modules(tmp_path: Path):
    before = set(sys.modules)
    load(project(tmp_path, {"a1.py": revision("a1", body="op.execute('SELECT 1')")}))
    assert not {m for m in set(sys.modules) - before if m.startswith("_bgmigrate_revision_")}
    assert not (tmp_path / "proj" / "versions" / "__pycache__").exists()  # no .pyc in the project


# ---- env.py mode ----------------------------------------------------------------------------------------


def test_use_env_renders_the_same():
    direct = load(LINEAR)
    with_env = load(LINEAR, use_env=True)
    assert [(s.revision, s.data, s.origins, s.notes) for s in with_env] == [
        (s.revision, s.data, s.origins, s.notes) for s in direct
    ]


def test_use_env_failures(tmp_path: Path):
    root = project(tmp_path, {"a1.py": revision("a1")})  # its env.py raises
    with pytest.raises(SourceError, match=r"^proj/env.py: env.py failed in offline mode: RuntimeError"):
        load_alembic(root, "postgres", tmp_path, use_env=True)


# ---- cache ------------------------------------------------------------------------------------------------


def test_cache_hits_skip_rendering(tmp_path: Path, monkeypatch):
    rendered: list[str] = []
    original = alembic_source._render

    def counting(project, revisions, *args):
        rendered.extend(r.id for r in revisions)
        return original(project, revisions, *args)

    monkeypatch.setattr(alembic_source, "_render", counting)
    root = tmp_path / "proj"
    import shutil

    shutil.copytree(LINEAR, root)
    cache_dir = tmp_path / "cache"
    first = load_alembic(root, "postgres", tmp_path, cache=Cache(cache_dir))
    assert len(rendered) == 5
    rendered.clear()
    second = load_alembic(root, "postgres", tmp_path, cache=Cache(cache_dir))
    assert rendered == []
    assert [(s.data, s.origins, s.branches, s.display) for s in second] == [
        (s.data, s.origins, s.branches, s.display) for s in first
    ]
    # another dialect is another entry
    load_alembic(root, "mysql", tmp_path, cache=Cache(cache_dir))
    assert len(rendered) == 5
    rendered.clear()
    # a modified revision is rendered again, alone
    path = root / "versions" / "0005_drop_updated_by.py"
    path.write_text(path.read_text().replace('op.drop_column("orders", "updated_by")', 'op.drop_column("orders", "x")'))
    third = load_alembic(root, "postgres", tmp_path, cache=Cache(cache_dir))
    assert rendered == ["5a0e3d6f7b05"]
    assert "DROP COLUMN x" in third[-1].data.decode()
    # a disabled cache renders every time
    rendered.clear()
    load_alembic(root, "postgres", tmp_path, cache=Cache(None))
    assert len(rendered) == 5


def test_damaged_cache_entry_is_a_miss(tmp_path: Path):
    root = project(tmp_path, {"a1.py": revision("a1", body="op.execute('SELECT 1')")})
    cache = Cache(tmp_path / "cache")
    first = load_alembic(root, "postgres", tmp_path, cache=cache)
    cache.close()
    import sqlite3

    db = sqlite3.connect(tmp_path / "cache" / "cache.sqlite3")
    db.execute("UPDATE entries SET value = '{\"sql\": 1}' WHERE kind = 'alembic'")
    db.commit()
    db.close()
    again = load_alembic(root, "postgres", tmp_path, cache=Cache(tmp_path / "cache"))
    assert again[0].data == first[0].data


_WARM = """
import json, sys, time
from pathlib import Path
from migrator.lint.cache import Cache
from migrator.sources.alembic import load_alembic
start = time.perf_counter()
sources = load_alembic(Path(sys.argv[1]), "postgres", Path(sys.argv[1]), cache=Cache(Path(sys.argv[2])))
print(json.dumps({"seconds": time.perf_counter() - start, "n": len(sources),
                  "modules": sorted(m for m in ("alembic", "sqlalchemy", "mako") if m in sys.modules)}))
"""


def test_warm_load_does_not_import_alembic_and_is_fast(tmp_path: Path):
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import alembic_corpus
    finally:
        sys.path.remove(str(ROOT / "bench"))
    root = tmp_path / "big"
    alembic_corpus.generate(root, revisions=300)
    cache_dir = tmp_path / "cache"
    cold = load_alembic(root, "postgres", root, cache=Cache(cache_dir))
    assert len(cold) == 300
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    runs = [
        json.loads(
            subprocess.run(
                [sys.executable, "-c", _WARM, str(root), str(cache_dir)],
                capture_output=True,
                text=True,
                env=env,
                check=True,
            ).stdout
        )
        for _ in range(2)
    ]
    assert all(r["n"] == 300 and r["modules"] == [] for r in runs), runs  # speed: bench/alembic_corpus.py --time


def test_order_revisions_is_pure():
    """The graph functions work on plain Revision records (the lead can reuse them)."""
    rev = alembic_source.Revision
    revs = [
        rev("b", Path("b.py"), "b.py", b"", ("a",), (), ()),
        rev("a", Path("a.py"), "a.py", b"", (), ("main",), ()),
    ]
    order, branches = order_revisions(revs)
    assert [r.id for r in order] == ["a", "b"]
    assert branches == {"a": ("main",), "b": ("main",)}


def test_typical_layout_with_project_imports(tmp_path: Path):
    """alembic.ini at the project root, script directory named alembic/ (beside the real package's
    name), revisions importing the application through prepend_sys_path."""
    root = tmp_path / "shop"
    (root / "alembic" / "versions").mkdir(parents=True)
    (root / "alembic" / "env.py").write_text("")
    (root / "shopapp").mkdir()
    (root / "shopapp" / "__init__.py").write_text("")
    (root / "shopapp" / "columns.py").write_text("import sqlalchemy as sa\n\nMoney = sa.Numeric(12, 2)\n")
    (root / "alembic.ini").write_text("[alembic]\nscript_location = alembic\nprepend_sys_path = .\n")
    text = revision(
        "a1", head="from shopapp.columns import Money\n", body='op.add_column("orders", sa.Column("total", Money))'
    )
    (root / "alembic" / "versions" / "a1_total.py").write_text(text)
    [source] = load_alembic(root, "postgres", tmp_path, transactional=False)
    assert source.display == "shop/alembic/versions/a1_total.py"
    assert statements(source) == ["ALTER TABLE orders ADD COLUMN total NUMERIC(12, 2)"]
    assert str(root.resolve()) not in sys.path  # restored after rendering


def test_forked_renderer_gives_the_same_sources_and_raises_the_same_errors(tmp_path: Path):
    """With while_rendering, revisions render in a forked child while the caller works."""
    project = FIXTURES / "linear"
    calls: list[int] = []
    plain = load_alembic(project, "postgres", ROOT)
    forked = load_alembic(project, "postgres", ROOT, while_rendering=lambda: calls.append(os.getpid()))
    assert calls == [os.getpid()]  # the caller's work ran here, in this process
    assert [(s.revision, s.data, s.origins, s.branches) for s in forked] == [
        (s.revision, s.data, s.origins, s.branches) for s in plain
    ]
    broken = tmp_path / "broken"
    shutil.copytree(project, broken)
    victim = sorted((broken / "versions").glob("*.py"))[-1]
    victim.write_text(victim.read_text().replace("def upgrade", "import no_such_module_here\n\n\ndef upgrade"))
    with pytest.raises(SourceError, match="no_such_module_here"):
        load_alembic(broken, "postgres", tmp_path, while_rendering=lambda: None)
