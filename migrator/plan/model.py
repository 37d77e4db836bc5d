"""The phase plan: ordered steps in stages, with gates between them, sealed by a hash.

Stages run in this order; the three in the middle are gates (a deploy or traffic event the
pipeline waits for, no SQL)::

    expand -> migrate -> [deploy-green] -> [switch] -> [decommission-blue] -> contract

``plan.json`` carries ``"version": 1`` and a sha256 over its canonical content (every field but
the hash itself, keys sorted, no whitespace). Whatever executes a plan recomputes the hash and
refuses a plan that was edited, and compares the table shapes it expects (``expects``, hashed as
``schema_fingerprint``) with the database before its first step.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

PLAN_VERSION = 1
STAGES = ("expand", "migrate", "deploy-green", "switch", "decommission-blue", "contract")
GATES = ("deploy-green", "switch", "decommission-blue")
GATE_TEXT = {
    "deploy-green": "Deploy green (the new version) beside blue. Both now read and write the database.",
    "switch": "Shift traffic from blue to green (health-gated).",
    "decommission-blue": "Stop blue. Nothing old reads or writes the database any more.",
}


class PlanError(Exception):
    """The release cannot be planned safely: one clear message, exit code 2."""


@dataclass
class Backfill:
    """A batched data change: ``UPDATE table SET assignments WHERE condition`` over key ranges."""

    table: str
    key: str  # the column batches are cut on (primary key or unique NOT NULL)
    assignments: str  # e.g. "email_address = email"
    condition: str  # rows still to do, e.g. "email_address IS DISTINCT FROM email"
    batch_size: int = 1000

    def batch_sql(self) -> str:
        """The statement one batch runs; ``%(lo)s`` / ``%(hi)s`` are the first and last key of the
        batch (both included), found by the runner in key order (keyset pagination)."""
        return (
            f"UPDATE {self.table} SET {self.assignments} "
            f"WHERE {self.key} >= %(lo)s AND {self.key} <= %(hi)s AND ({self.condition})"
        )


@dataclass
class Step:
    id: str
    stage: str
    origin: str  # file:line (revision) of the statement the step comes from; "" for gates
    sql: str
    phase: str
    reason: str
    lock: str | None = None
    rewrite: str = "none"  # none | scan | rewrite
    transactional: bool = True  # False: CONCURRENTLY, MySQL DDL (implicit commit)
    lock_timeout: str | None = None
    statement_timeout: str | None = None
    abort: str | None = None  # SQL that undoes the step while blue is still live
    table: str | None = None
    recipe: str | None = None
    backfill: Backfill | None = None
    rows_estimate: int | None = None
    size_bytes: int | None = None
    duration: str | None = None  # instant | proportional (to the table's size)
    batches: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def is_gate(self) -> bool:
        return self.stage in GATES


@dataclass
class Plan:
    dialect: str
    target_version: str
    sources: list[str]
    since: str | None
    schema_fingerprint: str
    steps: list[Step]
    tool_version: str
    # the shape of every existing table the steps touch: {table: [[column, type, nullable], ...]}
    expects: dict[str, list[list[Any]]] = field(default_factory=dict)
    # a release made of Alembic revisions: what the runner stamps in the version table (None for SQL
    # files, and then absent from plan.json). {"version_table", "version_table_schema", "revisions"
    # (the release's, in apply order), "from" (the revisions it starts from), "heads" (stamped when
    # contract completes), "expand" (expand/contract branch projects: {"revisions", "from", "heads"}
    # of the expand side, stamped when expand completes; else None)}; see migrator/run/alembic_stamp.py
    alembic: dict[str, Any] | None = None
    version: int = PLAN_VERSION
    sha256: str = ""

    def canonical(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("sha256")
        if data.get("alembic") is None:  # plans of SQL files stay what they were (and hash the same)
            data.pop("alembic", None)
        return data

    def seal(self) -> Plan:
        self.sha256 = _digest(self.canonical())
        return self

    def to_json(self) -> str:
        data = self.canonical()
        data["sha256"] = self.sha256 or _digest(data)
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Plan:
        """Read a plan and verify its hash; any problem is a PlanError."""
        try:
            data = json.loads(text)
        except ValueError as err:
            raise PlanError(f"not a plan file (invalid JSON: {err})") from None
        if not isinstance(data, dict) or data.get("version") != PLAN_VERSION:
            raise PlanError(f"not a version {PLAN_VERSION} bgmigrate plan")
        claimed = data.pop("sha256", None)
        if claimed != _digest(data):
            raise PlanError("the plan's sha256 does not match its content: it was edited after it was made")
        _check_shape(data)
        try:
            steps = [
                Step(**{**s, "backfill": Backfill(**s["backfill"]) if s.get("backfill") else None})
                for s in data.pop("steps")
            ]
            return cls(steps=steps, sha256=claimed, **data)
        except (TypeError, KeyError) as err:
            raise PlanError(f"malformed plan: {err}") from None


_TOP = {
    "dialect": str, "target_version": str, "sources": list, "since": (str, type(None)), "schema_fingerprint": str,
    "steps": list, "tool_version": str, "expects": dict, "alembic": (dict, type(None)), "version": int,
}  # fmt: skip
_STEP = {
    "id": str, "stage": str, "origin": str, "sql": str, "phase": str, "reason": str, "lock": (str, type(None)),
    "rewrite": str, "transactional": bool, "lock_timeout": (str, type(None)), "statement_timeout": (str, type(None)),
    "abort": (str, type(None)), "table": (str, type(None)), "recipe": (str, type(None)),
    "backfill": (dict, type(None)), "rows_estimate": (int, type(None)), "size_bytes": (int, type(None)),
    "duration": (str, type(None)), "batches": (int, type(None)), "notes": list,
}  # fmt: skip
_BACKFILL = {"table": str, "key": str, "assignments": str, "condition": str, "batch_size": int}


def _check_fields(where: str, data: Any, types: dict[str, Any], required: set[str]) -> None:
    if not isinstance(data, dict):
        raise PlanError(f"malformed plan: {where} must be an object")
    missing = sorted(required - data.keys())
    if missing:
        raise PlanError(f"malformed plan: {where} has no {', '.join(missing)}")
    for key, value in data.items():
        expected = types.get(key)
        if expected is None:
            raise PlanError(f"malformed plan: {where} has an unknown field {key!r}")
        allowed = expected if isinstance(expected, tuple) else (expected,)
        if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
            raise PlanError(f"malformed plan: {where}.{key} has the wrong type ({type(value).__name__})")


def _check_shape(data: dict[str, Any]) -> None:
    """A plan whose hash verifies but whose content is not what ``bgmigrate plan`` writes (made by hand
    or by another tool) is refused here, with the field named, rather than failing later in the runner."""
    from ..run.durations import parse_duration

    _check_fields("the plan", data, _TOP, {"dialect", "target_version", "sources", "schema_fingerprint", "steps"})
    if data["dialect"] not in ("postgres", "mysql"):
        raise PlanError(f"malformed plan: unknown dialect {data['dialect']!r}")
    if not all(isinstance(s, str) for s in data["sources"]):
        raise PlanError("malformed plan: sources must be file names or revisions")
    for table, columns in data.get("expects", {}).items():
        if not isinstance(columns, list) or not all(
            isinstance(c, list) and len(c) == 3 and isinstance(c[0], str) and isinstance(c[1], (str, type(None)))
            and isinstance(c[2], bool)
            for c in columns
        ):  # fmt: skip
            raise PlanError(f"malformed plan: expects[{table!r}] must list [column, type, nullable] entries")
    seen: set[str] = set()
    for index, step in enumerate(data["steps"]):
        where = f"steps[{index}]"
        _check_fields(where, step, _STEP, {"id", "stage", "origin", "sql", "phase", "reason"})
        if not step["id"] or step["id"] in seen:
            raise PlanError(f"malformed plan: {where} has an empty or repeated id {step['id']!r}")
        seen.add(step["id"])
        if step["stage"] not in STAGES:
            raise PlanError(f"malformed plan: {where}.stage {step['stage']!r} is not one of {', '.join(STAGES)}")
        for key in ("lock_timeout", "statement_timeout"):
            try:
                parse_duration(step.get(key), what=f"{where}.{key}")
            except ValueError as err:
                raise PlanError(f"malformed plan: {err}") from None
        if not all(isinstance(n, str) for n in step.get("notes", [])):
            raise PlanError(f"malformed plan: {where}.notes must be text")
        if step.get("backfill") is not None:
            _check_fields(f"{where}.backfill", step["backfill"], _BACKFILL, set(_BACKFILL))
            if step["backfill"]["batch_size"] < 1:
                raise PlanError(f"malformed plan: {where}.backfill.batch_size must be at least 1")


def _digest(data: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
