"""The progressive switch: green's share raised step by step, a health gate before every step,
automatic rollback to blue when a gate fails or a shift fails, every move recorded.

Rules:

- a shift is one router call that waits until the platform serves the new split (or fails);
- a gate failure, a failed shift or an interruption puts 100 % back on blue (rollback) and the
  release stays not switched, so contract stays refused; if even the rollback fails, the split the
  router reports is recorded and the message says where traffic stands;
- the release is recorded as switched only once green serves 100 %; a rollback clears it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .gates import GateResult
from .router import Router, Split, TrafficError


class TrafficRecorder(Protocol):
    def shifted(self, before: Split, after: Split, reason: str) -> None: ...
    def switched(self, done: bool) -> None: ...
    def event(self, kind: str, detail: dict[str, Any]) -> None: ...


class NoRecorder:
    def shifted(self, before: Split, after: Split, reason: str) -> None:
        pass

    def switched(self, done: bool) -> None:
        pass

    def event(self, kind: str, detail: dict[str, Any]) -> None:
        pass


@dataclass
class SwitchResult:
    final: Split
    steps: list[Split] = field(default_factory=list)
    rolled_back: bool = False
    reason: str = ""


def switch_to_green(
    router: Router,
    gate: Callable[[], GateResult] | None,
    steps: list[int],
    interval: float,
    recorder: TrafficRecorder,
    say: Callable[[str], None] = lambda line: None,
    sleep: Callable[[float], None] = time.sleep,
) -> SwitchResult:
    """Raise green's share through ``steps`` (percents ending at 100); TrafficError (exit 3) after a
    rollback when a gate or a shift fails."""
    current = router.current()
    result = SwitchResult(final=current)
    say(f"{router.describe()}: serving {current}")
    for percent in steps:
        if percent <= current.green:
            continue
        if gate is not None:
            checked = gate()
            recorder.event("gate", {"before": percent, "ok": checked.ok, "detail": checked.detail})
            if not checked.ok:
                reason = f"gate failed before green {percent}%: {checked.failures}"
                say(reason)
                final = rollback(router, recorder, reason, say)
                raise TrafficError(f"{reason}; traffic rolled back: {final}")
            say(f"gate before green {percent}%: {checked.detail}")
        target = Split.green_percent(percent)
        try:
            after = router.set_split(target)
        except BaseException as err:  # a failed shift, or Ctrl-C in the middle: back to blue
            reason = f"shift to {target} failed: {err}" if isinstance(err, Exception) else "interrupted"
            say(reason)
            final = rollback(router, recorder, reason, say)
            if isinstance(err, Exception):
                raise TrafficError(f"{reason}; traffic rolled back: {final}") from None
            raise
        recorder.shifted(current, after, f"step {percent}%")
        say(f"{router.describe()}: now serving {after}")
        current = after
        result.steps.append(after)
        if percent < 100 and interval > 0:
            sleep(interval)
    result.final = current
    if current.green == 100:
        recorder.switched(True)
    return result


def rollback(router: Router, recorder: TrafficRecorder, reason: str, say: Callable[[str], None]) -> Split | str:
    """100 % to blue at once; returns the split serving after it (or a description when unknown)."""
    try:
        before = router.current()
    except Exception:
        before = None
    try:
        after = router.set_split(Split(blue=100, green=0))
    except Exception as err:
        try:
            seen: Split | str = router.current()
        except Exception as read_err:
            seen = f"unknown ({read_err})"
        recorder.event("rollback-failed", {"reason": reason, "error": str(err), "serving": str(seen)})
        recorder.switched(False)
        say(f"ROLLBACK FAILED: {err}; {router.describe()} serves {seen}")
        raise TrafficError(
            f"{reason}; the rollback to blue failed too ({err}): {router.describe()} serves {seen}; "
            "contract stays refused"
        ) from None
    recorder.shifted(before or after, after, f"rollback: {reason}")
    recorder.switched(False)
    say(f"rolled back: {router.describe()} serves {after}")
    return after


def switch_to_blue(
    router: Router,
    steps: list[int],
    interval: float,
    recorder: TrafficRecorder,
    say: Callable[[str], None] = lambda line: None,
    sleep: Callable[[float], None] = time.sleep,
) -> SwitchResult:
    """Move traffic back to blue through ``steps`` (blue's percent); no gates: blue is the version
    known to work. The release is no longer switched from the first move."""
    current = router.current()
    result = SwitchResult(final=current)
    recorder.switched(False)
    for percent in steps:
        if percent <= current.blue:
            continue
        after = router.set_split(Split(blue=percent, green=100 - percent))
        recorder.shifted(current, after, f"back to blue, step {percent}%")
        say(f"{router.describe()}: now serving {after}")
        current = after
        result.steps.append(after)
        if percent < 100 and interval > 0:
            sleep(interval)
    result.final = current
    return result
