"""stix_random_sco_id: the UUIDv4 drawn once per (DCO, natural key) for SCOs without id-contributing
properties (process).

Why: STIX 2.1 §2.9 wants a random UUIDv4 for such SCOs (the OASIS validator rejects the uuid5 ids dcoflow
derived before); storing the one drawn keeps a retried task's objects identical.

Revision ID: 0003_stix_random_sco_id
Revises: 0002_severity_enum_types
Create Date: 2026-12-06 04:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes  # autogenerate renders AutoString by this path
from alembic import op

revision: str = '0003_stix_random_sco_id'
down_revision: str | Sequence[str] | None = '0002_severity_enum_types'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A database create_all made from the current models (then adopted at the baseline) has it already.
    if sa.inspect(op.get_bind()).has_table('stix_random_sco_id'):
        return
    op.create_table('stix_random_sco_id',
    sa.Column('dco_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('key_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('stix_id', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.PrimaryKeyConstraint('dco_id', 'key_hash')
    )


def downgrade() -> None:
    op.drop_table('stix_random_sco_id')
