"""Catalog facts rendered as the history replay renders them: type names, qualified names, primary keys NOT NULL."""

from __future__ import annotations

import re
from functools import lru_cache

from ...sql.types import SqlType, parse_type
from ..model import Schema

_INT_WIDTH = re.compile(r"^(tinyint|smallint|mediumint|int|bigint)\(\d+\)")


def _same_shape(a: SqlType | None, b: SqlType | None) -> bool:
    if a is None or b is None:
        return a is b
    return (a.name, a.params, a.array, a.unsigned) == (b.name, b.params, b.array, b.unsigned)


@lru_cache(maxsize=4096)
def canonical_type(text: str, dialect: str) -> str:
    """A catalog type (PostgreSQL ``format_type``, MySQL ``COLUMN_TYPE``) as the normalizer writes it.

    The normalizer renders a migration's type through sqlglot (``character varying(20)`` →
    ``varchar(20)``, ``numeric(10,2)`` → ``decimal(10, 2)``, ``timestamp with time zone`` →
    ``timestamptz``); the same rendering is used here when it keeps the type's meaning (name,
    parameters, array, unsigned, as :func:`parse_type` reads them), else the catalog's own text in
    lower case (``bit varying(5)``, which sqlglot would render ``bit``). MySQL integer display
    widths are dropped as MySQL 8.0.19+ does (``int(11)`` → ``int``), except ``tinyint(1)``.
    """
    raw = text.strip()
    lowered = raw.lower()
    if dialect == "mysql":
        m = _INT_WIDTH.match(lowered)
        if m and not lowered.startswith("tinyint(1)"):
            lowered = m.group(1) + lowered[m.end() :]
            raw = lowered
    rendered: str | None = None
    try:
        from sqlglot import exp

        rendered = exp.DataType.build(raw, dialect=dialect, udt=True).sql(dialect=dialect).lower()
    except Exception:  # sqlglot cannot read it: keep the catalog's text
        rendered = None
    if rendered is not None and _same_shape(parse_type(rendered), parse_type(lowered)):
        return rendered
    return " ".join(lowered.split())


def qualify(schema: str, name: str, default: str | None) -> str:
    return name if schema == default else f"{schema}.{name}"


def finish_schema(schema: Schema) -> Schema:
    for table in schema.tables.values():
        for c in table.constraints:
            if c.kind == "primary_key":
                for col in c.columns:
                    if col in table.columns:
                        table.columns[col].nullable = False
    return schema
