"""``python examples/app/serve.py --version blue|green --port N --dsn DSN``: the app by script path,
from any working directory (it puts the repository root on ``sys.path`` first)."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
if sys.path[1:] and Path(sys.path[1]).resolve() == Path(__file__).resolve().parent:
    del sys.path[1]  # the script's own directory: its alembic/ folder must not shadow the alembic package

from examples.app.server import main  # noqa: E402 - after the path set-up

sys.exit(main())
