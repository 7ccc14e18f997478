"""account invitations and emails

Invited people have an empty password_hash until they choose a password from their invitation
(no column change: rebuilding users on SQLite would trip over the rows that reference it);
invited_at is the latest invitation. account_emails is the outbox of invitations, reset links
and password-changed notes, delivered by the notification worker.

Revision ID: 2123dffc2df3
Revises: 66daf0a846a6
Create Date: 2026-11-25 22:49:46.906004

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '2123dffc2df3'
down_revision = '66daf0a846a6'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('account_emails',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('business_id', sa.Integer(), nullable=True),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('kind', sa.Enum('invitation', 'password_reset', 'password_changed', name='accountemailkind', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('status', sa.Enum('pending', 'sending', 'sent', 'failed', 'cancelled', name='deliverystatus', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('claimed_by', sa.String(length=64), nullable=True),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['business_id'], ['businesses.id'], name=op.f('fk_account_emails_business_id_businesses')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_account_emails_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_account_emails'))
    )
    with op.batch_alter_table('account_emails', schema=None) as batch_op:
        batch_op.create_index('ix_account_emails_due', ['status', 'due_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_account_emails_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('invited_at', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    # A plain DROP COLUMN (SQLite 3.35+): a batch rebuild of users fails once rows refer to it.
    op.drop_column('users', 'invited_at')

    with op.batch_alter_table('account_emails', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_account_emails_user_id'))
        batch_op.drop_index('ix_account_emails_due')

    op.drop_table('account_emails')
