"""users by business and role

Revision ID: 3b7c9e1f5a2d
Revises: 2123dffc2df3
Create Date: 2026-11-25 23:20:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '3b7c9e1f5a2d'
down_revision = '2123dffc2df3'
branch_labels = None
depends_on = None


def upgrade():
    # Staff lists and notification audiences pick a role out of a business whose users are
    # mostly client logins: thousands of rows to read for forty without this index.
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.create_index('ix_users_business_role_name', ['business_id', 'role', 'name'])


def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_index('ix_users_business_role_name')
