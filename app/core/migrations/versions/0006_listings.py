"""listings: indexes for the leaderboard's fingerprint and for newest-first pages, and a token
bumped when a dataset's visibility changes

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""
from datetime import datetime, timezone

from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_jobs_status_finished', 'jobs', ['status', 'finished_at'], unique=False)
    op.create_index('ix_transfer_measured', 'transfer_results', ['measured_at'], unique=False)
    op.create_index('ix_datasets_newest', 'datasets', ['created_at', 'id'], unique=False)
    op.drop_index('ix_datasets_created_at', table_name='datasets')
    op.create_index('ix_jobs_newest', 'jobs', ['created_at', 'id'], unique=False)
    state = sa.table('service_state', sa.column('key', sa.String), sa.column('value', sa.JSON),
                     sa.column('updated_at', sa.DateTime(timezone=True)))
    op.bulk_insert(state, [{'key': 'visibility_changed', 'value': {'token': ''},
                            'updated_at': datetime.now(timezone.utc)}])


def downgrade() -> None:
    op.execute("DELETE FROM service_state WHERE key = 'visibility_changed'")
    op.drop_index('ix_jobs_newest', table_name='jobs')
    op.create_index('ix_datasets_created_at', 'datasets', ['created_at'], unique=False)
    op.drop_index('ix_datasets_newest', table_name='datasets')
    op.drop_index('ix_transfer_measured', table_name='transfer_results')
    op.drop_index('ix_jobs_status_finished', table_name='jobs')
