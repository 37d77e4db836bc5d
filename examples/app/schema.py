"""The ``customers`` table as each version of the shop sees it (SQLAlchemy Core).

Blue (v1) knows ``email`` and ``nickname``. Green (v2) knows ``email_address`` (the rename),
``plan`` (a new required column, ``NOT NULL DEFAULT 'free'``) and lists customers of one plan,
newest first, through the index ``customers_plan_created_at_idx (plan, created_at)``; it no longer
knows ``nickname``. Each version only ever names its own columns (never ``SELECT *``), which is
what lets both run against the expanded schema at the same time.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, MetaData, Table, Text

VERSIONS = ("blue", "green")
PLANS = ("free", "pro", "enterprise")


def customers_table(version: str) -> Table:
    metadata = MetaData()
    if version == "blue":
        return Table(
            "customers",
            metadata,
            Column("id", BigInteger, primary_key=True),
            Column("email", Text, nullable=False),
            Column("nickname", Text),
            Column("created_at", DateTime(timezone=True)),
        )
    if version == "green":
        return Table(
            "customers",
            metadata,
            Column("id", BigInteger, primary_key=True),
            Column("email_address", Text, nullable=False),
            Column("plan", Text, nullable=False),
            Column("created_at", DateTime(timezone=True)),
        )
    raise ValueError(f"version must be blue or green, not {version!r}")
