"""scheduled messages ("Send later"): an outbox of messages to post at their time, and the
email telling an author theirs could not be posted

Revision ID: b7d9e1f3a5c8
Revises: a2b4c6d8e0f1
Create Date: 2026-12-07 07:15:00.000000

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'b7d9e1f3a5c8'
down_revision = 'a2b4c6d8e0f1'
branch_labels = None
depends_on = None

KINDS = ('invitation', 'password_reset', 'password_changed')
KIND_CHECK = 'ck_account_emails_accountemailkind'


def _allow_kinds(kinds):
    with op.batch_alter_table('account_emails') as batch_op:
        batch_op.drop_constraint(op.f(KIND_CHECK), type_='check')
        batch_op.create_check_constraint(
            op.f(KIND_CHECK), sa.column('kind').in_(kinds))


def upgrade():
    op.create_table('scheduled_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('business_id', sa.Integer(), nullable=False),
    sa.Column('client_id', sa.Integer(), nullable=False),
    sa.Column('feed', sa.Enum('conversation', 'private', name='feed', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('send_key', sa.String(length=64), nullable=True),
    sa.Column('message_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.Enum('pending', 'sending', 'sent', 'failed', 'cancelled', name='deliverystatus', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('claimed_by', sa.String(length=64), nullable=True),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'], name=op.f('fk_scheduled_messages_author_id_users')),
    sa.ForeignKeyConstraint(['business_id'], ['businesses.id'], name=op.f('fk_scheduled_messages_business_id_businesses')),
    sa.ForeignKeyConstraint(['client_id'], ['clients.id'], name=op.f('fk_scheduled_messages_client_id_clients')),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name=op.f('fk_scheduled_messages_message_id_messages'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scheduled_messages'))
    )
    with op.batch_alter_table('scheduled_messages') as batch_op:
        batch_op.create_index('ix_scheduled_messages_due', ['status', 'due_at'], unique=False)
        batch_op.create_index('ix_scheduled_messages_feed', ['client_id', 'feed', 'status'], unique=False)
        batch_op.create_index('ix_scheduled_messages_author_send_key', ['author_id', 'send_key'], unique=True)

    with op.batch_alter_table('account_emails') as batch_op:
        batch_op.add_column(sa.Column('scheduled_message_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_account_emails_scheduled_message_id_scheduled_messages'), 'scheduled_messages', ['scheduled_message_id'], ['id'], ondelete='CASCADE')
    _allow_kinds(KINDS + ('scheduled_not_sent',))


def downgrade():
    op.execute("DELETE FROM account_emails WHERE kind = 'scheduled_not_sent'")
    _allow_kinds(KINDS)
    with op.batch_alter_table('account_emails') as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_account_emails_scheduled_message_id_scheduled_messages'), type_='foreignkey')
        batch_op.drop_column('scheduled_message_id')
    with op.batch_alter_table('scheduled_messages') as batch_op:
        batch_op.drop_index('ix_scheduled_messages_author_send_key')
        batch_op.drop_index('ix_scheduled_messages_feed')
        batch_op.drop_index('ix_scheduled_messages_due')
    op.drop_table('scheduled_messages')
