"""Traffic on any other platform through shell commands (kind ``command``).

Options (``[tool.bgmigrate.traffic]``):

- ``get``: prints the current split: a green percent (``10``, ``10.0``, ``10%``) or JSON ``{"blue": n,
  "green": m}`` (proportional weights, read as whole percents like the gateway router's: a side with weight
  > 0 is never shown as 0%). The whole output is tried first, then its last non-empty line (so progress
  chatter above the answer is fine).
- ``set``: applies a split. Placeholders ``{blue}`` / ``{green}`` (percents), ``{target}``, ``{blue_name}``,
  ``{green_name}`` (shell-quoted); only these exact placeholders are replaced, so ``awk '{print $1}'`` or
  JSON braces in the command stay as written, and ``${blue}`` stays a shell variable. The same values are in
  the environment: ``BGMIGRATE_BLUE_PERCENT``, ``BGMIGRATE_GREEN_PERCENT``, ``BGMIGRATE_TARGET``,
  ``BGMIGRATE_BLUE``, ``BGMIGRATE_GREEN``.
- ``health`` (optional): run once per side with ``{side}`` / ``{name}`` and ``BGMIGRATE_SIDE`` /
  ``BGMIGRATE_SIDE_NAME``; exit 0 is healthy. ``health_blue`` / ``health_green`` override it per side.
- ``shell`` (``/bin/sh``), ``cwd``, ``settle_s`` (0: after ``set``, ``get`` must read the new split at once;
  > 0: poll ``get`` up to that long, every ``poll_interval_s``, default 1).

Each command runs with ``config.timeout_s`` as its time limit, in its own process group (a timeout kills the
whole group, not just the shell). A non-zero exit, a timeout or output that does not parse is a
``TrafficError`` naming the command with the last line of its stderr (or stdout). A failed ``set`` or a
``get`` that reads back another split leaves traffic where the commands left it (a command router cannot
know how to undo a half-applied command); the error says what ``get`` reads.
"""

from __future__ import annotations

import json
import math
import os
import re
import shlex
import signal
import subprocess
import time
from dataclasses import dataclass

from ..dsn import command_env, mask_secrets
from .router import Router, RouterConfig, SideHealth, Split, TrafficError

_PLACEHOLDER = re.compile(r"(?<!\$)\{(blue|green|target|blue_name|green_name|side|name)\}")
_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%?\s*$")
MAX_SHOWN = 160


@dataclass(frozen=True)
class _Result:
    returncode: int
    stdout: str
    stderr: str


def _shown(command: str) -> str:
    """The command as messages show it: one line, secrets masked, shortened."""
    text = mask_secrets(" ".join(command.split()))
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 1] + "…"


def _last_line(*texts: str) -> str:
    for text in texts:
        lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
        if lines:
            return mask_secrets(lines[-1])[:300]
    return ""


def parse_split(output: str) -> Split:
    """A green percent or JSON ``{"blue": n, "green": m}``; ValueError with the reason otherwise."""
    from .gateway import to_split

    text = output.strip()
    if not text:
        raise ValueError("it printed nothing")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for candidate in dict.fromkeys([text, lines[-1]]):
        if candidate.startswith("{"):
            try:
                data = json.loads(candidate)
            except ValueError:
                continue
            if not isinstance(data, dict) or not {"blue", "green"} <= data.keys():
                raise ValueError('its JSON has no "blue" and "green" members')
            weights = []
            for side in ("blue", "green"):
                value = data[side]
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                    raise ValueError(f"{side} is not a number: {value!r}")
                if value < 0:
                    raise ValueError(f"{side} is negative: {value!r}")
                weights.append(value)
            blue, green = weights
            if blue + green <= 0:
                raise ValueError("blue and green sum to 0")
            if isinstance(blue, int) and isinstance(green, int):
                return to_split(blue, green)
            scale = 10**6  # float weights: proportional, to whole percents like integer ones
            return to_split(round(blue * scale), round(green * scale))
        m = _PERCENT.match(candidate)
        if m:
            value = float(m.group(1))
            if value > 100:
                raise ValueError(f"green percent {m.group(1)} is over 100")
            if value != int(value):
                raise ValueError(f"green percent {m.group(1)} is not a whole percent")
            return Split.green_percent(int(value))
    raise ValueError(f"expected a green percent or JSON {{blue, green}}, got {_last_line(text)!r}")


