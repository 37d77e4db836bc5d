"""Token-level classification for statements sqlglot does not model.

sqlglot returns a generic ``Command`` for some migration statements
(``ALTER TABLE ... VALIDATE CONSTRAINT``, ``ALTER TYPE ... ADD VALUE``,
``ADD CONSTRAINT ... USING INDEX``, ``VACUUM``, ``REINDEX``) and raises on
others (``CLUSTER t USING idx``). This module reads those from tokens. It
returns ``None`` when it does not recognise the statement: the caller then
reports it as unclassified (fail safe), never as harmless.
"""

from __future__ import annotations

from .changes import Change, Op
from .tokens import Token, find_sequence, has_sequence, tokenize, words

_CREATE_OBJECTS = {
    "EXTENSION",
    "FUNCTION",
    "PROCEDURE",
    "TRIGGER",
    "SEQUENCE",
    "TYPE",
    "RULE",
    "POLICY",
    "AGGREGATE",
    "OPERATOR",
    "COLLATION",
    "PUBLICATION",
    "SUBSCRIPTION",
    "STATISTICS",
    "ROLE",
    "USER",
    "EVENT",
    "CAST",
    "CONVERSION",
    "LANGUAGE",
    "SERVER",
    "TEXT",
    "FOREIGN",
}

_TABLE_STORAGE = ("TABLESPACE", "LOGGED", "UNLOGGED", "ACCESS")


def read_name(tokens: list[Token], i: int) -> tuple[str | None, int]:
    """Read a possibly qualified name starting at ``i``; return it and the next index."""
    parts: list[str] = []
    n = len(tokens)
    while i < n and tokens[i].kind in ("word", "qident"):
        parts.append(tokens[i].ident)
        i += 1
        if i < n and tokens[i].text == ".":
            i += 1
            continue
        break
    if not parts:
        return None, i
    if len(parts) > 1 and parts[0] == "public":
        parts = parts[1:]
    return ".".join(parts), i


def _skip(ws: list[str], i: int, *optional: str) -> int:
    """Skip any of the ``optional`` words (in any order) at ``i``."""
    while i < len(ws) and ws[i] in optional:
        i += 1
    return i


def _skip_if_exists(ws: list[str], i: int) -> tuple[int, bool]:
    if ws[i : i + 2] == ["IF", "EXISTS"]:
        return i + 2, True
    if ws[i : i + 3] == ["IF", "NOT", "EXISTS"]:
        return i + 3, True
    return i, False


def _split_actions(tokens: list[Token], start: int) -> list[list[Token]]:
    """Split ALTER TABLE actions on top-level commas."""
    out: list[list[Token]] = [[]]
    depth = 0
    for t in tokens[start:]:
        if t.text == "(":
            depth += 1
        elif t.text == ")":
            depth -= 1
        elif t.text == "," and depth == 0:
            out.append([])
            continue
        out[-1].append(t)
    return [a for a in out if a]


