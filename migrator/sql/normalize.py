"""Turn a sqlglot expression tree into :class:`Change` objects.

Returns ``None`` for anything this module does not model; the caller then
tries the token-level fallback and, failing that, reports the statement as
unclassified. Flags sqlglot drops (``NOT VALID`` on some forms, MySQL
``ALGORITHM``/``LOCK``, ``STORED``) are read from the statement's tokens.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from sqlglot import exp

from .changes import Change, Op
from .fallback import SERIAL_TYPES, mysql_online_options, read_name
from .tokens import Token, has_sequence, tokenize, words
from .volatility import default_is_volatile

_DIALECT_OBJECTS: dict[str, Any] = {}


def _sql(node: exp.Expression, dialect: str) -> str:
    """SQL text of ``node`` (no deep copy, one Dialect instance per dialect: this runs per column)."""
    d = _DIALECT_OBJECTS.get(dialect)
    if d is None:
        from sqlglot.dialects.dialect import Dialect

        d = _DIALECT_OBJECTS[dialect] = Dialect.get_or_raise(dialect)
    return d.generate(node, copy=False)


@lru_cache(maxsize=64)
def _tokens(sql: str) -> list[Token]:
    return tokenize(sql)


_RAW_WORDS: dict[str, list[str]] = {}


def raw_words(sql: str) -> list[str]:
    """Upper-cased words of the statement, outside strings and comments.

    Taken from sqlglot's own tokens of the statement when :func:`normalize` has them (no second
    tokenization); otherwise from the token-level reader."""
    found = _RAW_WORDS.get(sql)
    if found is None:
        found = words(_tokens(sql))
    return found


def _ident(node: exp.Expression | None) -> str | None:
    if node is None:
        return None
    if isinstance(node, exp.Identifier):
        return node.name if node.quoted else node.name.lower()
    if isinstance(node, (exp.Column,)):
        return _ident(node.this) if isinstance(node.this, exp.Identifier) else node.name.lower()
    name = node.name
    return name.lower() if name else None


def table_name(node: exp.Expression | None) -> str | None:
    """Qualified table name with PostgreSQL's default ``public`` schema left out."""
    if node is None:
        return None
    if isinstance(node, exp.Schema):
        node = node.this
    if not isinstance(node, exp.Table):
        return _ident(node)
    name = _ident(node.this) if isinstance(node.this, exp.Identifier) else (node.name or None)
    if not name:
        return None
    db = node.args.get("db")
    schema = _ident(db) if isinstance(db, exp.Identifier) else None
    if schema and schema != "public":
        return f"{schema}.{name}"
    return name


def _type_text(dtype: exp.Expression | None, dialect: str) -> str | None:
    if dtype is None:
        return None
    return _sql(dtype, dialect).lower()


