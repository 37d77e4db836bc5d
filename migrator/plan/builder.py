"""Build the phase plan of a release: every statement in its stage, breaking ones through recipes.

The release is linted first (the same engine as ``bgmigrate lint``), so every statement comes with
its phase. Then, walking the release in order with the schema as it stands before each statement:

- expand statements go to the ``expand`` stage (an index build made CONCURRENTLY by its recipe);
- data changes go to ``migrate``;
- contract statements go to ``contract``, after the three gates;
- breaking statements are replaced by their recipe's expand / backfill / contract parts, or the
  plan stops with the reason and the manual alternatives;
- session and transaction control is dropped: the runner sets timeouts and transactions per step.

Moving a contract statement after later expand statements can change what the release means
(``DROP COLUMN a`` then ``ADD COLUMN a``): every such conflict stops the plan, naming both
statements and suggesting a release boundary between them.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..config import Settings
from ..facts.locks import BLOCKS_WRITES, EFFECT_COST, SHARE_UPDATE_EXCLUSIVE
from ..lint.classify import classify
from ..lint.results import LintResult, StatementResult
from ..schema import snapshot
from ..schema.model import Schema
from ..sql.changes import Change, Op
from .expects import fingerprint as shape_fingerprint
from .expects import table_shapes
from .inverse import inverse_sql
from .model import GATE_TEXT, GATES, Plan, PlanError, Step
from .recipes import RecipeContext, find_recipe

if TYPE_CHECKING:
    from ..sources.model import SourceFile

LOCK_TIMEOUT = "2s"
PATIENT_LOCK_TIMEOUT = "1min"  # for locks that block neither reads nor writes
INSTANT_STATEMENT_TIMEOUT = "5s"
_DROP = {Op.BEGIN, Op.COMMIT, Op.ROLLBACK, Op.META_COMMAND}


@dataclass
class _Planned:
    """A step, remembering which statement of the release it came from (for conflict checks)."""

    step: Step
    order: int  # index of the source statement in the release
    keys: set[tuple[str, ...]] = field(default_factory=set)


def _object_keys(change: Change) -> set[tuple[str, ...]]:
    """The objects a change creates, removes or redefines (names compared for reordering), and
    ("uses", table) for the table it works on: a step on a table conflicts with a later rename,
    drop or re-creation of that table."""
    a = change.attrs
    t = change.table or ""
    keys: set[tuple[str, ...]] = {("uses", t)} if t else set()
    if change.column:
        keys.add(("column", t, change.column))
    if a.get("new_name") and change.op == Op.RENAME_COLUMN:
        keys.add(("column", t, a["new_name"]))
    if change.op in (Op.CREATE_TABLE, Op.CREATE_TABLE_AS, Op.DROP_TABLE, Op.RENAME_TABLE, Op.TRUNCATE):
        keys.add(("table", t))
        if a.get("new_name"):
            keys.add(("table", a["new_name"]))
    if change.op in (Op.CREATE_VIEW, Op.DROP_VIEW, Op.RENAME_VIEW):
        keys.add(("table", t))
    if a.get("index"):
        keys.add(("index", a["index"]))
    if a.get("constraint"):
        keys.add(("constraint", t, a["constraint"]))
    for col in (a.get("columns") or {}) if change.op == Op.CREATE_TABLE else ():
        keys.add(("column", t, col))
    if change.op in (Op.CREATE_INDEX, Op.ADD_CONSTRAINT):
        # the columns an index or constraint is built on, as the names its columns and expressions mention
        # (an over-approximation: a function name only matters if a column has the same name)
        mentioned = [*(a.get("columns") or ()), a.get("expression") or "", a.get("predicate") or ""]
        text = _STRING.sub(" ", " ".join(str(m) for m in mentioned))
        keys |= {("refs", t, name) for name in _NAME.findall(text)}
        keys |= {("refs", t, name.lower()) for name in _NAME.findall(text)}
    return keys


_NAME = re.compile(r"[^\W\d]\w*")
_STRING = re.compile(r"'(?:[^']|'')*'")  # string literals name no column


def _facts(sql: str, schema: Schema, settings: Settings) -> tuple[str | None, str, bool, str | None]:
    """Lock, rewrite, transactional and table of SQL a recipe produced, from the same facts as lint."""
    from ..sql.analyze import analyze_text

    lock: str | None = None
    effect = "none"
    transactional = True
    table: str | None = None
    for st in analyze_text(sql, settings.dialect):
        for ch in st.changes:
            c = classify(ch, schema, "plan", settings.dialect, settings.version)
            if ch.get("concurrently") or (
                settings.dialect == "mysql" and ch.op not in (Op.INSERT, Op.UPDATE, Op.DELETE)
            ):
                transactional = False
            if c.lock is not None:
                if lock is None or (c.lock.lock in BLOCKS_WRITES and lock not in BLOCKS_WRITES):
                    lock = c.lock.lock
                if EFFECT_COST[c.lock.effect] > EFFECT_COST[effect]:
                    effect = c.lock.effect
            table = table or ch.table
    return lock, effect, transactional, table


def _timeouts(
    lock: str | None, effect: str, transactional: bool, mysql_ddl: bool = False
) -> tuple[str | None, str | None]:
    """lock_timeout for anything that queues for a table lock (on MySQL every DDL statement waits
    for a metadata lock: the runner sets lock_wait_timeout from it); a short statement_timeout only
    for catalog-only steps (a scan, rewrite or index build takes as long as the table is big).

    SHARE UPDATE EXCLUSIVE (CONCURRENTLY index builds, VALIDATE CONSTRAINT) conflicts with no read
    or write, so waiting for it stalls no query; and a CONCURRENTLY build waits for older
    transactions *after* building, so a short timeout would throw the build away and start again.
    Those steps get :data:`PATIENT_LOCK_TIMEOUT`."""
    if lock == SHARE_UPDATE_EXCLUSIVE and not mysql_ddl:
        return PATIENT_LOCK_TIMEOUT, None
    lock_timeout = LOCK_TIMEOUT if lock or mysql_ddl else None
    statement_timeout = INSTANT_STATEMENT_TIMEOUT if lock and effect == "none" and transactional else None
    return lock_timeout, statement_timeout


def _sizes(step: Step, sizes: Schema | None) -> None:
    if sizes is None or step.table is None:
        return
    t = sizes.table(step.table)
    if t is None:
        return
    step.rows_estimate = getattr(t, "rows_estimate", None)
    step.size_bytes = getattr(t, "size_bytes", None)
    step.duration = "instant" if step.rewrite == "none" and step.backfill is None else "proportional"
    if step.backfill is not None and step.rows_estimate is not None:
        step.batches = max(1, math.ceil(step.rows_estimate / step.backfill.batch_size))


def _origin(result: StatementResult, revisions: dict[str, str]) -> str:
    where = f"{result.file}:{result.statement.line}"
    revision = revisions.get(result.file)
    return f"{where} ({revision})" if revision else where


def _statement_step(
    result: StatementResult, stage: str, reason: str, schema: Schema, settings: Settings, revisions: dict[str, str]
) -> Step:
    sql = result.statement.sql.strip()
    lock, effect, transactional, table = _facts(sql, schema, settings)
    lock_timeout, statement_timeout = _timeouts(lock, effect, transactional, _mysql_ddl(sql, settings))
    abort = None
    if stage == "expand":
        abort = inverse_sql(list(result.statement.changes), settings.dialect)
    return Step(
        id="",
        stage=stage,
        origin=_origin(result, revisions),
        sql=sql + ";",
        abort=abort,
        phase=result.phase,
        reason=reason,
        lock=lock,
        rewrite=effect,
        transactional=transactional,
        lock_timeout=lock_timeout,
        statement_timeout=statement_timeout,
        table=table or result.statement.table,
    )


def _manual_alternatives(change: Change) -> str:
    return {
        Op.RENAME_SCHEMA: "create the new schema, move objects one by one with their own recipes, keep the old "
        "schema until blue is gone",
        Op.RENAME_ENUM_VALUE: "add the new value (ALTER TYPE ... ADD VALUE), have green write it, backfill "
        "(UPDATE ... SET col = 'new' WHERE col = 'old'), and stop using the old value; PostgreSQL cannot drop it",
        Op.TRUNCATE: "delete in batches in the migrate stage, or truncate only after blue is decommissioned",
        Op.UNKNOWN: "write the change as plain DDL bgmigrate can read, or run it by hand in a maintenance window",
        Op.SYNTAX_ERROR: "fix the statement",
    }.get(change.op, "split the change into an expand release and a contract release by hand")


def build_plan(
    result: LintResult,
    settings: Settings,
    sizes: Schema | None = None,
    sources: list[SourceFile] | None = None,
) -> Plan:
    """The plan of the release ``result`` was linted from (with ``keep_history=True``), starting from
    the schema its history built. ``sources`` (every migration ``result`` was linted from, history
    included) tells an Alembic release's revision graph: the plan then records what to stamp."""
    if result.history is None:
        raise ValueError("build_plan needs lint_sources(..., keep_history=True)")
    history = result.history
    schema = snapshot.copy(history)
    revisions = result.revisions
    planned: list[_Planned] = []
    errors: list[str] = []
    for order, r in enumerate(result.statements):
        changes = r.statement.changes
        if not changes or all(ch.op in _DROP for ch in changes) or all(ch.op == Op.SET for ch in changes):
            _apply(changes, schema)
            continue
        ctx = RecipeContext(schema, settings.dialect, settings.version)
        keys: set[tuple[str, ...]] = set().union(*(_object_keys(ch) for ch in changes))
        phase = r.phase
        recipe = None
        target = None
        single = _single_change(changes, r)
        if single is not None:
            # recipes rewrite the statement as written: give them its text beside the parsed facts
            target = Change(single.op, single.table, single.column, {**single.attrs})
            target.attrs["statement"] = r.statement.sql
            recipe = find_recipe(target, phase, ctx)
        refusal = recipe.refusal(target, ctx) if recipe is not None and target is not None else None
        if (
            recipe is not None
            and target is not None
            and refusal is None
            and phase in ("breaking", "expand", "contract")
        ):
            if recipe.replaces_column and target.column:
                keys.add(("replaced", target.table or "", target.column))
            planned.extend(_recipe_steps(recipe, target, r, ctx, settings, order, keys, revisions))
        elif phase == "breaking":
            reason = refusal
            why = r.reason or "breaking change"
            errors.append(
                f"{_origin(r, revisions)}: {r.statement.sql.strip()[:100]} is breaking ({why})"
                + (
                    f"; {reason}"  # a recipe's refusal names its own alternative
                    if reason
                    else f"; no recipe can make it safe. Manual alternative: {_manual_alternatives(changes[0])}"
                )
            )
        else:
            stage = {"expand": "expand", "neutral": "expand", "migrate": "migrate", "contract": "contract"}[phase]
            reason = {
                "expand": f"expand: {r.reason}" if r.reason else "expand: blue keeps working",
                "neutral": "no schema effect",
                "migrate": "data change: runs after expand, before green is deployed",
                "contract": f"contract: {r.reason}" if r.reason else "contract: only after blue is gone",
            }[phase]
            planned.append(_Planned(_statement_step(r, stage, reason, schema, settings, revisions), order, keys))
        _apply(changes, schema)
    if errors:
        raise PlanError("the release cannot be planned:\n  " + "\n  ".join(errors))
    _check_reordering(planned, result)
    steps = _ordered(planned)
    for step in steps:
        _sizes(step, sizes)
    shape = table_shapes(history, [s.table for s in steps if s.table])
    return Plan(
        dialect=settings.dialect,
        target_version=settings.version_text,
        sources=list(result.files),
        since=settings.since,
        schema_fingerprint=shape_fingerprint(shape),
        steps=steps,
        expects=shape,
        tool_version=__version__,
        alembic=_alembic_stamps(sources, result),
    ).seal()


