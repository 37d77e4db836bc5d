from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_cache(monkeypatch, tmp_path_factory):
    """Tests never write .bgmigrate_cache/ into the checkout."""
    monkeypatch.setenv("BGMIGRATE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(autouse=True)
def _debug(monkeypatch):
    """Normalizer bugs raise in tests instead of degrading to 'unclassified'."""
    monkeypatch.setenv("BGMIGRATE_DEBUG", "1")
