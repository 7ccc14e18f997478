"""business hours: the week's opening hours, closed days, the away message and whether clients
writing while the business is closed get an automatic reply

Revision ID: c3e5a7b9d1f2
Revises: b7d9e1f3a5c8
Create Date: 2026-12-07 07:30:00.000000

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'c3e5a7b9d1f2'
down_revision = 'b7d9e1f3a5c8'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('businesses') as batch_op:
        batch_op.add_column(sa.Column('weekly_hours', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('closed_days', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('away_message', sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column('auto_reply', sa.Boolean(), nullable=False,
                                      server_default=sa.true()))


def downgrade():
    with op.batch_alter_table('businesses') as batch_op:
        batch_op.drop_column('auto_reply')
        batch_op.drop_column('away_message')
        batch_op.drop_column('closed_days')
        batch_op.drop_column('weekly_hours')