def _alembic_stamps(sources: list[SourceFile] | None, result: LintResult) -> dict[str, Any] | None:
    """What the runner writes to ``alembic_version`` for a release of Alembic revisions (None for SQL).

    Rows are kept the way Alembic keeps them: one per revision that no applied revision follows
    through ``down_revision`` or ``depends_on``. A stamp replaces the rows of the revisions it starts
    from (those outside the stamped set that it follows) with its heads. Statements are staged by
    their phase whatever their branch: an ``expand`` branch's revisions are stamped when expand
    completes (with the unlabelled release revisions they follow), everything when contract does."""
    revs = [s for s in sources or () if s.revision]
    in_release = set(result.files)
    release = [s.revision for s in revs if s.display in in_release and s.revision]
    if not release:
        return None
    headers = {s.revision: _revision_header(s) for s in revs if s.revision}
    owner = {label: rid for rid, (_, _, labels) in headers.items() for label in labels}
    parents = {
        rid: tuple(dict.fromkeys([*down, *(owner.get(dep, dep) for dep in deps)]))
        for rid, (down, deps, _) in headers.items()
    }
    branches = {s.revision: set(s.branches) for s in revs if s.revision}
    rank = {s.revision: n for n, s in enumerate(revs)}
    inside = set(release)

    def ancestors(rid: str) -> set[str]:
        seen: set[str] = set()
        todo = [p for p in parents.get(rid, ()) if p in inside]
        while todo:
            node = todo.pop()
            if node not in seen:
                seen.add(node)
                todo.extend(p for p in parents.get(node, ()) if p in inside)
        return seen

    def stamp(ids: list[str]) -> dict[str, list[str]]:
        chosen = set(ids)
        start = {p for rid in ids for p in parents.get(rid, ()) if p not in chosen}
        heads = [rid for rid in ids if not any(rid in parents.get(o, ()) for o in ids)]
        return {"revisions": ids, "from": sorted(start, key=lambda r: (rank.get(r, -1), r)), "heads": heads}

    expand_side: set[str] = set()
    for rid in release:
        if "expand" in branches[rid]:
            expand_side |= {rid} | ancestors(rid)
    contract_work = {rid for rid in expand_side if "contract" in branches[rid]}  # never stamped at expand
    expand_side = {rid for rid in expand_side if rid not in contract_work and not ancestors(rid) & contract_work}
    whole = stamp(release)
    return {
        "version_table": "alembic_version",
        "version_table_schema": None,
        **whole,
        "expand": stamp([rid for rid in release if rid in expand_side]) if expand_side else None,
    }


