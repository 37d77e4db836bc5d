"""Deterministic generator of a large Alembic project, and the timing of loading it.

The project is a growing schema written as Alembic revisions: tables created, columns added,
indexes built (some ``postgresql_concurrently=True`` inside ``autocommit_block()``), columns renamed
with ``op.alter_column(new_column_name=...)``, tightened to NOT NULL, dropped, backfilled with
``op.execute``, batch blocks, helper functions. Mostly a straight ``down_revision`` chain; every 50
revisions two branches are written in parallel and merged (a tuple ``down_revision``), like a team
does. Revision ids are 12 hex digits derived from the seed and the position, so the same seed
always gives the same bytes, and revision ``k`` does not depend on how many are generated.

    python bench/alembic_corpus.py OUT_DIR [--revisions 1000] [--seed 20240611]
    python bench/alembic_corpus.py OUT_DIR --time [--repeat 5] [--lint]

``--time`` measures ``migrator.sources.alembic.load_alembic`` on the project in fresh interpreters:
cold (empty cache: every revision imported and rendered) and warm (graph read statically, every
revision a cache hit; Alembic must not be imported), both as the time inside ``load_alembic`` and
as the wall time of the whole process (interpreter start included). ``--lint`` also times
``bgmigrate lint`` on the project, cold and warm.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_REVISIONS = 1000
DEFAULT_SEED = 20240611
MARKER = "ALEMBIC_CORPUS.json"
_NOUNS = [
    "accounts", "orders", "invoices", "payments", "products", "customers", "sessions", "events",
    "teams", "projects", "comments", "tags", "shipments", "refunds", "coupons", "reviews",
]  # fmt: skip
_COLUMNS = ["status", "note", "region", "source", "label", "kind", "ref", "channel", "locale", "code"]

_INI = """[alembic]
script_location = %(here)s
path_separator = os
sqlalchemy.url = postgresql://localhost/bench
"""
_ENV = '''"""Alembic environment of the generated benchmark project (offline only)."""

from alembic import context

context.configure(url=context.config.get_main_option("sqlalchemy.url"), literal_binds=True)
with context.begin_transaction():
    context.run_migrations()
'''


def _rev_id(seed: int, index: int) -> str:
    return hashlib.sha256(f"{seed}:{index}".encode()).hexdigest()[:12]


class _Schema:
    def __init__(self) -> None:
        self.tables: dict[str, list[str]] = {}
        self.serial = 0

    def new_name(self, base: str) -> str:
        self.serial += 1
        return f"{base}_{self.serial}"


def _ops(rng: random.Random, schema: _Schema) -> tuple[list[str], list[str]]:
    """Lines of upgrade() (and of module-level helpers) for one revision."""
    body: list[str] = []
    helpers: list[str] = []
    count = rng.randint(1, 4)
    for _ in range(count):
        choice = rng.random()
        if not schema.tables or choice < 0.15:
            table = schema.new_name(rng.choice(_NOUNS))
            schema.tables[table] = ["id", "created_at"]
            body += [
                "    op.create_table(",
                f'        "{table}",',
                '        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),',
                '        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),',
                "    )",
            ]
            continue
        table = rng.choice(sorted(schema.tables))
        columns = schema.tables[table]
        extra = [c for c in columns if c not in ("id", "created_at")]
        if choice < 0.40:
            column = schema.new_name(rng.choice(_COLUMNS))
            columns.append(column)
            body.append(f'    op.add_column("{table}", sa.Column("{column}", sa.Text(), nullable=True))')
        elif choice < 0.55:
            column = rng.choice(columns)
            index = schema.new_name(f"ix_{table}_{column}")[:60]
            if rng.random() < 0.6:
                body += [
                    "    with op.get_context().autocommit_block():",
                    f'        op.create_index("{index}", "{table}", ["{column}"], postgresql_concurrently=True)',
                ]
            else:
                body.append(f'    op.create_index("{index}", "{table}", ["{column}"])')
        elif choice < 0.65 and extra:
            column = rng.choice(extra)
            body.append(f"    op.execute(\"UPDATE {table} SET {column} = '' WHERE {column} IS NULL AND id < 10000\")")
        elif choice < 0.72 and extra:
            column = rng.choice(extra)
            new = schema.new_name(column.rsplit("_", 1)[0])
            columns[columns.index(column)] = new
            body.append(f'    op.alter_column("{table}", "{column}", new_column_name="{new}", existing_type=sa.Text())')
        elif choice < 0.80 and extra:
            column = rng.choice(extra)
            body.append(f'    op.alter_column("{table}", "{column}", existing_type=sa.Text(), nullable=False)')
        elif choice < 0.86 and extra:
            column = rng.choice(extra)
            columns.remove(column)
            body += [
                "    # bgmigrate: ignore[ban-drop-column] blue stopped reading it two releases ago",
                f'    op.drop_column("{table}", "{column}")',
            ]
        elif choice < 0.93:
            a, b = schema.new_name("flag"), schema.new_name("score")
            columns += [a, b]
            body += [
                f'    with op.batch_alter_table("{table}") as batch_op:',
                f'        batch_op.add_column(sa.Column("{a}", sa.Boolean(), nullable=True))',
                f'        batch_op.add_column(sa.Column("{b}", sa.Integer(), nullable=True))',
            ]
        else:
            column = schema.new_name("audit")
            columns.append(column)
            name = f"_add_{column}"
            helpers += [
                "",
                "",
                f"def {name}(table: str) -> None:",
                f'    op.add_column(table, sa.Column("{column}", sa.Text(), nullable=True))',
            ]
            body.append(f'    {name}("{table}")')
    return body, helpers


def _revision_text(rev: str, down: str | tuple[str, ...] | None, slug: str, body: list[str], helpers: list[str]) -> str:
    revises = ", ".join(down) if isinstance(down, tuple) else (down or "")
    lines = [
        f'"""{slug.replace("_", " ")}',
        "",
        f"Revision ID: {rev}",
        f"Revises: {revises}",
        '"""',
        "",
        "import sqlalchemy as sa",
        "from alembic import op",
        "",
        f'revision = "{rev}"',
        f"down_revision = {down!r}".replace("'", '"'),
        "branch_labels = None",
        "depends_on = None",
        *helpers,
        "",
        "",
        "def upgrade() -> None:",
        *(body or ["    pass"]),
        "",
        "",
        "def downgrade() -> None:",
        "    pass",
        "",
    ]
    return "\n".join(lines)


