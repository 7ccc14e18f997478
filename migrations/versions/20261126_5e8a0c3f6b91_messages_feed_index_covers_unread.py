"""the messages feed index covers unread counts

Revision ID: 5e8a0c3f6b91
Revises: 7c41d2e9b0a3
Create Date: 2026-11-26 01:50:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '5e8a0c3f6b91'
down_revision = '7c41d2e9b0a3'
branch_labels = None
depends_on = None


COLUMNS = ['client_id', 'feed', 'id', 'deleted_at', 'author_id']


def upgrade():
    # Unread counts test every message above a read marker for deleted_at and author_id: held
    # in the index, they are counted from it alone instead of a table row read per message.
    if op.get_bind().dialect.name == "postgresql":
        # Built beside the old one without holding up new messages meanwhile.
        with op.get_context().autocommit_block():
            op.create_index('ix_messages_client_feed', 'messages', COLUMNS,
                            postgresql_concurrently=True)
            op.drop_index('ix_messages_client_feed_id', table_name='messages',
                          postgresql_concurrently=True)
        return
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.create_index('ix_messages_client_feed', COLUMNS)
        batch_op.drop_index('ix_messages_client_feed_id')


def downgrade():
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.create_index('ix_messages_client_feed_id', ['client_id', 'feed', 'id'])
        batch_op.drop_index('ix_messages_client_feed')
