"""Error text: one-line messages, the name and first line of an exception, the line of a revision
file in a traceback."""

from __future__ import annotations

import os
from typing import Any


def _one_line(text: str, limit: int = 240) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _error_text(err: BaseException) -> str:
    name = type(err).__name__
    if name == "NoInspectionAvailable":
        return "reflection (sqlalchemy.inspect, autoload_with) needs a database connection"
    text = str(err).strip().split("\n", 1)[0] if str(err).strip() else ""
    return _one_line(f"{name}: {text}" if text else name)


def _tb_line(tb: Any, filename: str, resolve: bool = False) -> int | None:
    """The line of the innermost traceback frame in ``filename``."""
    line = None
    real = os.path.realpath(filename) if resolve else filename
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if name == filename or (resolve and not name.startswith("<") and os.path.realpath(name) == real):
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
