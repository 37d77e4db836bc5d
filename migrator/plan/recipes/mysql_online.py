"""The clauses that keep MySQL / MariaDB DDL online: the server refuses the statement rather than
fall back to a table copy that blocks writes."""

from __future__ import annotations

_INPLACE = "ALGORITHM=INPLACE, LOCK=NONE"


def mysql_online_clause(instant: bool) -> str:
    """The clause that makes MySQL refuse rather than block writes: INSTANT when the operation
    supports it on this version, else INPLACE without a lock (INSTANT accepts no LOCK clause)."""
    return "ALGORITHM=INSTANT" if instant else _INPLACE


def mysql_online(sql: str, alter: bool = True) -> str:
    """A MySQL DDL statement that must not fall back to a blocking table copy (``alter=False``: the
    option form of ``CREATE INDEX``, without commas)."""
    clause = f", {_INPLACE}" if alter else " ALGORITHM=INPLACE LOCK=NONE"
    return f"{sql}{clause};"


def mysql_drop_index(table: str, index: str) -> str:
    """``ALTER TABLE … DROP INDEX`` (MariaDB's ``DROP INDEX … ON`` takes no ALGORITHM clause)."""
    return mysql_online(f"ALTER TABLE {table} DROP INDEX {index}")
