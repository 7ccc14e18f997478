"""unreadable inbound replies: a queued email the portal could not read, whose feed is
therefore unknown, is treated as private until it is filed

Revision ID: b8e4d2f6a3c1
Revises: a7c3e5f9b1d2
Create Date: 2026-12-06 16:15:00.000000

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'b8e4d2f6a3c1'
down_revision = 'a7c3e5f9b1d2'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('inbound_messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('unreadable', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))


def downgrade():
    with op.batch_alter_table('inbound_messages', schema=None) as batch_op:
        batch_op.drop_column('unreadable')
