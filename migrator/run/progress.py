"""A backfill's progress bar on stderr (rich): rows done of the estimate, rows per second, ETA."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn, TimeRemainingColumn
from rich.text import Text


class _RowsColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        total = f"{int(task.total):,}" if task.total else "?"
        return Text(f"{int(task.completed):,}/{total} rows")


class _RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed or (task.completed / task.elapsed if task.elapsed else None)
        return Text(f"{speed:,.0f} rows/s" if speed else "- rows/s")


class RichProgress:
    """One bar per backfill step; the estimate (the catalog's row count) grows if the table has more."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self._progress: Progress | None = None
        self._task: Any = None

    def start(self, step_id: str, total: int | None, done: int) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            _RowsColumn(),
            _RateColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self._progress.start()
        self._task = self._progress.add_task(step_id, total=total or None, completed=done)

    def advance(self, rows: int) -> None:
        if self._progress is None:
            return
        self._progress.advance(self._task, rows)
        task = self._progress.tasks[0]
        if task.total is not None and task.completed > task.total:
            self._progress.update(self._task, total=task.completed)

    def finish(self) -> None:
        if self._progress is not None:
            task = self._progress.tasks[0]
            self._progress.update(self._task, total=task.completed)
            self._progress.stop()
            self._progress = None
