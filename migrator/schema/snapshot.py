"""Schema snapshots: the replayed history as JSON, for the cache (never pickles)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from .model import Column, Constraint, Schema, Table


def dump(schema: Schema) -> dict[str, Any]:
    return {
        "tables": {name: asdict(table) for name, table in schema.tables.items()},
        "views": schema.views,
        "enums": schema.enums,
        "index_table": schema.index_table,
        "index_columns": schema.index_columns,
        "created": [[kind, name, unit] for (kind, name), unit in schema.created.items()],
        "source": getattr(schema, "source", None),
    }


def load(data: dict[str, Any]) -> Schema:
    """Inverse of :func:`dump`; raises KeyError/TypeError/ValueError on a damaged snapshot."""
    schema = Schema()
    for name, t in data["tables"].items():
        fields = dict(t)
        fields["columns"] = {c["name"]: Column(**c) for c in (t.get("columns") or {}).values()}
        fields["constraints"] = [Constraint(**c) for c in t.get("constraints") or []]
        schema.tables[name] = Table(**fields)
    schema.views = dict(data["views"])
    schema.enums = {k: list(v) for k, v in data["enums"].items()}
    schema.index_table = dict(data["index_table"])
    schema.index_columns = {k: list(v) for k, v in data["index_columns"].items()}
    schema.created = {(kind, name): unit for kind, name, unit in data["created"]}
    if data.get("source") is not None:
        schema.source = dict(data["source"])
    return schema


def identity(schema: Schema) -> str:
    """What of a schema can change lint results: everything but row estimates and sizes (which move
    with every write and ANALYZE, and which linting does not use)."""
    import json

    data = dump(schema)
    for table in data["tables"].values():
        table.pop("rows_estimate", None)
        table.pop("size_bytes", None)
    data.pop("source", None)
    return json.dumps(data, sort_keys=True)


def copy(schema: Schema) -> Schema:
    return load(dump(schema))
