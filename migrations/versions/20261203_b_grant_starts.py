"""Auditor grants: an optional start (issue 14). Access begins at ``starts_at`` when the grant
names one (a consent or an audit engagement that begins on a later date), else when granted.

Revision ID: 20261203_b
Revises: 20261202_b
Create Date: 2026-12-03

Existing grants get no start: their access keeps beginning when they were granted.
"""

import sqlalchemy as sa
from alembic import op

revision = "20261203_b"
down_revision = "20261202_b"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("auditor_grants") as batch:
        batch.add_column(sa.Column("starts_at", sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table("auditor_grants") as batch:
        batch.drop_column("starts_at")
