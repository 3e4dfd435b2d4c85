"""postgres: a never-reused fencing token on jobs (lease), 64-bit dataset sizes

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A running job's attempt is its first lease; finished and queued rows start from their attempts,
    # so no lease handed out from now on equals one an existing worker may still hold.
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lease', sa.Integer(), server_default='0', nullable=False))
    op.execute("UPDATE jobs SET lease = attempts")
    # SQLite's INTEGER is 64-bit already, and re-creating `datasets` there (batch mode) would
    # cascade-delete every job through the foreign key: only PostgreSQL needs the wider type.
    if op.get_bind().dialect.name != 'sqlite':
        op.alter_column('datasets', 'bytes', type_=sa.BigInteger(), existing_nullable=False)
        op.alter_column('datasets', 'stored_bytes', type_=sa.BigInteger(), existing_nullable=False)


def downgrade() -> None:
    if op.get_bind().dialect.name != 'sqlite':
        op.alter_column('datasets', 'stored_bytes', type_=sa.Integer(), existing_nullable=False)
        op.alter_column('datasets', 'bytes', type_=sa.Integer(), existing_nullable=False)
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_column('lease')
