"""Audit log: append-only ledger entries and signed checkpoints.

Revision ID: 0002_audit_log
Revises: 0001_initial
Create Date: 2026-11-30

The table definitions live in ``audit_archive.schema`` (framework-free), so the ledger code
and this migration cannot drift apart.  Triggers refuse UPDATE/DELETE (and TRUNCATE on
PostgreSQL) on both tables.
"""

from alembic import op

from audit_archive.schema import create_tables, drop_tables

revision = "0002_audit_log"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade():
    create_tables(op.get_bind())


def downgrade():
    drop_tables(op.get_bind())
