"""transfer: panel flag on datasets, source model and transfer request on jobs, measured transfer rows

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('datasets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('panel_source', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('panel_description', sa.Text(), nullable=True))
        batch_op.create_index(batch_op.f('ix_datasets_panel_source'), ['panel_source'], unique=False)

    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('score_key', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('transfer', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('model_path', sa.String(length=500), nullable=True))
        batch_op.create_index('ix_jobs_dataset_score_key', ['dataset_id', 'score_key'], unique=False)
    # Before transfer existed a job's key was its scoring settings alone.
    op.execute("UPDATE jobs SET score_key = config_key")

    op.create_table('transfer_results',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('source_dataset_id', sa.String(length=32), nullable=False),
    sa.Column('target_dataset_id', sa.String(length=32), nullable=False),
    sa.Column('job_id', sa.String(length=32), nullable=True),
    sa.Column('score_key', sa.String(length=64), nullable=False),
    sa.Column('preset', sa.String(length=50), nullable=False),
    sa.Column('seed', sa.Integer(), nullable=False),
    sa.Column('transfer_bits', sa.Float(), nullable=False),
    sa.Column('transfer_bits_per_byte', sa.Float(), nullable=False),
    sa.Column('scratch_code_bits', sa.Float(), nullable=False),
    sa.Column('transfer_code_bits', sa.Float(), nullable=False),
    sa.Column('target_bytes_coded', sa.Integer(), nullable=False),
    sa.Column('target_tokens_coded', sa.Integer(), nullable=False),
    sa.Column('budget_flops', sa.Float(), nullable=False),
    sa.Column('model', sa.JSON(), nullable=False),
    sa.Column('measured_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['source_dataset_id'], ['datasets.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['target_dataset_id'], ['datasets.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('source_dataset_id', 'target_dataset_id', 'preset', 'seed', 'score_key',
                        name='uq_transfer_pair')
    )
    with op.batch_alter_table('transfer_results', schema=None) as batch_op:
        batch_op.create_index('ix_transfer_target', ['target_dataset_id'], unique=False)

    op.create_table('service_state',
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('value', sa.JSON(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )


def downgrade() -> None:
    op.drop_table('service_state')
    with op.batch_alter_table('transfer_results', schema=None) as batch_op:
        batch_op.drop_index('ix_transfer_target')
    op.drop_table('transfer_results')

    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_jobs_dataset_score_key')
        batch_op.drop_column('model_path')
        batch_op.drop_column('transfer')
        batch_op.drop_column('score_key')

    with op.batch_alter_table('datasets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_datasets_panel_source'))
        batch_op.drop_column('panel_description')
        batch_op.drop_column('panel_source')
