"""Helpers shared by the bench scripts: locating the tools, their environment, the machine."""

from __future__ import annotations

import datetime
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent

# What pip writes for a ``[project.scripts]`` entry point (the body of the wrapper it installs).
_CONSOLE_SCRIPT = """#!{python}
import re
import sys
from migrator.cli import main
if __name__ == "__main__":
    sys.argv[0] = re.sub(r"(-script\\.pyw|\\.exe)?$", "", sys.argv[0])
    sys.exit(main())
"""


def real_executable(name: str) -> str | None:
    """The program ``name`` resolves to on PATH, looking through pyenv shims.

    A pyenv shim is a bash script that runs ``pyenv exec``: 20-30 ms of start-up that is not
    the tool's, so the benchmarks run the real binary behind it.
    """
    found = shutil.which(name)
    if found is None:
        return None
    if "/shims/" in found and shutil.which("pyenv"):
        proc = subprocess.run(["pyenv", "which", name], capture_output=True, text=True, check=False)
        if proc.returncode == 0 and proc.stdout.strip():
            return proc.stdout.strip()
    return found


def squawk_path() -> str:
    path = real_executable("squawk")
    if path is None:
        raise SystemExit("bench: squawk not found on PATH (pip install squawk-cli)")
    return path


def bgmigrate_env(cache_dir: Path | None = None) -> dict[str, str]:
    """Environment for running the checkout under test: its directory first on PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BGMIGRATE_")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    env["NO_COLOR"] = "1"
    if cache_dir is not None:
        env["BGMIGRATE_CACHE_DIR"] = str(cache_dir)
    return env


def bgmigrate_module() -> list[str]:
    return [sys.executable, "-m", "migrator.cli"]


def bgmigrate_script(workdir: Path) -> tuple[list[str], str]:
    """The ``bgmigrate`` console script: the installed one when it is this checkout's, else a wrapper.

    Returns the argv prefix and a note saying which one it is.
    """
    installed = real_executable("bgmigrate")
    if installed is not None:
        probe = subprocess.run(
            [sys.executable, "-c", "import migrator, sys; sys.stdout.write(migrator.__file__)"],
            capture_output=True,
            text=True,
            check=False,
            cwd="/",
        )
        if probe.returncode == 0 and Path(probe.stdout).resolve().is_relative_to(REPO_ROOT):
            return [installed], f"installed console script {installed}"
    wrapper = workdir / "bgmigrate"
    wrapper.write_text(_CONSOLE_SCRIPT.format(python=sys.executable), encoding="utf-8")
    wrapper.chmod(0o755)
    reason = "not installed" if installed is None else f"{installed} does not import this checkout"
    return [str(wrapper)], f"pip-style console-script wrapper written by the bench ({reason})"


def tool_version(argv: list[str], env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, env=env)
    return (proc.stdout or proc.stderr).strip().splitlines()[0] if (proc.stdout or proc.stderr).strip() else "?"


def git_revision() -> str:
    head = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    )
    if head.returncode != 0:
        return "unknown"
    dirty = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--", "migrator", "rules"],
        capture_output=True,
        text=True,
        check=False,
    )
    changed = len([line for line in dirty.stdout.splitlines() if line.strip()])
    return head.stdout.strip() + (f" + {changed} uncommitted paths under migrator/ and rules/" if changed else "")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_total() -> str:
    proc = subprocess.run(["free", "-h"], capture_output=True, text=True, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith("Mem:"):
            parts = line.split()
            return f"{parts[1]} total, {parts[-1]} available"
    return "unknown"


def machine_info() -> dict[str, str]:
    load = os.getloadavg()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "cpu": cpu_model(),
        "nproc": str(os.cpu_count()),
        "memory": memory_total(),
        "python": f"{platform.python_implementation()} {platform.python_version()} ({sys.executable})",
        "os": platform.platform(),
        "load average": f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
        "squawk": f"{tool_version([squawk_path(), '--version'])} ({squawk_path()})",
        "bgmigrate": f"{tool_version([*bgmigrate_module(), '--version'], bgmigrate_env())} at {git_revision()}",
        "rule files": str(len([p for p in (REPO_ROOT / "rules").glob("*.py") if not p.name.startswith("_")])),
    }
