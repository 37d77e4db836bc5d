"""``bgmigrate demo``: the example shop's release under live load, with bgmigrate and naively, compared.

Progress goes to stderr, the comparison table to stdout (``--json FILE`` also writes it as JSON).
Exit codes: 0 the bgmigrate half ran to the end with zero failed requests, 1 it did not (a failed
request, a failed step or gate), 2 the demo could not be set up (one line on stderr), 130
interrupted. Every process, database and server the demo started is gone when it exits.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer


def demo(
    dsn: Annotated[
        str | None,
        typer.Option(
            "--dsn",
            help="PostgreSQL to run on (a role that may create databases; two scratch databases are created and "
            "dropped). Default: an embedded PostgreSQL (pgserver) in a temporary directory.",
        ),
    ] = None,
    rows: Annotated[int, typer.Option("--rows", min=0, help="Customers in the table before the release.")] = 500_000,
    clients: Annotated[int, typer.Option("--clients", min=1, help="Load generator clients.")] = 4,
    step_seconds: Annotated[
        float, typer.Option("--step-seconds", min=0, help="Baseline, each switch step, the soak and the tail.")
    ] = 2.0,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", min=1, help="Rows per backfill batch (default: the plan's).")
    ] = None,
    checkout: Annotated[
        Path | None,
        typer.Option("--checkout", help="The bgmigrate source checkout holding examples/app (default: found)."),
    ] = None,
    json_file: Annotated[Path | None, typer.Option("--json", help="Also write the results as JSON here.")] = None,
) -> None:
    """Run the example shop's release under load twice, with bgmigrate and naively, and compare them."""
    from .demo import DemoError, DemoOptions, run_demo
    from .demo.report import render, to_json
    from .dsn import mask_secrets
    from .run.errors import RunError

    def say(line: str) -> None:
        sys.stderr.write(f"{line}\n" if line else "\n")
        sys.stderr.flush()

    def on_term(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    options = DemoOptions(
        dsn=dsn, rows=rows, clients=clients, step_seconds=step_seconds, checkout=checkout, batch_size=batch_size
    )
    try:
        result = run_demo(options, say)
    except DemoError as err:
        sys.stderr.write(f"bgmigrate: error: {mask_secrets(str(err))}\n")
        raise typer.Exit(2) from None
    except RunError as err:
        sys.stderr.write(f"bgmigrate: demo: the bgmigrate half stopped: {mask_secrets(str(err))}\n")
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        sys.stderr.write("bgmigrate: demo interrupted; everything it started is stopped\n")
        raise typer.Exit(130) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
    sys.stdout.write(render(result))
    sys.stdout.flush()
    if json_file is not None:
        try:
            json_file.write_text(to_json(result), encoding="utf-8")
        except OSError as err:
            sys.stderr.write(f"bgmigrate: error: cannot write {json_file}: {err.strerror or err}\n")
            raise typer.Exit(2) from None
    raise typer.Exit(result.exit_code)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
