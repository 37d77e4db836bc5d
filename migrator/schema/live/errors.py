"""The live schema loader's errors: one masked line each, the driver's exception replaced by its masked text.

Also the lazy driver import, whose failure names the extra to install.
"""

from __future__ import annotations

import re
from typing import Any

from ...dsn import Dsn

EXTRA = "live"


class LiveSchemaError(Exception):
    """The live schema could not be read. ``str()`` is one line with every secret masked.

    ``kind``: ``dsn`` | ``driver`` (not installed) | ``connect`` | ``auth`` | ``database``
    (unknown database or schema) | ``timeout`` | ``query``.
    """

    def __init__(self, message: str, *, kind: str = "query", dsn: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.dsn = dsn  # masked


class DriverError(Exception):
    """Stands in for the driver's exception in the ``__cause__`` chain: its masked text only."""


def one_line(err: BaseException) -> str:
    text = "; ".join(part.strip() for part in str(err).splitlines() if part.strip())
    text = re.sub(r"\s+", " ", text)
    return text or type(err).__name__


def masked_error(dsn: Dsn, kind: str, message: str, err: BaseException | None = None) -> LiveSchemaError:
    """A :class:`LiveSchemaError` whose cause is the masked text of ``err`` (never ``err`` itself)."""
    exc = LiveSchemaError(dsn.scrub(message), kind=kind, dsn=dsn.masked)
    if err is not None:
        cause = DriverError(f"{type(err).__module__}.{type(err).__qualname__}: {dsn.scrub(one_line(err))}")
        exc.__cause__ = cause
    exc.__suppress_context__ = True
    return exc


def import_driver(dsn: Dsn, module: str, package: str, what: str) -> Any:
    """The driver module, imported lazily; a :class:`LiveSchemaError` naming the extra when missing."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        pass
    raise masked_error(
        dsn,
        "driver",
        f"reading a live {what} schema needs the {package} driver, which is not installed: "
        f"pip install 'bgmigrate[{EXTRA}]'",
    )
