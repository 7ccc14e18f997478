"""feed summaries and read markers

Revision ID: 66daf0a846a6
Revises: 90d70486d2bd
Create Date: 2026-11-25 21:09:42.496073

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '66daf0a846a6'
down_revision = '90d70486d2bd'
branch_labels = None
depends_on = None

FEED = sa.Enum('conversation', 'private', name='feed', native_enum=False, create_constraint=True,
               length=20)

# Each feed's newest message that is not deleted; while it is the client's, the time of the
# first client message after the business's last one (how long the client has been waiting).
BACKFILL_SUMMARIES = """
INSERT INTO feed_summaries (client_id, feed, business_id, last_message_id, last_message_at,
                            last_author_id, awaiting_reply_since)
SELECT m.client_id, m.feed, m.business_id, m.id, m.created_at, m.author_id,
       CASE WHEN u.role = 'client' THEN (
           SELECT min(w.created_at) FROM messages w JOIN users wu ON wu.id = w.author_id
           WHERE w.client_id = m.client_id AND w.feed = m.feed AND w.deleted_at IS NULL
             AND wu.role = 'client'
             AND w.id > coalesce((
                 SELECT max(b.id) FROM messages b JOIN users bu ON bu.id = b.author_id
                 WHERE b.client_id = m.client_id AND b.feed = m.feed AND b.deleted_at IS NULL
                   AND bu.role != 'client'), 0)
       ) END
FROM messages m JOIN users u ON u.id = m.author_id
WHERE m.id = (SELECT max(x.id) FROM messages x
              WHERE x.client_id = m.client_id AND x.feed = m.feed AND x.deleted_at IS NULL)
"""

# Nothing that was written before unread counts existed shows as unread: every person has read
# every feed of their business (a client login: of their household) up to its newest message.
BACKFILL_READ_MARKERS = """
INSERT INTO read_markers (user_id, client_id, feed, business_id, last_read_id)
SELECT u.id, s.client_id, s.feed, s.business_id, s.last_message_id
FROM users u JOIN feed_summaries s ON s.business_id = u.business_id
WHERE u.client_id IS NULL OR u.client_id = s.client_id
"""


def upgrade():
    op.create_table('read_markers',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('client_id', sa.Integer(), nullable=False),
    sa.Column('feed', FEED, nullable=False),
    sa.Column('business_id', sa.Integer(), nullable=False),
    sa.Column('last_read_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['business_id'], ['businesses.id'], name=op.f('fk_read_markers_business_id_businesses')),
    sa.ForeignKeyConstraint(['client_id'], ['clients.id'], name=op.f('fk_read_markers_client_id_clients'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_read_markers_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'client_id', 'feed', name=op.f('pk_read_markers'))
    )
    op.create_table('feed_summaries',
    sa.Column('client_id', sa.Integer(), nullable=False),
    sa.Column('feed', FEED, nullable=False),
    sa.Column('business_id', sa.Integer(), nullable=False),
    sa.Column('last_message_id', sa.Integer(), nullable=False),
    sa.Column('last_message_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_author_id', sa.Integer(), nullable=False),
    sa.Column('awaiting_reply_since', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['business_id'], ['businesses.id'], name=op.f('fk_feed_summaries_business_id_businesses')),
    sa.ForeignKeyConstraint(['client_id'], ['clients.id'], name=op.f('fk_feed_summaries_client_id_clients'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['last_author_id'], ['users.id'], name=op.f('fk_feed_summaries_last_author_id_users')),
    sa.ForeignKeyConstraint(['last_message_id'], ['messages.id'], name=op.f('fk_feed_summaries_last_message_id_messages')),
    sa.PrimaryKeyConstraint('client_id', 'feed', name=op.f('pk_feed_summaries'))
    )
    with op.batch_alter_table('feed_summaries', schema=None) as batch_op:
        batch_op.create_index('ix_feed_summaries_business_last', ['business_id', 'last_message_id'], unique=False)

    op.execute(BACKFILL_SUMMARIES)
    op.execute(BACKFILL_READ_MARKERS)


def downgrade():
    with op.batch_alter_table('feed_summaries', schema=None) as batch_op:
        batch_op.drop_index('ix_feed_summaries_business_last')

    op.drop_table('feed_summaries')
    op.drop_table('read_markers')
