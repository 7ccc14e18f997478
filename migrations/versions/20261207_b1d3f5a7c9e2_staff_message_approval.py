"""staff message approval: the business's setting, each staff member's own rule, messages held
for approval (with the files they carry) and the email telling an author theirs was not approved

Revision ID: b1d3f5a7c9e2
Revises: e7a9c1d3f5b6
Create Date: 2026-12-07 10:00:00.000000

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'b1d3f5a7c9e2'
down_revision = 'e7a9c1d3f5b6'
branch_labels = None
depends_on = None

KINDS = ('invitation', 'password_reset', 'password_changed', 'scheduled_not_sent')
KIND_CHECK = 'ck_account_emails_accountemailkind'


def _allow_kinds(kinds):
    with op.batch_alter_table('account_emails') as batch_op:
        batch_op.drop_constraint(op.f(KIND_CHECK), type_='check')
        batch_op.create_check_constraint(
            op.f(KIND_CHECK), sa.column('kind').in_(kinds))


def upgrade():
    with op.batch_alter_table('businesses') as batch_op:
        batch_op.add_column(sa.Column('staff_messages_need_approval', sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table('users') as batch_op:
        batch_op.add_column(sa.Column('message_approval', sa.Enum('always', 'never', name='messageapproval', native_enum=False, create_constraint=True, length=20), nullable=True))
    with op.batch_alter_table('scheduled_messages') as batch_op:
        batch_op.add_column(sa.Column('held', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('revision', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('reviewed_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('reviewed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('rejection_note', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('dismissed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_scheduled_messages_reviewed_by_id_users'), 'users', ['reviewed_by_id'], ['id'])
        batch_op.create_index('ix_scheduled_messages_held', ['business_id', 'held', 'status'], unique=False)
    op.create_table('scheduled_message_files',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token', sa.String(length=48), nullable=False),
    sa.Column('business_id', sa.Integer(), nullable=False),
    sa.Column('scheduled_message_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('image', 'file', name='attachmentkind', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('original_name', sa.String(length=255), nullable=False),
    sa.Column('content_type', sa.String(length=100), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('storage_key', sa.String(length=100), nullable=False),
    sa.Column('thumbnail_key', sa.String(length=100), nullable=True),
    sa.Column('width', sa.Integer(), nullable=True),
    sa.Column('height', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['business_id'], ['businesses.id'], name=op.f('fk_scheduled_message_files_business_id_businesses')),
    sa.ForeignKeyConstraint(['scheduled_message_id'], ['scheduled_messages.id'], name=op.f('fk_scheduled_message_files_scheduled_message_id_scheduled_messages'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scheduled_message_files')),
    sa.UniqueConstraint('token', name=op.f('uq_scheduled_message_files_token'))
    )
    with op.batch_alter_table('scheduled_message_files') as batch_op:
        batch_op.create_index(batch_op.f('ix_scheduled_message_files_scheduled_message_id'), ['scheduled_message_id'], unique=False)
    _allow_kinds(KINDS + ('message_not_approved',))


def downgrade():
    # Before this revision nothing waits for approval and no scheduled message has files: what
    # does is withdrawn (its stored bytes are left behind), never released unapproved.
    op.execute("UPDATE scheduled_messages SET status = 'cancelled', "
               "last_error = 'withdrawn by a downgrade of the portal' "
               "WHERE status IN ('pending', 'sending') AND (held = true OR id IN "
               "(SELECT scheduled_message_id FROM scheduled_message_files))")
    op.execute("DELETE FROM account_emails WHERE kind = 'message_not_approved'")
    _allow_kinds(KINDS)
    with op.batch_alter_table('scheduled_message_files') as batch_op:
        batch_op.drop_index(batch_op.f('ix_scheduled_message_files_scheduled_message_id'))
    op.drop_table('scheduled_message_files')
    with op.batch_alter_table('scheduled_messages') as batch_op:
        batch_op.drop_index('ix_scheduled_messages_held')
        batch_op.drop_constraint(batch_op.f('fk_scheduled_messages_reviewed_by_id_users'), type_='foreignkey')
        batch_op.drop_column('dismissed_at')
        batch_op.drop_column('rejection_note')
        batch_op.drop_column('reviewed_at')
        batch_op.drop_column('reviewed_by_id')
        batch_op.drop_column('revision')
        batch_op.drop_column('held')
    with op.batch_alter_table('users') as batch_op:
        batch_op.drop_constraint(op.f('ck_users_messageapproval'), type_='check')
        batch_op.drop_column('message_approval')
    with op.batch_alter_table('businesses') as batch_op:
        batch_op.drop_column('staff_messages_need_approval')
