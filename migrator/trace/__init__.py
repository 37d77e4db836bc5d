"""Dynamic proof on a scratch database: the locks a migration really takes, and blue's queries after expand.

- :mod:`.scratch`: a uniquely named scratch database with the target's schema (``pg_dump
  --schema-only`` of the DSN, or the migration history replayed), optionally filled with generated
  rows, dropped afterwards even on failure. The database behind the DSN is only ever read by pg_dump.
- :mod:`.sample`: ``--sample-rows``: generated rows of the catalog's types, parents first.
- :mod:`.observe`: runs one statement at a time and records the locks its backend holds
  (``pg_locks``), rewritten tables and rebuilt indexes (``relfilenode``), rows read and duration.
- :mod:`.compare`: the ``trace-mismatch`` cross-check of what was observed against the static
  classification (:mod:`migrator.facts.locks`, through the lint engine or the plan's steps).
- :mod:`.tracing`: a release's statements (or a plan's steps) traced in order, each compared.
- :mod:`.compat`: blue's (and green's) queries (:mod:`.queries`: files, pg_stat_statements) prepared
  against the schema step by step, and checked statically (:mod:`.references`: sqlglot column
  qualification against the schema model) for references a step removes.
- :mod:`.render`: text and JSON (``"version": 1``), and plan.md's ``## Trace`` section.
- :mod:`.commands`: the commands as library calls (what ``migrator/cli_trace.py`` calls).

PostgreSQL only. Every failure the user can fix is an :class:`migrator.run.errors.InputError`
(exit code 2) with one masked line.
"""
