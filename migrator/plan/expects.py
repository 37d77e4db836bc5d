"""What a plan expects of the database it runs on: the shape of every table its steps touch.

A plan is made from the migration history (or from a live database). Before its first step runs,
the runner compares this shape with the live database, and refuses a database that is not in the
state the plan was made for (a column missing, of another type, of other nullability), naming the
difference. Only comparable facts are kept: column names, types (normalized: ``int4`` = ``integer``
= ``int``, ``int(11)`` = ``int``) and nullability. Defaults, constraint and index names are left
out, because the history and the catalog spell them differently (``now()`` / ``CURRENT_TIMESTAMP``,
an unnamed primary key / ``t_pkey``).

Tables the release creates are not in the shape: they do not exist yet.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

from ..schema.model import Schema
from ..sql.types import parse_type

Shape = dict[str, list[list[object]]]  # table -> [[column, type, nullable], ...] sorted by column


def _bare(name: str) -> str:
    return ".".join(part.strip('"`') for part in name.split("."))


def table_shapes(schema: Schema, tables: Iterable[str]) -> Shape:
    """The shape of ``tables`` (those that exist and are known) in ``schema``."""
    out: Shape = {}
    for name in sorted({_bare(t) for t in tables if t}):
        table = schema.table(name) or schema.table(name.lower())
        if table is None or not table.known:
            continue
        out[table.name] = [[c.name, c.type, c.nullable] for c in sorted(table.columns.values(), key=lambda c: c.name)]
    return out


def fingerprint(shape: Shape) -> str:
    """sha256 of the normalized shape (the plan's ``schema_fingerprint``)."""
    normal = {t: [[c, _type_key(ty), n] for c, ty, n in cols] for t, cols in shape.items()}
    return hashlib.sha256(json.dumps(normal, sort_keys=True).encode()).hexdigest()


def _type_key(text: object) -> str:
    parsed = parse_type(str(text)) if text else None
    if parsed is None:
        return ""
    params = () if parsed.family == "integer" else parsed.params  # MySQL display widths: int(11) = int
    suffix = ("[]" if parsed.array else "") + (" unsigned" if parsed.unsigned else "")
    return f"{parsed.name}{list(params) if params else ''}{suffix}"


def differences(expected: Shape, live: Schema) -> list[str]:
    """How ``live`` differs from what the plan expects; empty when it is in the expected state."""
    found = table_shapes(live, expected)
    problems: list[str] = []
    for table, columns in expected.items():
        have = {c: (ty, n) for c, ty, n in found.get(table, [])}
        if table not in found:
            problems.append(f"table {table} does not exist")
            continue
        for col, ty, nullable in columns:
            if col not in have:
                problems.append(f"{table}.{col} does not exist")
                continue
            live_type, live_null = have[col]
            if _type_key(ty) != _type_key(live_type):
                problems.append(f"{table}.{col} is {live_type}, the plan expects {ty}")
            if bool(live_null) != bool(nullable):
                want, have_text = ("NULL" if nullable else "NOT NULL"), ("NULL" if live_null else "NOT NULL")
                problems.append(f"{table}.{col} is {have_text}, the plan expects {want}")
        extra = sorted(set(have) - {c for c, _, _ in columns})
        for col in extra:
            problems.append(f"{table}.{col} exists, the plan does not expect it")
    return problems