def column_facts(col: exp.ColumnDef, dialect: str, raw_words: list[str] | None = None) -> dict[str, Any]:
    """Facts about a column definition: type, nullability, default, generation."""
    kind = col.args.get("kind")
    type_text = _type_text(kind, dialect)
    facts: dict[str, Any] = {
        "type": type_text,
        "nullable": True,
        "default": None,
        "volatile_default": False,
        "generated": None,
        "serial": False,
        "primary_key": False,
        "unique": False,
        "references": None,
        "auto_increment": False,
    }
    if isinstance(kind, exp.DataType) and (
        kind.this.name.lower() in SERIAL_TYPES or (type_text or "").lower() in SERIAL_TYPES
    ):
        facts["serial"] = True
        facts["nullable"] = False
    for constraint in col.args.get("constraints") or []:
        c = constraint.args.get("kind")
        if isinstance(c, exp.NotNullColumnConstraint):
            facts["nullable"] = bool(c.args.get("allow_null"))
        elif isinstance(c, exp.DefaultColumnConstraint):
            default_sql = _sql(c.this, dialect) if c.this is not None else None
            if default_sql and default_sql.upper() != "NULL":
                facts["default"] = default_sql
                facts["volatile_default"] = default_is_volatile(c.this, dialect)
        elif isinstance(c, exp.PrimaryKeyColumnConstraint):
            facts["primary_key"] = True
            facts["nullable"] = False
        elif isinstance(c, exp.UniqueColumnConstraint):
            facts["unique"] = True
        elif isinstance(c, exp.Reference):
            facts["references"] = table_name(c.this)
        elif isinstance(c, exp.GeneratedAsIdentityColumnConstraint):
            if c.args.get("this") is not None and c.args.get("expression") is not None:
                facts["generated"] = "stored"
            else:
                facts["generated"] = "identity"
                facts["nullable"] = False
        elif isinstance(c, exp.ComputedColumnConstraint):
            stored = bool(c.args.get("persisted"))
            if raw_words is not None and "STORED" in raw_words:
                stored = True
            if dialect == "postgres" and not (raw_words and "VIRTUAL" in raw_words):
                stored = True  # PostgreSQL < 18 only has stored generated columns
            facts["generated"] = "stored" if stored else "virtual"
        elif isinstance(c, exp.AutoIncrementColumnConstraint):
            facts["auto_increment"] = True
            facts["nullable"] = False
        elif isinstance(c, exp.CheckColumnConstraint):
            facts.setdefault("checks", []).append(_sql(c.this, dialect) if c.this is not None else "")
    position = col.args.get("position")
    if position is not None:
        facts["position"] = _sql(position, dialect)
    return facts


def normalize(tree: exp.Expression, sql: str, dialect: str, tokens: list[Any] | None = None) -> list[Change] | None:
    """Changes of one parsed statement; ``tokens`` are sqlglot's tokens of ``sql`` when at hand."""
    handler = _HANDLERS.get(type(tree))
    if handler is None:
        return None
    if tokens:
        _RAW_WORDS.clear()
        _RAW_WORDS[sql] = [
            word
            for t in tokens
            if "STRING" not in t.token_type.name
            # a quoted identifier is a placeholder that matches no keyword; multi-word tokens such
            # as "FOREIGN KEY" become their words
            for word in (["\x00IDENT"] if t.token_type.name == "IDENTIFIER" else t.text.upper().split())
        ] or [""]
    try:
        return handler(tree, sql, dialect)
    finally:
        _RAW_WORDS.clear()


# --- CREATE ---------------------------------------------------------------------------------------


