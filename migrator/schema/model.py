"""The schema as the migration history built it, replayed change by change.

Each object remembers the *unit* that created it (the file, or later the
release, under review). An object created in the unit being linted is new:
blue has never seen it, so changing it is free of compatibility and lock
hazards. An object the history never mentions is assumed to exist and to be
used by blue: the fail-safe assumption for a repository whose early history
is not in view.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..sql.changes import Change, Op


@dataclass(slots=True)
class Column:
    name: str
    type: str | None = None
    nullable: bool = True
    default: str | None = None
    created_in: str | None = None


@dataclass(slots=True)
class Constraint:
    name: str | None
    kind: str
    columns: list[str] = field(default_factory=list)
    validated: bool = True
    expression: str | None = None
    created_in: str | None = None


@dataclass(slots=True)
class Table:
    name: str
    columns: dict[str, Column] = field(default_factory=dict)
    constraints: list[Constraint] = field(default_factory=list)
    indexes: dict[str, bool] = field(default_factory=dict)  # name -> unique
    created_in: str | None = None
    known: bool = True  # False: never created in the history we saw
    # From a live database (migrator.schema.live), for the planner; None when not known.
    rows_estimate: int | None = None  # the server's row estimate (PostgreSQL reltuples, MySQL TABLE_ROWS)
    size_bytes: int | None = None  # table + indexes + TOAST (PostgreSQL), DATA_LENGTH + INDEX_LENGTH (MySQL)

    def column(self, name: str | None) -> Column | None:
        return self.columns.get(name) if name else None

    def constraint(self, name: str | None) -> Constraint | None:
        if name is None:
            return None
        return next((c for c in self.constraints if c.name == name), None)

    def proves_not_null(self, column: str) -> bool:
        """A validated CHECK (col IS NOT NULL) exists: PostgreSQL 12+ skips the SET NOT NULL scan."""
        pattern = re.compile(rf'^\(?\s*"?{re.escape(column)}"?\s+IS\s+NOT\s+NULL\s*\)?$', re.IGNORECASE)
        return any(
            c.kind == "check" and c.validated and c.expression and pattern.match(c.expression.strip())
            for c in self.constraints
        )


class Schema:
    """Tables, views, enum types and indexes, mutated by :meth:`apply`."""

    def __init__(self) -> None:
        self.tables: dict[str, Table] = {}
        self.views: dict[str, str | None] = {}  # name -> created_in
        self.enums: dict[str, list[str]] = {}
        self.index_table: dict[str, str] = {}  # index name -> table name
        self.index_columns: dict[str, list[str]] = {}  # index name -> columns (when plain column names)
        # Where other named objects were created: ("schema" | "type" | "index" | "function" | ..., name) -> unit
        self.created: dict[tuple[str, str], str] = {}
        # Where the schema came from: None for replayed history; for a live database (see
        # migrator.schema.live) {"kind": "live", "dialect", "server", "server_version", "dsn" (masked)}.
        self.source: dict[str, str] | None = None

    # ---- queries ---------------------------------------------------------------------------------
    def table(self, name: str | None) -> Table | None:
        return self.tables.get(name) if name else None

    def is_new(self, name: str | None, unit: str) -> bool:
        t = self.table(name)
        return t is not None and t.created_in == unit

    def column_is_new(self, table: str | None, column: str | None, unit: str) -> bool:
        t = self.table(table)
        if t is None:
            return False
        if t.created_in == unit:
            return True
        c = t.column(column)
        return c is not None and c.created_in == unit

    def table_of_index(self, index: str | None) -> str | None:
        return self.index_table.get(index) if index else None

    def object_is_new(self, kind: str, name: str | None, unit: str) -> bool:
        """A schema, type, index, view, function, trigger... created in ``unit``."""
        return name is not None and self.created.get((kind, name)) == unit

    def constraint_is_new(self, table: str | None, name: str | None, unit: str) -> bool:
        t = self.table(table)
        c = t.constraint(name) if t is not None else None
        return c is not None and c.created_in == unit

    def _ensure(self, name: str) -> Table:
        t = self.tables.get(name)
        if t is None:
            t = Table(name, known=False)
            self.tables[name] = t
        return t

    # ---- replay ----------------------------------------------------------------------------------
    def apply(self, change: Change, unit: str) -> None:
        op = change.op
        a = change.attrs
        name = change.table
        if op == Op.CREATE_TABLE and name:
            if a.get("if_not_exists") and name in self.tables and self.tables[name].known:
                return
            t = Table(name, created_in=unit)
            for col, facts in (a.get("columns") or {}).items():
                t.columns[col] = Column(col, facts.get("type"), facts.get("nullable", True), facts.get("default"), unit)
                # column-level PRIMARY KEY / UNIQUE are constraints like the table-level forms
                if facts.get("primary_key"):
                    t.constraints.append(Constraint(None, "primary_key", [col], True, None, unit))
                elif facts.get("unique"):
                    t.constraints.append(Constraint(None, "unique", [col], True, None, unit))
                for check in facts.get("checks") or ():  # column-level CHECK: a table CHECK on its column
                    t.constraints.append(Constraint(None, "check", [], True, check, unit))
            for c in a.get("constraints") or []:
                t.constraints.append(
                    Constraint(
                        c.get("constraint"),
                        c.get("kind", "other"),
                        c.get("columns") or [],
                        True,
                        c.get("expression"),
                        unit,
                    )
                )
            self.tables[name] = t
        elif op == Op.CREATE_TABLE_AS and name:
            self.tables[name] = Table(name, created_in=unit)
        elif op in (Op.DROP_TABLE,) and name:
            self.tables.pop(name, None)
        elif op == Op.RENAME_TABLE and name and a.get("new_name"):
            t = self.tables.pop(name, None) or Table(name, known=False)
            t.name = a["new_name"]
            self.tables[t.name] = t
        elif op == Op.ADD_COLUMN and name and change.column:
            t = self._ensure(name)
            if a.get("if_not_exists") and change.column in t.columns:
                return
            t.columns[change.column] = Column(
                change.column, a.get("type"), a.get("nullable", True), a.get("default"), unit
            )
        elif op == Op.DROP_COLUMN and name and change.column:
            t = self._ensure(name)
            t.columns.pop(change.column, None)
            t.constraints = [c for c in t.constraints if change.column not in c.columns]
        elif op == Op.RENAME_COLUMN and name and change.column and a.get("new_name"):
            t = self._ensure(name)
            col = t.columns.pop(change.column, None) or Column(change.column)
            col.name = a["new_name"]
            t.columns[col.name] = col
        elif op == Op.ALTER_COLUMN_TYPE and name and change.column:
            col = self._column(name, change.column, unit)
            col.type = a.get("type") or col.type
            if a.get("redefine"):  # MySQL MODIFY/CHANGE restates the whole column
                col.nullable = a.get("nullable", True)
                col.default = a.get("default")
        elif op == Op.SET_NOT_NULL and name and change.column:
            self._column(name, change.column, unit).nullable = False
        elif op == Op.DROP_NOT_NULL and name and change.column:
            self._column(name, change.column, unit).nullable = True
        elif op == Op.SET_DEFAULT and name and change.column:
            self._column(name, change.column, unit).default = a.get("default")
        elif op == Op.DROP_DEFAULT and name and change.column:
            self._column(name, change.column, unit).default = None
        elif op == Op.ADD_CONSTRAINT and name:
            t = self._ensure(name)
            t.constraints.append(
                Constraint(
                    a.get("constraint"),
                    a.get("kind", "other"),
                    a.get("columns") or [],
                    not a.get("not_valid"),
                    a.get("expression"),
                    unit,
                )
            )
            if a.get("kind") == "primary_key":
                for col in a.get("columns") or []:
                    if col in t.columns:
                        t.columns[col].nullable = False
        elif op == Op.DROP_CONSTRAINT and name:
            t = self._ensure(name)
            t.constraints = [c for c in t.constraints if c.name != a.get("constraint")]
        elif op == Op.VALIDATE_CONSTRAINT and name:
            c = self._ensure(name).constraint(a.get("constraint"))
            if c is not None:
                c.validated = True
        elif op == Op.CREATE_INDEX and name:
            index = a.get("index")
            if index:
                if a.get("if_not_exists") and index in self.index_table:
                    return
                self._ensure(name).indexes[index] = bool(a.get("unique"))
                self.index_table[index] = name
                cols = [c for c in a.get("columns") or [] if isinstance(c, str)]
                self.index_columns[index] = [c.strip('"').lower() for c in cols]
                self.created[("index", index)] = unit
        elif op == Op.DROP_INDEX:
            index = a.get("index")
            table = name or self.index_table.get(index or "")
            if table and index and table in self.tables:
                self.tables[table].indexes.pop(index, None)
            if index:
                self.index_table.pop(index, None)
                self.index_columns.pop(index, None)
                self.created.pop(("index", index), None)
        elif op == Op.CREATE_VIEW and name:
            if name not in self.views:
                self.views[name] = unit
        elif op == Op.DROP_VIEW and name:
            self.views.pop(name, None)
        elif op == Op.RENAME_VIEW and name and a.get("new_name"):
            self.views[a["new_name"]] = self.views.pop(name, None)
        elif op == Op.CREATE_TYPE and a.get("type_name"):
            self.enums[a["type_name"]] = []
            self.created[("type", a["type_name"])] = unit
        elif op == Op.CREATE_DOMAIN and a.get("domain"):
            self.created[("type", a["domain"])] = unit
        elif op == Op.DROP_TYPE and a.get("type_name"):
            self.enums.pop(a["type_name"], None)
            self.created.pop(("type", a["type_name"]), None)
        elif op == Op.CREATE_SCHEMA and a.get("schema"):
            if not (a.get("if_not_exists") and ("schema", a["schema"]) in self.created):
                self.created[("schema", a["schema"])] = unit
        elif op in (Op.DROP_SCHEMA, Op.DROP_DATABASE) and a.get("schema"):
            self.created.pop(("schema", a["schema"]), None)
        elif op == Op.CREATE_OBJECT and a.get("name"):
            self.created[(a.get("object") or "object", a["name"])] = unit
        elif op == Op.DROP_OBJECT and a.get("name"):
            self.created.pop((a.get("object") or "object", a["name"]), None)

    def _column(self, table: str, column: str, unit: str) -> Column:
        t = self._ensure(table)
        col = t.columns.get(column)
        if col is None:
            col = Column(column)
            t.columns[column] = col
        return col

    # ---- persistence -----------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "tables": {
                n: {
                    "columns": [[c.name, c.type, c.nullable, c.default, c.created_in] for c in t.columns.values()],
                    "constraints": [
                        [c.name, c.kind, c.columns, c.validated, c.expression, c.created_in] for c in t.constraints
                    ],
                    "indexes": t.indexes,
                    "created_in": t.created_in,
                    "known": t.known,
                }
                for n, t in self.tables.items()
            },
            "views": self.views,
            "enums": self.enums,
            "index_table": self.index_table,
        }
