"""No-show and cancellation policy (issue 13): policy versions, acknowledgments, absence notices,
fee ledger, outreach log, letters, clinical-review tasks; patients' mail consent and QMB flag.

Revision ID: 20261202_13
Revises: 20261202_11
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '20261202_13'
down_revision = "20261202_11"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('clinical_review_tasks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('trigger_dos', sa.Date(), nullable=False),
    sa.Column('reason', sa.String(length=300), nullable=False),
    sa.Column('assignee', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('closed_at', sa.DateTime(), nullable=True),
    sa.Column('closed_by_id', sa.Integer(), nullable=True),
    sa.Column('resolution', sa.String(length=300), nullable=False),
    sa.ForeignKeyConstraint(['closed_by_id'], ['users.id'], ),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('patient_id', 'trigger_dos')
    )
    with op.batch_alter_table('clinical_review_tasks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_clinical_review_tasks_patient_id'), ['patient_id'], unique=False)

    op.create_table('no_show_letters',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('trigger_dos', sa.Date(), nullable=False),
    sa.Column('trigger', sa.String(length=300), nullable=False),
    sa.Column('document_id', sa.Integer(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], ),
    sa.ForeignKeyConstraint(['document_id'], ['archived_documents.id'], ),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('patient_id', 'trigger_dos')
    )
    with op.batch_alter_table('no_show_letters', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_no_show_letters_patient_id'), ['patient_id'], unique=False)

    op.create_table('no_show_policies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('program_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('effective_from', sa.Date(), nullable=False),
    sa.Column('effective_to', sa.Date(), nullable=True),
    sa.Column('grace_minutes', sa.Integer(), nullable=False),
    sa.Column('notice_hours', sa.Integer(), nullable=False),
    sa.Column('fee_cents', sa.Integer(), nullable=False),
    sa.Column('uniform', sa.Boolean(), nullable=False),
    sa.Column('letter_consecutive', sa.Integer(), nullable=False),
    sa.Column('letter_count', sa.Integer(), nullable=False),
    sa.Column('window_days', sa.Integer(), nullable=False),
    sa.Column('letter_sender', sa.String(length=120), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('published_at', sa.DateTime(), nullable=False),
    sa.Column('published_by_id', sa.Integer(), nullable=True),
    sa.Column('document_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['document_id'], ['archived_documents.id'], ),
    sa.ForeignKeyConstraint(['program_id'], ['programs.id'], ),
    sa.ForeignKeyConstraint(['published_by_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('program_id', 'version')
    )
    op.create_table('outreach_attempts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('dos', sa.Date(), nullable=True),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('method', sa.String(length=20), nullable=False),
    sa.Column('outcome', sa.String(length=20), nullable=False),
    sa.Column('note', sa.String(length=300), nullable=False),
    sa.Column('staff_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], ),
    sa.ForeignKeyConstraint(['staff_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('outreach_attempts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outreach_attempts_patient_id'), ['patient_id'], unique=False)

    op.create_table('absence_notices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('cohort_id', sa.Integer(), nullable=False),
    sa.Column('dos', sa.Date(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('notice_at', sa.DateTime(), nullable=False),
    sa.Column('reason', sa.String(length=300), nullable=False),
    sa.Column('recorded_by_id', sa.Integer(), nullable=True),
    sa.Column('recorded_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['cohort_id'], ['cohorts.id'], ),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], ),
    sa.ForeignKeyConstraint(['recorded_by_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('patient_id', 'cohort_id', 'dos', 'kind')
    )
    with op.batch_alter_table('absence_notices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_absence_notices_dos'), ['dos'], unique=False)
        batch_op.create_index(batch_op.f('ix_absence_notices_patient_id'), ['patient_id'], unique=False)

    op.create_table('no_show_acknowledgments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('policy_id', sa.Integer(), nullable=False),
    sa.Column('signed_at', sa.DateTime(), nullable=False),
    sa.Column('signature_png', sa.LargeBinary(), nullable=True),
    sa.Column('signature_sha256', sa.String(length=64), nullable=False),
    sa.Column('witness_id', sa.Integer(), nullable=True),
    sa.Column('document_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['document_id'], ['archived_documents.id'], ),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], ),
    sa.ForeignKeyConstraint(['policy_id'], ['no_show_policies.id'], ),
    sa.ForeignKeyConstraint(['witness_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('patient_id', 'policy_id')
    )
    with op.batch_alter_table('no_show_acknowledgments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_no_show_acknowledgments_patient_id'), ['patient_id'], unique=False)

    op.create_table('no_show_fee_ledger',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('amount_cents', sa.Integer(), nullable=False),
    sa.Column('session_id', sa.Integer(), nullable=True),
    sa.Column('dos', sa.Date(), nullable=True),
    sa.Column('classification', sa.String(length=30), nullable=True),
    sa.Column('policy_id', sa.Integer(), nullable=True),
    sa.Column('charge_id', sa.Integer(), nullable=True),
    sa.Column('reason', sa.String(length=300), nullable=False),
    sa.Column('recorded_by_id', sa.Integer(), nullable=True),
    sa.Column('recorded_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['charge_id'], ['no_show_fee_ledger.id'], ),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], ),
    sa.ForeignKeyConstraint(['policy_id'], ['no_show_policies.id'], ),
    sa.ForeignKeyConstraint(['recorded_by_id'], ['users.id'], ),
    sa.ForeignKeyConstraint(['session_id'], ['group_sessions.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('no_show_fee_ledger', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_no_show_fee_ledger_patient_id'), ['patient_id'], unique=False)

    with op.batch_alter_table('patients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('mail_consent', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('qmb', sa.Boolean(), nullable=False, server_default=sa.false()))



def downgrade():
    with op.batch_alter_table('patients', schema=None) as batch_op:
        batch_op.drop_column('qmb')
        batch_op.drop_column('mail_consent')

    with op.batch_alter_table('no_show_fee_ledger', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_no_show_fee_ledger_patient_id'))

    op.drop_table('no_show_fee_ledger')
    with op.batch_alter_table('no_show_acknowledgments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_no_show_acknowledgments_patient_id'))

    op.drop_table('no_show_acknowledgments')
    with op.batch_alter_table('absence_notices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_absence_notices_patient_id'))
        batch_op.drop_index(batch_op.f('ix_absence_notices_dos'))

    op.drop_table('absence_notices')
    with op.batch_alter_table('outreach_attempts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outreach_attempts_patient_id'))

    op.drop_table('outreach_attempts')
    op.drop_table('no_show_policies')
    with op.batch_alter_table('no_show_letters', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_no_show_letters_patient_id'))

    op.drop_table('no_show_letters')
    with op.batch_alter_table('clinical_review_tasks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_clinical_review_tasks_patient_id'))

    op.drop_table('clinical_review_tasks')
