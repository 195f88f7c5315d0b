"""Give each severity column its own enum type: emulation_outcome.severity -> outcome_severity,
followup_incident.severity -> incident_severity.

Why: models/emulation.Severity (with INFO) and models/followup.Severity (without) share a class name, so
SQLAlchemy named both PostgreSQL types ``severity``. One type got created (emulation's, whose table comes
first) and the incident column silently took its labels. The models now name the types explicitly.

PostgreSQL: create each new type, move the column onto it through text (values keep their spelling), and
drop ``severity`` once nothing depends on it. A column already on its new type (a database create_all made
from the current models, then adopted at the baseline) is left alone. SQLite has no enum types: both columns
are VARCHAR(8) there before and after, so nothing changes.

Revision ID: 0002_severity_enum_types
Revises: 0001_baseline
Create Date: 2026-11-28 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from dcoflow.core.errors import StateError

revision: str = '0002_severity_enum_types'
down_revision: str | Sequence[str] | None = '0001_baseline'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_TYPE = "severity"
# (table, column, new type, its labels): the member names SQLAlchemy stores, frozen as of this revision.
MOVES: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("emulation_outcome", "severity", "outcome_severity", ("INFO", "LOW", "MEDIUM", "HIGH", "CRITICAL")),
    ("followup_incident", "severity", "incident_severity", ("LOW", "MEDIUM", "HIGH", "CRITICAL")),
)
# What the baseline made ``severity`` from (emulation_outcome's labels; its table is created first).
OLD_LABELS = ("INFO", "LOW", "MEDIUM", "HIGH", "CRITICAL")


def _column_type(bind: sa.Connection, table: str, column: str) -> str | None:
    return bind.execute(sa.text(
        "SELECT udt_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = :t AND column_name = :c"),
        {"t": table, "c": column}).scalar_one_or_none()


def _move(bind: sa.Connection, table: str, column: str, to_type: str, labels: tuple[str, ...]) -> None:
    """Put ``table.column`` on enum ``to_type`` (created if missing), casting each value through text."""
    postgresql.ENUM(*labels, name=to_type).create(bind, checkfirst=True)
    current = _column_type(bind, table, column)
    if current is None or current == to_type:
        return
    # A value the new type lacks would abort the cast mid-way with a bare PostgreSQL error; name it instead.
    strays = bind.execute(sa.text(
        f"SELECT DISTINCT {column}::text FROM {table} WHERE {column} IS NOT NULL "
        f"AND {column}::text <> ALL(:labels)"), {"labels": list(labels)}).scalars().all()
    if strays:
        raise StateError(f"{table}.{column} holds {sorted(strays)}, which type {to_type} {list(labels)} lacks",
                         system="database", object=table,
                         hint=f"update those rows to one of {list(labels)}, then run `dco db upgrade`")
    op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE {to_type} USING {column}::text::{to_type}")


def _drop_if_unused(bind: sa.Connection, type_name: str) -> None:
    """Drop ``type_name`` unless a column (or anything else) still depends on it normally."""
    oid = bind.execute(sa.text("SELECT to_regtype(:n)::oid"), {"n": type_name}).scalar_one_or_none()
    if oid is None:
        return
    users = bind.execute(sa.text("SELECT count(*) FROM pg_depend WHERE refobjid = :oid AND deptype = 'n'"),
                         {"oid": oid}).scalar_one()
    if users == 0:
        op.execute(f"DROP TYPE {type_name}")


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    for table, column, to_type, labels in MOVES:
        _move(bind, table, column, to_type, labels)
    _drop_if_unused(bind, OLD_TYPE)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    for table, column, _to_type, _labels in MOVES:
        _move(bind, table, column, OLD_TYPE, OLD_LABELS)
    for _table, _column, to_type, _labels in MOVES:
        _drop_if_unused(bind, to_type)
