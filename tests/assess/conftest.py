"""Fixtures for the assessment tests: the real ATT&CK catalog, loaded once per session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.attack import load_catalog
from core.settings import get_settings
from models.attack import Catalog


@pytest.fixture(scope="session")
def catalog_fixture(tmp_path_factory: pytest.TempPathFactory, shared_dir: Path) -> Iterator[Catalog]:
    """The enterprise v18.1 catalog (cache in a private folder unless DCO_TEST_CACHE names one)."""
    cache = os.environ.get("DCO_TEST_CACHE") or str(tmp_path_factory.mktemp("attack-cache"))
    old = os.environ.get("DCO_CACHE_DIR")
    os.environ["DCO_CACHE_DIR"] = cache
    get_settings.cache_clear()
    try:
        yield load_catalog(str(shared_dir / "attack" / "enterprise-attack-18.1.json.gz"))
    finally:
        if old is None:
            os.environ.pop("DCO_CACHE_DIR", None)
        else:
            os.environ["DCO_CACHE_DIR"] = old
        get_settings.cache_clear()