def classify_tokens(sql: str, dialect: str) -> list[Change] | None:
    tokens = tokenize(sql)
    if not tokens:
        return None
    ws = words(tokens)
    head = ws[0]
    if head in ("BEGIN", "START") and (len(ws) == 1 or ws[1] in ("TRANSACTION", "WORK", "ISOLATION", "READ")):
        return [Change(Op.BEGIN)]
    if head in ("COMMIT", "END") and (len(ws) == 1 or ws[1] in ("TRANSACTION", "WORK", "AND")):
        return [Change(Op.COMMIT)]
    if head in ("ROLLBACK", "ABORT") and "TO" not in ws:
        return [Change(Op.ROLLBACK)]
    if head == "ALTER" and len(ws) > 2:
        return _alter(tokens, ws, dialect)
    if head == "CREATE":
        return _create(tokens, ws)
    if head == "DROP":
        return _drop(tokens, ws)
    if head == "VACUUM":
        full = "FULL" in ws
        name, _ = read_name(tokens, _last_name_start(tokens))
        return [Change(Op.VACUUM, name, attrs={"full": full})]
    if head == "CLUSTER":
        i = _skip(ws, 1, "VERBOSE")
        name, i = read_name(tokens, i) if i < len(ws) and ws[i] != "(" else (None, i)
        index = None
        if i < len(ws) and ws[i] in ("USING", "ON"):
            index, _ = read_name(tokens, i + 1)
        return [Change(Op.CLUSTER, name, attrs={"index": index})]
    if head == "REINDEX":
        i = 1
        if i < len(ws) and ws[i] == "(":
            i = ws.index(")", i) + 1 if ")" in ws[i:] else i
        kind = ws[i] if i < len(ws) else "INDEX"
        concurrently = "CONCURRENTLY" in ws
        i = _skip(ws, i + 1, "CONCURRENTLY")
        name, _ = read_name(tokens, i)
        attrs = {"target": kind.lower(), "concurrently": concurrently}
        if kind == "INDEX":
            attrs["index"] = name
            return [Change(Op.REINDEX, None, attrs=attrs)]
        return [Change(Op.REINDEX, name if kind == "TABLE" else None, attrs=attrs)]
    if head == "REFRESH" and has_sequence(ws, "MATERIALIZED", "VIEW"):
        i = _skip(ws, 3, "CONCURRENTLY")
        name, _ = read_name(tokens, i)
        return [Change(Op.REFRESH_MATVIEW, name, attrs={"concurrently": "CONCURRENTLY" in ws})]
    if head == "RESET":
        return [Change(Op.SET, attrs={"setting": ws[1].lower() if len(ws) > 1 else "all", "value": None})]
    if head == "LOCK":
        i = _skip(ws, 1, "TABLE", "ONLY")
        name, _ = read_name(tokens, i)
        mode = "ACCESS EXCLUSIVE"
        if "IN" in ws and "MODE" in ws:
            mode = " ".join(ws[ws.index("IN") + 1 : ws.index("MODE")])
        return [Change(Op.LOCK_TABLE, name, attrs={"mode": mode})]
    if head == "COMMENT":
        return [Change(Op.COMMENT)]
    if head in ("GRANT", "REVOKE"):
        return [Change(Op.GRANT)]
    if head in ("ANALYZE", "ANALYSE"):
        name, _ = read_name(tokens, _skip(ws, 1, "VERBOSE"))
        return [Change(Op.ANALYZE, name)]
    if head == "RENAME" and len(ws) > 1 and ws[1] == "TABLE":  # MySQL
        changes = []
        i = 2
        while i < len(tokens):
            old, i = read_name(tokens, i)
            if i < len(ws) and ws[i] == "TO":
                new, i = read_name(tokens, i + 1)
                changes.append(Change(Op.RENAME_TABLE, old, attrs={"new_name": new}))
            if i < len(ws) and ws[i] == ",":
                i += 1
                continue
            break
        return changes or None
    if head == "OPTIMIZE" and len(ws) > 1:
        name, _ = read_name(tokens, _skip(ws, 1, "TABLE", "NO_WRITE_TO_BINLOG", "LOCAL"))
        return [Change(Op.OPTIMIZE_TABLE, name)]
    if head in ("SET", "SHOW", "USE", "DISCARD", "NOTIFY", "LISTEN", "DEALLOCATE", "CHECKPOINT", "SAVEPOINT"):
        return [Change(Op.SET, attrs={"setting": ws[1].lower() if len(ws) > 1 else head.lower()})]
    if head == "RELEASE" or (head == "ROLLBACK" and "TO" in ws):
        return [Change(Op.SET, attrs={"setting": "savepoint"})]
    if head == "SELECT" or head == "WITH" or head == "VALUES" or head == "TABLE":
        return [Change(Op.SELECT)]
    return None


def _last_name_start(tokens: list[Token]) -> int:
    """Index of the first token of the trailing (possibly qualified) name, or len when none."""
    i = len(tokens)
    while i > 0 and tokens[i - 1].kind in ("word", "qident", "op") and tokens[i - 1].text not in (")", ","):
        if tokens[i - 1].kind == "op" and tokens[i - 1].text != ".":
            break
        if tokens[i - 1].kind == "word" and tokens[i - 1].upper in (
            "FULL",
            "VERBOSE",
            "ANALYZE",
            "FREEZE",
            "VACUUM",
        ):
            break
        i -= 1
    return i


