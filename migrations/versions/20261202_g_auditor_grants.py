"""Auditor grants (issue 14): scoped, expiring, revocable auditor access replaces the
permanent per-user payer scope.

Revision ID: 20261202_g
Revises: 20261202_q
Create Date: 2026-12-02

Each auditor with a payer scope gets one grant for that payer's members (audit and evaluation,
42 CFR §2.53) expiring 90 days after the upgrade, so nobody loses access on the day of the
upgrade and nobody keeps it forever; the admin reviews the grant (purpose, recipient, expiry)
on Admin → Auditor grants. An auditor without a payer scope (program-wide, forever) gets no
grant: such access must now be granted explicitly.
"""
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from alembic import op

revision = "20261202_g"
down_revision = "20261202_q"
branch_labels = None
depends_on = None

MIGRATED_PURPOSE = ("Payer audit of the payer's members (carried over from the auditor's former "
                    "permanent payer scope; review the purpose, recipient and expiry).")
MIGRATED_DAYS = 90


def upgrade():
    op.create_table(
        "auditor_grants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("auditor_id", sa.Integer(), nullable=False),
        sa.Column("payer_id", sa.Integer(), nullable=True),
        sa.Column("dos_from", sa.Date(), nullable=True),
        sa.Column("dos_to", sa.Date(), nullable=True),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("legal_basis", sa.String(length=20), nullable=False),
        sa.Column("consent_scope", sa.Text(), nullable=False),
        sa.Column("recipient", sa.String(length=200), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("granted_by_id", sa.Integer(), nullable=True),
        sa.Column("granted_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_by_id", sa.Integer(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.Column("revoke_reason", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(["auditor_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["payer_id"], ["payers.id"]),
        sa.ForeignKeyConstraint(["granted_by_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["revoked_by_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_auditor_grants_auditor_id", "auditor_grants", ["auditor_id"])
    op.create_table(
        "auditor_grant_patients",
        sa.Column("grant_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["grant_id"], ["auditor_grants.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"]),
        sa.PrimaryKeyConstraint("grant_id", "patient_id"),
    )
    with op.batch_alter_table("programs") as batch:
        batch.add_column(sa.Column("billing_grants_auditors", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))

    conn = op.get_bind()
    now = datetime.now(timezone.utc).replace(tzinfo=None)  # naive UTC, as UTCDateTime stores
    rows = conn.execute(sa.text(
        "SELECT u.id, u.payer_scope_id, p.name FROM users u JOIN payers p "
        "ON p.id = u.payer_scope_id WHERE u.role = 'auditor'")).all()
    for user_id, payer_id, payer_name in rows:
        conn.execute(sa.text(
            "INSERT INTO auditor_grants (auditor_id, payer_id, purpose, legal_basis, "
            "consent_scope, recipient, expires_at, granted_at) VALUES (:a, :p, :purpose, "
            "'audit_2_53', '', :recipient, :exp, :now)"),
            {"a": user_id, "p": payer_id, "purpose": MIGRATED_PURPOSE,
             "recipient": payer_name, "exp": now + timedelta(days=MIGRATED_DAYS), "now": now})
    with op.batch_alter_table("users") as batch:
        batch.drop_column("payer_scope_id")


def downgrade():
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("payer_scope_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_users_payer_scope_id", "payers", ["payer_scope_id"], ["id"])
    conn = op.get_bind()
    # Back to one payer per auditor: the payer of the auditor's latest unrevoked payer grant.
    for user_id, payer_id in conn.execute(sa.text(
            "SELECT auditor_id, payer_id FROM auditor_grants WHERE payer_id IS NOT NULL "
            "AND revoked_at IS NULL ORDER BY granted_at")).all():
        conn.execute(sa.text("UPDATE users SET payer_scope_id = :p WHERE id = :u"),
                     {"p": payer_id, "u": user_id})
    with op.batch_alter_table("programs") as batch:
        batch.drop_column("billing_grants_auditors")
    op.drop_table("auditor_grant_patients")
    op.drop_index("ix_auditor_grants_auditor_id", table_name="auditor_grants")
    op.drop_table("auditor_grants")
