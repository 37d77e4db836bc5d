"""trace's cross-check when a statement locks two relations differently (ATTACH PARTITION: SHARE UPDATE
EXCLUSIVE on the parent, ACCESS EXCLUSIVE on the partition): each is compared with its own static lock."""

from __future__ import annotations

from migrator.facts.locks import lookup
from migrator.sql.changes import Op
from migrator.trace.compare import compare
from migrator.trace.observe import LockSeen, Observation

AEL, SUEL, SHARE = "ACCESS EXCLUSIVE", "SHARE UPDATE EXCLUSIVE", "SHARE"


def _attach() -> Observation:
    return Observation(
        locks=[LockSeen("pt", "partitioned table", SUEL, True), LockSeen("pt_2", "table", AEL, True)],
        full_reads=["pt_2"],
    )


def test_the_partition_is_compared_with_its_own_lock() -> None:
    assert compare(SUEL, "scan", _attach(), {"pt_2": AEL}) == []


def test_without_the_partition_lock_the_partition_is_a_mismatch() -> None:
    (m,) = compare(SUEL, "scan", _attach())
    assert m.kind == "lock" and m.relations == ["pt_2"]
    assert m.message == "took ACCESS EXCLUSIVE on pt_2; the rule table says SHARE UPDATE EXCLUSIVE"


def test_a_partition_lock_said_too_weak_is_reported_with_it() -> None:
    (m,) = compare(SUEL, "scan", _attach(), {"pt_2": SHARE})
    assert m.message == (
        "took ACCESS EXCLUSIVE on pt_2; the rule table says SHARE on pt_2 (SHARE UPDATE EXCLUSIVE on the rest)"
    )


def test_the_parent_still_gets_the_statement_lock() -> None:
    obs = Observation(locks=[LockSeen("pt", "partitioned table", AEL, True), LockSeen("pt_2", "table", AEL, True)])
    (m,) = compare(SUEL, "scan", obs, {"pt_2": AEL})
    assert m.relations == ["pt"]


def test_the_rule_table_states_the_partition_locks() -> None:
    for op, variant, version in (
        (Op.ATTACH_PARTITION, "", (15, 0, 0)),
        (Op.ATTACH_PARTITION, "", (11, 0, 0)),
        (Op.DETACH_PARTITION, "", (15, 0, 0)),
        (Op.DETACH_PARTITION, "concurrently", (15, 0, 0)),
    ):
        fact = lookup(op, variant, "postgres", version)
        assert fact is not None and fact.partition_lock == AEL, (op, variant, version)
    assert lookup(Op.ATTACH_PARTITION, "", "postgres", (15, 0, 0)).lock == SUEL  # type: ignore[union-attr]