def _alter(tokens: list[Token], ws: list[str], dialect: str) -> list[Change] | None:
    kind = ws[1]
    if kind == "TABLE":
        i, _ = _skip_if_exists(ws, 2)
        i = _skip(ws, i, "ONLY")
        table, i = read_name(tokens, i)
        if table is None:
            return None
        if i < len(ws) and ws[i] == "*":
            i += 1
        changes: list[Change] = []
        for action in _split_actions(tokens, i):
            ch = _alter_table_action(table, action)
            if ch is None:
                return None
            changes.append(ch)
        return changes or None
    if kind == "TYPE":
        name, i = read_name(tokens, 2)
        rest = ws[i:]
        if rest[:2] == ["ADD", "VALUE"]:
            strings = [t.text[1:-1].replace("''", "'") for t in tokens[i:] if t.kind == "string"]
            attrs = {
                "type_name": name,
                "value": strings[0] if strings else None,
                "if_not_exists": has_sequence(rest, "IF", "NOT", "EXISTS"),
                "before": strings[1] if "BEFORE" in rest and len(strings) > 1 else None,
                "after": strings[1] if "AFTER" in rest and len(strings) > 1 else None,
            }
            return [Change(Op.ADD_ENUM_VALUE, None, attrs=attrs)]
        if rest[:2] == ["RENAME", "VALUE"]:
            strings = [t.text[1:-1] for t in tokens[i:] if t.kind == "string"]
            return [
                Change(
                    Op.RENAME_ENUM_VALUE,
                    None,
                    attrs={
                        "type_name": name,
                        "value": strings[0] if strings else None,
                        "new_name": strings[-1],
                    },
                )
            ]
        if rest[:2] == ["RENAME", "TO"]:
            new, _ = read_name(tokens, i + 2)
            return [Change(Op.RENAME_TABLE, None, attrs={"object": "type", "type_name": name, "new_name": new})]
        return [Change(Op.ALTER_TABLE_OTHER, None, attrs={"object": "type", "type_name": name})]
    if kind == "SCHEMA":
        name, i = read_name(tokens, 2)
        if ws[i : i + 2] == ["RENAME", "TO"]:
            new, _ = read_name(tokens, i + 2)
            return [Change(Op.RENAME_SCHEMA, None, attrs={"schema": name, "new_name": new})]
        return [Change(Op.ALTER_TABLE_OTHER, None, attrs={"object": "schema", "schema": name})]
    if kind in ("VIEW", "MATERIALIZED"):
        i = 3 if kind == "MATERIALIZED" else 2
        i, _ = _skip_if_exists(ws, i)
        name, i = read_name(tokens, i)
        if ws[i : i + 2] == ["RENAME", "TO"]:
            new, _ = read_name(tokens, i + 2)
            return [Change(Op.RENAME_VIEW, name, attrs={"new_name": new})]
        return [Change(Op.ALTER_TABLE_OTHER, name, attrs={"object": "view"})]
    if kind == "INDEX":
        i, _ = _skip_if_exists(ws, 2)
        name, i = read_name(tokens, i)
        storage = has_sequence(ws, "SET", "TABLESPACE")
        return [Change(Op.ALTER_TABLE_OTHER, None, attrs={"object": "index", "index": name, "rewrite": storage})]
    if kind == "DOMAIN":
        name, i = read_name(tokens, 2)
        if i < len(ws) and ws[i] == "ADD":
            return [
                Change(
                    Op.ALTER_DOMAIN_ADD_CONSTRAINT,
                    None,
                    attrs={"domain": name, "not_valid": has_sequence(ws, "NOT", "VALID")},
                )
            ]
        return [Change(Op.ALTER_TABLE_OTHER, None, attrs={"object": "domain", "domain": name})]
    if kind in (
        "SEQUENCE",
        "FUNCTION",
        "PROCEDURE",
        "TRIGGER",
        "EXTENSION",
        "ROLE",
        "USER",
        "DATABASE",
        "DEFAULT",
        "POLICY",
        "PUBLICATION",
        "SUBSCRIPTION",
        "SYSTEM",
        "EVENT",
        "STATISTICS",
        "AGGREGATE",
        "OPERATOR",
        "COLLATION",
    ):
        return [Change(Op.ALTER_TABLE_OTHER, None, attrs={"object": kind.lower()})]
    return None


