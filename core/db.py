"""Database engine and sessions (SQLite file by default, PostgreSQL by URL), the schema migrations every
engine runs on first use, and the dialect-aware bulk upsert every idempotent write goes through."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    Column,
    Connection,
    DefaultClause,
    Engine,
    MetaData,
    Table,
    event,
    inspect,
    literal,
    pool,
    select,
    text,
)
from sqlalchemy import Enum as SAEnum
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DataError
from sqlmodel import Session, SQLModel, create_engine

from dcoflow.core.errors import StateError, ValidationError
from dcoflow.core.schema import our_tables
from dcoflow.core.settings import get_settings

MIGRATIONS = Path(__file__).resolve().with_name("migrations")
BASELINE = "0001_baseline"  # the schema create_all made before migrations; such databases are stamped here
_PG_LOCK_KEY = 0x64636F666C6F77  # "dcoflow": one migrator per PostgreSQL database at a time
_INIT_LOCK = threading.Lock()


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


def alembic_config(connection: Connection | None = None, url: str | None = None) -> Config:
    """An alembic Config over the packaged migrations (no alembic.ini): it migrates ``connection``
    (core/migrations/env.py takes it from ``config.attributes``) or else connects to ``url``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@functools.cache
def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise StateError("no migration revisions are packaged", system="database", object=str(MIGRATIONS))
    return head


def init_db(engine: Engine) -> None:
    """Bring the database to the newest schema: ``alembic upgrade head``. A database that an earlier
    dcoflow made with create_all (our tables, no alembic_version) is adopted first: what it lacks of
    the baseline is added, it is stamped at the baseline, and then upgraded like any other."""
    with _INIT_LOCK, _migration_connection(engine) as conn:
        current = MigrationContext.configure(conn).get_current_revision()
        if current == head_revision():
            return
        if current is None and _holds_our_tables(conn):
            _adopt(conn)
        command.upgrade(alembic_config(conn), "head")


@dataclass(frozen=True, slots=True)
class SchemaStatus:
    current: str | None  # None: never migrated (empty, or made by create_all)
    head: str
    pending: list[str]  # revisions an upgrade would apply, oldest first
    adopt: bool  # made by create_all: an upgrade stamps it at the baseline first

    @property
    def up_to_date(self) -> bool:
        return not self.pending and not self.adopt


def schema_status(engine: Engine) -> SchemaStatus:
    """Where the database stands against the packaged migrations, without changing it."""
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
        adopt = current is None and _holds_our_tables(conn)
    script = ScriptDirectory.from_config(alembic_config())
    lower = BASELINE if adopt else (current or "base")
    pending = [s.revision for s in script.iterate_revisions("head", lower) if s.revision != lower]
    return SchemaStatus(current=current, head=head_revision(), pending=pending[::-1], adopt=adopt)


@contextmanager
def _migration_connection(engine: Engine) -> Iterator[Connection]:
    """One transaction holding the database's migration lock, so two processes starting on a fresh
    database do not both create it: SQLite's write lock (BEGIN IMMEDIATE), a PostgreSQL advisory lock.
    SQLite checks no foreign keys meanwhile: a batch migration rebuilds tables by copy and rename."""
    with engine.connect() as conn:
        if conn.dialect.name != "sqlite":
            with conn.begin():
                if conn.dialect.name == "postgresql":
                    conn.execute(select(text("pg_advisory_xact_lock(:key)")), {"key": _PG_LOCK_KEY})
                yield conn
            return
        conn.exec_driver_sql("PRAGMA foreign_keys=OFF")  # ignored inside a transaction, so before BEGIN
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        finally:
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")
            conn.commit()


def _holds_our_tables(conn: Connection) -> bool:
    return bool(set(inspect(conn).get_table_names()) & set(our_tables().tables))


def _baseline_schema() -> MetaData:
    """The tables, columns and indexes the baseline revision makes (run on a scratch in-memory SQLite
    database and read back), so adoption aims at the baseline even after later revisions change models."""
    scratch = create_engine("sqlite://", poolclass=pool.StaticPool)
    try:
        with scratch.begin() as conn:
            command.upgrade(alembic_config(conn), BASELINE)
            meta = MetaData()
            meta.reflect(conn)
    finally:
        scratch.dispose()
    meta.remove(meta.tables["alembic_version"])
    return meta