def _revision_header(source: SourceFile) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """``down_revision``, ``depends_on`` and ``branch_labels`` of a revision file, read as the loader
    read them (statically; by running the file when they are not literals)."""
    from ..sources.alembic.graph import _as_ids, _Dynamic, read_header

    try:
        header = read_header(source.path.read_text(encoding="utf-8").removeprefix("\ufeff")) or {}
    except _Dynamic:
        import runpy

        try:
            header = runpy.run_path(str(source.path))
        except (Exception, SystemExit) as err:
            raise PlanError(f"{source.display}: cannot read the revision's down_revision: {err}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise PlanError(f"{source.display}: cannot read the revision: {err}") from None
    values = [_as_ids(header.get(name)) for name in ("down_revision", "depends_on", "branch_labels")]
    if any(v is None for v in values):
        raise PlanError(f"{source.display}: down_revision, depends_on and branch_labels must be strings or tuples")
    return values[0] or (), values[1] or (), values[2] or ()


def _mysql_ddl(sql: str, settings: Settings) -> bool:
    """A MySQL statement that takes a metadata lock on a table (DDL, not a data change)."""
    if settings.dialect != "mysql":
        return False
    word = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else ""
    return word in ("ALTER", "CREATE", "DROP", "RENAME", "TRUNCATE", "OPTIMIZE")


def _single_change(changes: list[Change], r: StatementResult) -> Change | None:
    """The one change a recipe would rewrite: the statement's only change, or the rename in a MySQL
    ``CHANGE old new <same definition>`` (which also restates the unchanged type)."""
    if len(changes) == 1:
        return changes[0]
    if len(changes) == 2 and changes[1].op == Op.RENAME_COLUMN and changes[1].get("via") == "change":
        same_type = r.changes[0].get("phase") == "neutral" if r.changes else False
        return changes[1] if same_type else None
    return None


def _apply_sql(sql: str, schema: Schema, settings: Settings) -> None:
    from ..sql.analyze import analyze_text

    for st in analyze_text(sql, settings.dialect):
        _apply(st.changes, schema)


def _apply(changes: list[Change], schema: Schema) -> None:
    for ch in changes:
        schema.apply(ch, "plan")


def _recipe_steps(
    recipe,
    change: Change,
    r: StatementResult,
    ctx: RecipeContext,
    settings: Settings,
    order: int,
    keys: set[tuple[str, ...]],
    revisions: dict[str, str],
) -> list[_Planned]:
    parts = recipe.build(change, ctx)
    origin = _origin(r, revisions)
    out: list[_Planned] = []
    notes = list(parts.notes)
    # Each part's lock facts are read against the schema as the parts before it left it (a SET NOT NULL
    # after its CHECK was validated reads no rows on PostgreSQL 12+).
    working = snapshot.copy(ctx.schema)
    for stage, items in (("expand", parts.expand), ("contract", parts.contract)):
        for part in items:
            lock, effect, transactional, table = _facts(part.sql, working, settings)
            _apply_sql(part.sql, working, settings)
            transactional = transactional and part.transactional
            lock_timeout, statement_timeout = _timeouts(lock, effect, transactional, _mysql_ddl(part.sql, settings))
            step = Step(
                id="",
                stage=stage,
                origin=origin,
                sql=part.sql.strip().rstrip(";") + ";",
                phase=stage,
                reason=f"{recipe.name}: {part.reason}",
                lock=lock,
                rewrite=effect,
                transactional=transactional,
                lock_timeout=lock_timeout,
                statement_timeout=statement_timeout,
                abort=part.abort,
                table=table or change.table,
                recipe=recipe.name,
                notes=notes if not out else [],
            )
            out.append(_Planned(step, order, keys))
    for backfill in parts.backfill:
        step = Step(
            id="",
            stage="migrate",
            origin=origin,
            sql=backfill.batch_sql() + ";",
            phase="migrate",
            reason=f"{recipe.name}: bring existing rows along, in batches of {backfill.batch_size} on {backfill.key}",
            lock="ROW EXCLUSIVE",
            rewrite="none",
            transactional=True,
            lock_timeout=LOCK_TIMEOUT,
            table=backfill.table,
            recipe=recipe.name,
            backfill=backfill,
        )
        out.append(_Planned(step, order, keys))
    return out


def _check_reordering(planned: list[_Planned], result: LintResult) -> None:
    """A contract step moves after every expand/migrate step; refuse when that changes meaning."""
    problems: dict[tuple[int, int], str] = {}
    statements = result.statements
    for late in planned:
        if late.step.stage != "contract":
            continue
        for early in planned:
            if early.order <= late.order or early.step.stage not in ("expand", "migrate"):
                continue
            if (late.order, early.order) in problems:
                continue
            shared = {k for k in late.keys & early.keys if k[0] not in ("uses", "refs", "replaced")}
            # a column that contract replaces (drop the old, rename the new into place), and an index or
            # constraint that a later statement builds on it: built in expand, it is built on the old column
            shared |= {
                ("column", k[1], k[2]) for k in late.keys if k[0] == "replaced" and ("refs", *k[1:]) in early.keys
            }
            # a step that works on a table, and a later step that renames, drops or re-creates it
            shared |= {("table", k[1]) for k in late.keys if k[0] == "uses"} & early.keys
            shared |= {("table", k[1]) for k in early.keys if k[0] == "uses"} & late.keys
            if not shared:
                continue
            kind, *names = sorted(shared)[0]
            first = " ".join(statements[late.order].statement.sql.split())[:70]
            second = " ".join(statements[early.order].statement.sql.split())[:70]
            problems[(late.order, early.order)] = (
                f"{late.step.origin} ({first}) has contract work that runs after blue is gone, but "
                f"{early.step.origin} ({second}) comes later in the release, runs before green, and touches "
                f"the same {kind} {'.'.join(n for n in names if n)}: moving one past the other changes what "
                f"the release does. Put a release boundary between them (release the first, then the second "
                f"with --since)."
            )
    if problems:
        raise PlanError("reordering conflict:\n  " + "\n  ".join(problems.values()))


def _ordered(planned: list[_Planned]) -> list[Step]:
    by_stage: dict[str, list[Step]] = {"expand": [], "migrate": [], "contract": []}
    for p in planned:
        by_stage[p.step.stage].append(p.step)
    steps: list[Step] = []
    for stage in ("expand", "migrate", *GATES, "contract"):
        if stage in GATES:
            steps.append(Step(id="", stage=stage, origin="", sql="", phase="gate", reason=GATE_TEXT[stage]))
            continue
        steps.extend(by_stage[stage])
    counters: dict[str, int] = {}
    for step in steps:
        counters[step.stage] = counters.get(step.stage, 0) + 1
        step.id = step.stage if step.stage in GATES else f"{step.stage}-{counters[step.stage]:03d}"
    return steps
