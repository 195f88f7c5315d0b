"""Fixtures for the PostgreSQL-only tests: a throw-away database per module with the settings pointing at
it, and ``race``: run several `dco` commands in separate processes released together against it."""

from __future__ import annotations

import multiprocessing
import os
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, create_engine, pool, text

from dcoflow.connectors.attack import load_catalog
from dcoflow.core.db import dispose_engines, get_engine
from dcoflow.core.settings import get_settings

PG_ADMIN = os.environ.get("DCO_TEST_PG_ADMIN", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="module")
def pg_url(shared_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh database on the real PostgreSQL for this module, and the settings (environment) pointing at it
    and at the shared content."""
    name = f"dco_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT", poolclass=pool.NullPool)
    try:
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        pytest.skip(f"PostgreSQL at {PG_ADMIN} unreachable: {exc}")
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    work = tmp_path_factory.mktemp("pg")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DCO_DATABASE_URL", url)
        mp.setenv("DCO_CONTENT_DIR", str(shared_dir))
        mp.setenv("DCO_DATA_DIR", str(work / "data"))
        mp.setenv("DCO_CACHE_DIR", os.environ.get("DCO_TEST_CACHE", str(work / "cache")))
        mp.setenv("DCO_OUTPUT_DIR", str(work / "out"))
        mp.delenv("DCO_ATTACK_SOURCE", raising=False)
        mp.delenv("DCO_WEBHOOK_URL", raising=False)
        get_settings.cache_clear()
        get_engine()  # migrated to the newest schema before anything races on it
        load_catalog()  # built and cached once, not by three racing processes at a time
        try:
            yield url
        finally:
            get_settings.cache_clear()
            dispose_engines()
            with admin.connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@dataclass(frozen=True, slots=True)
class Ran:
    argv: tuple[str, ...]
    exit_code: int
    output: str

    @property
    def conflict(self) -> bool:
        """Refused as one clear line because someone else changed the object first."""
        return (self.exit_code == 2 and "error:" in self.output and "Traceback" not in self.output
                and ("changed since it was read, by someone else" in self.output or "meanwhile" in self.output))


def _contender(argv: Sequence[str], barrier: Any, results: Any) -> None:
    """One racing process: the real CLI in-process (typer's runner), on its own database connections."""
    from typer.testing import CliRunner

    from dcoflow.flows.cli import app

    get_settings.cache_clear()
    barrier.wait(timeout=120)
    got = CliRunner().invoke(app, list(argv))
    output = got.output + (f"\nTraceback: {got.exception!r}" if got.exception and got.exit_code not in (0, 2)
                           else "")
    results.put((tuple(argv), got.exit_code, " ".join(output.split())))  # rich wraps lines at 80 columns


@contextmanager
def _tables_locked(url: str, tables: Sequence[str]) -> Iterator[Connection]:
    """Hold EXCLUSIVE locks on ``tables``: others may read them but every write or SELECT … FOR UPDATE waits."""
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn, conn.begin():
            conn.execute(text(f"LOCK TABLE {', '.join(tables)} IN EXCLUSIVE MODE"))
            yield conn
    finally:
        engine.dispose()


def race(url: str, argvs: Sequence[Sequence[str]], tables: Sequence[str], timeout: float = 180) -> list[Ran]:
    """Run each argv as `dco …` in its own process, all released together by a barrier, and make the race real:
    ``tables`` stay locked until every process waits on them, so each has read the state it acts on before
    any of them writes (without this, on 2 busy cores one process often finishes before the next starts).
    Returns what each printed and its exit code."""
    dispose_engines()  # no pooled connection is shared with the children
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(len(argvs) + 1)
    results = ctx.Queue()
    procs = [ctx.Process(target=_contender, args=(tuple(a), barrier, results)) for a in argvs]
    for p in procs:
        p.start()
    waiting = 0
    with _tables_locked(url, tables) as conn:
        barrier.wait(timeout=120)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            conn.execute(text("SELECT pg_stat_clear_snapshot()"))  # else the view is frozen for the transaction
            waiting = conn.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()")).scalar_one()
            if waiting >= len(argvs) or not any(p.is_alive() for p in procs):
                break
            time.sleep(0.05)
    got = [Ran(*results.get(timeout=timeout)) for _ in argvs]
    for p in procs:
        p.join(timeout)
    assert waiting == len(argvs), f"only {waiting} of {len(argvs)} reached the write together: {got}"
    return got
