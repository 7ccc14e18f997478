"""visit revisions: when a visit last changed and how many times, for the calendar feed's
LAST-MODIFIED and SEQUENCE

Revision ID: d4e8a1c7f3b9
Revises: c9f1a7d3e5b2
Create Date: 2026-12-06 17:50:00.000000

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'd4e8a1c7f3b9'
down_revision = 'c9f1a7d3e5b2'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('scheduled_services', schema=None) as batch_op:
        # Visits made before this revision have no known time of change (NULL).
        batch_op.add_column(sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('revision', sa.Integer(), server_default='0',
                                      nullable=False))


def downgrade():
    with op.batch_alter_table('scheduled_services', schema=None) as batch_op:
        batch_op.drop_column('revision')
        batch_op.drop_column('updated_at')
