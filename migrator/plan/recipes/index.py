"""Index builds and drops without blocking writes: ``CONCURRENTLY`` (PostgreSQL), ``ALGORITHM=INPLACE,
LOCK=NONE`` (MySQL).

This module also holds the small text helpers the constraint recipes share (statement text,
identifier quoting, PostgreSQL's default object names, the INVALID-index guard): the recipes
package has one module per recipe and no room for a helpers module of its own.

Recipes reuse the author's own text for definitions (index method, ``WHERE``, ``INCLUDE``,
``REFERENCES … ON DELETE``, a column's ``COLLATE``) because the parsed
:class:`~migrator.sql.changes.Change` does not keep them. The text comes from
``change.attrs["statement"]`` (:data:`STATEMENT_ATTR`); a recipe that needs it and does not
get it refuses rather than drop part of the definition.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, ClassVar

from ...sql.changes import Change, Op
from ..model import PlanError
from .base import Part, Recipe, RecipeContext, RecipeSteps

if TYPE_CHECKING:
    from ...schema.model import Table

# ---- shared helpers ------------------------------------------------------------------------------

STATEMENT_ATTR = "statement"
"""Key of the statement's SQL text in ``Change.attrs``: set by whoever hands the change to a recipe."""

PLAN_UNIT = "plan"
"""The unit the planner replays the release under: a table created there is new to blue."""

NAME_MAX = 63  # PostgreSQL's NAMEDATALEN - 1; MySQL allows 64

# PostgreSQL's reserved key words (and the ones that can only be function or type names), plus a
# few MySQL ones: an identifier spelled like one of these is quoted.
_RESERVED_WORDS = """
    ALL ANALYSE ANALYZE AND ANY ARRAY AS ASC ASYMMETRIC AUTHORIZATION BINARY BOTH CASE CAST CHECK
    COLLATE COLLATION COLUMN CONCURRENTLY CONSTRAINT CREATE CROSS CURRENT_CATALOG CURRENT_DATE
    CURRENT_ROLE CURRENT_SCHEMA CURRENT_TIME CURRENT_TIMESTAMP CURRENT_USER DEFAULT DEFERRABLE DESC
    DISTINCT DO ELSE END EXCEPT FALSE FETCH FOR FOREIGN FREEZE FROM FULL GRANT GROUP HAVING ILIKE
    IN INITIALLY INNER INTERSECT INTO IS ISNULL JOIN LATERAL LEADING LEFT LIKE LIMIT LOCALTIME
    LOCALTIMESTAMP NATURAL NOT NOTNULL NULL OFFSET ON ONLY OR ORDER OUTER OVERLAPS PLACING PRIMARY
    REFERENCES RETURNING RIGHT SELECT SESSION_USER SIMILAR SOME SYMMETRIC SYSTEM_USER TABLE
    TABLESAMPLE THEN TO TRAILING TRUE UNION UNIQUE USER USING VARIADIC VERBOSE WHEN WHERE WINDOW
    WITH CHANGE CONDITION DATABASE DELETE DIV INDEX INSERT INTERVAL KEY KEYS LOCK MOD OPTION RANGE
    READ REGEXP RENAME REPLACE RLIKE SCHEMA SET SHOW UPDATE USAGE VALUES WRITE
"""
_RESERVED = frozenset(_RESERVED_WORDS.split())
_PG_PLAIN = re.compile(r"^[a-z_][a-z0-9_$]*$")
_MY_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")

_LEX = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<comment>--[^\n]*|/\*.*?\*/)
  | (?P<dollar>\$(?P<tag>[A-Za-z_]\w*)?\$.*?\$(?P=tag)\$)
  | (?P<string>[EeNnBbXx]?'(?:[^'\\]|''|\\.)*')
  | (?P<qident>"(?:[^"]|"")*"|`(?:[^`]|``)*`)
  | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)
_NAME = r'(?:"(?:[^"]|"")*"|`(?:[^`]|``)*`|[\w$]+)'
QNAME = rf"{_NAME}(?:\s*\.\s*{_NAME})?"
_ALTER_TABLE = re.compile(rf"^ALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?({QNAME})\s+(.*)$", re.I | re.S)
_MYSQL_OPTION = re.compile(r"^(?:ALGORITHM|LOCK)\s*=?\s*\w+$", re.I)
_COMPARED = ("constraint", "kind", "columns", "expression", "index", "references", "unique", "new_name")


