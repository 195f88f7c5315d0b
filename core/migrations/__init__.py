"""Alembic migrations for dcoflow's tables (env.py, script.py.mako, versions/). ``dcoflow.core.db.init_db`` runs
them on every engine's first use; ``dco db current`` / ``dco db upgrade`` show and apply them by hand.

Changed a model? tests/test_migrations.py fails until a revision brings the schema along. Write one by
autogenerating against a database at the current head, then review it (SQLite needs batch operations,
which env.py renders; name new enum types; give NOT NULL columns a server_default for existing rows)::

    .venv/bin/python -c 'from alembic import command; from sqlalchemy import create_engine
    from dcoflow.core.db import alembic_config, init_db
    init_db(create_engine("sqlite:////tmp/dco-head.db"))
    command.revision(alembic_config(url="sqlite:////tmp/dco-head.db"), "what changed and why",
                     autogenerate=True, rev_id="0002_what_changed")'
"""
