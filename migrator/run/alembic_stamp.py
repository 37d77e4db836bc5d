"""Alembic: keep ``alembic_version`` telling the truth about a release the runner applied.

A plan made from Alembic revisions records what to stamp (``Plan.alembic``, filled by the planner):
the release's revisions, the revisions it starts from (``from``: blue's), its heads, and for a
project with ``expand`` / ``contract`` branches (the OpenStack Neutron convention) the same three for
the expand side. Rows are kept the way Alembic keeps them (what ``alembic upgrade`` or ``alembic
stamp`` would leave): one row per applied revision that no applied revision follows through
``down_revision`` or ``depends_on``. A stamp deletes the rows of the revisions it starts from (and of
release revisions no longer heads) and inserts the heads missing; rows of anything else (branches the
release does not touch) are left alone. It is idempotent.

When the version table changes:

- **Split release** (revisions without branch labels): ``alembic_version`` stays at blue's
  revision(s) through expand, the gates and until contract completes; then it is stamped at the
  release's head(s), so ``alembic current`` reports them and ``alembic upgrade heads`` has nothing
  left to do. In between, the schema is a superset of blue's: Alembic still sees blue's revision,
  and a stray ``alembic upgrade`` would try to apply the release (and fail on the objects expand
  created) rather than skip work that has not run.
- **Expand/contract branches**: when expand completes, the expand side (the ``expand`` branch's
  revisions of the release, with the unlabelled release revisions they follow) is stamped, so
  ``alembic current`` shows the expand head next to blue's contract head and ``alembic upgrade
  expand@head`` has nothing to do; when contract completes, everything is stamped. Statements are
  staged by their phase, not by their label: a contract statement on the expand branch (which lint
  reports as ``alembic-branch-discipline``) still waits for contract, after the expand head is
  already stamped. ``abort`` puts the expand side's rows back to the revisions it started from.

Each stamp runs in the transaction that records the stage as complete (PostgreSQL: the table's
creation too), so a crash leaves both or neither; on MySQL the ``CREATE TABLE IF NOT EXISTS`` commits
by itself before it. It holds the runner lock like every step and waits at most ``lock_timeout`` for
the table (PostgreSQL: ``SHARE ROW EXCLUSIVE``, so a concurrent Alembic run cannot interleave;
MySQL: the rows ``FOR UPDATE``), retried on lock timeout or deadlock. Every value is a bound
parameter; only the table and schema names (quoted) are spliced in. The version table is Alembic's
default ``alembic_version`` in the connection's default schema unless the plan says otherwise
(``version_table``/``version_table_schema`` set in ``env.py`` cannot be read without running it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..plan.model import Plan
from .db import Database
from .errors import InputError, StepFailed

DEFAULT_LOCK_TIMEOUT = 2.0  # seconds: the plan's lock_timeout for steps that take a table lock
STATEMENT_TIMEOUT = 30.0  # a few rows
Retry = Callable[[Callable[[], list[str]]], list[str]]  # the runner's lock-timeout retry policy
VERSION_LENGTH = 32  # Alembic's version_num VARCHAR(32): a longer id fails in the database, as with Alembic


@dataclass(frozen=True)
class Stamp:
    """What one stamp does: delete the rows in ``remove`` (that are not in ``heads``), insert ``heads``."""

    remove: frozenset[str]
    heads: tuple[str, ...]


@dataclass(frozen=True)
class AlembicSpec:
    version_table: str
    version_table_schema: str | None
    revisions: tuple[str, ...]
    start: tuple[str, ...]
    heads: tuple[str, ...]
    expand: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]] | None  # revisions, from, heads

    def after_contract(self) -> Stamp:
        removed = set(self.start) | set(self.revisions)
        if self.expand is not None:
            removed |= set(self.expand[1])
        return Stamp(frozenset(removed - set(self.heads)), self.heads)

    def after_expand(self) -> Stamp | None:
        if self.expand is None:
            return None
        revisions, start, heads = self.expand
        return Stamp(frozenset((set(start) | set(revisions)) - set(heads)), heads)

    def after_abort(self) -> Stamp | None:
        """Back to the rows the expand side started from (only when the expand stamp took effect)."""
        if self.expand is None:
            return None
        revisions, start, _ = self.expand
        return Stamp(frozenset(set(revisions) - set(start)), start)


def alembic_spec(plan: Plan) -> AlembicSpec | None:
    """The plan's Alembic stamping, validated; None for a plan of SQL files."""
    data = plan.alembic
    if data is None:
        return None

    def ids(value: Any, what: str) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise InputError(f"the plan's alembic.{what} is not a list of revision ids")
        return tuple(value)

    if not isinstance(data, dict):
        raise InputError("the plan's alembic field is not an object")
    table = data.get("version_table") or "alembic_version"
    schema = data.get("version_table_schema")
    if not isinstance(table, str) or not (schema is None or (isinstance(schema, str) and schema)):
        raise InputError("the plan's alembic.version_table / version_table_schema are not names")
    expand = data.get("expand")
    if expand is not None:
        if not isinstance(expand, dict):
            raise InputError("the plan's alembic.expand is not an object")
        expand = (
            ids(expand.get("revisions"), "expand.revisions"),
            ids(expand.get("from"), "expand.from"),
            ids(expand.get("heads"), "expand.heads"),
        )
    return AlembicSpec(
        table,
        schema,
        ids(data.get("revisions"), "revisions"),
        ids(data.get("from"), "from"),
        ids(data.get("heads"), "heads"),
        expand,
    )


