"""The command router driving a tiny state file with real shell commands."""

from __future__ import annotations

import json
import shlex
import time

import pytest

from migrator.traffic.command import CommandRouter, parse_split
from migrator.traffic.router import RouterConfig, Split, TrafficError


@pytest.fixture
def state(tmp_path):
    path = tmp_path / "traffic.json"
    path.write_text('{"blue": 100, "green": 0}\n')
    return path


def router(state, timeout_s: float = 5.0, **options) -> CommandRouter:
    quoted = shlex.quote(str(state))
    defaults = {
        "get": f"cat {quoted}",
        # JSON braces and printf's %s stay as written: only {blue} and {green} are placeholders
        "set": f'printf \'{{"blue": %s, "green": %s}}\\n\' {{blue}} {{green}} > {quoted}',
    }
    return CommandRouter(
        RouterConfig(
            kind="command",
            target="shop",
            blue="shop-v1",
            green="shop-v2",
            timeout_s=timeout_s,
            options={**defaults, **options},
        )
    )


def read(state) -> dict:
    return json.loads(state.read_text())


def test_progressive_shift_through_set_and_get(state):
    r = router(state)
    assert r.describe() == "command router for shop"
    assert r.current() == Split(100, 0)
    for green in (10, 50, 100):
        assert r.set_split(Split.green_percent(green)) == Split.green_percent(green)
        assert read(state) == {"blue": 100 - green, "green": green}
        assert r.current() == Split.green_percent(green)
    assert r.blue_exposure() == []
    r.set_split(Split(100, 0))
    assert r.blue_exposure() == ["command router for shop sends 100% to blue (shop-v1)"]


def test_environment_variables_and_a_plain_percent(tmp_path):
    green = tmp_path / "green.txt"
    green.write_text("0\n")
    q = shlex.quote(str(green))
    r = router(
        tmp_path / "unused",
        get=f"echo 'checking the load balancer...'; cat {q}",  # chatter above the answer is fine
        set=f'test "$BGMIGRATE_TARGET" = shop && test "$BGMIGRATE_BLUE" = shop-v1 && '
        f'echo "$BGMIGRATE_GREEN_PERCENT%" > {q} && test $((BGMIGRATE_BLUE_PERCENT + BGMIGRATE_GREEN_PERCENT)) = 100',
    )
    assert r.set_split(Split(75, 25)) == Split(75, 25)
    assert green.read_text() == "25%\n"


def test_names_are_quoted_and_other_braces_kept(tmp_path):
    out = tmp_path / "out.txt"
    table = tmp_path / "table.txt"
    table.write_text("30 rest\n")
    r = CommandRouter(
        RouterConfig(
            kind="command",
            target="my shop; rm -rf /",
            blue="v1",
            green="v2",
            options={
                "get": f"awk '{{print $1}}' {shlex.quote(str(table))}",
                "set": f"printf '%s|%s|%s\\n' {{target}} {{green}} \"${{green:-unset}}\" > {shlex.quote(str(out))}; "
                f"echo {{green}} > {shlex.quote(str(table))}",
            },
        )
    )
    assert r.current() == Split(70, 30)
    assert r.set_split(Split(60, 40)) == Split(60, 40)
    assert out.read_text() == "my shop; rm -rf /|40|unset\n"  # one argument; ${green} is the shell's, not ours


def test_a_failing_set_is_an_error_naming_it_with_its_last_stderr_line(state):
    r = router(state, set="echo 'calling the API' >&2; echo 'ERROR: quota exceeded for project p' >&2; exit 3")
    with pytest.raises(TrafficError) as err:
        r.set_split(Split(90, 10))
    message = str(err.value)
    assert message == (
        "command router for shop: the set command `echo 'calling the API' >&2; echo 'ERROR: quota exceeded for "
        "project p' >&2; exit 3` exited with 3: ERROR: quota exceeded for project p"
    )
    assert "Traceback" not in message
    assert read(state) == {"blue": 100, "green": 0}


def test_a_set_that_does_not_take_effect_fails_verification(state):
    r = router(state, set="true")
    with pytest.raises(
        TrafficError,
        match=r"the set command `true` succeeded but the get command reads blue 100% / "
        r"green 0%, not blue 50% / green 50%; traffic is left where the commands left it",
    ):
        r.set_split(Split(50, 50))


