"""Generated rows for the scratch database: N rows per table, of the catalog's types, parents first.

Kept simple and fast: one ``INSERT ... SELECT ... FROM generate_series(1, N) g`` per table, values
computed from ``g`` (so keys are unique), a foreign key column takes the parent's n-th key. Identity,
serial and generated columns get their defaults; a column of a type without a generator stays NULL
(or its default). A table whose rows cannot be generated (a CHECK the values violate, a partition
bound, a NOT NULL column of an unknown type) is left empty and named in the returned notes.
"""

from __future__ import annotations

from typing import Any

from ..schema.live.errors import one_line

_TABLES = """
SELECT c.oid::int, format('%I.%I', n.nspname, c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_)'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                  AND d.deptype = 'e')
ORDER BY n.nspname, c.relname
"""
_FOREIGN_KEYS = """
SELECT conrelid::int, confrelid::int, conkey::int[], confkey::int[] FROM pg_constraint
WHERE contype = 'f' AND conparentid = 0
"""
_COLUMNS = """
SELECT a.attnum, quote_ident(a.attname), format_type(a.atttypid, a.atttypmod), a.attnotnull,
       a.atthasdef, a.attidentity <> '' OR a.attgenerated <> '', coalesce(pg_get_expr(d.adbin, d.adrelid), ''),
       coalesce(bt.typname, t.typname), coalesce(bt.typtype, t.typtype), coalesce(bt.typcategory, t.typcategory),
       CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END,
       format_type(coalesce(bt.oid, t.oid), NULL)
FROM pg_attribute a
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_type bt ON t.typtype = 'd' AND bt.oid = t.typbasetype
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""
_NAME = "SELECT format('%%I.%%I', n.nspname, c.relname), quote_ident(a.attname) FROM pg_class c " \
    "JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_attribute a ON a.attrelid = c.oid " \
    "WHERE c.oid = %s AND a.attnum = %s"  # fmt: skip

_TEXT = {"text", "varchar", "bpchar", "citext", "name"}
_SIMPLE = {
    "int4": "g",
    "int8": "g",
    "oid": "g",
    "int2": "(g % 32767)",
    "float4": "g",
    "float8": "g",
    "money": "g",
    "bool": "(g % 2 = 0)",
    "uuid": "md5(g::text)::uuid",
    "date": "(date '2024-01-01' + g)",
    "timestamp": "(timestamp '2024-01-01' + g * interval '1 minute')",
    "timestamptz": "(timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute')",
    "time": "(time '00:00' + g * interval '1 second')",
    "timetz": "(time '00:00' + g * interval '1 second')",
    "interval": "(g * interval '1 second')",
    "json": "'{}'",
    "jsonb": "'{}'",
    "bytea": "decode(md5(g::text), 'hex')",
    "inet": "('10.0.0.0'::inet + g)",
    "cidr": "('10.0.0.0'::inet + g)",
    "macaddr": "'08:00:2b:01:02:03'",
    "xml": "'<x/>'",
    "tsvector": "''",
}


def _value(typname: str, typtype: str, category: str, typmod: int, base: str) -> str | None:
    """An SQL expression of ``g`` for a value of the type (None: no generator)."""
    if typtype == "e":
        return f"(enum_range(NULL::{base}))[1 + (g - 1) % cardinality(enum_range(NULL::{base}))]"
    if typname in _TEXT:
        length = typmod - 4 if typmod >= 5 else None
        if length is None:
            return "('s' || g)"
        if length >= 12:
            return f"left('s' || g, {length})"
        return f"right(lpad(to_hex(g), {length}, '0'), {length})"  # unique for g < 16^length
    if typname == "numeric":
        if typmod >= 4:
            precision, scale = (typmod - 4) >> 16, (typmod - 4) & 0xFFFF
            return f"(g % {10 ** max(precision - scale, 0)})" if precision > scale else "0"
        return "g"
    if typname in _SIMPLE:
        return _SIMPLE[typname]
    if category == "A":
        return "'{}'"
    return None


def _order(tables: list[int], parents: dict[int, set[int]]) -> list[int]:
    """Parents before children (a cycle is broken where it is met)."""
    done: list[int] = []
    seen: set[int] = set()

    def visit(oid: int, path: set[int]) -> None:
        if oid in seen or oid in path:
            return
        for parent in sorted(parents.get(oid, ())):
            if parent != oid:
                visit(parent, path | {oid})
        seen.add(oid)
        done.append(oid)

    for oid in tables:
        visit(oid, set())
    return done


def fill_sample_rows(conn: Any, rows: int) -> list[str]:
    """Insert ``rows`` generated rows into every user table; notes for the tables left empty."""
    import psycopg

    tables = dict(conn.execute(_TABLES).fetchall())
    fks: dict[int, list[tuple[int, list[int], list[int]]]] = {}
    parents: dict[int, set[int]] = {}
    for child, parent, keys, refkeys in conn.execute(_FOREIGN_KEYS).fetchall():
        fks.setdefault(child, []).append((parent, list(keys), list(refkeys)))
        parents.setdefault(child, set()).add(parent)
    notes: list[str] = []
    for oid in _order(list(tables), parents):
        sql = _insert_sql(conn, oid, tables[oid], rows, fks.get(oid, []))
        try:
            conn.execute(sql)
        except psycopg.Error as err:
            notes.append(f"{tables[oid]}: no sample rows ({one_line(err)})")
    conn.execute("ANALYZE")
    return notes


def _insert_sql(conn: Any, oid: int, table: str, rows: int, fks: list[tuple[int, list[int], list[int]]]) -> str:
    single_fk: dict[int, tuple[int, int]] = {}  # column attnum -> (parent oid, parent attnum)
    in_multi_fk: set[int] = set()
    for parent, keys, refkeys in fks:
        if len(keys) == 1:
            single_fk[keys[0]] = (parent, refkeys[0])
        else:
            in_multi_fk.update(keys)
    columns: list[str] = []
    values: list[str] = []
    joins: list[str] = []
    for (
        attnum,
        name,
        type_sql,
        notnull,
        hasdef,
        generated,
        default,
        typname,
        typtype,
        cat,
        typmod,
        base,
    ) in conn.execute(_COLUMNS, (oid,)).fetchall():
        if generated or default.startswith("nextval("):
            continue
        expr: str | None = None
        fk = single_fk.get(attnum)
        if fk is not None and fk[0] != oid:
            parent, ref = conn.execute(_NAME, fk).fetchone()
            alias = f"bgm_fk{len(joins)}"
            joins.append(
                f"LEFT JOIN (SELECT {ref} AS v, row_number() OVER (ORDER BY {ref}) AS rn FROM {parent}) {alias} "
                f"ON {alias}.rn = 1 + (g - 1) % greatest(1, (SELECT count(*) FROM {parent}))"
            )
            expr = f"{alias}.v"
        elif (fk is not None or attnum in in_multi_fk) and not notnull:
            continue  # a self-reference or a multi-column key: NULL is not checked
        else:
            expr = _value(typname, typtype, cat, typmod, base)
            if expr is not None:
                expr = f"({expr})::{type_sql}"
        if expr is None:
            if hasdef or not notnull:
                continue  # its default, or NULL
            expr = "NULL"  # fails: the note names the table
        columns.append(name)
        values.append(expr)
    source = f"FROM generate_series(1, {int(rows)}) AS g " + " ".join(joins)
    if not columns:
        return f"INSERT INTO {table} SELECT {source}"
    return f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(values)} {source}"
