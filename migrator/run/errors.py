"""The runner's errors. Each carries the exit code of the command that stops on it; messages are one
line (or a few) and never hold a password."""

from __future__ import annotations

EXIT_DONE, EXIT_STEP_FAILED, EXIT_USAGE, EXIT_REFUSED = 0, 1, 2, 3


class RunError(Exception):
    """Base: ``exit_code`` is what the CLI exits with."""

    exit_code = EXIT_USAGE


class InputError(RunError):
    """Bad input: an unreadable plan, a bad option, a database that cannot be reached. Nothing ran."""

    exit_code = EXIT_USAGE


class Refused(RunError):
    """A gate or another runner stopped the command before it changed anything."""

    exit_code = EXIT_REFUSED


class StepFailed(RunError):
    """A step failed; the state table records which and why, and a rerun resumes there."""

    exit_code = EXIT_STEP_FAILED

    def __init__(self, message: str, *, step_id: str | None = None) -> None:
        super().__init__(message)
        self.step_id = step_id
