"""Alembic environment. ``dcoflow.core.db`` hands over an open connection in ``config.attributes["connection"]``
(the caller owns its transaction); without one, it connects to ``sqlalchemy.url``, else the settings' database."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, pool
from sqlmodel import create_engine

from dcoflow.core.schema import our_tables
from dcoflow.core.settings import get_settings

config = context.config


def _run(connection: Connection) -> None:
    # render_as_batch: SQLite cannot ALTER most things, so alembic rebuilds the table instead.
    context.configure(connection=connection, target_metadata=our_tables(), render_as_batch=True,
                      compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


given = config.attributes.get("connection")
if given is not None:
    _run(given)
else:
    engine = create_engine(config.get_main_option("sqlalchemy.url") or get_settings().db_url,
                           poolclass=pool.NullPool)
    with engine.connect() as conn:
        _run(conn)
        conn.commit()
    engine.dispose()
