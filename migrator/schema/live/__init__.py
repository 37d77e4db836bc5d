"""The current schema read from a live database, for projects whose early history is lost.

:func:`load_live_schema` connects to PostgreSQL (psycopg 3) or MySQL/MariaDB (PyMySQL), reads the
catalog in one read-only transaction under a statement timeout, and returns a :class:`Schema` in the
same shape the history replay builds: names qualified the way the normalizer qualifies them
(``schema.table``, PostgreSQL's ``public`` left out; MySQL tables of the connection's database
unqualified), column types rendered as the normalizer renders them (so :func:`compare_types` reads
both sides alike), CHECK expressions as PostgreSQL prints them (``(col IS NOT NULL)``, which
:meth:`Table.proves_not_null` reads). Everything loaded exists already: ``created_in`` is ``None``
(blue uses it). Row estimates and sizes are kept on each table for the planner.

No message from here ever holds the connection string's password: errors are
:class:`LiveSchemaError` with one masked line, and the driver's exception is replaced, in the
``__cause__`` chain, by a :class:`DriverError` holding its masked text.

The drivers are optional: ``pip install 'bgmigrate[live]'``.
"""

from __future__ import annotations

from ...dsn import DsnError, parse_dsn
from ..model import Schema
from .errors import DriverError, LiveSchemaError
from .mysql import MySqlLoader
from .mysql import _mysql_default as _mysql_default  # re-exported: its tests import it from here
from .postgres import PostgresLoader
from .rendering import canonical_type

__all__ = ["DriverError", "LiveSchemaError", "canonical_type", "load_live_schema"]


def load_live_schema(dsn: str, *, schemas: list[str] | None = None, timeout_s: float = 10) -> Schema:
    """The schema of the database ``dsn`` points at.

    ``schemas``: PostgreSQL schemas to read (default: every non-system schema); for MySQL, the
    databases to read (default: the DSN's database). ``timeout_s`` bounds the connection and each
    catalog query.
    """
    problem: str | None = None
    try:
        parsed = parse_dsn(dsn)
    except DsnError as err:  # its message never holds the password
        problem = f"invalid connection string: {err}"
    if problem is not None:  # raised outside the handler: no __context__ to carry the original around
        raise LiveSchemaError(problem, kind="dsn")
    if timeout_s <= 0:
        raise LiveSchemaError("timeout must be positive", kind="dsn", dsn=parsed.masked)
    if parsed.dialect == "postgres":
        return PostgresLoader(parsed, schemas, timeout_s).load()
    return MySqlLoader(parsed, schemas, timeout_s).load()