def _create(tree: exp.Create, sql: str, dialect: str) -> list[Change] | None:
    kind = (tree.args.get("kind") or "").upper()
    exists = bool(tree.args.get("exists"))
    if kind == "TABLE":
        target = tree.this
        if tree.args.get("expression") is not None:
            return [Change(Op.CREATE_TABLE_AS, table_name(target), attrs={"if_not_exists": exists})]
        name = table_name(target)
        columns: dict[str, dict[str, Any]] = {}
        constraints: list[dict[str, Any]] = []
        raw = raw_words(sql)
        if isinstance(target, exp.Schema):
            for item in target.expressions:
                if isinstance(item, exp.ColumnDef):
                    columns[_ident(item.this) or item.name] = column_facts(item, dialect, raw)
                else:
                    constraints.append(_constraint_facts(item, dialect))
        for c in constraints:
            if c.get("kind") == "primary_key":
                for col in c.get("columns") or []:
                    if col in columns:
                        columns[col]["nullable"] = False
        attrs = {"if_not_exists": exists, "columns": columns, "constraints": constraints}
        attrs["temporary"] = "TEMPORARY" in raw[:3] or "TEMP" in raw[:3]
        return [Change(Op.CREATE_TABLE, name, attrs=attrs)]
    if kind == "INDEX":
        index = tree.this
        table = table_name(index.args.get("table"))
        params = index.args.get("params")
        cols: list[str] = []
        where = params.args.get("where") if params is not None else None
        if params is not None:
            for col in params.args.get("columns") or []:
                cols.append(_sql(col, dialect))
        attrs = {
            "index": _ident(index.this) if index.this is not None else None,
            "unique": bool(tree.args.get("unique")),
            "concurrently": bool(tree.args.get("concurrently")),
            "if_not_exists": exists,
            "columns": cols,
        }
        if where is not None:  # a partial index's predicate (WHERE ...), as SQL
            attrs["predicate"] = _sql(where.this, dialect)
        attrs.update(mysql_online_options(raw_words(sql)))
        return [Change(Op.CREATE_INDEX, table, attrs=attrs)]
    if kind == "VIEW":
        props = tree.args.get("properties")
        materialized = bool(props and any(isinstance(p, exp.MaterializedProperty) for p in props.expressions))
        return [
            Change(
                Op.CREATE_VIEW,
                table_name(tree.this),
                attrs={"materialized": materialized, "replace": bool(tree.args.get("replace"))},
            )
        ]
    if kind == "SCHEMA":
        target = tree.this
        name = _ident(target.args.get("db")) if isinstance(target, exp.Table) and target.args.get("db") else None
        return [Change(Op.CREATE_SCHEMA, None, attrs={"schema": name or table_name(target), "if_not_exists": exists})]
    if kind in ("SEQUENCE", "FUNCTION", "PROCEDURE", "TRIGGER", "TYPE", "MACRO", "STAGE"):
        if kind == "TYPE" and re.search(r"\bENUM\b", sql, re.IGNORECASE):
            return [Change(Op.CREATE_TYPE, None, attrs={"type_name": table_name(tree.this), "enum": True})]
        table = None
        if kind == "TRIGGER":
            raw = raw_words(sql)
            if "ON" in raw:
                table, _ = read_name(_tokens(sql), raw.index("ON") + 1)
        name = table_name(tree.this) or (tree.this.name.lower() if tree.this is not None and tree.this.name else None)
        return [Change(Op.CREATE_OBJECT, table, attrs={"object": kind.lower(), "name": name})]
    return None


def _constraint_facts(node: exp.Expression, dialect: str) -> dict[str, Any]:
    """Facts about a table constraint (``CONSTRAINT n ...`` or a bare one)."""
    name = None
    inner = node
    if isinstance(node, exp.Constraint):
        name = _ident(node.this)
        inner = node.expressions[0] if node.expressions else node
    facts: dict[str, Any] = {"constraint": name, "kind": "other", "columns": []}
    if isinstance(inner, exp.ForeignKey):
        facts["kind"] = "foreign_key"
        facts["columns"] = [_ident(e) for e in inner.expressions]
        ref = inner.args.get("reference")
        if ref is not None:
            facts["references"] = table_name(ref.this)
    elif isinstance(inner, exp.CheckColumnConstraint):
        facts["kind"] = "check"
        facts["expression"] = _sql(inner.this, dialect) if inner.this is not None else ""
    elif isinstance(inner, (exp.PrimaryKey, exp.PrimaryKeyColumnConstraint)):
        facts["kind"] = "primary_key"
        facts["columns"] = [_ident(e) for e in inner.expressions]
    elif isinstance(inner, exp.UniqueColumnConstraint):
        facts["kind"] = "unique"
        schema = inner.this
        if isinstance(schema, exp.Schema):
            facts["columns"] = [_ident(e) for e in schema.expressions]
            if facts["constraint"] is None and schema.this is not None:
                facts["constraint"] = _ident(schema.this)
    elif isinstance(inner, exp.IndexColumnConstraint):
        facts["kind"] = "index"
        facts["constraint"] = _ident(inner.this)
        facts["columns"] = [_ident(e) for e in inner.expressions]
    elif isinstance(inner, exp.Check):
        facts["kind"] = "check"
        facts["expression"] = _sql(inner.this, dialect) if inner.this is not None else ""
    return facts


# --- DROP -----------------------------------------------------------------------------------------


