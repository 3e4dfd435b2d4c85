"""auth: API keys, owner and visibility of datasets, owner of jobs, FLOPs charged per key

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('api_keys',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('secret_sha256', sa.String(length=64), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('admin', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name'),
    sa.UniqueConstraint('secret_sha256')
    )
    # Rows from before keys existed have no owner and stay public, as they were.
    with op.batch_alter_table('datasets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('owner_id', sa.String(length=32), server_default='', nullable=False))
        batch_op.add_column(sa.Column('visibility', sa.String(length=10), server_default='public', nullable=False))
        batch_op.create_index(batch_op.f('ix_datasets_owner_id'), ['owner_id'], unique=False)
        batch_op.drop_constraint('uq_datasets_sha256_format', type_='unique')
        batch_op.create_unique_constraint('uq_datasets_owner_sha256_format', ['owner_id', 'sha256', 'format'])

    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('owner_id', sa.String(length=32), server_default='', nullable=False))
        batch_op.create_index(batch_op.f('ix_jobs_owner_id'), ['owner_id'], unique=False)

    op.create_table('flops_charges',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('owner_id', sa.String(length=32), nullable=False),
    sa.Column('job_id', sa.String(length=32), nullable=False),
    sa.Column('flops', sa.Float(), nullable=False),
    sa.Column('charged_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('flops_charges', schema=None) as batch_op:
        batch_op.create_index('ix_flops_charges_owner_at', ['owner_id', 'charged_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('flops_charges', schema=None) as batch_op:
        batch_op.drop_index('ix_flops_charges_owner_at')
    op.drop_table('flops_charges')

    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_jobs_owner_id'))
        batch_op.drop_column('owner_id')

    with op.batch_alter_table('datasets', schema=None) as batch_op:
        batch_op.drop_constraint('uq_datasets_owner_sha256_format', type_='unique')
        batch_op.create_unique_constraint('uq_datasets_sha256_format', ['sha256', 'format'])
        batch_op.drop_index(batch_op.f('ix_datasets_owner_id'))
        batch_op.drop_column('visibility')
        batch_op.drop_column('owner_id')

    op.drop_table('api_keys')