def _parenthesized(tokens: list[Token], i: int) -> str:
    """Text of the parenthesized group starting at ``tokens[i]`` (without the outer parentheses)."""
    return " ".join(t.text for t in _inside_parens(tokens, i, all_tokens=True))


def _inside_parens(tokens: list[Token], i: int, all_tokens: bool = False) -> list[Token]:
    out: list[Token] = []
    if i >= len(tokens) or tokens[i].text != "(":
        return out
    depth = 0
    for t in tokens[i:]:
        if t.text == "(":
            depth += 1
            if depth == 1:
                continue
        elif t.text == ")":
            depth -= 1
            if depth == 0:
                break
        if all_tokens or (depth == 1 and t.kind in ("word", "qident")):
            out.append(t)
    return out


_COLUMN_CONSTRAINT_WORDS = {
    "NOT",
    "NULL",
    "DEFAULT",
    "PRIMARY",
    "UNIQUE",
    "REFERENCES",
    "CHECK",
    "CONSTRAINT",
    "GENERATED",
    "COLLATE",
}


def _add_column(table: str, action: list[Token], i: int) -> Change | None:
    """``ADD [COLUMN] [IF NOT EXISTS] name type [constraints]`` read from tokens."""
    aw = words(action)
    i, if_not_exists = _skip_if_exists(aw, i)
    if i >= len(action) or action[i].kind not in ("word", "qident"):
        return None
    column = action[i].ident
    j = i + 1
    type_tokens: list[str] = []
    depth = 0
    while j < len(action):
        t = action[j]
        if depth == 0 and t.kind == "word" and t.upper in _COLUMN_CONSTRAINT_WORDS:
            break
        depth += t.text == "("
        depth -= t.text == ")"
        type_tokens.append(t.text)
        j += 1
    if not type_tokens:
        return None
    rest = aw[j:]
    type_text = "".join(x if x in "(),[]" else f" {x}" for x in type_tokens).strip().lower()
    default = None
    if "DEFAULT" in rest:
        k = j + rest.index("DEFAULT") + 1
        parts = []
        depth = 0
        while k < len(action):
            t = action[k]
            if depth == 0 and t.kind == "word" and t.upper in _COLUMN_CONSTRAINT_WORDS - {"NULL"}:
                break
            depth += t.text == "("
            depth -= t.text == ")"
            parts.append(t.text)
            k += 1
        default = " ".join(parts) or None
        if default and default.upper() == "NULL":
            default = None
    from .volatility import sql_default_is_volatile

    generated = None
    if "GENERATED" in rest:
        generated = "stored" if "STORED" in rest else ("identity" if "IDENTITY" in rest else "virtual")
    base = type_text.split("(")[0].strip()
    serial = base in SERIAL_TYPES
    ref = find_sequence(aw, "REFERENCES")
    facts = {
        "type": type_text,
        "nullable": not (has_sequence(rest, "NOT", "NULL") or "PRIMARY" in rest or serial),
        "default": default,
        "volatile_default": bool(default) and sql_default_is_volatile(default),
        "generated": generated,
        "serial": serial,
        "primary_key": "PRIMARY" in rest,
        "unique": "UNIQUE" in rest,
        "references": read_name(action, ref + 1)[0] if ref != -1 else None,
        "auto_increment": "AUTO_INCREMENT" in rest,
        "if_not_exists": if_not_exists,
    }
    return Change(Op.ADD_COLUMN, table, column, attrs=facts)


SERIAL_TYPES = frozenset({"serial", "serial2", "serial4", "serial8", "smallserial", "bigserial"})


