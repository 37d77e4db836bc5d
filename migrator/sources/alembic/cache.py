"""Cache keys of rendered revisions: the file's content, the dialect and the toolchain (the Alembic
and SQLAlchemy versions, read without importing them, and :data:`RENDER_VERSION`)."""

from __future__ import annotations

import hashlib
import re
import sys

RENDER_VERSION = "1"  # bump whenever the rendered text of an unchanged revision would change
CACHE_KIND = "alembic"
_VERSION_ATTR = re.compile(r"""^__version__\s*(?::[^=\n]*)?=\s*["']([^"']+)["']""", re.MULTILINE)


def _package_version(name: str) -> str:
    """A package's ``__version__`` read from its ``__init__.py`` without importing it."""
    module = sys.modules.get(name)
    if module is not None and isinstance(getattr(module, "__version__", None), str):
        return module.__version__
    import importlib.util

    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return "missing"
    if spec is None or not spec.origin:
        return "missing"
    try:
        with open(spec.origin, encoding="utf-8") as fh:
            m = _VERSION_ATTR.search(fh.read())
    except OSError:
        return "unknown"
    return m.group(1) if m else "unknown"


def _cache_key(data: bytes, dialect: str, toolchain: str) -> str:
    h = hashlib.sha256(data)
    h.update(f"\0{dialect}\0{toolchain}".encode())
    return h.hexdigest()
