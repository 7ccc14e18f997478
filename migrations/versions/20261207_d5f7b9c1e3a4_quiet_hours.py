"""quiet hours: a person's hours without notifications (users.quiet_from, users.quiet_until),
and notifications held for them until they end (notifications.summary)

Revision ID: d5f7b9c1e3a4
Revises: c3e5a7b9d1f2
Create Date: 2026-12-07 07:40:00.000000

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'd5f7b9c1e3a4'
down_revision = 'c3e5a7b9d1f2'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users') as batch_op:
        batch_op.add_column(sa.Column('quiet_from', sa.String(length=5), nullable=True))
        batch_op.add_column(sa.Column('quiet_until', sa.String(length=5), nullable=True))
    with op.batch_alter_table('notifications') as batch_op:
        batch_op.add_column(sa.Column('summary', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))


def downgrade():
    with op.batch_alter_table('notifications') as batch_op:
        batch_op.drop_column('summary')
    with op.batch_alter_table('users') as batch_op:
        batch_op.drop_column('quiet_until')
        batch_op.drop_column('quiet_from')