def _alter_table_action(table: str, action: list[Token]) -> Change | None:
    aw = words(action)
    head = aw[0]
    if head == "VALIDATE" and len(aw) > 2 and aw[1] == "CONSTRAINT":
        name, _ = read_name(action, 2)
        return Change(Op.VALIDATE_CONSTRAINT, table, attrs={"constraint": name})
    if head == "ADD":
        i = 1
        name = None
        if i < len(aw) and aw[i] == "CONSTRAINT":
            name, i = read_name(action, i + 1)
        rest = aw[i:]
        if "USING" in rest and "INDEX" in rest and rest and rest[0] in ("UNIQUE", "PRIMARY"):
            idx_pos = find_sequence(aw, "USING", "INDEX")
            index, _ = read_name(action, idx_pos + 2)
            kind = "unique" if rest[0] == "UNIQUE" else "primary_key"
            return Change(
                Op.ADD_CONSTRAINT,
                table,
                attrs={"constraint": name, "kind": kind, "using_index": index, "not_valid": False},
            )
        if rest and rest[0] == "EXCLUDE":
            return Change(Op.ADD_CONSTRAINT, table, attrs={"constraint": name, "kind": "exclude", "not_valid": False})
        not_valid = has_sequence(aw, "NOT", "VALID")
        if rest and rest[0] == "CHECK":
            expression = _parenthesized(action, i + 1)
            attrs = {"constraint": name, "kind": "check", "expression": expression, "not_valid": not_valid}
            if has_sequence(aw, "NOT", "ENFORCED"):
                attrs["not_enforced"] = True
            return Change(Op.ADD_CONSTRAINT, table, attrs={**attrs, "columns": []})
        if rest[:2] == ["FOREIGN", "KEY"]:
            ref = find_sequence(aw, "REFERENCES")
            references, _ = read_name(action, ref + 1) if ref != -1 else (None, 0)
            columns = [t.ident for t in _inside_parens(action, i + 2)]
            attrs = {"constraint": name, "kind": "foreign_key", "references": references, "not_valid": not_valid}
            return Change(Op.ADD_CONSTRAINT, table, attrs={**attrs, "columns": columns})
        if rest[:2] == ["NOT", "NULL"] and name:  # PostgreSQL 18: ADD CONSTRAINT n NOT NULL col [NOT VALID]
            column, _ = read_name(action, i + 2)
            attrs = {"constraint": name, "kind": "not_null", "columns": [column], "not_valid": not_valid}
            return Change(Op.ADD_CONSTRAINT, table, column, attrs=attrs)
        if name is None:
            return _add_column(table, action, 2 if len(aw) > 1 and aw[1] == "COLUMN" else 1)
        return None
    if head in ("ATTACH", "DETACH") and len(aw) > 2 and aw[1] == "PARTITION":
        part, _ = read_name(action, 2)
        op = Op.ATTACH_PARTITION if head == "ATTACH" else Op.DETACH_PARTITION
        attrs = {"partition": part, "concurrently": "CONCURRENTLY" in aw, "finalize": "FINALIZE" in aw}
        return Change(op, table, attrs=attrs)
    if head == "SET" and len(aw) > 1 and aw[1] in _TABLE_STORAGE:
        return Change(Op.ALTER_TABLE_STORAGE, table, attrs={"storage": " ".join(aw[1:3]).lower()})
    if head == "FORCE" and len(aw) == 1:  # MySQL: rebuild the table
        return Change(Op.ALTER_TABLE_STORAGE, table, attrs={"storage": "force"})
    if head in ("OWNER", "ENABLE", "DISABLE", "REPLICA", "INHERIT", "NO", "CLUSTER", "FORCE", "OF", "NOT"):
        return Change(Op.ALTER_TABLE_OTHER, table, attrs={"action": " ".join(aw[:2]).lower()})
    if head in ("SET", "RESET") and len(aw) > 1 and aw[1] in ("(", "WITH", "WITHOUT", "SCHEMA"):
        return Change(Op.ALTER_TABLE_OTHER, table, attrs={"action": " ".join(aw[:2]).lower()})
    if head == "RENAME" and len(aw) > 1 and aw[1] in ("CONSTRAINT", "INDEX", "KEY"):
        return Change(Op.ALTER_TABLE_OTHER, table, attrs={"action": f"rename {aw[1].lower()}"})
    if head == "RENAME" and len(aw) > 3 and aw[1] not in ("TO", "AS", "CONSTRAINT", "INDEX", "KEY"):
        # RENAME [COLUMN] a TO b
        i = 2 if aw[1] == "COLUMN" else 1
        column, i = read_name(action, i)
        if column and i < len(aw) and aw[i] == "TO":
            new, _ = read_name(action, i + 1)
            return Change(Op.RENAME_COLUMN, table, column, attrs={"new_name": new})
    if head == "RENAME" and len(aw) > 1 and aw[1] in ("TO", "AS"):  # MySQL ALTER TABLE t RENAME [TO|AS] u
        new, _ = read_name(action, 2)
        return Change(Op.RENAME_TABLE, table, attrs={"new_name": new})
    if aw[:3] == ["DROP", "PRIMARY", "KEY"]:
        return Change(Op.DROP_CONSTRAINT, table, attrs={"constraint": None, "kind": "primary_key"})
    if head in ("ALGORITHM", "LOCK"):  # MySQL online-DDL clauses: read separately
        return Change(Op.ALTER_TABLE_OTHER, table, attrs={"action": "options"})
    if head == "ALTER":
        # ALTER [COLUMN] c SET STATISTICS / STORAGE / COMPRESSION / (options)
        i = 2 if len(aw) > 1 and aw[1] == "COLUMN" else 1
        column, i = read_name(action, i)
        tail = aw[i : i + 2]
        if (
            tail
            and tail[0] in ("SET", "RESET")
            and len(tail) > 1
            and tail[1]
            in (
                "STATISTICS",
                "STORAGE",
                "COMPRESSION",
                "(",
            )
        ):
            return Change(Op.ALTER_TABLE_OTHER, table, column, attrs={"action": " ".join(tail).lower()})
        if tail and tail[0] == "ADD" and "GENERATED" in aw:
            return Change(Op.ALTER_TABLE_OTHER, table, column, attrs={"action": "add identity"})
        if tail and tail[0] == "DROP" and "IDENTITY" in aw:
            return Change(Op.ALTER_TABLE_OTHER, table, column, attrs={"action": "drop identity"})
    return None


