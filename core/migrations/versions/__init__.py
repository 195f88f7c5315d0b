"""Revision files, oldest first by their ``down_revision`` chain (alembic skips this ``__init__``)."""
