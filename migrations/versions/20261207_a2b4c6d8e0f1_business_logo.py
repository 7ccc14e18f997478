"""the business's logo: a stored image (processed like photos) shown in the navigation, on the
login page, in emails and as the installed app's icon

Revision ID: a2b4c6d8e0f1
Revises: f1c3a5e7b9d2
Create Date: 2026-12-07 05:00:00.000000

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'a2b4c6d8e0f1'
down_revision = 'f1c3a5e7b9d2'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('businesses') as batch_op:
        batch_op.add_column(sa.Column('logo_key', sa.String(length=255), nullable=True))


def downgrade():
    with op.batch_alter_table('businesses') as batch_op:
        batch_op.drop_column('logo_key')
