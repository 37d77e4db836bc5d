"""Normalized facts about what a statement changes.

A statement yields one or more :class:`Change` objects (``ALTER TABLE`` with
several actions yields one per action). Rules, the phase classifier, the lock
table and the schema model all work on changes, never on parse trees, so they
import no parser and work the same for every dialect. Changes are plain data
and round-trip through JSON (the lint cache stores them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class Op:
    """Operation names. Plain strings so changes serialize without a mapping."""

    # tables
    CREATE_TABLE = "create_table"
    CREATE_TABLE_AS = "create_table_as"
    DROP_TABLE = "drop_table"
    RENAME_TABLE = "rename_table"
    TRUNCATE = "truncate"
    ALTER_TABLE_STORAGE = "alter_table_storage"  # SET TABLESPACE / LOGGED / UNLOGGED / ACCESS METHOD / ENGINE
    ALTER_TABLE_OTHER = "alter_table_other"  # OWNER, SET (storage params), REPLICA IDENTITY ...
    # columns
    ADD_COLUMN = "add_column"
    DROP_COLUMN = "drop_column"
    RENAME_COLUMN = "rename_column"
    ALTER_COLUMN_TYPE = "alter_column_type"
    SET_NOT_NULL = "set_not_null"
    DROP_NOT_NULL = "drop_not_null"
    SET_DEFAULT = "set_default"
    DROP_DEFAULT = "drop_default"
    # constraints
    ADD_CONSTRAINT = "add_constraint"
    DROP_CONSTRAINT = "drop_constraint"
    VALIDATE_CONSTRAINT = "validate_constraint"
    # indexes
    CREATE_INDEX = "create_index"
    DROP_INDEX = "drop_index"
    REINDEX = "reindex"
    # other objects
    CREATE_VIEW = "create_view"
    DROP_VIEW = "drop_view"
    RENAME_VIEW = "rename_view"
    REFRESH_MATVIEW = "refresh_materialized_view"
    CREATE_SCHEMA = "create_schema"
    DROP_SCHEMA = "drop_schema"
    RENAME_SCHEMA = "rename_schema"
    DROP_DATABASE = "drop_database"
    CREATE_TYPE = "create_type"
    DROP_TYPE = "drop_type"
    ADD_ENUM_VALUE = "add_enum_value"
    RENAME_ENUM_VALUE = "rename_enum_value"
    CREATE_DOMAIN = "create_domain"
    ALTER_DOMAIN_ADD_CONSTRAINT = "alter_domain_add_constraint"
    CREATE_OBJECT = "create_object"  # extension, function, trigger, sequence, ...: additive, no table lock
    DROP_OBJECT = "drop_object"  # function, trigger, sequence, ...
    ATTACH_PARTITION = "attach_partition"
    DETACH_PARTITION = "detach_partition"
    # maintenance
    VACUUM = "vacuum"
    CLUSTER = "cluster"
    ANALYZE = "analyze"
    OPTIMIZE_TABLE = "optimize_table"
    LOCK_TABLE = "lock_table"
    # data
    INSERT = "insert"
    UPDATE = "update"
    DELETE = "delete"
    SELECT = "select"
    # session and transaction control
    SET = "set"
    BEGIN = "begin"
    COMMIT = "commit"
    ROLLBACK = "rollback"
    COMMENT = "comment"
    GRANT = "grant"
    META_COMMAND = "meta_command"
    # failures
    UNKNOWN = "unknown"
    SYNTAX_ERROR = "syntax_error"


# Operations that only affect the session or transaction: no schema effect.
SESSION_OPS = frozenset({Op.SET, Op.BEGIN, Op.COMMIT, Op.ROLLBACK, Op.META_COMMAND})


@dataclass(slots=True)
class Change:
    """One normalized schema or data change.

    ``attrs`` holds operation-specific facts. Keys in use:

    - columns: ``type`` (normalized type text), ``nullable`` (bool), ``default`` (SQL text or None),
      ``volatile_default`` (bool), ``generated`` ("stored" / "virtual" / "identity" / None),
      ``serial`` (bool), ``references`` (referenced table), ``primary_key``, ``unique``,
      ``new_name`` (renames), ``position`` (MySQL FIRST/AFTER), ``using`` (type change USING)
    - constraints: ``constraint`` (name), ``kind`` ("foreign_key" / "check" / "unique" /
      "primary_key" / "exclude" / "not_null"), ``not_valid``, ``using_index``, ``columns``,
      ``references``, ``expression`` (CHECK text)
    - indexes: ``index`` (name), ``unique``, ``concurrently``, ``columns``, ``method``
    - everything: ``if_exists`` / ``if_not_exists``, ``cascade``, ``algorithm`` / ``lock_clause`` (MySQL)
    - sessions: ``setting``, ``value``, ``local``
    """

    op: str
    table: str | None = None
    column: str | None = None
    attrs: dict[str, Any] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        return self.attrs.get(key, default)

    def to_json(self) -> dict[str, Any]:
        return {"op": self.op, "table": self.table, "column": self.column, "attrs": self.attrs}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Change:
        return cls(data["op"], data.get("table"), data.get("column"), dict(data.get("attrs") or {}))