def _create(tokens: list[Token], ws: list[str]) -> list[Change] | None:
    i = 1
    if ws[i : i + 2] == ["OR", "REPLACE"]:
        i += 2
    i = _skip(ws, i, "TEMP", "TEMPORARY", "UNLOGGED", "GLOBAL", "LOCAL", "CONSTRAINT", "TRUSTED", "PROCEDURAL")
    if i >= len(ws):
        return None
    kind = ws[i]
    if kind == "DOMAIN":
        name, _ = read_name(tokens, i + 1)
        not_null = has_sequence(ws, "NOT", "NULL")
        attrs = {"domain": name, "has_check": "CHECK" in ws or not_null, "not_null": not_null}
        return [Change(Op.CREATE_DOMAIN, None, attrs=attrs)]
    if kind in ("UNIQUE", "INDEX", "FULLTEXT", "SPATIAL"):
        unique = kind == "UNIQUE"
        j = ws.index("INDEX", i) + 1 if "INDEX" in ws[i:] else i + 1
        concurrently = j < len(ws) and ws[j] == "CONCURRENTLY"
        j = _skip(ws, j, "CONCURRENTLY")
        j, if_not_exists = _skip_if_exists(ws, j)
        index = None
        if j < len(ws) and ws[j] != "ON":
            index, j = read_name(tokens, j)
        table = None
        if "ON" in ws[j:]:
            k = ws.index("ON", j)
            table, _ = read_name(tokens, _skip(ws, k + 1, "ONLY"))
        attrs = {
            "index": index,
            "unique": unique,
            "concurrently": concurrently,
            "if_not_exists": if_not_exists,
            **mysql_online_options(ws),
        }
        return [Change(Op.CREATE_INDEX, table, attrs=attrs)]
    if kind == "SCHEMA":
        name, _ = read_name(tokens, _skip_if_exists(ws, i + 1)[0])
        return [Change(Op.CREATE_SCHEMA, None, attrs={"schema": name})]
    if kind in ("MATERIALIZED", "VIEW", "RECURSIVE"):
        j = ws.index("VIEW", i) + 1 if "VIEW" in ws[i:] else i + 1
        j, _ = _skip_if_exists(ws, j)
        name, _ = read_name(tokens, j)
        return [Change(Op.CREATE_VIEW, name, attrs={"materialized": kind == "MATERIALIZED"})]
    if kind in _CREATE_OBJECTS:
        if kind == "TYPE" and "ENUM" in ws:
            name, _ = read_name(tokens, i + 1)
            return [Change(Op.CREATE_TYPE, None, attrs={"type_name": name, "enum": True})]
        table = None
        if kind in ("TRIGGER", "RULE", "POLICY", "STATISTICS") and "ON" in ws:
            table, _ = read_name(tokens, ws.index("ON") + 1)
        name, _ = read_name(tokens, _skip_if_exists(ws, i + 1)[0])
        return [Change(Op.CREATE_OBJECT, table, attrs={"object": kind.lower(), "name": name})]
    return None


