"""Durations as written in plans, options and configuration: ``2s``, ``500ms``, ``1.5s``, ``2min``, ``1h``."""

from __future__ import annotations

import math
import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|min|m|h)?\s*$", re.IGNORECASE)
_FACTOR = {"ms": 0.001, "s": 1.0, "sec": 1.0, "min": 60.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str | float | int | None, *, what: str = "duration") -> float | None:
    """Seconds; ``None`` for ``None``/empty; a bare number is seconds. ValueError names ``what``."""
    if text is None:
        return None
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        if not math.isfinite(text):
            raise ValueError(f"{what} must be a finite number of seconds, not {text}")
        if text < 0:
            raise ValueError(f"{what} must not be negative: {text}")
        return float(text)
    if not isinstance(text, str):  # a list, a table, true/false from a configuration file or a plan
        raise ValueError(f"{what} must be a duration such as 2s, 500ms or 2min, not {text!r}")
    if not text.strip():
        return None
    m = _DURATION.match(text)
    if not m:
        raise ValueError(f"{what} {text!r} is not a duration (e.g. 2s, 500ms, 1.5s, 2min)")
    return float(m.group(1)) * _FACTOR[(m.group(2) or "s").lower()]


def format_duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min"
