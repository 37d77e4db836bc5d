"""The child process that renders cache misses while the parent gets on with its own work."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..model import SourceError
from .importing import _prepare_alembic

if TYPE_CHECKING:
    from .assemble import Rendered
    from .graph import Revision
    from .project import Project


class _ForkedRenderer:
    """A child process, forked before the revision graph is read, that imports Alembic and SQLAlchemy
    (a quarter of a second) while this process reads the graph and the cache, then renders the
    revisions that missed the cache. Errors come back and are raised here as they would be in-process.
    """

    def __init__(self) -> None:
        self.pid = 0
        self.jobs_w = self.results_r = -1

    def start(self) -> bool:
        if not hasattr(os, "fork"):
            return False
        jobs_r, jobs_w = os.pipe()
        results_r, results_w = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            for fd in (jobs_r, jobs_w, results_r, results_w):
                os.close(fd)
            return False
        if pid == 0:  # the child
            os.close(jobs_w)
            os.close(results_r)
            self._serve(jobs_r, results_w)  # never returns
        os.close(jobs_r)
        os.close(results_w)
        self.pid, self.jobs_w, self.results_r = pid, jobs_w, results_r
        return True

    @staticmethod
    def _serve(jobs_r: int, results_w: int) -> None:
        import pickle
        import warnings

        from . import _render  # looked up on the package at run time, as the loader does

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _prepare_alembic()  # the slow imports, while the parent reads the graph
            with os.fdopen(jobs_r, "rb") as inp:
                job = inp.read()
            if job:
                project, missing, sa_dialect, transactional = pickle.loads(job)  # from our own parent
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        payload = pickle.dumps(("ok", _render(project, missing, sa_dialect, transactional)))
                except BaseException as err:
                    try:
                        payload = pickle.dumps(("error", err))
                    except Exception:  # an exception that does not pickle
                        payload = pickle.dumps(("error", SourceError(f"{project.script_dir}: {err}")))
                with os.fdopen(results_w, "wb") as out:
                    out.write(payload)
        finally:
            os._exit(0)

    def render(
        self, job: tuple[Project, list[Revision], str, bool], meanwhile: Callable[[], object] | None
    ) -> dict[str, Rendered]:
        import pickle

        with os.fdopen(self.jobs_w, "wb") as out:
            out.write(pickle.dumps(job))
        self.jobs_w = -1
        try:
            if meanwhile is not None:
                meanwhile()
        finally:
            with os.fdopen(self.results_r, "rb") as inp:
                data = inp.read()
            self.results_r = -1
            os.waitpid(self.pid, 0)
            self.pid = 0
        if not data:
            raise SourceError(f"{job[0].script_dir}: the process rendering Alembic revisions died")
        status, value = pickle.loads(data)  # our own child's bytes, through a private pipe
        if status == "error":
            raise value
        return value

    def stop(self) -> None:
        """Nothing to render: let the child go."""
        for fd in (self.jobs_w, self.results_r):
            if fd >= 0:
                os.close(fd)
        self.jobs_w = self.results_r = -1
        if self.pid:
            import signal

            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                os.waitpid(self.pid, 0)
            self.pid = 0