def _adopt(conn: Connection) -> None:
    """Add what a create_all database lacks of the baseline (tables, columns, indexes added to the models
    since it was made), then stamp it at the baseline. Definitions come from the models where they still
    hold the table or column, else from the baseline itself."""
    baseline = _baseline_schema()
    insp = inspect(conn)
    present = set(insp.get_table_names())
    ops = Operations(MigrationContext.configure(conn))
    tables = our_tables().tables
    for name, table in baseline.tables.items():
        model = tables.get(name)
        if name not in present:
            (model if model is not None else table).create(conn)
            continue
        have = {c["name"] for c in insp.get_columns(name)}
        for col in table.columns:
            if col.name not in have:
                source = model.c[col.name] if model is not None and col.name in model.c else col
                ops.add_column(name, _addable(name, source, conn))
        have_ix = {ix["name"] for ix in insp.get_indexes(name)}
        for ix in table.indexes:
            if ix.name is not None and ix.name not in have_ix:
                ops.create_index(ix.name, name, [c.name for c in ix.columns], unique=bool(ix.unique))
    command.stamp(alembic_config(conn), BASELINE)


def _addable(table: str, col: Column[Any], conn: Connection) -> Column[Any]:
    """``col`` ready for ALTER TABLE ADD COLUMN: a NOT NULL column gets its model default as a server
    default, which fills the rows already there."""
    new: Column[Any] = col._copy()
    if new.nullable or new.server_default is not None:
        return new
    default: Any = getattr(col.default, "arg", None)
    if callable(default):
        default = default(None)  # SQLAlchemy wraps zero-argument factories to take a context
    if default is None:
        raise StateError(f"cannot add NOT NULL column {col.name!r}: it has no default to fill existing rows",
                         system="database", object=table, hint="add it by hand, then run `dco db upgrade`")
    value = literal(default, type_=col.type).compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
    new.server_default = DefaultClause(text(str(value)))
    return new


@functools.cache
def _limits(table: Table) -> tuple[tuple[str, int], ...]:
    """The columns of ``table`` with a length (identifiers we generate; free text is TEXT), and that length.
    Enum columns are left out: they store a member's name, which the column was sized for."""
    return tuple((c.key, int(getattr(c.type, "length", 0) or 0)) for c in table.columns
                 if getattr(c.type, "length", None) and not isinstance(c.type, SAEnum))


def check_lengths(table: Table, values: Any, where: str | None = None) -> None:
    """Refuse a value longer than its column holds, naming table, column and lengths. PostgreSQL would refuse
    it with a bare driver error and SQLite would keep it silently; dcoflow does the same on both."""
    for key, limit in _limits(table):
        value = values.get(key) if isinstance(values, dict) else getattr(values, key, None)
        if isinstance(value, str) and len(value) > limit:
            raise ValidationError(
                f"{len(value)} characters do not fit {table.name}.{key} (at most {limit}): {value[:60]!r}…",
                field=key, system="database", object=where or table.name,
                hint="this is an identifier column; shorten the name or key it is made from")


@event.listens_for(Session, "before_flush")
def _check_flushed_lengths(session: Session, _context: Any, _instances: Any) -> None:
    for obj in (*session.new, *session.dirty):
        table = getattr(type(obj), "__table__", None)
        if isinstance(table, Table):
            check_lengths(table, obj)


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with Session(get_engine(url), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except DataError as exc:
            session.rollback()
            # What check_lengths cannot see (a raw UPDATE): still one clear line, not a driver traceback.
            raise ValidationError(f"the database refused a value: {str(exc.orig).splitlines()[0]}",
                                  system="database", object=exc.statement.split(" (")[0][:80] if exc.statement
                                  else None) from exc
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
    for row in rows:
        check_lengths(tbl, row)
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


def insert_if_absent(session: Session, row: SQLModel) -> tuple[Any, ...] | None:
    """INSERT ``row`` unless a row with one of its unique keys exists: its primary key when it was inserted,
    None when another row holds a key. On PostgreSQL a concurrent insert of the same key makes this wait for
    that transaction, then report None, so of writers racing for one key exactly one wins and the others
    learn it (instead of a unique violation that aborts their transaction). ``row`` itself is not added to
    the session: load the stored row by the returned key."""
    table: Any = type(row).__table__  # type: ignore[attr-defined]
    values = {c.key: getattr(row, c.key) for c in table.columns
              if not (c is table.autoincrement_column and getattr(row, c.key) is None)}
    check_lengths(table, values)
    dialect = session.get_bind().dialect.name
    insert_fn: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert_fn(table).values(values).on_conflict_do_nothing().returning(*table.primary_key.columns)
    inserted = session.execute(stmt).first()
    return None if inserted is None else tuple(inserted)


def dispose_engines() -> None:
    """Close every pooled connection and forget the engines (tests, and before dropping a database)."""
    for engine in _ENGINES.values():
        engine.dispose()
    _ENGINES.clear()
