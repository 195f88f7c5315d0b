"""Fixtures for the assessment tests: the session's ATT&CK catalog, typed."""

from __future__ import annotations

import pytest

from dcoflow.models.attack import Catalog


@pytest.fixture()
def catalog_fixture(catalog: Catalog) -> Catalog:
    """The enterprise v18.1 catalog from the root conftest, typed."""
    return catalog
