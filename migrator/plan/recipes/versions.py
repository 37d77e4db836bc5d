"""What the target server's version supports: PostgreSQL syntax by release, MySQL and MariaDB
online-DDL features (MariaDB reports 10.x / 11.x under the ``mysql`` dialect)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .base import RecipeContext

Version = tuple[int, int, int]


def at_least(ctx: RecipeContext, major: int, minor: int = 0) -> bool:
    return ctx.version[:2] >= (major, minor)


# ---- PostgreSQL ------------------------------------------------------------------------------------


def pg_execute_function(version: Version) -> str:
    return "EXECUTE FUNCTION" if version >= (11, 0, 0) else "EXECUTE PROCEDURE"


# ---- MySQL / MariaDB --------------------------------------------------------------------------------


def is_mariadb(version: Version) -> bool:
    """A MariaDB version number (10.x, 11.x) under the MySQL dialect."""
    return version[0] >= 10  # MySQL went 5.7 -> 8.0 -> 8.4 -> 9.x; MariaDB 10.x and 11.x


def mysql_instant_add(version: Version) -> bool:
    """ADD COLUMN (last) with ALGORITHM=INSTANT: MySQL 8.0.12, MariaDB 10.3.2."""
    return version >= (10, 3, 2) if is_mariadb(version) else version >= (8, 0, 12)


def mysql_instant_add_at(version: Version, positioned: bool) -> bool:
    """ADD COLUMN with ALGORITHM=INSTANT, ``positioned`` (FIRST / AFTER) or last: MySQL 8.0.29 /
    8.0.12, MariaDB 10.4 / 10.3.

    Last-column adds are decided by major.minor here (MariaDB 10.3.0 counts), not by the 10.3.2 of
    :func:`mysql_instant_add`: the two were written separately and are kept as they were."""
    if is_mariadb(version):
        return version >= (10, 4, 0) or (version >= (10, 3, 0) and not positioned)
    return version >= (8, 0, 29) or (version >= (8, 0, 12) and not positioned)


def mysql_instant_drop(version: Version) -> bool:
    """DROP COLUMN with ALGORITHM=INSTANT: MySQL 8.0.29, MariaDB 10.4."""
    return version >= (10, 4, 0) if is_mariadb(version) else version >= (8, 0, 29)


def mysql_rename_column(version: Version) -> bool:
    """ALTER TABLE ... RENAME COLUMN: MySQL 8.0, MariaDB 10.5.2."""
    return version >= (10, 5, 2) if is_mariadb(version) else version >= (8, 0, 0)
