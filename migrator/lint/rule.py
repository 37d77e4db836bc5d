"""The rule API: what a file in ``rules/`` declares and what its check sees.

A rule file defines one module-level ``RULE = Rule(...)`` and decorates one
check function with ``@RULE.check``. The check receives a :class:`Context`
and returns ``None``/``False`` (no finding), ``True`` (finding with the
rule's message), a ``str`` (finding with that message) or a :class:`Hit`.

Scopes:

- ``change`` (default): called for each change whose op is in ``ops``
  (all changes when ``ops`` is empty).
- ``statement``: called once per statement, ``ctx.change`` is its first change.
- ``file``: called once per file after its last statement with ``ctx.change``
  ``None``; return a list of ``(statement, Hit | str | True)`` pairs.

The rule's ``bad`` examples must each produce at least one finding of the
rule and its ``good`` examples none; ``tests/unit/test_rule_examples.py``
runs them, and ``bgmigrate rules`` prints them as documentation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..facts.locks import LockFact
    from ..schema.model import Schema, Table
    from ..sql.changes import Change
    from ..sql.statement import Statement
    from ..sql.types import TypeChange
    from .engine import TransactionState

SEVERITIES = ("error", "warning")


@dataclass(frozen=True, slots=True)
class Example:
    """SQL that shows the rule. ``setup`` runs first as an earlier migration file (history)."""

    sql: str
    setup: str | None = None
    dialect: str | None = None
    version: str | None = None
    note: str = ""
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Hit:
    """A finding from a check. ``fields`` fill the rule's ``{placeholders}`` (values are not
    re-interpreted, so SQL with braces is safe there); ``message``/``fix`` replace the rule's."""

    message: str | None = None
    fix: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Rule:
    id: str
    name: str
    severity: str
    message: str
    why: str
    fix: str
    dialects: tuple[str, ...] = ("postgres",)
    ops: tuple[str, ...] = ()
    scope: str = "change"
    category: str = "lock"  # lock | compat | transaction | syntax | design | suppression
    versions: dict[str, str] = field(default_factory=dict)  # dialect -> ">=12" / "<11" / ">=8.0.29"
    bad: list[Example] = field(default_factory=list)
    good: list[Example] = field(default_factory=list)
    squawk: tuple[str, ...] = ()  # squawk rule ids that cover the same hazard
    existing_tables_only: bool = True  # never fire on a table created in the unit under review
    notes: str = ""
    func: Callable[[Context], Any] | None = None
    path: str = ""

    def check(self, func: Callable[[Context], Any]) -> Callable[[Context], Any]:
        self.func = func
        return func

    def applies_to(self, dialect: str, version: tuple[int, int, int]) -> bool:
        if dialect not in self.dialects:
            return False
        spec = self.versions.get(dialect)
        if not spec:
            return True
        return all(_version_matches(part.strip(), version) for part in spec.split(","))


def parse_version(text: str | None, missing: int = 0) -> tuple[int, int, int]:
    """``"8.0.29"`` -> ``(8, 0, 29)``. Missing parts become ``missing``: 0 for bounds in rule and
    fact tables; a target version uses a large value instead, because "15" or "8.0" means the
    current release of that line (15.x, 8.0.x), not its first one."""
    parts = [int(p) for p in str(text).split(".") if p.strip().isdigit()][:3] if text else []
    while len(parts) < 3:
        parts.append(missing)
    return (parts[0], parts[1], parts[2])


def _version_matches(spec: str, version: tuple[int, int, int]) -> bool:
    for op in (">=", "<=", "==", ">", "<"):
        if spec.startswith(op):
            other = parse_version(spec[len(op) :])
            return {
                ">=": version >= other,
                "<=": version <= other,
                "==": version == other,
                ">": version > other,
                "<": version < other,
            }[op]
    return version == parse_version(spec)


@dataclass(slots=True)
class Context:
    """What a check sees. ``schema`` is the state *before* the current statement."""

    dialect: str
    version: tuple[int, int, int]
    unit: str
    schema: Schema
    statement: Statement | None
    statements: list[Statement]
    change: Change | None
    phase: str = "neutral"  # phase of the change
    statement_phase: str = "neutral"
    reason: str = ""
    lock: LockFact | None = None
    type_change: TypeChange | None = None
    new_object: bool = False
    tx: TransactionState | None = None
    lock_timeout: bool = False
    statement_timeout: bool = False
    settings: Any = None
    classified: list[Any] = field(default_factory=list)  # [(Change, Classified)] of the statement
    source: Any = None  # the SourceFile: Alembic revision id and branches

    # ---- helpers for checks ----------------------------------------------------------------------
    def version_at_least(self, *parts: int) -> bool:
        want = (*parts, 0, 0, 0)[:3]
        return self.version >= want

    def table(self, name: str | None = None) -> Table | None:
        return self.schema.table(name if name is not None else (self.change.table if self.change else None))

    def table_is_new(self, name: str | None = None) -> bool:
        target = name if name is not None else (self.change.table if self.change else None)
        return self.schema.is_new(target, self.unit)

    def column_is_new(self, table: str | None = None, column: str | None = None) -> bool:
        ch = self.change
        return self.schema.column_is_new(
            table if table is not None else (ch.table if ch else None),
            column if column is not None else (ch.column if ch else None),
            self.unit,
        )

    def defined_columns(self) -> list[tuple[str | None, str | None]]:
        """(column, type text) the change defines: CREATE TABLE columns, ADD COLUMN, a new column type.
        Temporary tables are throwaway and define nothing."""
        ch = self.change
        if ch is None:
            return []
        if ch.op == "create_table":
            if ch.get("temporary"):
                return []
            return [(name, facts.get("type")) for name, facts in (ch.get("columns") or {}).items()]
        return [(ch.column, ch.get("type"))]

    @property
    def in_transaction(self) -> bool:
        return bool(self.tx and self.tx.active)

    @property
    def lock_mode(self) -> str | None:
        return self.lock.lock if self.lock else None

    @property
    def effect(self) -> str:
        return self.lock.effect if self.lock else "none"
