"""Encounter notes, group notes, treatment plans (versioned) and addenda (issue 11).

Revision ID: 20261202_11
Revises: 20261202_12
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa

from portal.models.types import UTCDateTime


# revision identifiers, used by Alembic.
revision = '20261202_11'
down_revision = "20261202_12"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('addenda',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('target_kind', sa.String(length=10), nullable=False),
    sa.Column('original_document_id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('supersedes_id', sa.Integer(), nullable=True),
    sa.Column('author_id', sa.Integer(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('fields_json', sa.Text(), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('document_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'], ),
    sa.ForeignKeyConstraint(['document_id'], ['archived_documents.id'], ),
    sa.ForeignKeyConstraint(['original_document_id'], ['archived_documents.id'], ),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], ),
    sa.ForeignKeyConstraint(['supersedes_id'], ['addenda.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('original_document_id', 'patient_id', 'position')
    )
    with op.batch_alter_table('addenda', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_addenda_original_document_id'), ['original_document_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_addenda_patient_id'), ['patient_id'], unique=False)

    op.create_table('treatment_plans',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('previous_id', sa.Integer(), nullable=True),
    sa.Column('asam_edition', sa.String(length=4), nullable=False),
    sa.Column('level_of_care', sa.String(length=10), nullable=False),
    sa.Column('content_json', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('supervisor_required', sa.Boolean(), nullable=False),
    sa.Column('patient_signature_png', sa.LargeBinary(), nullable=True),
    sa.Column('patient_signature_sha256', sa.String(length=64), nullable=True),
    sa.Column('patient_signed_at', UTCDateTime(), nullable=True),
    sa.Column('clinician_id', sa.Integer(), nullable=True),
    sa.Column('clinician_signed_at', UTCDateTime(), nullable=True),
    sa.Column('supervisor_id', sa.Integer(), nullable=True),
    sa.Column('supervisor_signed_at', UTCDateTime(), nullable=True),
    sa.Column('effective_date', sa.Date(), nullable=True),
    sa.Column('document_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['clinician_id'], ['users.id'], ),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], ),
    sa.ForeignKeyConstraint(['document_id'], ['archived_documents.id'], ),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], ),
    sa.ForeignKeyConstraint(['previous_id'], ['treatment_plans.id'], ),
    sa.ForeignKeyConstraint(['supervisor_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('patient_id', 'version')
    )
    with op.batch_alter_table('treatment_plans', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_treatment_plans_patient_id'), ['patient_id'], unique=False)

    op.create_table('encounter_notes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('session_id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=False),
    sa.Column('plan_id', sa.Integer(), nullable=True),
    sa.Column('objective_key', sa.String(length=20), nullable=True),
    sa.Column('participation', sa.String(length=20), nullable=True),
    sa.Column('affect', sa.String(length=20), nullable=True),
    sa.Column('mental_status', sa.String(length=30), nullable=True),
    sa.Column('risk', sa.String(length=20), nullable=True),
    sa.Column('safety_plan', sa.Text(), nullable=False),
    sa.Column('progress', sa.String(length=20), nullable=True),
    sa.Column('individual_text', sa.Text(), nullable=False),
    sa.Column('plan_changes', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('clone_flag', sa.String(length=10), nullable=False),
    sa.Column('clone_review', sa.Text(), nullable=False),
    sa.Column('signed_at', UTCDateTime(), nullable=True),
    sa.Column('deadline', sa.Date(), nullable=True),
    sa.Column('document_id', sa.Integer(), nullable=True),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('updated_at', UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'], ),
    sa.ForeignKeyConstraint(['document_id'], ['archived_documents.id'], ),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], ),
    sa.ForeignKeyConstraint(['plan_id'], ['treatment_plans.id'], ),
    sa.ForeignKeyConstraint(['session_id'], ['group_sessions.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('session_id', 'patient_id')
    )
    with op.batch_alter_table('encounter_notes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_encounter_notes_author_id'), ['author_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_encounter_notes_patient_id'), ['patient_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_encounter_notes_session_id'), ['session_id'], unique=False)

    op.create_table('group_notes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('session_id', sa.Integer(), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=False),
    sa.Column('group_modality', sa.String(length=30), nullable=False),
    sa.Column('topic', sa.String(length=200), nullable=False),
    sa.Column('shared_text', sa.Text(), nullable=False),
    sa.Column('updated_at', UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'], ),
    sa.ForeignKeyConstraint(['session_id'], ['group_sessions.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('session_id')
    )


def downgrade():
    op.drop_table('group_notes')
    with op.batch_alter_table('encounter_notes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_encounter_notes_session_id'))
        batch_op.drop_index(batch_op.f('ix_encounter_notes_patient_id'))
        batch_op.drop_index(batch_op.f('ix_encounter_notes_author_id'))

    op.drop_table('encounter_notes')
    with op.batch_alter_table('treatment_plans', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_treatment_plans_patient_id'))

    op.drop_table('treatment_plans')
    with op.batch_alter_table('addenda', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_addenda_patient_id'))
        batch_op.drop_index(batch_op.f('ix_addenda_original_document_id'))

    op.drop_table('addenda')