def _drop(tree: exp.Drop, sql: str, dialect: str) -> list[Change] | None:
    kind = (tree.args.get("kind") or "").upper()
    attrs = {"if_exists": bool(tree.args.get("exists")), "cascade": bool(tree.args.get("cascade"))}
    targets = tree.args.get("tables") or ([tree.this] if tree.this is not None else [])
    if kind == "TABLE":
        return [Change(Op.DROP_TABLE, table_name(t), attrs=dict(attrs)) for t in targets]
    if kind == "VIEW":
        return [
            Change(
                Op.DROP_VIEW,
                table_name(t),
                attrs={**attrs, "materialized": bool(tree.args.get("materialized"))},
            )
            for t in targets
        ]
    if kind == "INDEX":
        on = tree.args.get("cluster")
        table = table_name(on.this) if isinstance(on, exp.OnProperty) else None
        return [
            Change(
                Op.DROP_INDEX,
                table,
                attrs={**attrs, "index": table_name(t), "concurrently": bool(tree.args.get("concurrently"))},
            )
            for t in targets
        ]
    if kind in ("SCHEMA", "DATABASE"):
        op = Op.DROP_SCHEMA if kind == "SCHEMA" else Op.DROP_DATABASE
        out = []
        for t in targets:
            name = _ident(t.args.get("db")) if isinstance(t, exp.Table) and t.args.get("db") else table_name(t)
            out.append(Change(op, None, attrs={**attrs, "schema": name}))
        return out
    if kind in ("FUNCTION", "PROCEDURE", "TRIGGER", "SEQUENCE", "TYPE", "EXTENSION"):
        if kind == "TYPE":
            return [Change(Op.DROP_TYPE, None, attrs={**attrs, "type_name": table_name(t)}) for t in targets]
        return None  # let the token classifier read ``ON table`` for triggers
    return None


# --- ALTER ----------------------------------------------------------------------------------------


def _alter(tree: exp.Alter, sql: str, dialect: str) -> list[Change] | None:
    kind = (tree.args.get("kind") or "").upper()
    table = table_name(tree.this)
    actions = tree.args.get("actions") or []
    raw = raw_words(sql)
    online = mysql_online_options(raw) if dialect == "mysql" else {}
    if kind == "VIEW":
        if len(actions) == 1 and isinstance(actions[0], exp.AlterRename):
            return [Change(Op.RENAME_VIEW, table, attrs={"new_name": table_name(actions[0].this)})]
        return None
    if kind == "INDEX":
        return None
    if kind != "TABLE":
        return None
    if not actions:
        options = tree.args.get("options") or []
        if options and any(isinstance(o, exp.EngineProperty) for o in options):
            return [Change(Op.ALTER_TABLE_STORAGE, table, attrs={"storage": "engine", **online})]
        if options and online:
            return [Change(Op.ALTER_TABLE_OTHER, table, attrs={"action": "options", **online})]
        return None
    changes: list[Change] = []
    not_valid_all = bool(tree.args.get("not_valid")) or has_sequence(raw, "NOT", "VALID")
    for action in actions:
        produced = _alter_action(action, table, dialect, raw, not_valid_all)
        if produced is None:
            return None
        changes.extend(produced)
    for change in changes:
        change.attrs.update(online)
    return changes


