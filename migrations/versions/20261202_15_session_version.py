"""Per-user session version: a session cookie is honoured only while its version matches.

Revision ID: 20261202_15
Revises: 20261202_8
Create Date: 2026-12-02

Signing out, a password change and deactivation bump ``users.session_version``, so every copy
of an earlier session cookie stops working at once (cookie sessions cannot be revoked otherwise).
"""

import sqlalchemy as sa
from alembic import op

revision = "20261202_15"
down_revision = "20261202_8"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("session_version", sa.Integer(), nullable=False,
                                   server_default="1"))


def downgrade():
    with op.batch_alter_table("users") as batch:
        batch.drop_column("session_version")
