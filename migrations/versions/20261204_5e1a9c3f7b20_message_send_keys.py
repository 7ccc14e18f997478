"""messages.send_key: a send repeated with the same one-time key makes no second message

Revision ID: 5e1a9c3f7b20
Revises: 9b2d4e6f8a10
Create Date: 2026-12-04 22:00:00.000000

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '5e1a9c3f7b20'
down_revision = '9b2d4e6f8a10'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('messages', sa.Column('send_key', sa.String(length=64), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        # Messages are the biggest table: built without holding up new messages. On its own,
        # since a concurrent build commits what came before it in the same run.
        with op.get_context().autocommit_block():
            op.create_index('ix_messages_author_send_key', 'messages', ['author_id', 'send_key'],
                            unique=True, postgresql_concurrently=True)
        return
    op.create_index('ix_messages_author_send_key', 'messages', ['author_id', 'send_key'],
                    unique=True)


def downgrade():
    op.drop_index('ix_messages_author_send_key', table_name='messages')
    op.drop_column('messages', 'send_key')
