"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-28
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('datasets',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('format', sa.String(length=200), nullable=False),
    sa.Column('name', sa.String(length=500), nullable=False),
    sa.Column('bytes', sa.Integer(), nullable=False),
    sa.Column('stored_bytes', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('sha256', 'format', name='uq_datasets_sha256_format')
    )
    with op.batch_alter_table('datasets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_datasets_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_datasets_sha256'), ['sha256'], unique=False)

    op.create_table('jobs',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('dataset_id', sa.String(length=32), nullable=False),
    sa.Column('config_key', sa.String(length=64), nullable=False),
    sa.Column('preset', sa.String(length=50), nullable=True),
    sa.Column('budgets', sa.JSON(), nullable=True),
    sa.Column('estimator', sa.String(length=50), nullable=False),
    sa.Column('seeds', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('progress', sa.Float(), nullable=False),
    sa.Column('message', sa.Text(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('worker_pid', sa.Integer(), nullable=True),
    sa.Column('worker_host', sa.String(length=255), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('seconds', sa.Float(), nullable=True),
    sa.Column('result', sa.JSON(), nullable=True),
    sa.Column('epiplexity_bits', sa.Float(), nullable=True),
    sa.Column('entropy_bits', sa.Float(), nullable=True),
    sa.Column('epiplexity_bits_per_byte', sa.Float(), nullable=True),
    sa.Column('entropy_bits_per_byte', sa.Float(), nullable=True),
    sa.Column('zstd_bits_per_byte', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['dataset_id'], ['datasets.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('dataset_id', 'config_key', name='uq_jobs_dataset_config')
    )
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.create_index('ix_jobs_dataset_status_finished', ['dataset_id', 'status', 'finished_at'], unique=False)
        batch_op.create_index('ix_jobs_status_created', ['status', 'created_at'], unique=False)

    op.create_table('curve_points',
    sa.Column('job_id', sa.String(length=32), nullable=False),
    sa.Column('budget_flops', sa.Float(), nullable=False),
    sa.Column('epiplexity_bits', sa.Float(), nullable=False),
    sa.Column('entropy_bits', sa.Float(), nullable=False),
    sa.Column('epiplexity_bits_per_byte', sa.Float(), nullable=False),
    sa.Column('entropy_bits_per_byte', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('job_id', 'budget_flops')
    )
    with op.batch_alter_table('curve_points', schema=None) as batch_op:
        batch_op.create_index('ix_curve_points_budget', ['budget_flops'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('curve_points', schema=None) as batch_op:
        batch_op.drop_index('ix_curve_points_budget')

    op.drop_table('curve_points')
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_jobs_status_created')
        batch_op.drop_index('ix_jobs_dataset_status_finished')

    op.drop_table('jobs')
    with op.batch_alter_table('datasets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_datasets_sha256'))
        batch_op.drop_index(batch_op.f('ix_datasets_created_at'))

    op.drop_table('datasets')
