"""Time ``bgmigrate lint`` against squawk on one generated migration corpus.

One run measures, side by side, on the same files:

(a) squawk on every file of the corpus;
(b) bgmigrate cold: an empty cache directory (BGMIGRATE_CACHE_DIR) for every repetition;
(c) bgmigrate warm: the cache filled by a cold run, files unchanged;
(d) bgmigrate on a single file, interpreter start included, through ``python -m migrator.cli``
    and through the ``bgmigrate`` console script, with the file in the cache and not;

plus the peak memory of a cold run. Each figure is the median and the minimum of --repeat
runs, interleaved (one of each per round) so that drift in the machine's load hits them all.
Before timing, an untimed check compares the cold, warm and --no-cache JSON reports
(they must be identical) and lists what bgmigrate could not parse or classify.

This is a benchmark, not a test: the targets are printed beside the figures, never asserted.
The exit code is 1 only when something other than speed is wrong: a tool crashed or exited
with an unexpected code, the three reports differ, or bgmigrate could not parse or classify a
statement of the corpus (which PostgreSQL accepts).

    python bench/lint_bench.py [--files 1000] [--repeat 5] [--out bench/out/lint_bench.md]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from _common import (
    bgmigrate_env,
    bgmigrate_module,
    bgmigrate_script,
    machine_info,
    squawk_path,
)
from corpus import DEFAULT_FILES, DEFAULT_SEED, corpus_digest, generate

SINGLE_FILE_TARGET_S = 0.4
COLD_TARGET_RATIO = 3.0
ENGINE_PROBLEM_RULES = ("syntax-error", "unparsed-statement", "unclassified-statement", "invalid-encoding")


# ---- running one command -----------------------------------------------------------------------


@dataclass
class Run:
    seconds: float
    returncode: int
    stdout: Path
    stderr: Path

    def stderr_text(self) -> str:
        return self.stderr.read_text(encoding="utf-8", errors="replace")


def run_timed(argv: list[str], env: dict[str, str], cwd: Path, scratch: Path) -> Run:
    """Run ``argv`` once; wall time from just before the fork to the reaped exit."""
    out = scratch / "stdout"
    err = scratch / "stderr"
    with out.open("wb") as fo, err.open("wb") as fe:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=fo, stderr=fe, stdin=subprocess.DEVNULL, env=env, cwd=cwd)
        proc.wait()
        seconds = time.perf_counter() - start
    return Run(seconds, proc.returncode, out, err)


def max_rss_kb(argv: list[str], env: dict[str, str], cwd: Path, scratch: Path) -> int | None:
    """Peak RSS of the largest process of the run (GNU time's %M: ru_maxrss of the waited children).

    Measured in a separate, untimed run: ``wait4()`` called from this (large) Python process would
    count the pages of the forked copy of it that exists before the exec.
    """
    gnu_time = shutil.which("time", path="/usr/bin:/bin") or shutil.which("time")
    if gnu_time is None:
        return None
    report = scratch / "rss"
    proc = subprocess.run(
        [gnu_time, "-f", "%M", "-o", str(report), *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        env=env,
        cwd=cwd,
        check=False,
    )
    del proc
    try:
        return int(report.read_text(encoding="ascii").split()[-1])
    except (OSError, ValueError, IndexError):
        return None


def _tree(pid: int) -> list[int]:
    pids = [pid]
    i = 0
    while i < len(pids):
        try:
            for task in os.listdir(f"/proc/{pids[i]}/task"):
                with open(f"/proc/{pids[i]}/task/{task}/children", encoding="ascii") as fh:
                    pids.extend(int(p) for p in fh.read().split())
        except OSError:
            pass
        i += 1
    return pids


def _pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def run_sampled(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[int, int, int]:
    """Run once, sampling the whole process tree every few ms (worker processes included).

    Returns (peak PSS of the tree in kB, largest process count seen, exit code). PSS splits pages
    shared between the forked workers, so the sum is the tree's real footprint.
    """
    proc = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, env=env, cwd=cwd
    )
    peak = procs = 0
    while True:
        pid, status, _usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return peak, procs, proc.returncode
        tree = _tree(proc.pid)
        procs = max(procs, len(tree))
        peak = max(peak, sum(_pss_kb(p) for p in tree))
        time.sleep(0.003)


# ---- measurements ------------------------------------------------------------------------------


@dataclass
class Measurement:
    key: str
    label: str
    argv_for: Callable[[int], list[str]]  # repetition index -> argv
    env_for: Callable[[int], dict[str, str]]
    cwd: Path
    ok_codes: tuple[int, ...] = (0, 1)
    target: str = ""
    runs: list[Run] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    rss_kb: int | None = None

    def times(self) -> list[float]:
        return [r.seconds for r in self.runs]

    @property
    def median(self) -> float:
        return statistics.median(self.times())

    @property
    def best(self) -> float:
        return min(self.times())

    @property
    def rss_mb(self) -> str:
        return "?" if self.rss_kb is None else f"{self.rss_kb / 1024:.0f}"

    def shown_argv(self) -> str:
        return " ".join(self.argv_for(0))


def check_run(m: Measurement, run: Run) -> None:
    err = run.stderr_text()
    if run.returncode not in m.ok_codes:
        m.problems.append(f"exit code {run.returncode}: {err.strip()[-2000:]}")
    elif "Traceback" in err:
        m.problems.append(f"traceback on stderr: {err.strip()[-2000:]}")


# ---- the untimed correctness check ---------------------------------------------------------------


def verify(work: Path, corpus_arg: str, n_files: int, squawk: str, files: list[str]) -> tuple[list[str], dict]:
    """Cold, warm and --no-cache JSON reports must be identical; returns (problems, facts)."""
    problems: list[str] = []
    facts: dict = {}
    cache = work / "verify-cache"
    reports = {}
    for name, extra, cache_dir in (
        ("cold", [], cache),
        ("warm", [], cache),
        ("no-cache", ["--no-cache"], None),
    ):
        argv = [*bgmigrate_module(), "lint", "--format", "json", *extra, corpus_arg]
        start = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, env=bgmigrate_env(cache_dir), cwd=work, check=False)
        facts[f"verify {name} s"] = f"{time.perf_counter() - start:.2f}"
        if proc.returncode not in (0, 1):
            problems.append(
                f"`{' '.join(argv)}` ({name}) exited {proc.returncode}: "
                f"{proc.stderr.decode(errors='replace').strip()[-2000:]}"
            )
            continue
        try:
            reports[name] = json.loads(proc.stdout)
        except ValueError as err:
            problems.append(f"`{' '.join(argv)}` ({name}) printed invalid JSON: {err}")
    if "cold" in reports:
        cold = reports["cold"]
        for other in ("warm", "no-cache"):
            if other in reports and reports[other] != cold:
                problems.append(
                    f"the {other} JSON report differs from the cold one ({_first_difference(cold, reports[other])})"
                )
        summary = cold.get("summary", {})
        facts["bgmigrate files"] = summary.get("files")
        facts["bgmigrate statements"] = summary.get("statements")
        facts["bgmigrate errors/warnings"] = f"{summary.get('errors')}/{summary.get('warnings')}"
        facts["bgmigrate phases"] = summary.get("by_phase")
        facts["bgmigrate findings by rule"] = dict(Counter(f["rule"] for f in cold.get("findings", [])).most_common())
        if summary.get("files") != n_files:
            problems.append(f"bgmigrate linted {summary.get('files')} files, the corpus has {n_files}")
        engine = [f for f in cold.get("findings", []) if f["rule"] in ENGINE_PROBLEM_RULES]
        for f in engine[:20]:
            problems.append(f"bgmigrate {f['rule']} at {f['file']}:{f['line']}: {f['message']}")
        if len(engine) > 20:
            problems.append(f"... and {len(engine) - 20} more parse/classification findings")
        entries = list((cache / "analysis").rglob("*.json")) if (cache / "analysis").is_dir() else []
        facts["cache entries after cold run"] = len(entries)
    proc = subprocess.run([squawk, "--reporter", "json", *files], capture_output=True, cwd=work, check=False)
    try:
        squawk_findings = json.loads(proc.stdout or b"[]")
        facts["squawk findings"] = len(squawk_findings)
        facts["squawk exit code"] = proc.returncode
        parse_errors = [f for f in squawk_findings if f.get("rule_name") == "syntax-error"]
        facts["squawk syntax errors"] = len(parse_errors)
    except ValueError:
        problems.append(f"squawk --reporter json printed invalid JSON (exit {proc.returncode})")
    return problems, facts


def _first_difference(a: object, b: object, path: str = "$") -> str:
    if type(a) is not type(b):
        return f"{path}: {type(a).__name__} vs {type(b).__name__}"
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                return _first_difference(a.get(k), b.get(k), f"{path}.{k}")
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} vs {len(b)} items"
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                return _first_difference(x, y, f"{path}[{i}]")
    return f"{path}: {str(a)[:120]!r} vs {str(b)[:120]!r}"


# ---- report -----------------------------------------------------------------------------------


def _fmt_s(seconds: float) -> str:
    return f"{seconds:.3f}"


def build_rows(ms: dict[str, Measurement]) -> list[list[str]]:
    """One row per measurement. Ratios: median/median and min/min against squawk on the same input.

    The verdict uses min/min (and the minimum for the absolute single-file target): on a shared
    machine the minimum is the figure least disturbed by other processes.
    """
    rows = []
    for m in ms.values():
        ratio = verdict = ""
        ref = ms["squawk-1"] if m.key.startswith("single") else ms["squawk"]
        if m.key not in ("squawk", "squawk-1", "python-floor"):
            ratio = f"{m.median / ref.median:.2f}x / {m.best / ref.best:.2f}x"
        if m.key.startswith("cold"):
            verdict = "meets" if m.best <= COLD_TARGET_RATIO * ref.best else "MISSES"
        elif m.key == "warm":
            verdict = "meets" if m.best < ref.best else "MISSES"
        elif m.key.startswith("single"):
            verdict = "meets" if m.best < SINGLE_FILE_TARGET_S else "MISSES"
        if m.problems:
            verdict = (verdict + " " if verdict else "") + "(FAILED RUNS)"
        spread = max(m.times()) / m.best if m.best > 0 else 1.0
        rows.append([m.label, _fmt_s(m.median), _fmt_s(m.best), f"{spread:.1f}", m.rss_mb, m.target, ratio, verdict])
    return rows


HEADERS = [
    "measurement",
    "median s",
    "min s",
    "max/min",
    "max RSS MB",
    "target",
    "vs squawk (median / min)",
    "target met? (min)",
]


def render_table(rows: list[list[str]], markdown: bool) -> str:
    if markdown:
        lines = ["| " + " | ".join(HEADERS) + " |", "|" + "|".join("---" for _ in HEADERS) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(HEADERS)]
    fmt = "  ".join(f"{{:{'<' if i == 0 else '>'}{w}}}" for i, w in enumerate(widths))
    lines = [fmt.format(*HEADERS), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*r) for r in rows]
    return "\n".join(lines)


# ---- main -------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=DEFAULT_FILES, help="corpus size (default %(default)s)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per measurement (default %(default)s)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--jobs", type=int, default=None, help="pass --jobs N to the corpus runs (default: automatic)")
    parser.add_argument(
        "--also-jobs",
        type=int,
        action="append",
        default=[],
        metavar="N",
        help="also time a cold run with --jobs N (repeatable)",
    )
    parser.add_argument(
        "--format", choices=("text", "json"), default="text", help="report format of both tools while timed"
    )
    parser.add_argument("--out", type=Path, help="also write the results as a Markdown snippet to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (corpus, caches)")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.files < 1:
        parser.error("--files and --repeat must be at least 1")

    work = Path(tempfile.mkdtemp(prefix="bgmigrate-bench-"))
    try:
        return _bench(args, work)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def _bench(args: argparse.Namespace, work: Path) -> int:
    squawk = squawk_path()
    info = machine_info()
    corpus_dir = work / "corpus"
    paths = generate(corpus_dir, args.files, args.seed)
    files = [p.relative_to(work).as_posix() for p in paths]
    corpus_bytes = sum(p.stat().st_size for p in paths)
    one = work / "one.sql"
    one.write_bytes(paths[-1].read_bytes())
    script, script_note = bgmigrate_script(work)
    module = bgmigrate_module()
    jobs = ["--jobs", str(args.jobs)] if args.jobs else []
    fmt_bg = ["--format", "json"] if args.format == "json" else []
    fmt_sq = ["--reporter", "json"] if args.format == "json" else []
    scratch = work / "scratch"
    scratch.mkdir()

    digest = corpus_digest(corpus_dir)[:16]
    print(f"corpus: {len(paths)} files, {corpus_bytes / 1024:.0f} KiB, seed {args.seed}, sha256 {digest}")
    print(f"bgmigrate console script: {script_note}")
    print("verifying (untimed): cold vs warm vs --no-cache JSON reports, squawk JSON ...", flush=True)
    problems, facts = verify(work, "corpus", len(paths), squawk, files)
    for k, v in facts.items():
        print(f"  {k}: {v}")
    for p in problems:
        print(f"  PROBLEM: {p}")

    counter = {"n": 0}

    def fresh_cache(_i: int) -> dict[str, str]:
        counter["n"] += 1
        return bgmigrate_env(work / f"cache-cold-{counter['n']}")

    warm_cache = work / "cache-warm"
    one_cache = work / "cache-one"
    env_warm = bgmigrate_env(warm_cache)
    env_one = bgmigrate_env(one_cache)
    env_plain = bgmigrate_env()
    sq_target = ""
    ms: list[Measurement] = [
        Measurement(
            "squawk",
            f"(a) squawk, {len(paths)} files",
            lambda _i: [squawk, *fmt_sq, *files],
            lambda _i: env_plain,
            work,
            target=sq_target,
        ),
        Measurement(
            "cold",
            "(b) bgmigrate cold (empty cache)",
            lambda _i: [*module, "lint", *fmt_bg, *jobs, "corpus"],
            fresh_cache,
            work,
            target=f"<= {COLD_TARGET_RATIO:g}x squawk",
        ),
    ]
    for n in args.also_jobs:
        ms.append(
            Measurement(
                f"cold-j{n}",
                f"(b') bgmigrate cold --jobs {n}",
                lambda _i, n=n: [*module, "lint", *fmt_bg, "--jobs", str(n), "corpus"],
                fresh_cache,
                work,
                target=f"<= {COLD_TARGET_RATIO:g}x squawk",
            )
        )
    ms.append(
        Measurement(
            "cold-nocache",
            "(b'') bgmigrate --no-cache (no cache read or write)",
            lambda _i: [*module, "lint", *fmt_bg, *jobs, "--no-cache", "corpus"],
            lambda _i: env_plain,
            work,
            target=f"<= {COLD_TARGET_RATIO:g}x squawk",
        )
    )
    ms += [
        Measurement(
            "warm",
            "(c) bgmigrate warm (cache filled)",
            lambda _i: [*module, "lint", *fmt_bg, *jobs, "corpus"],
            lambda _i: env_warm,
            work,
            target="< squawk",
        ),
        Measurement(
            "squawk-1", "(a1) squawk, one file", lambda _i: [squawk, *fmt_sq, "one.sql"], lambda _i: env_plain, work
        ),
        Measurement(
            "python-floor",
            "(floor) python -c pass",
            lambda _i: [sys.executable, "-c", "pass"],
            lambda _i: env_plain,
            work,
            ok_codes=(0,),
        ),
        Measurement(
            "single-m-cached",
            "(d) python -m migrator.cli lint one.sql, cached",
            lambda _i: [*module, "lint", *fmt_bg, "one.sql"],
            lambda _i: env_one,
            work,
            target=f"< {SINGLE_FILE_TARGET_S:g} s (min)",
        ),
        Measurement(
            "single-s-cached",
            "(d) bgmigrate lint one.sql, cached",
            lambda _i: [*script, "lint", *fmt_bg, "one.sql"],
            lambda _i: env_one,
            work,
            target=f"< {SINGLE_FILE_TARGET_S:g} s (min)",
        ),
        Measurement(
            "single-m-miss",
            "(d) python -m migrator.cli lint one.sql, not cached",
            lambda _i: [*module, "lint", *fmt_bg, "one.sql"],
            fresh_cache,
            work,
            target=f"< {SINGLE_FILE_TARGET_S:g} s (min)",
        ),
        Measurement(
            "single-s-miss",
            "(d) bgmigrate lint one.sql, not cached",
            lambda _i: [*script, "lint", *fmt_bg, "one.sql"],
            fresh_cache,
            work,
            target=f"< {SINGLE_FILE_TARGET_S:g} s (min)",
        ),
    ]
    by_key = {m.key: m for m in ms}

    # warm-up: page cache, the warm and single-file caches; not timed
    print("warming up (untimed) ...", flush=True)
    for m in ms:
        run = run_timed(m.argv_for(0), m.env_for(0), m.cwd, scratch)
        check_run(m, run)

    print(f"timing: {args.repeat} rounds of {len(ms)} measurements ...", flush=True)
    load_before = os.getloadavg()
    for i in range(args.repeat):
        for m in ms:
            run = run_timed(m.argv_for(i), m.env_for(i), m.cwd, scratch)
            check_run(m, run)
            m.runs.append(run)
        print(
            f"  round {i + 1}/{args.repeat}: " + ", ".join(f"{m.key} {m.runs[-1].seconds:.2f}" for m in ms), flush=True
        )
    load_after = os.getloadavg()

    print("measuring memory (untimed runs under /usr/bin/time, and a sampled cold run) ...", flush=True)
    for m in ms:
        m.rss_kb = max_rss_kb(m.argv_for(0), m.env_for(0), m.cwd, scratch)
    pss_kb, procs, rc = run_sampled(by_key["cold"].argv_for(0), fresh_cache(0), work)
    facts["cold run: peak PSS of the process tree (workers included)"] = (
        f"{pss_kb / 1024:.0f} MB over {procs} processes"
    )
    if rc not in (0, 1):
        problems.append(f"sampled cold run exited {rc}")
    for m in ms:
        problems.extend(f"{m.label}: {p}" for p in dict.fromkeys(m.problems))

    rows = build_rows(by_key)
    print()
    print(render_table(rows, markdown=False))
    print()
    sq = by_key["squawk"]
    print(
        f"cold/squawk = {by_key['cold'].median / sq.median:.2f} median, {by_key['cold'].best / sq.best:.2f} min "
        f"(target <= {COLD_TARGET_RATIO:g}); warm/squawk = {by_key['warm'].median / sq.median:.2f} median, "
        f"{by_key['warm'].best / sq.best:.2f} min (target < 1); "
        f"single-file best = {by_key['single-m-miss'].best:.3f} s not cached / "
        f"{by_key['single-m-cached'].best:.3f} s cached (target < {SINGLE_FILE_TARGET_S:g} s)"
    )
    print(
        f"peak RSS: bgmigrate cold {by_key['cold'].rss_mb} MB (largest process), "
        f"{pss_kb / 1024:.0f} MB PSS for the whole tree; squawk {sq.rss_mb} MB"
    )
    print(f"load average before/after timing: {load_before[0]:.2f} / {load_after[0]:.2f}")
    noisy = [m.key for m in ms if m.best > 0.05 and max(m.times()) > 1.5 * m.best]
    if noisy:
        print(f"noisy: max > 1.5 x min for {', '.join(noisy)}: other load on the machine; compare the minimums")
    if problems:
        print("\nPROBLEMS:")
        for p in problems:
            print(f"  - {p}")

    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(
            _markdown(args, info, facts, problems, rows, ms, paths, corpus_bytes, script_note, load_before, load_after),
            encoding="utf-8",
        )
        print(f"\nwrote {args.out}")
    return 1 if problems else 0


def _markdown(
    args: argparse.Namespace,
    info: dict[str, str],
    facts: dict,
    problems: list[str],
    rows: list[list[str]],
    ms: list[Measurement],
    paths: list[Path],
    corpus_bytes: int,
    script_note: str,
    load_before: tuple[float, float, float],
    load_after: tuple[float, float, float],
) -> str:
    out = [f"### lint_bench: {len(paths)} files, {args.repeat} rounds ({info['date']})", ""]
    out.append(
        f"`python bench/lint_bench.py --files {args.files} --repeat {args.repeat} --seed {args.seed}"
        + (f" --jobs {args.jobs}" if args.jobs else "")
        + "".join(f" --also-jobs {n}" for n in args.also_jobs)
        + (f" --format {args.format}" if args.format != "text" else "")
        + "`"
    )
    out.append("")
    for k, v in info.items():
        out.append(f"- {k}: {v}")
    out.append(f"- corpus: {len(paths)} files, {corpus_bytes / 1024:.0f} KiB (bench/corpus.py, seed {args.seed})")
    out.append(f"- bgmigrate console script: {script_note}")
    out.append(f"- load average (1 min) before/after timing: {load_before[0]:.2f} / {load_after[0]:.2f}")
    out.append("")
    out.append(render_table(rows, markdown=True))
    out.append("")
    out.append("Commands (cwd: a fresh temporary directory holding `corpus/` and `one.sql`):")
    out.append("")
    for m in ms:
        shown = m.shown_argv()
        if len(shown) > 200:
            shown = shown[:200] + " ..."
        out.append(f"- {m.label}: `{shown}`")
    out.append("")
    out.append("Untimed checks:")
    out.append("")
    for k, v in facts.items():
        out.append(f"- {k}: {v}")
    if problems:
        out.append("")
        out.append("Problems:")
        out.append("")
        out += [f"- {p}" for p in problems]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.exit(main())