def stamp(
    db: Database,
    plan: Plan,
    stage: str,
    record: Callable[[], None] | None = None,
    *,
    lock_timeout: float | None = None,
    retry: Retry | None = None,
) -> list[str]:
    """The ``alembic_version`` rows of a release at the end of ``stage``, written in one transaction
    with ``record`` (which records the release's new status); the revisions stamped.

    - ``expand``: the expand side of an expand/contract branch project (nothing for a split release);
    - ``contract``: the heads the plan records (nothing for plain SQL releases);
    - ``abort``: the rows expand replaced put back ([] when expand stamped nothing).
    """
    spec = alembic_spec(plan)
    moments = {
        "expand": AlembicSpec.after_expand,
        "contract": AlembicSpec.after_contract,
        "abort": AlembicSpec.after_abort,
    }
    heads = moments[stage](spec) if spec else None
    return _stamp(db, spec, heads, stage, record, lock_timeout, retry)


def quote(db: Database, name: str) -> str:
    q = '"' if db.dialect == "postgres" else "`"
    return q + name.replace(q, q + q) + q


def version_table(db: Database, spec: AlembicSpec) -> str:
    table = quote(db, spec.version_table)
    return f"{quote(db, spec.version_table_schema)}.{table}" if spec.version_table_schema else table


def _stamp(
    db: Database,
    spec: AlembicSpec | None,
    stamp: Stamp | None,
    point: str,
    record: Callable[[], None] | None,
    lock_timeout: float | None,
    retry: Retry | None,
) -> list[str]:
    if spec is None or stamp is None:
        if record is not None:
            record()
        return []

    def attempt() -> list[str]:
        db.set_timeouts(lock_timeout or DEFAULT_LOCK_TIMEOUT, STATEMENT_TIMEOUT)
        if point != "abort" and db.dialect != "postgres":
            _create(db, spec)  # MySQL DDL commits by itself: before the transaction, idempotent
        with db.transaction():
            if point != "abort" and db.dialect == "postgres":
                _create(db, spec)
            done = _write(db, spec, stamp, point)
            if record is not None:
                record()
        return done

    try:
        return retry(attempt) if retry is not None else attempt()
    except Exception as err:
        if not db.is_driver_error(err):
            raise
        raise StepFailed(
            f"alembic_version ({point}): {db.error_kind(err).value}: {db.describe(err)}; the release is not "
            f"recorded as {point}ed yet: rerun to retry (the steps that ran are not run again)"
        ) from None


def _create(db: Database, spec: AlembicSpec) -> None:
    """Alembic's own version table: ``version_num VARCHAR(32) NOT NULL``, primary key ``<table>_pkc``."""
    db.execute(
        f"CREATE TABLE IF NOT EXISTS {version_table(db, spec)} (version_num VARCHAR({VERSION_LENGTH}) NOT NULL, "
        f"CONSTRAINT {quote(db, spec.version_table + '_pkc')} PRIMARY KEY (version_num))"
    )


def _exists(db: Database, spec: AlembicSpec) -> bool:
    if db.dialect == "postgres":
        row = db.query_one("SELECT to_regclass(%s) IS NOT NULL", (version_table(db, spec),))
        return bool(row and row[0])
    row = db.query_one(
        "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = COALESCE(%s, DATABASE()) "
        "AND TABLE_NAME = %s",
        (spec.version_table_schema, spec.version_table),
    )
    return bool(row and row[0])


def _write(db: Database, spec: AlembicSpec, stamp: Stamp, point: str) -> list[str]:
    if point == "abort" and not _exists(db, spec):
        return []
    table = version_table(db, spec)
    if db.dialect == "postgres":  # no other writer (an Alembic run) in between; readers go on
        db.execute(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE")
        rows = {r[0] for r in db.query(f"SELECT version_num FROM {table}")}
    else:
        rows = {r[0] for r in db.query(f"SELECT version_num FROM {table} FOR UPDATE")}
    if point == "abort" and not rows & stamp.remove:
        return []  # expand had not stamped (it stamps with the status): nothing to put back
    for version in sorted((rows & stamp.remove) - set(stamp.heads)):
        db.execute(f"DELETE FROM {table} WHERE version_num = %s", (version,))
    for version in stamp.heads:
        if version not in rows:
            db.execute(f"INSERT INTO {table} (version_num) VALUES (%s)", (version,))
    return list(stamp.heads)
