"""notifications by the SMS provider's id, for its status reports

Revision ID: 9b2d4e6f8a10
Revises: 40fe446de148
Create Date: 2026-12-04 18:10:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '9b2d4e6f8a10'
down_revision = '40fe446de148'
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        # The outbox keeps every notification: built without holding up new messages. On its
        # own, since a concurrent build commits what came before it in the same run.
        with op.get_context().autocommit_block():
            op.create_index(op.f('ix_notifications_provider_id'), 'notifications',
                            ['provider_id'], postgresql_concurrently=True)
        return
    op.create_index(op.f('ix_notifications_provider_id'), 'notifications', ['provider_id'])


def downgrade():
    op.drop_index(op.f('ix_notifications_provider_id'), table_name='notifications')
