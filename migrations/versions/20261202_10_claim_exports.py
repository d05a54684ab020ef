"""Claims: 837P export history (with the file, its chain entry and its 999), session breaks,
and no database default for place of service.

Revision ID: 20261202_10
Revises: 20261202_15
Create Date: 2026-12-02

``place_of_service`` defaulted to "57" on cohorts and sessions, which overrode every payer's
configured in-person POS (BlueRiver's file says 11). It is now NULL unless a session records
another location; the upgrade clears the defaulted "57" on cohorts and on open sessions.
Closed sessions keep what their archived roster says (closed records never change).
"""
from alembic import op
import sqlalchemy as sa

revision = "20261202_10"
down_revision = "20261202_15"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("group_sessions") as batch:
        batch.add_column(sa.Column("break_minutes", sa.Integer(), nullable=False, server_default="0"))
        batch.alter_column("place_of_service", existing_type=sa.String(2), nullable=True)
    with op.batch_alter_table("cohorts") as batch:
        batch.alter_column("place_of_service", existing_type=sa.String(2), nullable=True)
    op.execute("UPDATE cohorts SET place_of_service = NULL WHERE place_of_service = '57'")
    op.execute("UPDATE group_sessions SET place_of_service = NULL "
               "WHERE place_of_service = '57' AND status <> 'closed'")
    op.create_table(
        "claim_exports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("program_id", sa.Integer(), sa.ForeignKey("programs.id"), nullable=False),
        sa.Column("payer_key", sa.String(80), nullable=False),
        sa.Column("first_dos", sa.Date(), nullable=False),
        sa.Column("last_dos", sa.Date(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("user_name", sa.String(200), nullable=False),
        sa.Column("interchange", sa.Integer(), nullable=False),
        sa.Column("group_number", sa.Integer(), nullable=False),
        sa.Column("transaction_number", sa.Integer(), nullable=False),
        sa.Column("usage", sa.String(1), nullable=False),
        sa.Column("frequency", sa.String(1), nullable=False),
        sa.Column("replaces_export_id", sa.Integer(), sa.ForeignKey("claim_exports.id"), nullable=True),
        sa.Column("claims", sa.Integer(), nullable=False),
        sa.Column("lines", sa.Integer(), nullable=False),
        sa.Column("total_cents", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("filename", sa.String(200), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("document_id", sa.Integer(), sa.ForeignKey("archived_documents.id"), nullable=True),
        sa.Column("ack_status", sa.String(20), nullable=True),
        sa.Column("ack_at", sa.DateTime(), nullable=True),
        sa.Column("ack_detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "claim_export_lines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("export_id", sa.Integer(), sa.ForeignKey("claim_exports.id"), nullable=False),
        sa.Column("patient_id", sa.Integer(), sa.ForeignKey("patients.id"), nullable=False),
        sa.Column("dos", sa.Date(), nullable=False),
        sa.Column("code", sa.String(10), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("charge_cents", sa.Integer(), nullable=False),
        sa.Column("claim_ref", sa.String(38), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("export_id", "patient_id", "dos"),
    )
    op.create_index("ix_claim_export_lines_patient_dos", "claim_export_lines", ["patient_id", "dos"])


def downgrade():
    op.drop_index("ix_claim_export_lines_patient_dos", "claim_export_lines")
    op.drop_table("claim_export_lines")
    op.drop_table("claim_exports")
    op.execute("UPDATE cohorts SET place_of_service = '57' WHERE place_of_service IS NULL")
    op.execute("UPDATE group_sessions SET place_of_service = '57' WHERE place_of_service IS NULL")
    with op.batch_alter_table("cohorts") as batch:
        batch.alter_column("place_of_service", existing_type=sa.String(2), nullable=False)
    with op.batch_alter_table("group_sessions") as batch:
        batch.alter_column("place_of_service", existing_type=sa.String(2), nullable=False)
        batch.drop_column("break_minutes")
