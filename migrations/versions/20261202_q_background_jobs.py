"""Background jobs on a task queue (issue 14): the ``background_jobs`` table, the state of every
export or render job, shared by web and worker processes.

Revision ID: 20261202_q
Revises: 20261202_13
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa


revision = "20261202_q"
down_revision = "20261202_13"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "background_jobs",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("progress", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(length=200), nullable=False),
        sa.Column("result_path", sa.String(length=500), nullable=True),
        sa.Column("filename", sa.String(length=255), nullable=True),
        sa.Column("mimetype", sa.String(length=100), nullable=True),
        sa.Column("result_bytes", sa.Integer(), nullable=True),
        sa.Column("summary", sa.String(length=300), nullable=True),
        sa.Column("result_info", sa.Text(), nullable=True),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("background_jobs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_background_jobs_user_id"), ["user_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_background_jobs_state"), ["state"], unique=False)
        batch_op.create_index(batch_op.f("ix_background_jobs_expires_at"), ["expires_at"], unique=False)


def downgrade():
    with op.batch_alter_table("background_jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_background_jobs_expires_at"))
        batch_op.drop_index(batch_op.f("ix_background_jobs_state"))
        batch_op.drop_index(batch_op.f("ix_background_jobs_user_id"))
    op.drop_table("background_jobs")
