"""``python -m examples.app --version blue|green --port N --dsn DSN`` (from the repository root)."""

import sys

from .server import main

sys.exit(main())
