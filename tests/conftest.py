"""Shared test fixtures.

Real data lives in ``../shared`` (read-only). Tests reach it through ``shared_dir``
(override with ``DCO_TEST_SHARED``), never by copying it.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

# Prefect gets its own home, no analytics, and time to start its ephemeral server on a
# loaded 2-core CI machine — set before anything imports prefect.
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="dco-prefect-"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "60")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

import pytest

from dcoflow.core.db import dispose_engines
from dcoflow.core.settings import Settings, get_settings

if TYPE_CHECKING:
    from dcoflow.models.attack import Catalog

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
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """The enterprise ATT&CK v18.1 catalog, built once per session into a private cache."""
    from dcoflow.connectors.attack import load_catalog

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


@pytest.fixture()
def resume_when_paused(prefect_harness: None) -> Callable[..., Any]:
    """``resume_when_paused(call, dco, run_input)``: run ``call`` (a flow call) in a thread, wait until
    its run for DCO ``dco`` pauses for input, resume it with ``run_input`` through the API as the UI
    would, and return the flow's result (or raise its error)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType
    from prefect.flow_runs import resume_flow_run

    def run(call: Callable[[], Any], dco: str, run_input: dict[str, Any], timeout_s: float = 45) -> Any:
        box: dict[str, Any] = {}

        def target() -> None:
            try:
                box["result"] = call()
            except BaseException as exc:  # re-raised in the test's thread below
                box["error"] = exc

        began = datetime.now(UTC) - timedelta(seconds=1)  # not a run left paused by an earlier test
        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        paused = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED])))
        flow_run_id = None
        deadline = time.monotonic() + timeout_s
        with get_client(sync_client=True) as client:
            while flow_run_id is None and thread.is_alive() and time.monotonic() < deadline:
                runs = client.read_flow_runs(flow_run_filter=paused)
                flow_run_id = next((r.id for r in runs if r.parameters.get("dco") == dco
                                    and r.start_time is not None and r.start_time >= began), None)
                time.sleep(0.3)
        if flow_run_id is None:
            thread.join(1)
            if "error" in box:
                raise box["error"]
            pytest.fail(f"no paused flow run for {dco} within {timeout_s} s (finished: {'result' in box})")
        resume_flow_run(flow_run_id, run_input=run_input)
        thread.join(timeout_s)
        if "error" in box:
            raise box["error"]
        assert "result" in box, "the resumed flow did not finish"
        return box["result"]

    return run


PG_ADMIN = os.environ.get("DCO_TEST_PG_ADMIN", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


@pytest.fixture()
def make_pg_database() -> Iterator[Callable[[str], str]]:
    """``make(prefix)``: a new, uniquely named database on the real PostgreSQL, as a URL (the test is skipped
    when the server is unreachable); every database made is dropped after the test."""
    import uuid

    from sqlalchemy import create_engine, pool, text

    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT", poolclass=pool.NullPool)
    made: list[str] = []

    def make(prefix: str = "dco_test") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        try:
            with admin.connect() as c:
                c.execute(text(f'CREATE DATABASE "{name}"'))
        except Exception as exc:
            pytest.skip(f"PostgreSQL at {PG_ADMIN} unreachable: {exc}")
        made.append(name)
        return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"

    try:
        yield make
    finally:
        dispose_engines()
        with admin.connect() as c:
            for name in made:
                c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: a SQLite file, or a uniquely named database on the real PostgreSQL, dropped after."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'dco.db'}"
        dispose_engines()
        return
    yield request.getfixturevalue("make_pg_database")("dco_test")


@pytest.fixture(scope="session")
def medallion(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., str]]:
    """Start real medallion TAXII 2.1 servers on loopback: ``medallion(data, users, max_page_size)``
    returns the base URL; every server started is stopped at the end of the session."""
    import json
    import socket
    import subprocess
    import sys
    import time

    import httpx

    procs: list[subprocess.Popen[bytes]] = []

    def start(data: dict[str, Any], users: dict[str, str], max_page_size: int = 100) -> str:
        work = tmp_path_factory.mktemp("medallion")
        (work / "data.json").write_text(json.dumps(data))
        config = {
            "backend": {"module": "medallion.backends.memory_backend", "module_class": "MemoryBackend",
                        "filename": str(work / "data.json")},
            "users": users,
            "taxii": {"max_page_size": max_page_size},
        }
        (work / "config.json").write_text(json.dumps(config))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        procs.append(subprocess.Popen(
            [str(Path(sys.executable).parent / "medallion"), "--host", "127.0.0.1", "--port", str(port),
             str(work / "config.json")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        base = f"http://127.0.0.1:{port}"
        for _ in range(150):
            try:
                httpx.get(f"{base}/taxii2/", timeout=1)
                return base
            except httpx.TransportError:
                time.sleep(0.1)
        pytest.fail("medallion did not start")

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=10)
