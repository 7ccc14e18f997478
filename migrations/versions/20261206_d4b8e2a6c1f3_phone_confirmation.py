"""phone numbers for texts are confirmed with a code: users.phone_confirmed_at and the
phone_confirmations table (a number waiting for its code, and the code's outbox row)

Numbers already on file were entered by the business before this rule and have been getting
texts (and matching replies by text): they are marked confirmed as of this migration, so that
nobody silently stops getting texts. Numbers entered from now on wait for their owner's code.

Revision ID: d4b8e2a6c1f3
Revises: d4e8a1c7f3b9
Create Date: 2026-12-06 17:45:00.000000

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'd4b8e2a6c1f3'
down_revision = 'd4e8a1c7f3b9'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('phone_confirmations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('business_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('phone', sa.String(length=16), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('wrong_codes', sa.Integer(), nullable=False),
    sa.Column('status', sa.Enum('pending', 'sending', 'sent', 'failed', 'cancelled', name='deliverystatus', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('claimed_by', sa.String(length=64), nullable=True),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['business_id'], ['businesses.id'], name=op.f('fk_phone_confirmations_business_id_businesses')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_phone_confirmations_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_phone_confirmations'))
    )
    with op.batch_alter_table('phone_confirmations', schema=None) as batch_op:
        batch_op.create_index('ix_phone_confirmations_due', ['status', 'due_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_phone_confirmations_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('phone_confirmed_at', sa.DateTime(timezone=True), nullable=True))

    # The numbers the business entered before codes existed keep getting texts.
    users = sa.table('users', sa.column('phone', sa.String), sa.column('phone_confirmed_at', sa.DateTime(timezone=True)))
    op.execute(
        users.update()
        .where(users.c.phone.is_not(None), users.c.phone != '')
        .values(phone_confirmed_at=sa.func.current_timestamp())
    )


def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('phone_confirmed_at')

    with op.batch_alter_table('phone_confirmations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_phone_confirmations_user_id'))
        batch_op.drop_index('ix_phone_confirmations_due')

    op.drop_table('phone_confirmations')
