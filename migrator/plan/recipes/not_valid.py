"""What the recipes that add a constraint ``NOT VALID`` and ``VALIDATE`` it later share (add_check,
add_foreign_key): the constraint's action read back from the statement, with a name the later
steps can use, and the ``VALIDATE`` step."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .base import Part
from .names import quote_ident
from .sqltext import NAME, alter_action, statement_text

if TYPE_CHECKING:
    from ...sql.changes import Change
    from .base import RecipeContext

_UNNAMED = re.compile(r"^ADD\s+(?=CHECK\b|FOREIGN\s+KEY\b)", re.I)
_NAMED = re.compile(rf"^ADD\s+CONSTRAINT\s+({NAME})\s+", re.I)


def named_action(change: Change, ctx: RecipeContext, default_name: str) -> tuple[str, str, str] | None:
    """``(table as written, action with a CONSTRAINT name, name as SQL)`` of the constraint's action.

    An unnamed constraint gets ``default_name``: later steps (VALIDATE, abort) must name it."""
    text = statement_text(change)
    if text is None:
        return None
    found = alter_action(change, text, ctx.dialect)
    if found is None:
        return None
    written, action = found
    named = _NAMED.match(action)
    if named:
        return written, action, named.group(1)
    if not _UNNAMED.match(action):
        return None
    name = quote_ident(change.get("constraint") or default_name, ctx.dialect)
    return written, _UNNAMED.sub(f"ADD CONSTRAINT {name} ", action, count=1), name


def validate_part(table: str, name: str, what: str) -> Part:
    return Part(
        f"ALTER TABLE {table} VALIDATE CONSTRAINT {name};",
        f"checks the rows that existed before the NOT VALID add, in its own transaction under SHARE UPDATE "
        f"EXCLUSIVE (reads and writes go on); after the release's data changes, so rows it fixes count; fails, "
        f"changing nothing, if a row breaks the {what}",
    )