def test_a_slow_platform_is_polled_until_settle_s(state):
    q = shlex.quote(str(state))
    slow = f'(sleep 0.3; printf \'{{"blue": %s, "green": %s}}\' {{blue}} {{green}} > {q}) >/dev/null 2>&1 &'
    assert router(state, set=slow, settle_s=3, poll_interval_s=0.05).set_split(Split(80, 20)) == Split(80, 20)
    assert read(state) == {"blue": 80, "green": 20}


@pytest.mark.parametrize(
    ("output", "reason"),
    [
        ("hello", "expected a green percent or JSON {blue, green}, got 'hello'"),
        ("", "it printed nothing"),
        ("150", "green percent 150 is over 100"),
        ("12.5", "green percent 12.5 is not a whole percent"),
        ('{"blue": 1}', 'its JSON has no "blue" and "green" members'),
        ('{"blue": "a", "green": 1}', "blue is not a number: 'a'"),
        ('{"blue": 0, "green": 0}', "blue and green sum to 0"),
    ],
)
def test_garbage_from_get_is_an_error_naming_the_command(state, output, reason):
    r = router(state, get=f"printf '%s' {shlex.quote(output)}")
    with pytest.raises(TrafficError) as err:
        r.current()
    assert str(err.value) == (
        f"command router for shop: cannot read the output of the get command `printf '%s' {shlex.quote(output)}`: "
        f"{reason}"
    )


def test_get_output_forms():
    assert parse_split("42\n") == Split(58, 42)
    assert parse_split("100.0") == Split(0, 100)
    assert parse_split('{\n  "blue": 3,\n  "green": 1\n}\n') == Split(75, 25)
    assert parse_split('{"blue": 0.999, "green": 0.001}') == Split(99, 1)  # a trickle is never 0%
    assert parse_split('progress: 1/2\n{"blue": 20, "green": 80}') == Split(20, 80)


def test_a_failing_get_and_a_missing_command(state):
    with pytest.raises(TrafficError, match=r"the get command `cat /nonexistent/x` exited with 1: cat: /nonexistent/x"):
        router(state, get="cat /nonexistent/x").current()
    with pytest.raises(TrafficError, match=r"the get command `no-such-tool-xyz get` exited with 127: .*not found"):
        router(state, get="no-such-tool-xyz get").current()
    with pytest.raises(TrafficError, match=r"the command router needs set"):
        CommandRouter(RouterConfig(kind="command", options={"get": "echo 0"}))


def test_a_timeout_kills_the_whole_process_group(state, tmp_path):
    marker = tmp_path / "marker"
    r = router(state, timeout_s=0.3, set=f"(sleep 0.6; touch {shlex.quote(str(marker))}) & wait")
    started = time.monotonic()
    with pytest.raises(TrafficError, match=r"the set command `.*` timed out after 0.3 s"):
        r.set_split(Split(50, 50))
    assert time.monotonic() - started < 2
    time.sleep(0.6)
    assert not marker.exists()  # the background child was killed with the shell
    assert read(state) == {"blue": 100, "green": 0}


def test_secrets_in_a_command_are_masked_in_errors(state):
    r = router(
        state, set="curl -s 'https://lb.example/api?password=hunter2' >/dev/null; echo password=hunter2 >&2; exit 1"
    )
    with pytest.raises(TrafficError) as err:
        r.set_split(Split(50, 50))
    assert "hunter2" not in str(err.value) and "exited with 1" in str(err.value)


def test_health_per_side(state):
    r = router(state, health='echo "checked $BGMIGRATE_SIDE {name}"; test "$BGMIGRATE_SIDE" = blue')
    health = r.health()
    assert (health["blue"].healthy, health["blue"].detail) == (True, "checked blue shop-v1")
    assert (health["green"].healthy, health["green"].detail) == (False, "exit 1: checked green shop-v2")
    r = router(state, health_green="exit 0")
    assert list(r.health()) == ["green"] and r.health()["green"].healthy is True
    assert router(state).health() == {}
    slow = router(state, timeout_s=0.2, health="sleep 5").health()
    assert slow["blue"].healthy is False and "timed out after 0.2 s" in slow["blue"].detail
