"""Time linting one new Alembic revision on top of a long history, as pre-commit does.

Generates a 1,000-revision project (bench/alembic_corpus.py), then measures, in fresh processes
(interpreter start included), ``bgmigrate lint PROJECT --since <old head>``:

- cold: empty cache, the whole history rendered, replayed, and the new revision linted;
- new revision, warm history: the history's renders and schema snapshot are cached, the new
  revision is seen for the first time (rendered and linted);
- rerun: nothing changed since the previous run.

Target (issue 3): the warm-history case under 0.5 s. Prints figures; asserts nothing.

    python bench/alembic_release_bench.py [--revisions 1000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import bgmigrate_env, bgmigrate_module, machine_info
from alembic_corpus import generate

NEW_REVISION = '''"""one new change on top of the history"""

from alembic import op
import sqlalchemy as sa

revision = "ffffffff0001"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("{table}", sa.Column("note_{n}", sa.Text(), nullable=True))
    op.create_index("ix_{table}_note_{n}", "{table}", ["note_{n}"])
'''


def _run(argv: list[str], cache: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, env=bgmigrate_env(cache), capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        raise SystemExit(f"bgmigrate failed ({proc.returncode}): {proc.stderr.strip()}")
    return elapsed


def _head_and_table(project: Path) -> tuple[str, str]:
    from migrator.sources.alembic import load_alembic

    sources = load_alembic(project, "postgres", project)
    sql = "\n".join(s.data.decode() for s in sources)
    table = next(line.split()[2] for line in sql.splitlines() if line.startswith("CREATE TABLE "))
    return sources[-1].revision or "", table.strip('"(')


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--revisions", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bgm-alembic-bench-"))
    project = work / "project"
    generate(project, args.revisions)
    head, table = _head_and_table(project)
    lint = [*bgmigrate_module(), "lint", "--format", "json", str(project), "--since", head]
    cold: list[float] = []
    warm_new: list[float] = []
    rerun: list[float] = []
    for round_no in range(args.repeat):
        new_file = project / "versions" / "9999_ffffffff0001_new.py"
        new_file.unlink(missing_ok=True)
        cache = work / f"cache-{round_no}"
        cold_new = NEW_REVISION.format(head=head, table=table, n=f"c{round_no}")
        new_file.write_text(cold_new)
        cold.append(_run(lint, cache))  # empty cache: everything rendered and replayed
        # warm history: a revision bgmigrate has never seen, on top of the cached history
        new_file.write_text(NEW_REVISION.format(head=head, table=table, n=f"w{round_no}"))
        warm_new.append(_run(lint, cache))
        rerun.append(_run(lint, cache))
    info = machine_info()
    print(f"{args.revisions} revisions + 1 new, --since {head}; " + ", ".join(f"{k} {v}" for k, v in info.items()))
    print(f"{'run':<42} {'median s':>9} {'min s':>7}  target")
    rows = [
        ("cold (empty cache)", cold, ""),
        ("new revision on a warm history", warm_new, "< 0.5 s"),
        ("rerun, nothing changed", rerun, ""),
    ]
    for label, values, target in rows:
        print(f"{label:<42} {statistics.median(values):>9.3f} {min(values):>7.3f}  {target}")
    met = min(warm_new) < 0.5
    print(f"target (new revision on a warm history < 0.5 s): {'meets' if met else 'MISSES'}")


if __name__ == "__main__":
    main()
