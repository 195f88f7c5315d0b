"""Shared test fixtures.

Real data lives in ``../shared`` (read-only). Tests reach it through ``shared_dir``
(override with ``DCO_TEST_SHARED``), never by copying it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

# Prefect gets its own home, no analytics, and time to start its ephemeral server on a
# loaded 2-core CI machine — set before anything imports prefect.
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="dco-prefect-"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "60")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

import pytest

from core.db import dispose_engines
from core.settings import Settings, get_settings

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("DCO_TEST_SHARED", ROOT.parent / "shared")).resolve()
ENTERPRISE_BUNDLE = SHARED / "attack" / "enterprise-attack-18.1.json.gz"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"shared content not found at {SHARED}; set DCO_TEST_SHARED")
    return SHARED


@pytest.fixture()
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shared_dir: Path) -> Iterator[Settings]:
    """Settings pointing at the shared content and a private SQLite database and cache."""
    monkeypatch.setenv("DCO_CONTENT_DIR", str(shared_dir))
    monkeypatch.setenv("DCO_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DCO_CACHE_DIR", str(os.environ.get("DCO_TEST_CACHE", tmp_path / "cache")))
    monkeypatch.setenv("DCO_OUTPUT_DIR", str(tmp_path / "out"))
    monkeypatch.delenv("DCO_DATABASE_URL", raising=False)
    monkeypatch.delenv("DCO_ATTACK_SOURCE", raising=False)
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()
    dispose_engines()


@pytest.fixture(scope="session")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> object:
    """The enterprise ATT&CK v18.1 catalog, built once per session into a private cache."""
    from connectors.attack import load_catalog

    cache = os.environ.get("DCO_TEST_CACHE") or str(tmp_path_factory.mktemp("attack-cache"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DCO_CACHE_DIR", cache)
        get_settings.cache_clear()
        try:
            return load_catalog(str(ENTERPRISE_BUNDLE))
        finally:
            get_settings.cache_clear()


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One Prefect test server for the whole session (about 9 s to start); flows run against it."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