class CommandRouter(Router):
    kind = "command"

    def __init__(self, config: RouterConfig) -> None:
        super().__init__(config)
        config.require("get", "set")
        options = config.options
        self.shell = str(options.get("shell") or "/bin/sh")
        self.cwd = options.get("cwd") or None
        self.settle_s = float(options.get("settle_s", 0))
        self.poll_interval_s = float(options.get("poll_interval_s", 1.0))

    def describe(self) -> str:
        return f"command router for {self.config.target}" if self.config.target else "command router"

    # ---- running commands --------------------------------------------------------------------------

    def _values(self, extra: dict[str, str]) -> dict[str, str]:
        values = {
            "target": self.config.target or "",
            "blue_name": self.config.blue or "",
            "green_name": self.config.green or "",
        }
        values.update(extra)
        return values

    def _render(self, template: str, values: dict[str, str]) -> str:
        def sub(m: re.Match[str]) -> str:
            key = m.group(1)
            if key not in values:
                return m.group(0)
            value = values[key]
            return value if value.isdigit() else shlex.quote(value)

        return _PLACEHOLDER.sub(sub, template)

    def _run(self, which: str, template: str, extra: dict[str, str]) -> _Result:
        values = self._values(extra)
        command = self._render(template, values)
        env = command_env()
        env.update(
            {
                "BGMIGRATE_TARGET": values["target"],
                "BGMIGRATE_BLUE": values["blue_name"],
                "BGMIGRATE_GREEN": values["green_name"],
            }
        )
        for key, var in (
            ("blue", "BGMIGRATE_BLUE_PERCENT"),
            ("green", "BGMIGRATE_GREEN_PERCENT"),
            ("side", "BGMIGRATE_SIDE"),
            ("name", "BGMIGRATE_SIDE_NAME"),
        ):
            if key in values:
                env[var] = values[key]
        timeout = float(self.config.timeout_s)
        try:
            proc = subprocess.Popen(
                [self.shell, "-c", command],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                errors="replace",
                env=env,
                cwd=self.cwd,
                start_new_session=True,  # its own process group: a timeout kills what the shell started too
            )
        except OSError as err:
            raise TrafficError(
                f"{self.describe()}: cannot run the {which} command `{_shown(template)}` with {self.shell}: "
                f"{err.strerror or err}"
            ) from None
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._kill(proc)
            stdout, stderr = proc.communicate()
            raise TrafficError(
                f"{self.describe()}: the {which} command `{_shown(template)}` timed out after {timeout:g} s"
                + (f": {_last_line(stderr, stdout)}" if _last_line(stderr, stdout) else "")
            ) from None
        except BaseException:
            self._kill(proc)
            proc.communicate()
            raise
        return _Result(proc.returncode, stdout or "", stderr or "")

    @staticmethod
    def _kill(proc: subprocess.Popen[str]) -> None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the group we created for this child (start_new_session)
        except (ProcessLookupError, PermissionError):
            proc.kill()

    def _checked(self, which: str, template: str, extra: dict[str, str]) -> _Result:
        result = self._run(which, template, extra)
        if result.returncode != 0:
            status = (
                f"was killed by signal {-result.returncode}"
                if result.returncode < 0
                else f"exited with {result.returncode}"
            )
            last = _last_line(result.stderr, result.stdout)
            raise TrafficError(
                f"{self.describe()}: the {which} command `{_shown(template)}` {status}" + (f": {last}" if last else "")
            )
        return result

    def _option(self, name: str) -> str:
        value = self.config.options.get(name)
        if not isinstance(value, str) or not value.strip():
            raise TrafficError(f"{self.describe()}: option {name} must be a shell command")
        return value

    # ---- Router ------------------------------------------------------------------------------------

    def current(self) -> Split:
        template = self._option("get")
        result = self._checked("get", template, {})
        try:
            return parse_split(result.stdout)
        except ValueError as err:
            raise TrafficError(
                f"{self.describe()}: cannot read the output of the get command `{_shown(template)}`: {err}"
            ) from None
        except TrafficError as err:  # Split's own checks
            raise TrafficError(
                f"{self.describe()}: the get command `{_shown(template)}` printed a bad split: {err}"
            ) from None

    def set_split(self, split: Split) -> Split:
        template = self._option("set")
        self._checked("set", template, {"blue": str(split.blue), "green": str(split.green)})
        deadline = time.monotonic() + max(0.0, self.settle_s)
        while True:
            got = self.current()
            if got == split:
                return got
            if time.monotonic() >= deadline:
                waited = f" within {self.settle_s:g} s" if self.settle_s > 0 else ""
                raise TrafficError(
                    f"{self.describe()}: the set command `{_shown(template)}` succeeded but the get command reads "
                    f"{got}, not {split}{waited}; traffic is left where the commands left it"
                )
            time.sleep(max(0.0, min(self.poll_interval_s, deadline - time.monotonic())))

    def health(self) -> dict[str, SideHealth]:
        out: dict[str, SideHealth] = {}
        for side in ("blue", "green"):
            template = self.config.options.get(f"health_{side}") or self.config.options.get("health")
            if not template:
                continue
            name = getattr(self.config, side) or ""
            try:
                result = self._run(f"{side} health", str(template), {"side": side, "name": name})
            except TrafficError as err:  # timed out or cannot start: not healthy, and say why
                out[side] = SideHealth(side, False, str(err))
                continue
            last = _last_line(result.stderr, result.stdout)
            if result.returncode == 0:
                out[side] = SideHealth(side, True, last)
            else:
                out[side] = SideHealth(side, False, f"exit {result.returncode}" + (f": {last}" if last else ""))
        return out