def clean_sql(sql: str) -> str:
    """``sql`` without comments or a trailing ``;``, whitespace outside literals collapsed to one space."""
    out: list[str] = []
    for m in _LEX.finditer(sql):
        if m.lastgroup in ("ws", "comment"):
            if out and out[-1] != " ":
                out.append(" ")
        else:
            out.append(m.group(0))
    return "".join(out).strip().rstrip(";").strip()


def statement_text(change: Change) -> str | None:
    """The SQL of the statement ``change`` came from, cleaned, when the caller passed it."""
    text = change.get(STATEMENT_ATTR)
    return clean_sql(text) if isinstance(text, str) and text.strip() else None


def no_text_reason(what: str) -> str:
    return (
        f"the statement's text is needed to carry over {what} (the parsed change does not keep it); "
        f"pass it as change.attrs[{STATEMENT_ATTR!r}]"
    )


def quote_ident(name: str, dialect: str) -> str:
    """``name`` as an identifier: quoted only when it has to be."""
    plain = _MY_PLAIN if dialect == "mysql" else _PG_PLAIN
    if plain.match(name) and name.upper() not in _RESERVED:
        return name
    if dialect == "mysql":
        return "`" + name.replace("`", "``") + "`"
    return '"' + name.replace('"', '""') + '"'


def quote_table(name: str, dialect: str) -> str:
    """A (possibly schema-qualified) normalized table name as SQL."""
    return ".".join(quote_ident(part, dialect) for part in name.split(".", 1))


def bare(name: str) -> str:
    """The object's own name, without its schema."""
    return name.rsplit(".", 1)[-1]


def schema_of(table: str | None) -> str | None:
    return table.split(".", 1)[0] if table and "." in table else None


