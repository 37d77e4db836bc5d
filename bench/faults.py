"""Reliability and security figures: runs the fault suite (tests/faults/) and summarises what it measured.

```sh
python bench/faults.py                      # the whole suite (about 3 min with 2 workers), then the summary
python bench/faults.py --markdown           # the summary as the Markdown table of bench/RESULTS.md
python bench/faults.py -m "not slow"        # the quick subset (fewer kill points, no 30 s lock hold)
python bench/faults.py --figures FILE       # summarise a figures file of an earlier run, run nothing
```

Each test of tests/faults/ appends one JSON line per figure to ``$BGMIGRATE_FAULTS_FIGURES`` (see
tests/faults/conftest.py): a kill point and whether the rerun ended as the uninterrupted run (and how
many rows it lost), the longest stall of the clients under lock contention, the fuzz cases run per
target, the places searched for the password and those holding it, the concurrent runners, the router
API faults. The summary:

- kill points survived / tried: SIGKILL at every step boundary (PostgreSQL, MariaDB), at random points
  inside backfills, the database stopped or the runner's connection killed; survived = the rerun
  finished and the schema (``pg_dump --schema-only`` / ``SHOW CREATE TABLE``) and rows equal the
  uninterrupted run's;
- rows lost: rows of the uninterrupted run missing or different after the interrupted one, summed;
- max reader stall under contention: the slowest client request while a transaction held a conflicting
  lock for 30 s (and the bound: lock_timeout + 100 ms);
- fuzz cases run: inputs given to the linter, plan, configuration and DSN parsers;
- secret leaks found: places (outputs, state rows, plan files, hook environments, cache files,
  exception texts) holding the DSN's password.

Exit code 0 when the suite passed and every figure meets its bar, 1 otherwise. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def run_suite(figures: Path, workers: int, marker: str | None) -> tuple[int, float]:
    env = {k: v for k, v in os.environ.items() if k != "BGMIGRATE_FAULTS_FIGURES"}
    env["BGMIGRATE_FAULTS_FIGURES"] = str(figures)
    cmd = [sys.executable, "-m", "pytest", "tests/faults", "-q", "-p", "no:cacheprovider", "-n", str(workers)]
    if marker:
        cmd += ["-m", marker]
    started = time.monotonic()
    done = subprocess.run(cmd, cwd=REPO_ROOT, env=env, check=False)
    return done.returncode, time.monotonic() - started


def load(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def summarise(records: list[dict]) -> dict:
    kills: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # where -> [survived, tried]
    rows_lost = 0
    failed_points = []
    fuzz: dict[str, int] = defaultdict(int)
    stalls = []
    places = leaks = 0
    leak_places: list[str] = []
    runners = []
    routers = []
    for r in records:
        kind = r["kind"]
        if kind == "kill":
            kills[r["where"]][1] += 1
            kills[r["where"]][0] += bool(r["survived"])
            rows_lost += r.get("rows_lost") or 0
            if not r["survived"]:
                failed_points.append(f"{r['where']}: {r['point']}")
        elif kind == "fuzz":
            fuzz[r["target"]] += r["cases"]
        elif kind == "stall":
            stalls.append(r)
        elif kind == "secrets":
            places += r["places"]
            leaks += r["leaks"]
            leak_places += r.get("where") or []
        elif kind == "runners":
            runners.append(r)
        elif kind == "router":
            routers.append(r)
    survived = sum(v[0] for v in kills.values())
    tried = sum(v[1] for v in kills.values())
    stall = max(stalls, key=lambda s: s["max_stall_ms"]) if stalls else None
    return {
        "kills": {k: tuple(v) for k, v in sorted(kills.items())},
        "survived": survived,
        "tried": tried,
        "failed_points": failed_points,
        "rows_lost": rows_lost,
        "stall": stall,
        "fuzz": dict(sorted(fuzz.items())),
        "fuzz_total": sum(fuzz.values()),
        "places": places,
        "leaks": leaks,
        "leak_places": leak_places,
        "runners": runners,
        "routers": routers,
    }


def meets(s: dict, complete: bool = True) -> dict[str, bool]:
    """Each figure against its bar; with ``complete`` False (a marker chose a subset), a figure the subset
    does not measure is not held against it."""
    stall = s["stall"]
    return {
        "kill points": s["tried"] > 0 and s["survived"] == s["tried"],
        "rows lost": s["rows_lost"] == 0 and s["tried"] > 0,
        "reader stall": (not complete) if stall is None else stall["max_stall_ms"] < stall["lock_timeout_ms"] + 100,
        "fuzz": s["fuzz_total"] > 0,
        "secret leaks": s["places"] > 0 and s["leaks"] == 0,
        "runners": all(r["proceeded"] == 1 and r["refused"] == r["n"] - 1 for r in s["runners"]),
        "router": all(r["consistent"] and r["exit"] == 3 for r in s["routers"]),
    }


def text_report(s: dict, ok: dict[str, bool]) -> str:
    mark = {True: "ok", False: "MISSED"}
    lines = [f"kill points survived / tried: {s['survived']} / {s['tried']}  [{mark[ok['kill points']]}]"]
    lines += [f"  {where}: {a} / {b}" for where, (a, b) in s["kills"].items()]
    lines += [f"  FAILED: {p}" for p in s["failed_points"]]
    lines.append(f"rows lost: {s['rows_lost']}  [{mark[ok['rows lost']]}]")
    st = s["stall"]
    if st:
        lines.append(
            f"max reader stall under contention: {st['max_stall_ms']:.1f} ms (bound: lock_timeout "
            f"{st['lock_timeout_ms']} ms + 100 ms; lock held {st['hold_s']} s, {st['requests']:,} requests, "
            f"runner gave up after {st['runner_gave_up_after_s']} s)  [{mark[ok['reader stall']]}]"
        )
    else:
        lines.append("max reader stall under contention: not measured (the 30 s case did not run)  [MISSED]")
    lines.append(f"fuzz cases run: {s['fuzz_total']:,}")
    lines += [f"  {target}: {n:,}" for target, n in s["fuzz"].items()]
    lines.append(f"secret leaks found: {s['leaks']} in {s['places']} places searched  [{mark[ok['secret leaks']]}]")
    lines += [f"  LEAK: {p}" for p in s["leak_places"]]
    for r in s["runners"]:
        lines.append(f"concurrent runners: {r['n']} started, {r['proceeded']} proceeded, {r['refused']} refused (3)")
    for r in s["routers"]:
        lines.append(f"router API fault '{r['case']}': exit {r['exit']}, traffic left on {r['split']}")
    return "\n".join(lines) + "\n"


def markdown_report(s: dict, ok: dict[str, bool]) -> str:
    mark = {True: "met", False: "**MISSED**"}
    st = s["stall"]
    stall = (
        f"{st['max_stall_ms']:.1f} ms (lock held {st['hold_s']:.0f} s, lock_timeout {st['lock_timeout_ms']} ms; "
        f"{st['requests']:,} requests)"
        if st
        else "not measured"
    )
    bound = f"< {st['lock_timeout_ms'] + 100} ms" if st else "< lock_timeout + 100 ms"
    rows = [
        ("kill points survived / tried", f"{s['survived']} / {s['tried']}", "all", mark[ok["kill points"]]),
        ("rows lost", str(s["rows_lost"]), "0", mark[ok["rows lost"]]),
        ("max reader stall under contention", stall, bound, mark[ok["reader stall"]]),
        ("fuzz cases run", f"{s['fuzz_total']:,}", "no traceback, exit 0/1/2", mark[ok["fuzz"]]),
        ("secret leaks found", f"{s['leaks']} (in {s['places']} places searched)", "0", mark[ok["secret leaks"]]),
    ]
    out = ["| figure | value | bar | |", "|---|---|---|---|"]
    out += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    out.append("")
    out.append("| kill points by kind | survived / tried |")
    out.append("|---|---|")
    out += [f"| {where} | {a} / {b} |" for where, (a, b) in s["kills"].items()]
    out.append("")
    out.append("| fuzz target | cases |")
    out.append("|---|---|")
    out += [f"| {target} | {n:,} |" for target, n in s["fuzz"].items()]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--figures", type=Path, help="summarise this figures file (JSON lines); run nothing")
    parser.add_argument("--keep", type=Path, help="also keep the figures of this run in this file")
    parser.add_argument("-n", "--workers", type=int, default=2, help="pytest-xdist workers (default 2)")
    parser.add_argument("-m", dest="marker", help='pytest marker expression, e.g. "not slow"')
    parser.add_argument("--markdown", action="store_true", help="print the summary as Markdown")
    args = parser.parse_args(argv)

    suite_rc, seconds = 0, None
    if args.figures:
        records = load(args.figures)
    else:
        with tempfile.TemporaryDirectory(prefix="bgm-faults-") as tmp:
            path = Path(tmp) / "figures.jsonl"
            suite_rc, seconds = run_suite(path, args.workers, args.marker)
            records = load(path)
            if args.keep:
                args.keep.write_text(path.read_text(encoding="utf-8") if path.exists() else "", encoding="utf-8")
    summary = summarise(records)
    ok = meets(summary, complete=args.marker is None)
    print()
    if seconds is not None:
        print(f"tests/faults: pytest exit {suite_rc} in {seconds:.0f} s ({len(records)} figures recorded)\n")
    print(markdown_report(summary, ok) if args.markdown else text_report(summary, ok), end="")
    return 0 if suite_rc == 0 and all(ok.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
