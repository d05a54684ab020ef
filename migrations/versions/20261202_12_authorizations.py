"""Authorizations: request/decision state machine, transitions with archived PDFs, level-of-care
episodes, uploaded payer letters.

Revision ID: 20261202_12
Revises: 20261202_9
Create Date: 2026-12-02

Existing (census-imported) authorizations become ``approved``; ``number`` may be empty until
the payer assigns one.
"""
from alembic import op
import sqlalchemy as sa

revision = "20261202_12"
down_revision = "20261202_9"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("authorizations") as b:
        b.alter_column("number", existing_type=sa.String(60), nullable=True)
        b.add_column(sa.Column("asam_edition", sa.String(4), nullable=False, server_default="3"))
        b.add_column(sa.Column("units_per_week", sa.Integer(), nullable=True))
        b.add_column(sa.Column("status", sa.String(24), nullable=False, server_default="approved"))
        b.add_column(sa.Column("request_kind", sa.String(12), nullable=False,
                               server_default="standard"))
        for name in ("submitted_at", "decided_at", "decision_due_at", "p2p_due_at",
                     "appeal_due_at", "created_at"):
            b.add_column(sa.Column(name, sa.DateTime(), nullable=True))
        b.add_column(sa.Column("denial_reason", sa.Text(), nullable=True))
        b.add_column(sa.Column("extends_id", sa.Integer(), nullable=True))
        b.add_column(sa.Column("extension_reason", sa.Text(), nullable=True))
        b.add_column(sa.Column("prior_authorization_id", sa.Integer(), nullable=True))
        b.add_column(sa.Column("request_json", sa.Text(), nullable=True))
        b.create_foreign_key("fk_authorizations_extends", "authorizations", ["extends_id"], ["id"])
        b.create_foreign_key("fk_authorizations_prior", "authorizations",
                             ["prior_authorization_id"], ["id"])
        b.create_index("ix_authorizations_status", ["status"])

    op.create_table(
        "authorization_transitions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("authorization_id", sa.Integer(), sa.ForeignKey("authorizations.id"),
                  nullable=False, index=True),
        sa.Column("from_state", sa.String(24), nullable=False),
        sa.Column("to_state", sa.String(24), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.Column("actor_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("document_id", sa.Integer(), sa.ForeignKey("archived_documents.id"),
                  nullable=True),
    )
    op.create_table(
        "care_episodes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("patient_id", sa.Integer(), sa.ForeignKey("patients.id"), nullable=False,
                  index=True),
        sa.Column("level", sa.String(10), nullable=False),
        sa.Column("asam_edition", sa.String(4), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=True),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.Column("authorization_id", sa.Integer(), sa.ForeignKey("authorizations.id"),
                  nullable=True),
        sa.Column("auth_number", sa.String(60), nullable=True),
        sa.Column("prior_episode_id", sa.Integer(), sa.ForeignKey("care_episodes.id"),
                  nullable=True),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=True),
    )
    op.create_table(
        "payer_letters",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("authorization_id", sa.Integer(), sa.ForeignKey("authorizations.id"),
                  nullable=False, index=True),
        sa.Column("filename", sa.String(200), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("original_sha256", sa.String(64), nullable=False),
        sa.Column("original", sa.LargeBinary(), nullable=False),
        sa.Column("decrypted_sha256", sa.String(64), nullable=True),
        sa.Column("decrypted", sa.LargeBinary(), nullable=True),
        sa.Column("uploaded_at", sa.DateTime(), nullable=False),
        sa.Column("uploaded_by_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
    )


def downgrade():
    op.drop_table("payer_letters")
    op.drop_table("care_episodes")
    op.drop_table("authorization_transitions")
    with op.batch_alter_table("authorizations") as b:
        b.drop_index("ix_authorizations_status")
        b.drop_constraint("fk_authorizations_prior", type_="foreignkey")
        b.drop_constraint("fk_authorizations_extends", type_="foreignkey")
        for name in ("request_json", "prior_authorization_id", "extension_reason", "extends_id",
                     "denial_reason", "created_at", "appeal_due_at", "p2p_due_at",
                     "decision_due_at", "decided_at", "submitted_at", "request_kind", "status",
                     "units_per_week", "asam_edition"):
            b.drop_column(name)
        b.alter_column("number", existing_type=sa.String(60), nullable=False)
