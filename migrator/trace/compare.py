"""The ``trace-mismatch`` cross-check: what the server did against what the rule table says.

The static side is a statement's (or a plan step's) strongest lock on existing tables and its
effect (``none`` / ``scan`` / ``rewrite``), as :mod:`migrator.facts.locks` gives them through the lint
engine or the planner. Only *worse* is reported, since that is what makes the rule table unsafe:

- **lock**: a stronger mode on an existing table (or type) than the static lock. No static lock
  means nothing beyond ACCESS SHARE (a new table's own locks are not compared). ``also`` names
  relations with their own static lock (the partition of ATTACH / DETACH PARTITION, whose lock is
  not the parent's).
- **rewrite**: an existing table got new files with its rows copied, and the static effect is not
  ``rewrite``.
- **scan**: the static effect is ``none``, yet an existing table was read in full or had an index
  rebuilt, while a lock that blocks writes was held on it.

Each mismatch names the relation, both sides and the LockFact row's statement, so the row can be
fixed (see ``tests/integration/test_lock_facts_pg.py`` for how rows are proven).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..facts.locks import ACCESS_SHARE, BLOCKS_WRITES, LOCK_STRENGTH
from .observe import Observation

RULE = "trace-mismatch"
FAILED_RULE = "trace-statement-failed"


@dataclass
class Mismatch:
    kind: str  # lock | rewrite | scan
    message: str
    relations: list[str] = field(default_factory=list)
    static: str | None = None
    observed: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "message": self.message,
            "relations": self.relations,
            "static": self.static,
            "observed": self.observed,
        }


def compare(
    static_lock: str | None, static_rewrite: str, obs: Observation, also: dict[str, str] | None = None
) -> list[Mismatch]:
    """Where the observation is worse than the static classification (empty when it is not)."""
    if obs.status != "ok":
        return []
    out: list[Mismatch] = []
    also = also or {}
    allowed = static_lock or ACCESS_SHARE
    worse: dict[str, list[str]] = {}  # observed mode -> relations where it exceeds what was said
    for lk in obs.table_locks():
        said = also.get(lk.relation, allowed)
        if LOCK_STRENGTH[lk.mode] > LOCK_STRENGTH.get(said, 0):
            worse.setdefault(lk.mode, []).append(lk.relation)
    if worse:
        observed = max(worse, key=LOCK_STRENGTH.__getitem__)
        where = sorted(set(worse[observed]))
        said = static_lock or "no lock beyond ACCESS SHARE"
        if any(r in also for r in where):
            said = ", ".join(f"{also[r]} on {r}" for r in where if r in also) + f" ({said} on the rest)"
        out.append(
            Mismatch(
                "lock",
                f"took {observed} on {', '.join(where)}; the rule table says {said}",
                where,
                static_lock,
                observed,
            )
        )
    if obs.rewritten and static_rewrite != "rewrite":
        out.append(
            Mismatch(
                "rewrite",
                f"rewrote {', '.join(obs.rewritten)} (new relfilenode, rows copied); the rule table says "
                f"{static_rewrite}",
                list(obs.rewritten),
                static_rewrite,
                "rewrite",
            )
        )
    if static_rewrite == "none":
        rebuilt: dict[str, list[str]] = {}
        for index, table in obs.indexes_rebuilt:
            rebuilt.setdefault(table, []).append(index)
        heavy = sorted(
            t
            for t in set(rebuilt) | set(obs.full_reads)
            if t not in obs.rewritten and (obs.lock_on(t) or "") in BLOCKS_WRITES
        )
        if heavy:
            parts = []
            for t in heavy:
                why = []
                if t in obs.full_reads:
                    why.append(f"read all {obs.rows_read.get(t, 0)} rows")
                if t in rebuilt:
                    why.append(f"rebuilt {', '.join(sorted(rebuilt[t]))}")
                parts.append(f"{t} ({'; '.join(why)}) under {obs.lock_on(t)}")
            out.append(Mismatch("scan", f"scanned {', '.join(parts)}; the rule table says none", heavy, "none", "scan"))
    return out