def _alter_action(
    action: exp.Expression, table: str | None, dialect: str, raw: list[str], not_valid: bool
) -> list[Change] | None:
    if isinstance(action, exp.ColumnDef):
        facts = column_facts(action, dialect, raw)
        facts["if_not_exists"] = bool(action.args.get("exists"))
        return [Change(Op.ADD_COLUMN, table, _ident(action.this), attrs=facts)]
    if isinstance(action, exp.Drop):
        kind = (action.args.get("kind") or "").upper()
        targets = action.args.get("tables") or []
        attrs = {"if_exists": bool(action.args.get("exists")), "cascade": bool(action.args.get("cascade"))}
        if kind == "COLUMN":
            return [Change(Op.DROP_COLUMN, table, _ident(t), attrs=dict(attrs)) for t in targets]
        if kind in ("CONSTRAINT", "FOREIGN KEY", "CHECK"):
            return [Change(Op.DROP_CONSTRAINT, table, attrs={**attrs, "constraint": table_name(t)}) for t in targets]
        if kind == "PRIMARY KEY":
            return [Change(Op.DROP_CONSTRAINT, table, attrs={**attrs, "constraint": None, "kind": "primary_key"})]
        if kind in ("INDEX", "KEY"):
            return [Change(Op.DROP_INDEX, table, attrs={**attrs, "index": table_name(t)}) for t in targets]
        return None
    if isinstance(action, exp.AlterColumn):
        column = _ident(action.this)
        args = action.args
        if args.get("dtype") is not None:
            using = args.get("using")
            return [
                Change(
                    Op.ALTER_COLUMN_TYPE,
                    table,
                    column,
                    attrs={
                        "type": _type_text(args["dtype"], dialect),
                        "using": _sql(using, dialect) if isinstance(using, exp.Expression) else None,
                    },
                )
            ]
        if "allow_null" in args and args.get("allow_null") is not None:
            if args.get("drop"):
                return [Change(Op.DROP_NOT_NULL, table, column)]
            return [Change(Op.SET_NOT_NULL, table, column)]
        if args.get("default") is not None:
            default = args["default"]
            if isinstance(default, exp.Null):
                return [Change(Op.DROP_DEFAULT, table, column, attrs={"set_null": True})]
            return [
                Change(
                    Op.SET_DEFAULT,
                    table,
                    column,
                    attrs={
                        "default": _sql(default, dialect),
                        "volatile_default": default_is_volatile(default, dialect),
                    },
                )
            ]
        if args.get("drop"):
            return [Change(Op.DROP_DEFAULT, table, column)]
        return None
    if isinstance(action, exp.RenameColumn):
        return [
            Change(
                Op.RENAME_COLUMN,
                table,
                _ident(action.this),
                attrs={"new_name": _ident(action.args.get("to"))},
            )
        ]
    if isinstance(action, exp.AlterRename):
        # PostgreSQL accepts ALTER TABLE t RENAME a TO b (COLUMN is optional); sqlglot reads it as a
        # table rename to "a". The words tell: a table rename is RENAME TO.
        if "RENAME" in raw and raw[raw.index("RENAME") + 1 : raw.index("RENAME") + 2] != ["TO"]:
            return None  # the token reader handles the column form
        return [Change(Op.RENAME_TABLE, table, attrs={"new_name": table_name(action.this)})]
    if isinstance(action, exp.AddConstraint):
        out = []
        for node in action.expressions:
            facts = _constraint_facts(node, dialect)
            if facts["kind"] == "other":
                return None
            if facts["kind"] == "index":
                out.append(
                    Change(
                        Op.CREATE_INDEX,
                        table,
                        attrs={"index": facts["constraint"], "unique": False, "columns": facts["columns"]},
                    )
                )
                continue
            if facts["kind"] == "unique" and dialect == "mysql":
                out.append(
                    Change(
                        Op.CREATE_INDEX,
                        table,
                        attrs={"index": facts["constraint"], "unique": True, "columns": facts["columns"]},
                    )
                )
                continue
            facts["not_valid"] = not_valid and facts["kind"] in ("foreign_key", "check")
            if facts["kind"] == "check" and has_sequence(raw, "NOT", "ENFORCED"):
                facts["not_enforced"] = True  # MySQL CHECK ... NOT ENFORCED: declared, never checked
            facts["using_index"] = None
            out.append(Change(Op.ADD_CONSTRAINT, table, attrs=facts))
        return out
    if isinstance(action, exp.ModifyColumn):  # MySQL MODIFY / CHANGE
        coldef = action.this
        if not isinstance(coldef, exp.ColumnDef):
            return None
        facts = column_facts(coldef, dialect, raw)
        new_name = _ident(coldef.this)
        old_name = _ident(action.args.get("rename_from")) or new_name
        facts["redefine"] = True
        # The redefinition applies to the column as it is named before the statement; the
        # rename (CHANGE old new) follows, so the schema replays both in that order.
        out = [Change(Op.ALTER_COLUMN_TYPE, table, old_name, attrs=facts)]
        if old_name != new_name:
            out.append(Change(Op.RENAME_COLUMN, table, old_name, attrs={"new_name": new_name, "via": "change"}))
        return out
    if isinstance(action, exp.AlterSet):
        if action.args.get("tablespace") is not None:
            return [Change(Op.ALTER_TABLE_STORAGE, table, attrs={"storage": "set tablespace"})]
        if action.args.get("access_method") is not None:
            return [Change(Op.ALTER_TABLE_STORAGE, table, attrs={"storage": "set access method"})]
        option = action.args.get("option")
        if option is not None and option.name.upper() in ("LOGGED", "UNLOGGED"):
            return [Change(Op.ALTER_TABLE_STORAGE, table, attrs={"storage": "set " + option.name.lower()})]
        return [Change(Op.ALTER_TABLE_OTHER, table, attrs={"action": "set"})]
    return None