def _drop(tokens: list[Token], ws: list[str]) -> list[Change] | None:
    kind = ws[1] if len(ws) > 1 else ""
    if kind == "MATERIALIZED":
        kind = "VIEW"
    cascade = "CASCADE" in ws
    if kind in ("INDEX", "TABLE", "VIEW", "SCHEMA", "DATABASE"):
        j = ws.index(kind) + 1 if kind in ws else 2
        concurrently = j < len(ws) and ws[j] == "CONCURRENTLY"
        j = _skip(ws, j, "CONCURRENTLY")
        j, if_exists = _skip_if_exists(ws, j)
        name, j = read_name(tokens, j)
        table = None
        if kind == "INDEX" and j < len(ws) and ws[j] == "ON":  # MySQL DROP INDEX i ON t
            table, _ = read_name(tokens, j + 1)
        op = {
            "INDEX": Op.DROP_INDEX,
            "TABLE": Op.DROP_TABLE,
            "VIEW": Op.DROP_VIEW,
            "SCHEMA": Op.DROP_SCHEMA,
            "DATABASE": Op.DROP_DATABASE,
        }[kind]
        attrs = {"if_exists": if_exists, "cascade": cascade}
        if kind == "INDEX":
            attrs.update({"index": name, "concurrently": concurrently, **mysql_online_options(ws)})
            return [Change(op, table, attrs=attrs)]
        if kind in ("SCHEMA", "DATABASE"):
            attrs["schema"] = name
            return [Change(op, None, attrs=attrs)]
        return [Change(op, name, attrs=attrs)]
    if kind in _CREATE_OBJECTS or kind in ("OWNED", "DOMAIN"):
        table = None
        if kind in ("TRIGGER", "RULE", "POLICY") and "ON" in ws:
            table, _ = read_name(tokens, ws.index("ON") + 1)
        name, _ = read_name(tokens, _skip_if_exists(ws, 2)[0])
        if kind == "DOMAIN":
            return [Change(Op.DROP_TYPE, None, attrs={"type_name": name, "domain": True, "cascade": cascade})]
        return [Change(Op.DROP_OBJECT, table, attrs={"object": kind.lower(), "name": name, "cascade": cascade})]
    return None


def mysql_online_options(ws: list[str]) -> dict[str, str]:
    """Read ``ALGORITHM=...`` and ``LOCK=...`` clauses (MySQL online DDL)."""
    out: dict[str, str] = {}
    for key, attr, allowed in (("ALGORITHM", "algorithm", _ALGORITHMS), ("LOCK", "lock_clause", _LOCK_CLAUSES)):
        for i, w in enumerate(ws):
            if w == key and i + 1 < len(ws):
                j = i + 2 if ws[i + 1] == "=" else i + 1
                if j < len(ws) and ws[j].upper() in allowed:
                    out[attr] = ws[j].upper()
                    break
    return out


_ALGORITHMS = frozenset({"DEFAULT", "INSTANT", "INPLACE", "COPY"})
_LOCK_CLAUSES = frozenset({"DEFAULT", "NONE", "SHARED", "EXCLUSIVE"})
