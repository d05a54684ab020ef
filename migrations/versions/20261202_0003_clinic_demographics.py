"""Clinic demographics: program billing fields, payer 837P id and census spellings, cohort
effective dates, staff supervisor, patients' subscriber address, and program closures.

Revision ID: 0003_clinic_demographics
Revises: 0002_audit_log
Create Date: 2026-12-02

These are the columns the setup file (docs/setup.md) and the 837P both read.
"""
from alembic import op
import sqlalchemy as sa

revision = "0003_clinic_demographics"
down_revision = "0002_audit_log"
branch_labels = None
depends_on = None

PROGRAM_COLUMNS = [
    ("taxonomy_code", 10), ("service_line1", 55), ("service_line2", 55), ("service_city", 30),
    ("service_state", 2), ("service_zip", 9), ("pay_to_line1", 55), ("pay_to_line2", 55),
    ("pay_to_city", 30), ("pay_to_state", 2), ("pay_to_zip", 9), ("contact_name", 60),
    ("contact_phone", 10), ("default_pos", 2),
]
PATIENT_COLUMNS = [("address_line1", 55), ("address_line2", 55), ("city", 30), ("state", 2),
                   ("zip", 9), ("phone", 10)]


def upgrade():
    with op.batch_alter_table("programs") as batch:
        for name, length in PROGRAM_COLUMNS:
            batch.add_column(sa.Column(name, sa.String(length), nullable=True))
    with op.batch_alter_table("payers") as batch:
        batch.add_column(sa.Column("x12_payer_id", sa.String(80), nullable=True))
        batch.add_column(sa.Column("census_aliases", sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("contact", sa.String(300), nullable=True))
    with op.batch_alter_table("cohorts") as batch:
        batch.add_column(sa.Column("effective_from", sa.Date(), nullable=True))
        batch.add_column(sa.Column("effective_to", sa.Date(), nullable=True))
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("supervisor_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_users_supervisor_id", "users", ["supervisor_id"], ["id"])
    with op.batch_alter_table("patients") as batch:
        for name, length in PATIENT_COLUMNS:
            batch.add_column(sa.Column(name, sa.String(length), nullable=True))
    op.create_table(
        "closures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("program_id", sa.Integer(), sa.ForeignKey("programs.id"), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("program_id", "date"),
    )


def downgrade():
    op.drop_table("closures")
    with op.batch_alter_table("patients") as batch:
        for name, _ in PATIENT_COLUMNS:
            batch.drop_column(name)
    with op.batch_alter_table("users") as batch:
        batch.drop_constraint("fk_users_supervisor_id", type_="foreignkey")
        batch.drop_column("supervisor_id")
    with op.batch_alter_table("cohorts") as batch:
        batch.drop_column("effective_to")
        batch.drop_column("effective_from")
    with op.batch_alter_table("payers") as batch:
        for name in ("contact", "census_aliases", "x12_payer_id"):
            batch.drop_column(name)
    with op.batch_alter_table("programs") as batch:
        for name, _ in PROGRAM_COLUMNS:
            batch.drop_column(name)
