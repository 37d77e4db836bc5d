"""The example shop's processes: ``python -m examples.app --version blue|green`` from the checkout.

Each runs in its own session (so a Ctrl-C in the terminal reaches the demo, which stops them in
order), gets its DSN through ``SHOP_DSN`` (never on the command line, where ``ps`` shows it) and
writes its log to a file in the demo's working directory.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from .setup import DemoError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class App:
    """One version of the shop in its own process, on ``port``."""

    def __init__(self, checkout: Path, version: str, dsn: str, port: int, log_dir: Path) -> None:
        self.version = version
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_dir / f"{version}-{port}.log"
        self.proc: subprocess.Popen[str] | None = None
        self._checkout = checkout
        self._dsn = dsn

    def start(self, timeout_s: float = 30.0) -> App:
        path = os.environ.get("PYTHONPATH")
        env = {
            **os.environ,
            "SHOP_DSN": self._dsn,
            "PYTHONPATH": str(self._checkout) + (os.pathsep + path if path else ""),
        }
        env.pop("DATABASE_URL", None)
        with open(self.log_path, "w", encoding="utf-8") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "examples.app", "--version", self.version, "--port", str(self.port)],
                stdout=subprocess.PIPE,
                stderr=log,
                stdin=subprocess.DEVNULL,
                text=True,
                cwd=self._checkout,
                env=env,
                start_new_session=True,
            )
        line = self._ready_line(timeout_s)
        if f"shop {self.version} ready: " not in line:
            self.stop()
            tail = self.log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-5:]
            raise DemoError(f"{self.version} did not start ({line.strip() or 'no ready line'}): {' | '.join(tail)}")
        return self

    def _ready_line(self, timeout_s: float) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout_s)
        return self.proc.stdout.readline() if ready else ""

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=2) as response:
                return 200 <= response.status < 300
        except (urllib.error.URLError, OSError):
            return False

    def wait_healthy(self, timeout_s: float = 20.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.healthy():
                return True
            time.sleep(0.1)
        return False

    def first_error(self) -> str | None:
        """The first database error the app logged (``[blue] GET /customers/7: database error: ...``)."""
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as log:
                for line in log:
                    if "error" in line and line.startswith(f"[{self.version}]"):
                        return line.strip()[:300]
        except OSError:
            return None
        return None

    def stop(self, timeout_s: float = 10.0) -> int | None:
        """SIGTERM (the shop closes its sessions), then SIGKILL after ``timeout_s``; the exit code."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        return proc.returncode
