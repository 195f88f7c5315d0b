"""Database engine and sessions (SQLite file by default, PostgreSQL by URL) and the
dialect-aware bulk upsert every idempotent write goes through."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, SQLModel, create_engine

from core.settings import get_settings


class _EngineRegistry:
    """``get_engine(url=None)``: the engine for ``url`` (default: the settings' database), one per
    URL per process; ``get_engine.cache_clear()`` disposes of them all (tests, dropping a database)."""

    def __call__(self, url: str | None = None) -> Engine:
        return _engine(url or get_settings().db_url)

    def cache_clear(self) -> None:
        dispose_engines()


get_engine = _EngineRegistry()


_ENGINES: dict[str, Engine] = {}


def _engine(url: str) -> Engine:
    if url in _ENGINES:
        return _ENGINES[url]
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            # WAL lets the Prefect worker threads read while a task writes.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()
    else:
        engine = create_engine(url, pool_pre_ping=True)
    init_db(engine)
    _ENGINES[url] = engine
    return engine


def init_db(engine: Engine) -> None:
    """Create every table the models declare (importing them registers their metadata)."""
    import models.tables  # noqa: F401  (registers all SQLModel tables)

    SQLModel.metadata.create_all(engine)


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with Session(get_engine(url), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def upsert(
    session: Session,
    table: type[SQLModel],
    rows: Sequence[dict[str, Any]],
    keys: Sequence[str],
    update: Sequence[str] | None = None,
    chunk: int = 500,
) -> int:
    """Insert ``rows``; on a key conflict update ``update`` columns (or do nothing).

    One statement per chunk, so a retried task re-running the same write is a no-op
    for identical rows and never duplicates them. Returns the number of rows sent.
    """
    if not rows:
        return 0
    tbl: Any = table.__table__  # type: ignore[attr-defined]
    dialect = session.get_bind().dialect.name
    insert_fn: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    for start in range(0, len(rows), chunk):
        stmt = insert_fn(tbl).values(list(rows[start : start + chunk]))
        if update:
            stmt = stmt.on_conflict_do_update(
                index_elements=list(keys), set_={c: getattr(stmt.excluded, c) for c in update}
            )
        else:
            stmt = stmt.on_conflict_do_nothing(index_elements=list(keys))
        session.execute(stmt)
    return len(rows)


def dispose_engines() -> None:
    """Close every pooled connection and forget the engines (tests, and before dropping a database)."""
    for engine in _ENGINES.values():
        engine.dispose()
    _ENGINES.clear()
