"""Fixtures for the assessment tests: the session's ATT&CK catalog and a fresh engine per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from core.db import get_engine
from models.attack import Catalog


@pytest.fixture()
def catalog_fixture(catalog: Catalog) -> Catalog:
    """The enterprise v18.1 catalog from the root conftest, typed."""
    return catalog


@pytest.fixture(autouse=True)
def _fresh_engine() -> Iterator[None]:
    """``get_engine()`` memoises on its argument (None), not on the settings' URL: forget the engine
    around each test so every test gets the private database its ``settings`` fixture points at."""
    get_engine.cache_clear()
    yield
    get_engine.cache_clear()