def literal(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def pyformat_safe(sql: str) -> str:
    """Backfill SQL is a pyformat template (``%(lo)s``): a literal ``%`` must be doubled."""
    return sql.replace("%", "%%")


def object_name(name1: str, name2: str | None, label: str) -> str:
    """PostgreSQL's ``makeObjectName``: ``name1_name2_label`` trimmed to 63 bytes, longer part first."""
    overhead = len(label) + 1 + (1 if name2 else 0)
    n1, n2 = len(name1), len(name2 or "")
    while n1 + n2 > NAME_MAX - overhead:
        if n1 > n2:
            n1 -= 1
        else:
            n2 -= 1
    parts = [name1[:n1]] + ([name2[:n2]] if name2 else []) + [label]
    return "_".join(parts)


def choose_name(name1: str, name2: str | None, label: str, taken: set[str]) -> str:
    """PostgreSQL's ``ChooseRelationName``: the default name, with 1, 2, ... after the label if taken."""
    name = object_name(name1, name2, label)
    n = 0
    while name in taken:
        n += 1
        name = object_name(name1, name2, f"{label}{n}")
    return name


def taken_names(ctx: RecipeContext, table: str | None) -> set[str]:
    """Constraint and index names the schema knows on ``table`` (and index names anywhere)."""
    names = set(ctx.schema.index_table)
    t = ctx.schema.table(table)
    if t is not None:
        names |= {c.name for c in t.constraints if c.name}
        names |= set(t.indexes)
    return names


def new_in_release(ctx: RecipeContext, table: str | None) -> bool:
    """The table was created earlier in the release being planned: blue never saw it."""
    t = ctx.schema.table(table)
    return t is not None and t.created_in == PLAN_UNIT


def at_least(ctx: RecipeContext, major: int, minor: int = 0) -> bool:
    return ctx.version[:2] >= (major, minor)


def is_mariadb(ctx: RecipeContext) -> bool:
    """MySQL dialect with a MariaDB version number (10.x, 11.x)."""
    return ctx.dialect == "mysql" and ctx.version[0] >= 10


def split_top_level(text: str, sep: str = ",") -> list[str]:
    """``text`` split on ``sep`` outside parentheses, strings and quoted identifiers."""
    parts: list[str] = []
    depth = 0
    start = 0
    for m in _LEX.finditer(text):
        ch = m.group(0)
        if m.lastgroup != "other":
            continue
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append(text[start : m.start()].strip())
            start = m.end()
    parts.append(text[start:].strip())
    return [p for p in parts if p]


def _same(a: Change, b: Change) -> bool:
    return a.op == b.op and a.table == b.table and a.column == b.column and all(a.get(k) == b.get(k) for k in _COMPARED)


def alter_action(change: Change, sql: str, dialect: str) -> tuple[str, str] | None:
    """``(table as written, action text)`` of the ``ALTER TABLE`` action ``change`` came from.

    MySQL ``ALGORITHM=`` / ``LOCK=`` options are left out (recipes state their own). With several
    actions, each is read on its own and compared with ``change``.
    """
    m = _ALTER_TABLE.match(sql)
    if m is None:
        return None
    table_text, body = m.group(1), m.group(2)
    actions = [a for a in split_top_level(body) if not _MYSQL_OPTION.match(a)]
    if len(actions) == 1:
        return table_text, actions[0]
    from ...sql.analyze import analyze_text

    found = []
    for action in actions:
        statements = analyze_text(f"ALTER TABLE {table_text} {action}", dialect)
        changes = [c for st in statements for c in st.changes]
        if len(changes) == 1 and _same(changes[0], change):
            found.append(action)
    return (table_text, found[0]) if len(found) == 1 else None


def table_sql(change: Change, ctx: RecipeContext, written: str | None = None) -> str:
    """The table as the author wrote it when known (MySQL table names can be case-sensitive)."""
    if written:
        return written
    return quote_table(change.table or "", ctx.dialect)


def index_sql_name(index: str, table: str | None, dialect: str) -> str:
    """An index name as SQL; in PostgreSQL an index lives in its table's schema."""
    if "." in index or dialect == "mysql":
        return quote_table(index, dialect)
    schema = schema_of(table)
    return quote_table(f"{schema}.{index}" if schema else index, dialect)


def invalid_index_guard(index: str) -> str:
    """A read-only statement that fails while ``index`` is INVALID (a failed CONCURRENTLY build).

    ``CREATE INDEX CONCURRENTLY IF NOT EXISTS`` run again over an INVALID leftover "succeeds" without
    building anything; this check turns that into an error whose message says what to do. It is a
    plain ``SELECT`` (no ``DO`` block), so it runs anywhere and takes no table lock. The cast
    depends on the row, so it only fails when an INVALID row is found.
    """
    message = (
        "bgmigrate: index ' || indexrelid::regclass::text || ' is INVALID (its CREATE INDEX CONCURRENTLY "
        "failed): DROP INDEX CONCURRENTLY IF EXISTS it, fix the cause, run the build again"
    )
    return (
        f"SELECT CAST('{message}' AS integer) FROM pg_index "
        f"WHERE indexrelid = {literal(index)}::regclass AND NOT indisvalid;"
    )


def retry_note(index: str, table: str, what: str) -> str:
    return (
        f"If the {what} fails (lock timeout, deadlock, cancel{', duplicate key' if 'unique' in what else ''}), "
        f"PostgreSQL leaves an INVALID index {index} behind: writes keep maintaining it, queries ignore it, and "
        "running the build again would skip it (IF NOT EXISTS). The guard step right after the build fails while "
        f"the index is INVALID. Detect: SELECT indexrelid::regclass FROM pg_index WHERE indrelid = "
        f"{literal(table)}::regclass AND NOT indisvalid; clean: DROP INDEX CONCURRENTLY IF EXISTS {index}; then "
        "fix the cause and run the build again."
    )


def mysql_online(sql: str, alter: bool = True) -> str:
    """A MySQL DDL statement that must not fall back to a blocking table copy."""
    clause = ", ALGORITHM=INPLACE, LOCK=NONE" if alter else " ALGORITHM=INPLACE LOCK=NONE"
    return f"{sql}{clause};"


def mysql_drop_index(table: str, index: str) -> str:
    """``ALTER TABLE … DROP INDEX`` (MariaDB's ``DROP INDEX … ON`` takes no ALGORITHM clause)."""
    return mysql_online(f"ALTER TABLE {table} DROP INDEX {index}")


def index_column_names(columns: list[str]) -> list[str]:
    """The names PostgreSQL's ``ChooseIndexColumnNames`` uses: a column, a function's name, or ``expr``."""
    out = []
    for col in columns:
        text = col.strip()
        m = re.match(r'^("(?:[^"]|"")*"|[\w$]+)(\s+(?:ASC|DESC|NULLS\s+(?:FIRST|LAST))\b.*)?$', text, re.I)
        if m:
            name = m.group(1)
            out.append(name[1:-1].replace('""', '"') if name.startswith('"') else name.lower())
            continue
        f = re.match(r"^([\w$]+)\s*\(", text)
        out.append(f.group(1).lower() if f else "expr")
    return out


def refuse(reason: str) -> PlanError:
    return PlanError(reason)


# ---- CREATE INDEX --------------------------------------------------------------------------------

_CREATE_INDEX = re.compile(r"^(CREATE\s+(?:UNIQUE\s+)?INDEX)(?:\s+CONCURRENTLY)?(?:\s+IF\s+NOT\s+EXISTS)?\b", re.I)
_CREATE_INDEX_HEAD = re.compile(r"^CREATE\s+(?:UNIQUE\s+)?INDEX\s+CONCURRENTLY\s+IF\s+NOT\s+EXISTS\s+(?=ON\b)", re.I)
_ON_ONLY = re.compile(r"\bON\s+ONLY\b", re.I)
_MY_INDEX_OPTION = re.compile(r"\s+(?:ALGORITHM|LOCK)\s*=?\s*\w+", re.I)
_MY_ADD_INDEX = re.compile(
    r"^ADD\s+(?:UNIQUE(?:\s+(?:INDEX|KEY))?|(?:FULLTEXT\s+|SPATIAL\s+)?(?:INDEX|KEY))\s*(?=\()", re.I
)


def mysql_index_statement(change: Change, ctx: RecipeContext, text: str) -> tuple[str, str, str]:
    """``(online SQL, table as SQL, index as SQL)`` for a MySQL index build, from the author's text."""
    if text.upper().startswith("ALTER"):
        found = alter_action(change, text, "mysql")
        if found is None:
            raise refuse("the ALTER TABLE action that adds the index could not be singled out")
        table, action = found
        index = change.get("index")
        if not index:
            cols = change.get("columns") or []
            if not cols:
                raise refuse("an unnamed index without plain columns: name the index")
            # MySQL names an unnamed index after its first column (col, col_2, col_3, ... when taken)
            taken = taken_names(ctx, change.table)
            index, n = cols[0], 1
            while index in taken:
                n += 1
                index = f"{cols[0]}_{n}"
            action = _MY_ADD_INDEX.sub(lambda m: m.group(0).rstrip() + f" {quote_ident(index, 'mysql')} ", action)
        return mysql_online(f"ALTER TABLE {table} {action}"), table, quote_ident(index, "mysql")
    body = _MY_INDEX_OPTION.sub("", text)
    m = re.search(rf"\bON\s+({QNAME})", body, re.I)
    table = m.group(1) if m else quote_table(change.table or "", "mysql")
    return mysql_online(body, alter=False), table, quote_ident(change.get("index") or "", "mysql")


class CreateIndex(Recipe):
    """``CREATE INDEX`` on a table blue uses, built without blocking blue's writes."""

    name: ClassVar[str] = "create_index"
    ops: ClassVar[tuple[str, ...]] = (Op.CREATE_INDEX,)
    dialects: ClassVar[tuple[str, ...]] = ("postgres", "mysql")
    summary: ClassVar[str] = (
        "build the index CONCURRENTLY (PostgreSQL) or ALGORITHM=INPLACE, LOCK=NONE (MySQL) so blue keeps writing"
    )

    def applies(self, change: Change, phase: str, ctx: RecipeContext) -> bool:
        if not super().applies(change, phase, ctx) or not change.table or new_in_release(ctx, change.table):
            return False
        if ctx.dialect == "mysql":
            # unique indexes are the add_unique recipe's; an explicit online clause needs nothing
            explicit = (change.get("algorithm") or "").upper() in ("INPLACE", "INSTANT") and (
                change.get("lock_clause") or ""
            ).upper() == "NONE"
            return not change.get("unique") and not explicit
        return not change.get("concurrently")

    def refusal(self, change: Change, ctx: RecipeContext) -> str | None:
        text = statement_text(change)
        if text is None:
            return no_text_reason("the index definition (method, WHERE, INCLUDE, operator classes)")
        if ctx.dialect == "mysql":
            try:
                mysql_index_statement(change, ctx, text)
            except PlanError as err:
                return str(err)
        if ctx.dialect == "postgres":
            if (14, 0, 0) <= ctx.version < (14, 4, 0):
                return (
                    "PostgreSQL 14.0-14.3 can silently corrupt indexes built CONCURRENTLY (fixed in 14.4): "
                    "upgrade first, or build the index without CONCURRENTLY in a maintenance window"
                )
            if _ON_ONLY.search(text):
                return (
                    "CREATE INDEX ... ON ONLY (a partitioned table's parent) cannot be built CONCURRENTLY: "
                    "build the index CONCURRENTLY on each partition, then ALTER INDEX ... ATTACH PARTITION"
                )
            if _CREATE_INDEX.match(text) is None:
                return "not a CREATE INDEX statement"
        return None

    def build(self, change: Change, ctx: RecipeContext) -> RecipeSteps:
        reason = self.refusal(change, ctx)
        if reason is not None:
            raise refuse(reason)
        text = statement_text(change) or ""
        if ctx.dialect == "mysql":
            sql, table, index = mysql_index_statement(change, ctx, text)
            return RecipeSteps(
                expand=[
                    Part(
                        sql,
                        "InnoDB builds a secondary index in place while blue reads and writes; LOCK=NONE makes "
                        "the server refuse instead of silently falling back to a blocking table copy",
                        abort=mysql_drop_index(table, index),
                        transactional=False,
                    )
                ],
                notes=[
                    "The build holds an exclusive metadata lock briefly at its start and end: it queues behind "
                    "long transactions on the table (set lock_wait_timeout to seconds).",
                    "FULLTEXT and SPATIAL indexes cannot be built with LOCK=NONE: the statement fails rather "
                    "than block writes; build those in a maintenance window.",
                ],
            )
        return self._postgres(change, ctx, text)

    def _postgres(self, change: Change, ctx: RecipeContext, text: str) -> RecipeSteps:
        table = change.table or ""
        index = change.get("index")
        head = _CREATE_INDEX.match(text)
        if head is None:
            raise refuse("not a CREATE INDEX statement")
        # like lint.fixes.concurrently(), but string literals (a partial index's WHERE) are left as written
        sql = f"{head.group(1)} CONCURRENTLY IF NOT EXISTS{text[head.end() :]};"
        if not index:
            index = choose_name(
                bare(table),
                "_".join(index_column_names(change.get("columns") or [])) or None,
                "idx",
                taken_names(ctx, table),
            )
            sql = _CREATE_INDEX_HEAD.sub(lambda m: m.group(0) + quote_ident(index, "postgres") + " ", sql)
        qualified = index_sql_name(index, table, "postgres")
        unique = bool(change.get("unique"))
        what = "unique index build" if unique else "index build"
        notes = [
            "CREATE INDEX CONCURRENTLY takes SHARE UPDATE EXCLUSIVE (blue's reads and writes go on), scans the "
            "table twice and waits for every transaction older than it: a long-running transaction delays it.",
            retry_note(qualified, quote_table(table, "postgres"), what),
        ]
        if unique:
            notes.append(
                "A unique index rejects duplicates from the moment it is built: blue's inserts or updates that "
                "would duplicate a key fail from the expand stage on. Build it in expand only if blue never "
                "writes duplicates (green may need it, e.g. for ON CONFLICT); otherwise move both steps after "
                "decommission-blue."
            )
        return RecipeSteps(
            expand=[
                Part(
                    sql,
                    f"{what} CONCURRENTLY: blue keeps reading and writing the table; IF NOT EXISTS makes a "
                    "re-run after success a no-op",
                    abort=f"DROP INDEX CONCURRENTLY IF EXISTS {qualified};",
                    transactional=False,
                ),
                Part(
                    invalid_index_guard(qualified),
                    "stop here if the concurrent build left an INVALID index (a re-run with IF NOT EXISTS "
                    "would skip it silently)",
                ),
            ],
            notes=notes,
        )


# ---- DROP INDEX ----------------------------------------------------------------------------------


def _backing_constraint(t: Table | None, index: str) -> str | None:
    """The kind of constraint whose index ``index`` is (PostgreSQL's default names for unnamed ones)."""
    if t is None:
        return None
    for c in t.constraints:
        if c.kind not in ("unique", "primary_key", "exclude"):
            continue
        name = c.name
        if name is None and c.kind == "primary_key":
            name = object_name(bare(t.name), None, "pkey")
        elif name is None and c.kind == "unique":
            name = object_name(bare(t.name), "_".join(c.columns) or None, "key")
        if name == index:
            return c.kind.replace("_", " ")
    return None


class DropIndex(Recipe):
    """``DROP INDEX`` of an index blue may use, without blocking blue's reads and writes."""

    name: ClassVar[str] = "drop_index"
    ops: ClassVar[tuple[str, ...]] = (Op.DROP_INDEX,)
    dialects: ClassVar[tuple[str, ...]] = ("postgres", "mysql")
    summary: ClassVar[str] = "drop the index CONCURRENTLY (PostgreSQL) or in place (MySQL), after blue is gone"

    def applies(self, change: Change, phase: str, ctx: RecipeContext) -> bool:
        if not super().applies(change, phase, ctx) or not change.get("index"):
            return False
        table = change.table or ctx.schema.table_of_index(change.get("index"))
        if new_in_release(ctx, table) or ctx.schema.object_is_new("index", change.get("index"), PLAN_UNIT):
            return False
        if ctx.dialect == "mysql":
            explicit = (change.get("algorithm") or "").upper() in ("INPLACE", "INSTANT") and (
                change.get("lock_clause") or ""
            ).upper() == "NONE"
            return not explicit
        return not change.get("concurrently")

    def refusal(self, change: Change, ctx: RecipeContext) -> str | None:
        index = change.get("index") or ""
        table = change.table or ctx.schema.table_of_index(index)
        if ctx.dialect == "mysql":
            if not table:
                return "the index's table is not known: write ALTER TABLE <table> DROP INDEX <index>"
            return None
        if change.get("cascade"):
            return (
                "DROP INDEX CONCURRENTLY cannot CASCADE: drop the objects that depend on the index first, "
                "then drop the index"
            )
        tables = [ctx.schema.table(table)] if table else list(ctx.schema.tables.values())
        kind = next((k for t in tables if (k := _backing_constraint(t, bare(index))) is not None), None)
        if kind is not None:
            return (
                f"the index backs the {kind} constraint {bare(index)} and cannot be dropped on its own (let alone "
                f"CONCURRENTLY): ALTER TABLE ... DROP CONSTRAINT {bare(index)} in contract (a brief ACCESS "
                "EXCLUSIVE lock)"
            )
        return None

    def build(self, change: Change, ctx: RecipeContext) -> RecipeSteps:
        reason = self.refusal(change, ctx)
        if reason is not None:
            raise refuse(reason)
        index = change.get("index") or ""
        table = change.table or ctx.schema.table_of_index(index)
        if ctx.dialect == "mysql":
            text = statement_text(change)
            written = None
            if text:
                m = _ALTER_TABLE.match(text) or re.search(rf"\bON\s+({QNAME})", text, re.I)
                written = m.group(1) if m else None
            sql = mysql_drop_index(written or quote_table(table or "", "mysql"), quote_ident(index, "mysql"))
            return RecipeSteps(
                contract=[
                    Part(
                        sql,
                        "after blue is gone (its queries may rely on the index); dropping a secondary index is "
                        "in place and metadata-only",
                        transactional=False,
                    )
                ],
                notes=["MySQL refuses to drop an index a foreign key needs: drop or re-index the foreign key first."],
            )
        qualified = index_sql_name(index, table, "postgres")
        return RecipeSteps(
            contract=[
                Part(
                    f"DROP INDEX CONCURRENTLY IF EXISTS {qualified};",
                    "after blue is gone (its queries or ON CONFLICT targets may rely on the index); CONCURRENTLY "
                    "waits for transactions using the index instead of taking ACCESS EXCLUSIVE on the table",
                    transactional=False,
                )
            ],
            notes=[
                "DROP INDEX CONCURRENTLY runs outside a transaction block, one index at a time; if it is "
                "interrupted the index stays INVALID: run the step again (IF EXISTS makes that safe)."
            ],
        )
