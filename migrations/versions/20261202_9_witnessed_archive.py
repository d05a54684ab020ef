"""Issue 9: closed rosters frozen by triggers; witness cosignatures; archived time.

Revision ID: 20261202_9
Revises: 20261202_10
Create Date: 2026-12-02

The trigger DDL lives in ``portal.models.roster_freeze`` and the archive tables in
``audit_archive.schema`` so the code and the migration cannot drift apart.
"""

from alembic import op

from audit_archive.schema import create_cosignature_table, drop_cosignature_table
from portal.models.roster_freeze import freeze_ddl, unfreeze_ddl

revision = "20261202_9"
down_revision = "20261202_10"
branch_labels = None
depends_on = None


def upgrade():
    bind = op.get_bind()
    for stmt in freeze_ddl(bind.dialect.name):
        bind.exec_driver_sql(stmt)
    create_cosignature_table(bind)


def downgrade():
    bind = op.get_bind()
    drop_cosignature_table(bind)
    for stmt in unfreeze_ddl(bind.dialect.name):
        bind.exec_driver_sql(stmt)
