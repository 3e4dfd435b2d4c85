"""units and transfer: jobs keep the per-byte denominator; stored transfer becomes the mixture's

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29

`transfer_bits` used to be the signed difference of the two code lengths; it is now the bits a
Bayes mixture of the scratch and warm-started runs saves (never below -1 bit). Both code lengths
are stored, so existing rows are recomputed exactly; the signed difference stays derivable.
"""
import math

from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def _mixture_saving(scratch: float, warm: float) -> float:
    """scratch - (-log2(2^-scratch/2 + 2^-warm/2)), frozen here as the migration ran it."""
    gap = abs(scratch - warm)
    mixture = min(scratch, warm) + 1.0 - math.log2(1.0 + 2.0 ** -gap)
    return scratch - mixture


def upgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('bytes_coded', sa.Integer(), nullable=True))

    connection = op.get_bind()
    rows = connection.execute(sa.text(
        "SELECT id, scratch_code_bits, transfer_code_bits, target_bytes_coded FROM transfer_results")).all()
    for row_id, scratch, warm, coded in rows:
        saved = _mixture_saving(scratch, warm)
        connection.execute(sa.text("UPDATE transfer_results SET transfer_bits = :bits, "
                                   "transfer_bits_per_byte = :per_byte WHERE id = :id"),
                           {"bits": saved, "per_byte": saved / max(1, coded), "id": row_id})


def downgrade() -> None:
    op.execute("UPDATE transfer_results SET transfer_bits = scratch_code_bits - transfer_code_bits, "
               "transfer_bits_per_byte = (scratch_code_bits - transfer_code_bits) / "
               "CASE WHEN target_bytes_coded > 0 THEN target_bytes_coded ELSE 1 END")
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_column('bytes_coded')
