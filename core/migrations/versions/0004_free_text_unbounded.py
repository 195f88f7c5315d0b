"""Free-text columns become TEXT (unbounded): names, owners, hosts, reasons, keys people or content supply.

Why: SQLite ignores VARCHAR lengths, PostgreSQL enforces them, so the same lifecycle that passed on SQLite died
on PostgreSQL (a re-test reason listing every technique id overflowed followup_retest.reason, VARCHAR(200)).
Values a person or a content file writes are now stored whole; identifiers we generate keep their bounds, and
core.db refuses an over-long one with an error naming the column before the database sees it.

A column that is TEXT already (a database create_all made from these models) is left alone.
Downgrade narrows the columns again, and refuses (naming table, column and the longest value's length) when a
stored value would not fit, instead of letting PostgreSQL abort half-way or SQLite keep it silently.

Revision ID: 0004_free_text_unbounded
Revises: 0003_stix_random_sco_id
Create Date: 2026-12-06 04:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from dcoflow.core.errors import StateError

revision: str = '0004_free_text_unbounded'
down_revision: str | Sequence[str] | None = '0003_stix_random_sco_id'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, column, VARCHAR length before this revision, nullable)
COLUMNS: tuple[tuple[str, str, int, bool], ...] = (
    ("audit_event", "actor", 120, False),
    ("deconfliction", "notified", 255, False),
    ("emulation_execution", "host", 255, True),
    ("emulation_outcome", "tool", 120, False),
    ("emulation_outcome", "operator", 120, False),
    ("emulation_outcome", "target_host", 255, True),
    ("followup_action", "owner", 120, False),
    ("followup_incident", "finding_key", 200, False),
    ("followup_incident", "host", 255, True),
    ("followup_incident", "external_ref", 120, True),
    ("followup_retest", "reason", 200, False),
    ("followup_retest", "deployment", 200, True),
    ("followup_risk", "source_key", 200, False),
    ("followup_risk", "owner", 120, False),
    ("followup_risk", "decision_body", 60, True),
    ("followup_risk_decision", "authority", 60, False),
    ("followup_risk_decision", "decided_by", 120, False),
    ("hunt_run", "hunt_key", 200, False),
    ("meeting", "body", 120, False),
    ("meeting", "created_by", 120, False),
    ("meeting_item", "authority", 60, True),
    ("meeting_item", "decided_by", 120, True),
    ("triage_verdict", "analyst", 120, False),
)


def _tables() -> dict[str, list[tuple[str, int, bool]]]:
    by_table: dict[str, list[tuple[str, int, bool]]] = {}
    for table, column, length, nullable in COLUMNS:
        by_table.setdefault(table, []).append((column, length, nullable))
    return by_table


def _bounded(bind: sa.Connection, table: str) -> set[str]:
    """The columns of ``table`` that still have a length (a database create_all made from newer models, then
    adopted at the baseline, has TEXT already: nothing to alter, and SQLite need not rebuild the table)."""
    return {c["name"] for c in sa.inspect(bind).get_columns(table) if getattr(c["type"], "length", None)}


def upgrade() -> None:
    bind = op.get_bind()
    for table, columns in _tables().items():
        todo = [c for c in columns if c[0] in _bounded(bind, table)]
        if not todo:
            continue
        with op.batch_alter_table(table) as batch:
            for column, length, nullable in todo:
                batch.alter_column(column, existing_type=sa.VARCHAR(length), type_=sa.Text(),
                                   existing_nullable=nullable)


def downgrade() -> None:
    bind = op.get_bind()
    for table, column, length, _nullable in COLUMNS:
        longest = bind.execute(sa.text(f"SELECT max(length({column})) FROM {table}")).scalar_one_or_none()
        if longest is not None and longest > length:
            raise StateError(f"{table}.{column} holds a value of {longest} characters; VARCHAR({length}) cannot "
                             "hold it", system="database", object=table,
                             hint="shorten those values first, or stay at this revision")
    for table, columns in reversed(list(_tables().items())):
        with op.batch_alter_table(table) as batch:
            for column, length, nullable in columns:
                batch.alter_column(column, existing_type=sa.Text(), type_=sa.VARCHAR(length),
                                   existing_nullable=nullable)