def generate(out: Path, revisions: int = DEFAULT_REVISIONS, seed: int = DEFAULT_SEED) -> list[str]:
    """Write the project; returns the revision ids in file order."""
    if out.exists() and any(out.iterdir()) and not (out / MARKER).exists():
        raise SystemExit(f"{out} is not empty and holds no {MARKER}: refusing to write into it")
    if out.exists():
        shutil.rmtree(out)
    versions = out / "versions"
    versions.mkdir(parents=True)
    (out / "alembic.ini").write_text(_INI)
    (out / "env.py").write_text(_ENV)
    rng = random.Random(seed)
    schema = _Schema()
    ids = [_rev_id(seed, i) for i in range(revisions)]
    head: str | tuple[str, ...] | None = None
    index = 0
    while index < revisions:
        branch = index % 50 == 25 and index + 3 <= revisions
        if branch:  # two revisions off the same parent, then their merge
            parent = head
            for offset in (0, 1):
                body, helpers = _ops(rng, schema)
                slug = f"parallel_{index + offset:04d}"
                text = _revision_text(ids[index + offset], parent, slug, body, helpers)
                (versions / f"{index + offset + 1:04d}_{ids[index + offset]}_{slug}.py").write_text(text)
            merge = (ids[index], ids[index + 1])
            slug = f"merge_{index + 2:04d}"
            text = _revision_text(ids[index + 2], merge, slug, [], [])
            (versions / f"{index + 3:04d}_{ids[index + 2]}_{slug}.py").write_text(text)
            head = ids[index + 2]
            index += 3
            continue
        body, helpers = _ops(rng, schema)
        slug = f"change_{index:04d}"
        (versions / f"{index + 1:04d}_{ids[index]}_{slug}.py").write_text(
            _revision_text(ids[index], head, slug, body, helpers)
        )
        head = ids[index]
        index += 1
    (out / MARKER).write_text(json.dumps({"revisions": revisions, "seed": seed}) + "\n")
    return ids


_PROBE = """
import json, sys, time
t0 = time.perf_counter()
from pathlib import Path
from migrator.lint.cache import Cache
from migrator.sources.alembic import load_alembic
cache = Cache(Path(sys.argv[2]))
t1 = time.perf_counter()
sources = load_alembic(Path(sys.argv[1]), "postgres", Path.cwd(), cache=cache)
t2 = time.perf_counter()
cache.close()
print(json.dumps({"import": t1 - t0, "load": t2 - t1, "revisions": len(sources),
                  "alembic_imported": "alembic" in sys.modules, "sqlalchemy_imported": "sqlalchemy" in sys.modules}))
"""


def _probe(project: Path, cache_dir: Path) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(project), str(cache_dir)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    wall = time.perf_counter() - start
    result = json.loads(done.stdout)
    result["wall"] = wall
    return result


def _lint(project: Path, cache_dir: Path) -> float:
    env = dict(os.environ, PYTHONPATH=str(ROOT), BGMIGRATE_CACHE_DIR=str(cache_dir))
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "migrator.cli", "lint", str(project), "--format", "json", "--fail-on", "never"],
        capture_output=True,
        env=env,
        check=True,
    )
    return time.perf_counter() - start


def timing(project: Path, repeat: int, lint: bool) -> None:
    cold: list[dict[str, float]] = []
    warm: list[dict[str, float]] = []
    lint_cold: list[float] = []
    lint_warm: list[float] = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            cache_dir = Path(tmp)
            cold.append(_probe(project, cache_dir))
            warm.append(_probe(project, cache_dir))
        if lint:
            with tempfile.TemporaryDirectory() as tmp:
                lint_cold.append(_lint(project, Path(tmp)))
                lint_warm.append(_lint(project, Path(tmp)))

    def med(rows: list[dict[str, float]], key: str) -> str:
        return f"{statistics.median(r[key] for r in rows):.3f} s"

    n = int(cold[0]["revisions"])
    print(f"{n} revisions, {repeat} rounds, median (Python {sys.version.split()[0]})")
    print(f"  cold load_alembic: {med(cold, 'load')}   process wall: {med(cold, 'wall')}")
    print(f"  warm load_alembic: {med(warm, 'load')}   process wall: {med(warm, 'wall')}")
    print(f"  warm run imported alembic: {any(r['alembic_imported'] for r in warm)}")
    if lint:
        cold_lint, warm_lint = statistics.median(lint_cold), statistics.median(lint_warm)
        print(f"  bgmigrate lint cold: {cold_lint:.3f} s   warm: {warm_lint:.3f} s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--revisions", type=int, default=DEFAULT_REVISIONS)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--time", action="store_true", help="time cold and warm loads of the project")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--lint", action="store_true", help="with --time: also time `bgmigrate lint`")
    args = parser.parse_args(argv)
    generate(args.out, args.revisions, args.seed)
    print(f"wrote {args.revisions} revisions to {args.out}")
    if args.time:
        timing(args.out, args.repeat, args.lint)


if __name__ == "__main__":
    main()
