"""A traffic router whose API fails in the middle of a progressive shift, through ``bgmigrate switch``
in its own process (the command router driving a state file, like a platform's API): failing from
one call on (the rollback fails too), failing once, applying the change but answering an error, and
hanging past the router's timeout. Each time traffic ends on a consistent split (blue + green = 100,
one the switch or its rollback set), the moves and the failure are recorded in the release's events,
the command exits 3 saying where traffic stands, and contract stays refused.

(The platform routers, Cloud Run, URL maps, Gateway API and Istio, are put through the same faults
against their API emulators in tests/integration/test_switch.py.)"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest
from faults_harness import run_ok
from runner_harness import Release, bgm, pg_exec, seed_sql

SET_SCRIPT = """\
#!/bin/sh
# a platform API: the n-th call fails as told by the files next to this script
dir=$(dirname "$0")
n=$(( $(cat "$dir/calls" 2>/dev/null || echo 0) + 1 )); echo "$n" > "$dir/calls"
mode=$(cat "$dir/mode"); from=$(cat "$dir/fail_from")
if [ "$n" -ge "$from" ]; then
  case "$mode" in
    always|once)
      if [ "$mode" = always ] || [ "$n" -eq "$from" ]; then
        echo "503 Service Unavailable: backend API error" >&2; exit 1
      fi ;;
    applied)
      if [ "$n" -eq "$from" ]; then
        printf '{"blue": %s, "green": %s}\\n' "$1" "$2" > "$dir/split.json"
        echo "504 Gateway Timeout (the change was applied)" >&2; exit 1
      fi ;;
    hang)
      [ "$n" -eq "$from" ] && exec sleep 30 ;;
  esac
fi
printf '{"blue": %s, "green": %s}\\n' "$1" "$2" > "$dir/split.json"
"""


@pytest.fixture
def expanded(fresh_pg: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    rel = Release.write(tmp_path / "release")
    pg_exec(fresh_pg, (rel.migrations / "0001_base.sql").read_text() + seed_sql(20))
    run_ok("expand", "--plan", str(rel.plan), "--dsn", fresh_pg)
    api = tmp_path / "api"
    api.mkdir()
    (api / "set.sh").write_text(SET_SCRIPT)
    (api / "split.json").write_text('{"blue": 100, "green": 0}\n')
    q = shlex.quote
    config = tmp_path / "bgmigrate.toml"
    config.write_text(
        f"""\
[traffic]
router = "command"
target = "shop"
blue = "shop-v1"
green = "shop-v2"
timeout = "2s"
get = {json.dumps(f"cat {q(str(api / 'split.json'))}")}
set = {json.dumps(f"sh {q(str(api / 'set.sh'))} {{blue}} {{green}}")}

[gates]
command = "true"
"""
    )
    yield fresh_pg, config


def _events(dsn: str) -> list[tuple[str, dict]]:
    done = run_ok("status", "--dsn", dsn, "--format", "json")
    out = []
    for e in json.loads(done.stdout)["releases"][0]["events"]:
        try:
            out.append((e["kind"], json.loads(e["detail"])))
        except ValueError:
            out.append((e["kind"], {"text": e["detail"]}))
    return out


CASES = {
    # the API's fault, the set call it starts at (1: the 10% step), the split left, what the error says
    "api down from the 50% step on (rollback fails too)": ("always", 2, (90, 10), "ROLLBACK FAILED"),
    "api fails once at the 50% step": ("once", 2, (100, 0), "traffic rolled back: blue 100% / green 0%"),
    "api applies 100% but answers an error": ("applied", 3, (100, 0), "traffic rolled back: blue 100% / green 0%"),
    "api hangs at the 50% step": ("hang", 2, (100, 0), "timed out after 2 s"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_router_api_failing_mid_shift(expanded: tuple[str, Path], case: str, figures) -> None:
    dsn, config = expanded
    mode, fail_from, left, said = CASES[case]
    api = config.parent / "api"
    (api / "mode").write_text(mode)
    (api / "fail_from").write_text(str(fail_from))
    done = bgm("switch", "--dsn", dsn, "--config", str(config), "--steps", "10,50,100", "--interval", "0")
    split = json.loads((api / "split.json").read_text())
    consistent = split["blue"] + split["green"] == 100 and (split["blue"], split["green"]) == left
    figures.record("router", case=case, exit=done.returncode, split=split, consistent=consistent)
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr and said in done.stderr
    assert consistent, split
    events = _events(dsn)
    moves = [(d["blue"], d["green"]) for k, d in events if k == "traffic"]
    assert moves[0] == (90, 10)
    if mode == "always":
        failed = [d for k, d in events if k == "rollback-failed"]
        assert len(failed) == 1 and failed[0]["serving"] == "blue 90% / green 10%"
        assert "503 Service Unavailable" in failed[0]["error"]
        assert "command router for shop serves blue 90% / green 10%; contract stays refused" in done.stderr
    else:
        assert moves[-1] == (100, 0)  # the rollback, recorded as a move
        assert [d["reason"] for k, d in events if k == "traffic"][-1].startswith("rollback: shift to ")
    assert not [k for k, _ in events if k == "switched"]
    refused = bgm("contract", "--dsn", dsn, "--config", str(config))
    assert refused.returncode == 3, refused.stderr
    assert "is not recorded as switched and decommissioned" in refused.stderr
    status = json.loads(run_ok("status", "--dsn", dsn, "--format", "json").stdout)["releases"][0]
    assert status["status"] == "expanded" and status["switched_at"] is None
