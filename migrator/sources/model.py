"""What every migration source produces: files of SQL, in the order they apply."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


class SourceError(Exception):
    """A path that cannot be linted at all: reported as one line, exit code 2."""


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a stretch of generated SQL comes from: lines ``first``..``last`` of the rendered text were
    produced by the code at ``line`` of the source file (an Alembic ``op.*`` call)."""

    first: int
    last: int
    line: int


@dataclass(slots=True)
class SourceFile:
    """One migration: a ``.sql`` file, or an Alembic revision rendered to SQL.

    ``data`` is the SQL that is linted. For a rendered revision, ``origins`` maps its lines back to
    the revision file (``display``), so findings point at the ``op`` call, not at generated SQL.
    """

    path: Path
    display: str  # path as shown in reports (relative to the working directory when possible)
    data: bytes
    revision: str | None = None  # Alembic revision id
    branches: tuple[str, ...] = ()  # Alembic branch labels the revision is on ("expand", "contract")
    origins: list[Origin] | None = None
    repeatable: bool = False  # Flyway R__ file: linted, not ordered as history
    notes: list[str] = field(default_factory=list)  # problems met while reading it (reported as findings)

    def identity(self) -> str:
        """What, besides the SQL, makes this migration's lint result: revision, branches, origins."""
        if self.revision is None and not self.origins and not self.branches and not self.repeatable:
            return ""
        origins = ";".join(f"{o.first},{o.last},{o.line}" for o in self.origins or ())
        return f"{self.revision}|{','.join(self.branches)}|{self.repeatable}|{origins}|{'|'.join(self.notes)}"

    @property
    def label(self) -> str:
        """How reports name the migration: the file, and the revision id when there is one."""
        return f"{self.display} ({self.revision})" if self.revision else self.display

    def origin_line(self, generated_line: int) -> int:
        """The source line that produced ``generated_line`` of ``data`` (itself for plain SQL)."""
        if not self.origins:
            return generated_line
        for origin in self.origins:
            if origin.first <= generated_line <= origin.last:
                return origin.line
        return self.origins[-1].line if generated_line > self.origins[-1].last else self.origins[0].line
