"""inbound replies: emails and texts that come in, the Unmatched replies queue, bounces and
opt-outs

Revision ID: a7c3e5f9b1d2
Revises: 7d2b6e0c4a91
Create Date: 2026-12-06 15:30:00.000000

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'a7c3e5f9b1d2'
down_revision = '7d2b6e0c4a91'
branch_labels = None
depends_on = None

OUTCOMES = ('posted', 'unmatched', 'filed', 'discarded', 'automatic', 'bounce', 'keyword',
            'refused')


def upgrade():
    op.create_table(
        'inbound_messages',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('business_id', sa.Integer(), nullable=True),
        sa.Column('channel', sa.Enum('email', 'sms', name='inboundchannel', native_enum=False,
                                     create_constraint=True, length=20), nullable=False),
        sa.Column('dedupe_key', sa.String(length=64), nullable=False),
        sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('outcome', sa.Enum(*OUTCOMES, name='inboundoutcome', native_enum=False,
                                     create_constraint=True, length=20), nullable=False),
        sa.Column('reason', sa.String(length=300), nullable=True),
        sa.Column('sender', sa.String(length=320), nullable=False),
        sa.Column('sender_name', sa.String(length=200), nullable=False),
        sa.Column('subject', sa.String(length=300), nullable=False),
        sa.Column('text', sa.Text(), nullable=True),
        sa.Column('attachment_count', sa.Integer(), nullable=False),
        sa.Column('raw_key', sa.String(length=64), nullable=True),
        sa.Column('client_id', sa.Integer(), nullable=True),
        sa.Column('feed', sa.Enum('conversation', 'private', name='feed', native_enum=False,
                                  create_constraint=True, length=20), nullable=True),
        sa.Column('recipient_id', sa.Integer(), nullable=True),
        sa.Column('sender_user_id', sa.Integer(), nullable=True),
        sa.Column('message_id', sa.Integer(), nullable=True),
        sa.Column('resolved_by_id', sa.Integer(), nullable=True),
        sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['business_id'], ['businesses.id'],
                                name=op.f('fk_inbound_messages_business_id_businesses')),
        sa.ForeignKeyConstraint(['client_id'], ['clients.id'],
                                name=op.f('fk_inbound_messages_client_id_clients')),
        sa.ForeignKeyConstraint(['recipient_id'], ['users.id'],
                                name=op.f('fk_inbound_messages_recipient_id_users')),
        sa.ForeignKeyConstraint(['sender_user_id'], ['users.id'],
                                name=op.f('fk_inbound_messages_sender_user_id_users')),
        sa.ForeignKeyConstraint(['message_id'], ['messages.id'], ondelete='SET NULL',
                                name=op.f('fk_inbound_messages_message_id_messages')),
        sa.ForeignKeyConstraint(['resolved_by_id'], ['users.id'],
                                name=op.f('fk_inbound_messages_resolved_by_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_inbound_messages')),
        sa.UniqueConstraint('dedupe_key', name=op.f('uq_inbound_messages_dedupe_key')),
    )
    op.create_index('ix_inbound_messages_queue', 'inbound_messages',
                    ['business_id', 'outcome', 'id'])
    with op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('email_bounced_at', sa.DateTime(timezone=True)))
        batch.add_column(sa.Column('email_bounce_reason', sa.String(length=300)))
        batch.add_column(sa.Column('sms_opted_out_at', sa.DateTime(timezone=True)))
    with op.batch_alter_table('messages') as batch:
        batch.add_column(sa.Column('via', sa.String(length=10)))


def downgrade():
    with op.batch_alter_table('messages') as batch:
        batch.drop_column('via')
    with op.batch_alter_table('users') as batch:
        batch.drop_column('sms_opted_out_at')
        batch.drop_column('email_bounce_reason')
        batch.drop_column('email_bounced_at')
    op.drop_index('ix_inbound_messages_queue', table_name='inbound_messages')
    op.drop_table('inbound_messages')
