"""Names in the SQL the recipes emit: identifier quoting, qualified names, and the names of objects
a recipe creates (bgmigrate's generated ``bgm_…`` names, PostgreSQL's default names).

Identifier quoting has one rule, :func:`quote`: an identifier stays bare when it is plain
(PostgreSQL: lower case, since bare names fold to lower case; MySQL: any case) and not one of the
words the server's grammar reserves (PostgreSQL's as pglast lists them, all but the unreserved
ones; MySQL's reserved words as sqlglot lists them), else it is quoted (PostgreSQL ``"…"``, MySQL
backticks, the quote character doubled inside).
"""

from __future__ import annotations

import hashlib
import re
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ...sql.changes import Change
    from .base import RecipeContext

PG, MY = "postgres", "mysql"

NAME_LIMIT = {PG: 63, MY: 64}  # PostgreSQL NAMEDATALEN - 1; MySQL identifier length

# ---- quoting -------------------------------------------------------------------------------------

_PLAIN = {PG: re.compile(r"[a-z_][a-z0-9_$]*"), MY: re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")}


@cache
def _grammar_keywords(dialect: str) -> frozenset[str]:
    """The words that cannot be a bare identifier everywhere, as the dialect's parser lists them."""
    if dialect == PG:
        from pglast import keywords

        # Unreserved keywords are valid column and table names; the other three classes are not everywhere.
        return frozenset(keywords.RESERVED_KEYWORDS | keywords.TYPE_FUNC_NAME_KEYWORDS | keywords.COL_NAME_KEYWORDS)
    from sqlglot.dialects.mysql import MySQL

    return frozenset(k.lower() for k in MySQL.Generator.RESERVED_KEYWORDS)


def _quote(name: str, dialect: str, keywords: frozenset[str], plain: bool) -> str:
    """``name`` bare when ``plain`` and not one of ``keywords`` (lower case), else quoted."""
    if plain and name.lower() not in keywords:
        return name
    q = "`" if dialect == MY else '"'
    return q + name.replace(q, q + q) + q


def quote(name: str, dialect: str) -> str:
    """One identifier, quoted only when it has to be (case, characters, the grammar's keywords)."""
    return _quote(name, dialect, _grammar_keywords(dialect), _PLAIN[dialect].fullmatch(name) is not None)


def quote_ident(name: str, dialect: str) -> str:
    """Same as :func:`quote` (kept for the constraint and index recipes' call sites)."""
    return quote(name, dialect)


def split_table(table: str) -> tuple[str | None, str]:
    """``schema.name`` (as the analyzer spells a non-default schema) into its two parts."""
    if "." in table:
        schema, name = table.split(".", 1)
        return schema, name
    return None, table


def quote_table(table: str, dialect: str) -> str:
    """A (possibly schema-qualified) normalized table name as SQL, quoted by :func:`quote`."""
    schema, name = split_table(table)
    return f"{quote(schema, dialect)}.{quote(name, dialect)}" if schema else quote(name, dialect)


def quote_ident_table(name: str, dialect: str) -> str:
    """Same as :func:`quote_table`."""
    return quote_table(name, dialect)


def in_schema_of(table: str, name: str, dialect: str) -> str:
    """``name`` quoted and qualified with ``table``'s schema (functions, views next to the table)."""
    schema, _ = split_table(table)
    return f"{quote(schema, dialect)}.{quote(name, dialect)}" if schema else quote(name, dialect)


def bare(name: str) -> str:
    """The object's own name, without its schema."""
    return name.rsplit(".", 1)[-1]


def schema_of(table: str | None) -> str | None:
    return split_table(table)[0] if table else None


def table_sql(change: Change, ctx: RecipeContext, written: str | None = None) -> str:
    """The table as the author wrote it when known (MySQL table names can be case-sensitive)."""
    if written:
        return written
    return quote_ident_table(change.table or "", ctx.dialect)


def index_sql_name(index: str, table: str | None, dialect: str) -> str:
    """An index name as SQL; in PostgreSQL an index lives in its table's schema."""
    if "." in index or dialect == MY:
        return quote_ident_table(index, dialect)
    schema = schema_of(table)
    return quote_ident_table(f"{schema}.{index}" if schema else index, dialect)


def pg_unquote(name: str) -> str:
    """A PostgreSQL identifier as written to the name it stands for: ``"…"`` unescaped, else lower case."""
    return name[1:-1].replace('""', '"') if name.startswith('"') else name.lower()


# ---- names of the objects bgmigrate creates --------------------------------------------------------


def generated_name(dialect: str, *parts: str) -> str:
    """A generated name (``bgm_...``) that fits the server's identifier limit and stays unique."""
    full = "_".join(("bgm", *parts))
    limit = NAME_LIMIT[dialect]
    if len(full.encode()) <= limit:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:8]
    head = full.encode()[: limit - 9].decode(errors="ignore")
    return f"{head}_{digest}"


# ---- PostgreSQL's default names ---------------------------------------------------------------------


def pg_object_name(name1: str, name2: str | None, label: str) -> str:
    """PostgreSQL's ``makeObjectName``: ``name1_name2_label`` trimmed to 63 bytes, longer part first."""
    overhead = len(label) + 1 + (1 if name2 else 0)
    n1, n2 = len(name1), len(name2 or "")
    while n1 + n2 > NAME_LIMIT[PG] - overhead:
        if n1 > n2:
            n1 -= 1
        else:
            n2 -= 1
    parts = [name1[:n1]] + ([name2[:n2]] if name2 else []) + [label]
    return "_".join(parts)


def choose_name(name1: str, name2: str | None, label: str, taken: set[str]) -> str:
    """PostgreSQL's ``ChooseRelationName``: the default name, with 1, 2, ... after the label if taken."""
    name = pg_object_name(name1, name2, label)
    n = 0
    while name in taken:
        n += 1
        name = pg_object_name(name1, name2, f"{label}{n}")
    return name


def index_column_names(columns: list[str]) -> list[str]:
    """The names PostgreSQL's ``ChooseIndexColumnNames`` uses: a column, a function's name, or ``expr``."""
    out = []
    for col in columns:
        text = col.strip()
        m = re.match(r'^("(?:[^"]|"")*"|[\w$]+)(\s+(?:ASC|DESC|NULLS\s+(?:FIRST|LAST))\b.*)?$', text, re.I)
        if m:
            out.append(pg_unquote(m.group(1)))
            continue
        f = re.match(r"^([\w$]+)\s*\(", text)
        out.append(f.group(1).lower() if f else "expr")
    return out


def taken_names(ctx: RecipeContext, table: str | None) -> set[str]:
    """Constraint and index names the schema knows on ``table`` (and index names anywhere)."""
    names = set(ctx.schema.index_table)
    t = ctx.schema.table(table)
    if t is not None:
        names |= {c.name for c in t.constraints if c.name}
        names |= set(t.indexes)
    return names
