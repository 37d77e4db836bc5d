"""What a query references in the schema model: sqlglot column qualification, then removals per step.

:func:`references` qualifies a query's columns against the schema model (sqlglot's ``qualify``,
``*`` left unexpanded) and returns the ``(table, column)`` pairs and tables it uses, in the model's
naming (``public`` left out, other schemas as ``schema.table``). INSERT / UPDATE / DELETE, which
sqlglot's scopes do not cover, are resolved here: unqualified columns belong to the one table of
the statement that has them.

:func:`removals` replays each step's SQL into a copy of the model and records, per step, the tables
and columns it takes away (a table that becomes a view of the same name stays: blue reads through it).
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any

from ..schema.model import Schema

Ref = tuple[str, str | None]  # (table, column); column None: the table itself


def _model_name(db: str, name: str) -> str:
    return name if db in ("", "public") else f"{db}.{name}"


def mapping(schema: Schema) -> dict[str, dict[str, dict[str, str]]]:
    """The model as sqlglot's nested schema: {schema: {table: {column: type}}}."""
    out: dict[str, dict[str, dict[str, str]]] = {"public": {}}
    for name, table in schema.tables.items():
        db, _, rel = name.rpartition(".")
        out.setdefault(db or "public", {})[rel] = {c: "text" for c in table.columns}
    return out


def references(text: str, schema: Schema) -> tuple[set[Ref], bool]:
    """The tables and columns ``text`` uses; False when sqlglot cannot read it (no static check)."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.optimizer.qualify import qualify
    from sqlglot.optimizer.scope import traverse_scope

    try:
        expr = sqlglot.parse_one(text, read="postgres")
    except Exception:
        return set(), False
    if expr is None:
        return set(), False
    schema_map = mapping(schema)
    with suppress(Exception):  # unqualified columns are resolved below as far as they can be
        expr = qualify(
            expr,
            schema=schema_map,
            db="public",
            dialect="postgres",
            validate_qualify_columns=False,
            expand_stars=False,
            quote_identifiers=False,
            identify=False,
        )
    ctes = {c.alias_or_name for c in expr.find_all(exp.CTE)}

    def table_name(t: exp.Table) -> str:
        return _model_name(t.db or "", t.name)

    def columns_of(name: str) -> set[str]:
        t = schema.table(name)
        return set(t.columns) if t is not None else set()

    def resolve(col: exp.Column, sources: dict[str, str]) -> str | None:
        if col.table:
            return sources.get(col.table)
        having = [t for t in dict.fromkeys(sources.values()) if col.name in columns_of(t)]
        if len(having) == 1:
            return having[0]
        distinct = set(sources.values())
        return next(iter(distinct)) if len(distinct) == 1 else None

    refs: set[Ref] = set()
    for t in expr.find_all(exp.Table):
        if t.name and t.name not in ctes:
            refs.add((table_name(t), None))
    roots = [expr] if isinstance(expr, exp.Query) else [s for s in expr.find_all(exp.Select) if _outermost(s)]
    for root in roots:
        try:
            scopes = traverse_scope(root)
        except Exception:
            continue
        for scope in scopes:
            sources = {alias: table_name(src) for alias, src in scope.sources.items() if isinstance(src, exp.Table)}
            for col in scope.columns:
                owner = resolve(col, sources)
                if owner is not None and owner not in ctes:
                    refs.add((owner, col.name))
    if isinstance(expr, (exp.Insert, exp.Update, exp.Delete)):
        refs |= _dml_references(expr, table_name, resolve)
    return refs, True


def _outermost(node: Any) -> bool:
    from sqlglot import exp

    return node.find_ancestor(exp.Select) is None


def _dml_references(expr: Any, table_name: Any, resolve: Any) -> set[Ref]:
    from sqlglot import exp

    refs: set[Ref] = set()
    target = expr.this
    columns_list: list[str] = []
    if isinstance(target, exp.Schema):  # INSERT INTO t (a, b)
        columns_list = [c.name for c in target.expressions]
        target = target.this
    sources: dict[str, str] = {}
    for t in expr.find_all(exp.Table):
        if t.find_ancestor(exp.Select, exp.Subquery) is None:
            sources[t.alias_or_name] = table_name(t)
            sources.setdefault(t.name, table_name(t))
    if isinstance(target, exp.Table):
        for c in columns_list:
            refs.add((table_name(target), c))
    for col in expr.find_all(exp.Column):
        if col.find_ancestor(exp.Select, exp.Subquery) is not None:
            continue
        owner = resolve(col, sources)
        if owner is not None:
            refs.add((owner, col.name))
    return refs


def _present(schema: Schema) -> tuple[set[str], dict[str, set[str]]]:
    tables = set(schema.tables) | set(schema.views)
    columns = {name: set(t.columns) for name, t in schema.tables.items()}
    return tables, columns


def removals(base: Schema, steps_sql: list[str]) -> tuple[list[tuple[set[str], dict[str, set[str]]]], list[Schema]]:
    """The tables and columns present after each step (index 0: before the first), and the models."""
    from ..schema import snapshot
    from ..sql.analyze import analyze_text

    schema = snapshot.copy(base)
    states = [_present(schema)]
    models = [snapshot.copy(schema)]
    for i, sql in enumerate(steps_sql):
        for st in analyze_text(sql, "postgres"):
            for change in st.changes:
                schema.apply(change, f"step-{i}")
        states.append(_present(schema))
        models.append(snapshot.copy(schema))
    return states, models


def removed_by(ref: Ref, states: list[tuple[set[str], dict[str, set[str]]]], start: int) -> int | None:
    """The first step (0-based, at or after ``start``) after which ``ref`` no longer exists."""
    table, column = ref
    tables0, columns0 = states[start]
    if table not in tables0 or (column is not None and table in columns0 and column not in columns0[table]):
        return None  # not there to begin with: nothing of the release's doing
    for i in range(start, len(states) - 1):
        tables, columns = states[i + 1]
        if table not in tables:
            return i
        if column is not None and table in columns and table in columns0 and column not in columns[table]:
            return i
    return None
