"""Clinic setup and admin pages: one-time set-password links, the admin log, and per-date
session changes (a cancelled session keeps its reason).

Revision ID: 20261202_8
Revises: 0003_clinic_demographics
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa

revision = "20261202_8"
down_revision = "0003_clinic_demographics"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "set_password_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        # Only the SHA-256 of the token is stored: the link is shown once and cannot be re-read.
        sa.Column("token_sha256", sa.String(64), nullable=False),
        sa.Column("purpose", sa.String(10), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.Column("created_by_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_sha256"),
    )
    op.create_table(
        "admin_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("object_type", sa.String(40), nullable=False),
        sa.Column("object_id", sa.Integer(), nullable=True),
        sa.Column("object_label", sa.String(200), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("before", sa.Text(), nullable=False),
        sa.Column("after", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_admin_log_at", "admin_log", ["at"])
    with op.batch_alter_table("group_sessions") as batch:
        batch.add_column(sa.Column("cancel_reason", sa.String(200), nullable=True))


def downgrade():
    with op.batch_alter_table("group_sessions") as batch:
        batch.drop_column("cancel_reason")
    op.drop_index("ix_admin_log_at", table_name="admin_log")
    op.drop_table("admin_log")
    op.drop_table("set_password_links")
