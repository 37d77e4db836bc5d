"""The live schema of a PostgreSQL database: its catalog (``pg_catalog``) read through psycopg 3."""

from __future__ import annotations

import math
import re
from typing import Any

from ...dsn import Dsn
from ..model import Column, Constraint, Schema, Table
from .errors import LiveSchemaError, import_driver, masked_error, one_line
from .rendering import canonical_type, finish_schema, qualify

_PG_SYSTEM = (
    "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast' AND n.nspname !~ '^pg_temp_'"
)
_PG_KINDS = {"p": "primary_key", "u": "unique", "f": "foreign_key", "c": "check", "x": "exclude", "n": "not_null"}


class PostgresLoader:
    def __init__(self, dsn: Dsn, schemas: list[str] | None, timeout_s: float) -> None:
        self.dsn = dsn
        self.schemas = list(schemas) if schemas else None
        self.timeout_s = timeout_s

    def _connect_kwargs(self) -> dict[str, Any]:
        d = self.dsn
        kwargs: dict[str, Any] = dict(d.params)
        for key, value in (("host", d.host), ("port", d.port), ("user", d.user), ("dbname", d.database)):
            if value is not None:
                kwargs[key] = str(value)
        if d.password is not None:
            kwargs["password"] = d.password
        kwargs.setdefault("connect_timeout", str(max(2, math.ceil(self.timeout_s))))
        kwargs.setdefault("application_name", "bgmigrate")
        return kwargs

    def load(self) -> Schema:
        psycopg = import_driver(self.dsn, "psycopg", "psycopg", "PostgreSQL")
        failure: LiveSchemaError | None = None
        conn: Any = None
        try:
            conn = psycopg.connect(**self._connect_kwargs())
        except psycopg.Error as err:
            failure = self._connect_failure(err)
        except Exception as err:  # e.g. invalid option values rejected before connecting
            failure = masked_error(self.dsn, "connect", f"cannot connect to {self.dsn.masked}: {one_line(err)}", err)
        if failure is not None:
            raise failure
        try:
            try:
                conn.read_only = True
                with conn.cursor() as cur:
                    ms = str(max(1, int(self.timeout_s * 1000)))
                    cur.execute(
                        "SELECT set_config('statement_timeout', %s, true), set_config('lock_timeout', %s, true), "
                        "set_config('search_path', 'public', true)",
                        (ms, ms),
                    )
                    schema = self._read(cur, int(conn.info.server_version))
                conn.rollback()
            except psycopg.Error as err:
                failure = self._query_failure(err, psycopg)
        finally:
            conn.close()
        if failure is not None:
            raise failure
        return schema

    def _connect_failure(self, err: BaseException) -> LiveSchemaError:
        text = one_line(err)
        low = text.lower()
        if "authentication failed" in low or "no password supplied" in low or re.search(r"role .* does not exist", low):
            kind = "auth"
        elif "does not exist" in low and "database" in low:
            kind = "database"
        elif "timeout" in low or "timed out" in low:
            kind = "timeout"
        else:
            kind = "connect"
        text = re.sub(r"^connection failed: ", "", text)
        return masked_error(self.dsn, kind, f"cannot connect to {self.dsn.masked}: {text}", err)

    def _query_failure(self, err: BaseException, psycopg: Any) -> LiveSchemaError:
        text = one_line(err)
        if isinstance(err, (psycopg.errors.QueryCanceled, psycopg.errors.LockNotAvailable)):
            return masked_error(
                self.dsn,
                "timeout",
                f"reading the schema of {self.dsn.masked} timed out after {self.timeout_s:g} s: {text}",
                err,
            )
        if isinstance(err, psycopg.OperationalError):
            return masked_error(self.dsn, "connect", f"lost the connection to {self.dsn.masked}: {text}", err)
        return masked_error(self.dsn, "query", f"reading the schema of {self.dsn.masked} failed: {text}", err)

    # -- the catalog -------------------------------------------------------------------------------
    def _read(self, cur: Any, version: int) -> Schema:
        if self.schemas is not None:
            cur.execute("SELECT nspname FROM pg_namespace WHERE nspname = ANY(%s)", (self.schemas,))
            found = {r[0] for r in cur.fetchall()}
            missing = [s for s in self.schemas if s not in found]
            if missing:
                raise masked_error(
                    self.dsn, "database", f"schema {', '.join(map(repr, missing))} not found in {self.dsn.masked}"
                )
            where, args = "n.nspname = ANY(%s)", [self.schemas]
        else:
            where, args = _PG_SYSTEM, []
        schema = Schema()
        cur.execute("SHOW server_version")
        schema.source = {
            "kind": "live",
            "dialect": "postgres",
            "server": "PostgreSQL",
            "server_version": str(cur.fetchone()[0]).split(" ")[0],
            "dsn": self.dsn.masked,
        }
        by_oid = self._tables(cur, schema, where, args, version)
        if by_oid:
            oids = list(by_oid)
            attnames = self._columns(cur, by_oid, oids, version)
            self._constraints(cur, by_oid, oids, attnames)
            self._indexes(cur, schema, by_oid, oids, attnames, version)
        self._enums(cur, schema, where, args)
        self._views(cur, schema, where, args)
        return finish_schema(schema)

    @staticmethod
    def _name(nsp: str, rel: str) -> str:
        return qualify(nsp, rel, "public")

    def _tables(self, cur: Any, schema: Schema, where: str, args: list[Any], version: int) -> dict[int, Table]:
        # The planner's estimate: reltuples scaled to the relation's current size in pages.
        est = (
            "CASE WHEN {c}.reltuples < 0 THEN NULL "
            "WHEN {c}.relpages > 0 THEN {c}.reltuples / {c}.relpages "
            "* (pg_relation_size({c}.oid) / current_setting('block_size')::float8) "
            "ELSE {c}.reltuples END"
        )
        if version >= 120000:
            leaves = (
                "SELECT sum({est}), sum(pg_total_relation_size(lc.oid)) FROM pg_partition_tree(c.oid) pt "
                "JOIN pg_class lc ON lc.oid = pt.relid WHERE pt.isleaf AND lc.relkind = 'r'"
            ).format(est=est.format(c="lc"))
            part_rows = f"(SELECT s.sum FROM ({leaves}) s(sum, size))"
            part_size = f"(SELECT s.size FROM ({leaves}) s(sum, size))"
        else:
            part_rows = part_size = "NULL"
        cur.execute(
            f"""
            SELECT c.oid, n.nspname, c.relname, c.relkind,
                   CASE WHEN c.relkind = 'p' THEN {part_rows} WHEN c.relkind = 'f' THEN NULL
                        ELSE {est.format(c="c")} END,
                   CASE WHEN c.relkind = 'p' THEN {part_size} WHEN c.relkind = 'f' THEN NULL
                        ELSE pg_total_relation_size(c.oid) END
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'p', 'f') AND {where}
            ORDER BY n.nspname, c.relname
            """,
            args,
        )
        by_oid: dict[int, Table] = {}
        for oid, nsp, rel, _kind, rows, size in cur.fetchall():
            table = Table(self._name(nsp, rel))
            table.rows_estimate = round(rows) if rows is not None else None
            table.size_bytes = int(size) if size is not None else None
            schema.tables[table.name] = table
            by_oid[int(oid)] = table
        return by_oid

    def _columns(self, cur: Any, by_oid: dict[int, Table], oids: list[int], version: int) -> dict[int, dict[int, str]]:
        generated = "a.attgenerated" if version >= 120000 else "''"
        cur.execute(
            f"""
            SELECT a.attrelid, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                   pg_get_expr(d.adbin, d.adrelid), {generated}
            FROM pg_attribute a
            LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
            WHERE a.attrelid = ANY(%s::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
            ORDER BY a.attrelid, a.attnum
            """,
            (oids,),
        )
        attnames: dict[int, dict[int, str]] = {}
        for relid, attnum, name, type_text, notnull, default, gen in cur.fetchall():
            table = by_oid[int(relid)]
            if gen:  # a generated column's pg_attrdef row is its expression, not a default
                default = None
            table.columns[name] = Column(name, canonical_type(type_text, "postgres"), not notnull, default)
            attnames.setdefault(int(relid), {})[int(attnum)] = name
        return attnames

    def _constraints(
        self, cur: Any, by_oid: dict[int, Table], oids: list[int], attnames: dict[int, dict[int, str]]
    ) -> None:
        cur.execute(
            """
            SELECT con.conrelid, con.conname, con.contype, con.convalidated,
                   ARRAY(SELECT k.attnum FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, n) ORDER BY k.n),
                   CASE WHEN con.contype = 'c' THEN pg_get_expr(con.conbin, con.conrelid) END,
                   pg_get_constraintdef(con.oid, true)
            FROM pg_constraint con
            WHERE con.conrelid = ANY(%s::oid[]) AND con.contype IN ('p', 'u', 'f', 'c', 'x', 'n')
            ORDER BY con.conrelid, con.conname
            """,
            (oids,),
        )
        for relid, name, contype, validated, attnums, check, definition in cur.fetchall():
            names = attnames.get(int(relid), {})
            columns = [names[n] for n in attnums or [] if n in names]
            expression = check if contype == "c" else None
            if contype == "x":
                expression = definition
            by_oid[int(relid)].constraints.append(
                Constraint(name, _PG_KINDS[contype], columns, bool(validated), expression)
            )

    def _indexes(
        self,
        cur: Any,
        schema: Schema,
        by_oid: dict[int, Table],
        oids: list[int],
        attnames: dict[int, dict[int, str]],
        version: int,
    ) -> None:
        nkeys = "i.indnkeyatts" if version >= 110000 else "i.indnatts"
        cur.execute(
            f"""
            SELECT i.indrelid, n.nspname, ic.relname, i.indisunique,
                   ARRAY(SELECT u.attnum FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS u(attnum, k)
                         WHERE u.k <= {nkeys} ORDER BY u.k),
                   ARRAY(SELECT pg_get_indexdef(i.indexrelid, k, true) FROM generate_series(1, {nkeys}) AS k
                         ORDER BY k)
            FROM pg_index i
            JOIN pg_class ic ON ic.oid = i.indexrelid
            JOIN pg_namespace n ON n.oid = ic.relnamespace
            WHERE i.indrelid = ANY(%s::oid[])
            ORDER BY i.indrelid, ic.relname
            """,
            (oids,),
        )
        for relid, nsp, name, unique, attnums, defs in cur.fetchall():
            table = by_oid[int(relid)]
            index = self._name(nsp, name)
            names = attnames.get(int(relid), {})
            # plain columns by name, expressions as PostgreSQL prints them
            columns = [(names.get(n) or d) if n else d for n, d in zip(attnums or [], defs or [])]
            table.indexes[index] = bool(unique)
            schema.index_table[index] = table.name
            schema.index_columns[index] = columns

    def _enums(self, cur: Any, schema: Schema, where: str, args: list[Any]) -> None:
        cur.execute(
            f"""
            SELECT n.nspname, t.typname,
                   COALESCE(array_agg(e.enumlabel ORDER BY e.enumsortorder) FILTER (WHERE e.oid IS NOT NULL),
                            '{{}}')
            FROM pg_type t
            JOIN pg_namespace n ON n.oid = t.typnamespace
            LEFT JOIN pg_enum e ON e.enumtypid = t.oid
            WHERE t.typtype = 'e' AND {where}
            GROUP BY n.nspname, t.typname
            ORDER BY n.nspname, t.typname
            """,
            args,
        )
        for nsp, name, labels in cur.fetchall():
            schema.enums[self._name(nsp, name)] = list(labels)

    def _views(self, cur: Any, schema: Schema, where: str, args: list[Any]) -> None:
        cur.execute(
            f"""
            SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('v', 'm') AND {where}
            ORDER BY n.nspname, c.relname
            """,
            args,
        )
        for nsp, name in cur.fetchall():
            schema.views[self._name(nsp, name)] = None
