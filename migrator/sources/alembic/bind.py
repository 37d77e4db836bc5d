"""``op.get_bind()`` while rendering offline: statements executed through it are rendered, queries
return no rows (with a note once a result is used), anything else needs a database."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .capture import _Capture


class _EmptyResult:
    """What a query through the offline connection returns: no rows (and a note, once consumed)."""

    rowcount = 0

    def __init__(self, on_use: Any) -> None:
        self._on_use = on_use

    def _used(self) -> None:
        self._on_use()

    def __iter__(self) -> Iterator[Any]:
        self._used()
        return iter(())

    def fetchall(self) -> list[Any]:
        self._used()
        return []

    def fetchmany(self, *args: Any, **kwargs: Any) -> list[Any]:
        self._used()
        return []

    def all(self) -> list[Any]:
        self._used()
        return []

    def fetchone(self) -> None:
        self._used()
        return None

    def first(self) -> None:
        self._used()
        return None

    def scalar(self) -> None:
        self._used()
        return None

    def one_or_none(self) -> None:
        self._used()
        return None

    def scalar_one_or_none(self) -> None:
        self._used()
        return None

    def scalars(self, *args: Any) -> _EmptyResult:
        return self

    def mappings(self) -> _EmptyResult:
        return self

    def close(self) -> None:
        pass

    def one(self) -> Any:
        self._used()
        raise LookupError("a query run through op.get_bind() returns no row offline (no database)")

    scalar_one = one


class _OfflineBind:
    """``op.get_bind()`` offline: statements executed through it are rendered like ``op.execute``;
    queries return no rows; anything else needs a database and fails (the revision gets a note)."""

    def __init__(self, operations: Any, capture: _Capture, notes: list[tuple[int, str]]) -> None:
        self._operations = operations
        self._capture = capture
        self._notes = notes
        self.dialect = operations.migration_context.dialect

    def _empty_result_used(self) -> None:
        where = self._capture.locate(3)
        line = where[1] if where else 0
        message = "a query result through op.get_bind() is empty offline: code depending on it was not rendered"
        if not any(text == message for _, text in self._notes):
            self._notes.append((line, message))

    def execute(self, statement: Any, parameters: Any = None, *args: Any, **kwargs: Any) -> _EmptyResult:
        if parameters:
            raise TypeError("op.get_bind().execute() with parameters cannot be rendered offline")
        self._operations.execute(statement)
        return _EmptyResult(self._empty_result_used)

    def exec_driver_sql(self, statement: str, parameters: Any = None, *args: Any, **kwargs: Any) -> _EmptyResult:
        return self.execute(statement, parameters)

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(f"op.get_bind().{name} needs a database connection (offline rendering has none)")


def _offline_bind(operations: Any, capture: _Capture, notes: list[tuple[int, str]]) -> Any:
    def get_bind() -> _OfflineBind:
        return _OfflineBind(operations, capture, notes)

    return get_bind
