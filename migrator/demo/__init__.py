"""``bgmigrate demo``: the example shop's release under live load, done by bgmigrate and done naively.

One PostgreSQL (an embedded one from the ``pgserver`` wheel, or ``--dsn``), two scratch databases
with the shop's base schema and the same seed rows. In the first, bgmigrate's library runs the
whole release of ``examples/app/migrations/0002_release.sql`` (lint, plan, expand with its
backfill, deploy green, gated switch through the ``local`` router, soak, decommission blue,
contract) while a load generator sends the shop's mix through the local weighted proxy. In the
second, the same release SQL runs as written, in one go, under the same load, then green is
deployed and traffic switched the same way. One table compares the two: requests served by blue
and green per stage, failed requests, the longest stall, lock waits of the app's sessions and the
time per stage.

- :mod:`.setup`: where ``examples/`` is, the PostgreSQL server, the scratch databases;
- :mod:`.apps`: the shop's processes (``python -m examples.app``);
- :mod:`.measure`: stage windows over the load's records, the lock-wait sampler;
- :mod:`.scenario`: the two halves;
- :mod:`.report`: the comparison table and the JSON form.
"""

from __future__ import annotations

from .scenario import DemoError, DemoOptions, DemoResult, run_demo

__all__ = ["DemoError", "DemoOptions", "DemoResult", "run_demo"]