# --- other statements -----------------------------------------------------------------------------


def _truncate(tree: exp.TruncateTable, sql: str, dialect: str) -> list[Change]:
    cascade = (str(tree.args.get("option") or "")).upper() == "CASCADE"
    return [Change(Op.TRUNCATE, table_name(t), attrs={"cascade": cascade}) for t in tree.expressions]


def _dml(op: str):
    def handler(tree: exp.Expression, sql: str, dialect: str) -> list[Change]:
        target = tree.this
        if isinstance(target, exp.Schema):
            target = target.this
        attrs: dict[str, Any] = {}
        if op in (Op.UPDATE, Op.DELETE):
            attrs["where"] = tree.args.get("where") is not None
        if op == Op.INSERT:
            source = tree.args.get("expression")
            attrs["from_select"] = isinstance(source, (exp.Select, exp.Union, exp.Subquery))
        return [Change(op, table_name(target) if isinstance(target, exp.Table) else None, attrs=attrs)]

    return handler


def _set(tree: exp.Set, sql: str, dialect: str) -> list[Change]:
    out = []
    for item in tree.expressions:
        local = (str(item.args.get("kind") or "")).upper() == "LOCAL"
        inner = item.this
        setting = None
        value = None
        if isinstance(inner, exp.EQ):
            setting = _sql(inner.this, dialect).lower().replace("@@session.", "").replace("@@", "")
            setting = setting.removeprefix("session.").removeprefix("session ")
            rhs = inner.expression
            value = rhs.name if isinstance(rhs, exp.Literal) else _sql(rhs, dialect)
        elif inner is not None:
            setting = _sql(inner, dialect).lower()
        out.append(Change(Op.SET, attrs={"setting": setting, "value": value, "local": local}))
    return out or [Change(Op.SET, attrs={"setting": None})]


def _simple(op: str):
    def handler(tree: exp.Expression, sql: str, dialect: str) -> list[Change]:
        return [Change(op)]

    return handler


def _analyze(tree: exp.Expression, sql: str, dialect: str) -> list[Change]:
    target = tree.this
    return [Change(Op.ANALYZE, table_name(target) if isinstance(target, exp.Table) else None)]


_HANDLERS: dict[type, Any] = {
    exp.Create: _create,
    exp.Drop: _drop,
    exp.Alter: _alter,
    exp.TruncateTable: _truncate,
    exp.Insert: _dml(Op.INSERT),
    exp.Update: _dml(Op.UPDATE),
    exp.Delete: _dml(Op.DELETE),
    exp.Select: _simple(Op.SELECT),
    exp.Union: _simple(Op.SELECT),
    exp.Set: _set,
    exp.Transaction: _simple(Op.BEGIN),
    exp.Commit: _simple(Op.COMMIT),
    exp.Rollback: _simple(Op.ROLLBACK),
    exp.Comment: _simple(Op.COMMENT),
    exp.Grant: _simple(Op.GRANT),
    exp.Analyze: _analyze,
}
if hasattr(exp, "Revoke"):
    _HANDLERS[exp.Revoke] = _simple(Op.GRANT)
