"""Disclosures: every audit file handed out, for the patient's accounting of disclosures.

Revision ID: 20261202_b
Revises: 20261202_g
Create Date: 2026-12-02

42 CFR 2.24 / 2.25 (and 45 CFR 164.528 for the HIPAA side): a program must be able to tell a
patient to whom their records were disclosed, when, what, and why. One row per audit file.
"""

import sqlalchemy as sa
from alembic import op

revision = "20261202_b"
down_revision = "20261202_g"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "disclosures",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("patient_id", sa.Integer(), sa.ForeignKey("patients.id"), nullable=False),
        sa.Column("disclosed_at", sa.DateTime(), nullable=False),
        sa.Column("recipient", sa.String(200), nullable=False),
        sa.Column("purpose", sa.String(300), nullable=False),
        sa.Column("legal_basis", sa.String(300), nullable=False),
        sa.Column("consent_scope", sa.Text(), nullable=True),
        sa.Column("dos_from", sa.Date(), nullable=False),
        sa.Column("dos_to", sa.Date(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("documents", sa.Integer(), nullable=False),
        sa.Column("requester_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("requester_name", sa.String(200), nullable=False),
        sa.Column("file_sha256", sa.String(64), nullable=True),
        sa.Column("entry_seq", sa.Integer(), nullable=True),
    )
    op.create_index("ix_disclosures_patient_at", "disclosures", ["patient_id", "disclosed_at"])


def downgrade():
    op.drop_index("ix_disclosures_patient_at", table_name="disclosures")
    op.drop_table("disclosures")
