"""unsent messages: taken back by their author within the undo window

Revision ID: ccadcd077013
Revises: 115a6086af5c
Create Date: 2026-12-04 17:01:35.106969

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'ccadcd077013'
down_revision = '115a6086af5c'
branch_labels = None
depends_on = None


def upgrade():
    # A plain ALTER, not a batch (which would copy the whole table on SQLite): with a
    # constant default neither database rewrites the rows.
    op.add_column(
        'messages', sa.Column('unsent', sa.Boolean(), nullable=False, server_default=sa.false())
    )


def downgrade():
    op.drop_column('messages', 'unsent')
