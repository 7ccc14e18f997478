"""the notification workers' health (delivery_workers), and indexes the sweeper of stored files
looks attachments up by

Revision ID: e5a7c9e1b3d6
Revises: d3f5b7c9e1a4
Create Date: 2026-12-07 13:00:00.000000

"""
import sqlalchemy as sa
from alembic import op



# revision identifiers, used by Alembic.
revision = 'e5a7c9e1b3d6'
down_revision = 'd3f5b7c9e1a4'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'delivery_workers',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('host', sa.String(length=255), nullable=False),
        sa.Column('pid', sa.Integer(), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_claim_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_work_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('claimed', sa.Integer(), nullable=False),
        sa.Column('last_error', sa.String(length=500), nullable=True),
        sa.Column('last_error_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('stopped_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_delivery_workers')),
    )
    with op.batch_alter_table('attachments') as batch_op:
        batch_op.create_index('ix_attachments_storage_key', ['storage_key'])
        batch_op.create_index('ix_attachments_thumbnail_key', ['thumbnail_key'])


def downgrade():
    with op.batch_alter_table('attachments') as batch_op:
        batch_op.drop_index('ix_attachments_thumbnail_key')
        batch_op.drop_index('ix_attachments_storage_key')
    op.drop_table('delivery_workers')
