"""where each message went: read receipts, the SMS provider's status, read receipts for clients

Revision ID: 40fe446de148
Revises: ccadcd077013
Create Date: 2026-12-04 17:12:40.639145

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '40fe446de148'
down_revision = 'ccadcd077013'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('read_receipts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('business_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('client_id', sa.Integer(), nullable=False),
    sa.Column('feed', sa.Enum('conversation', 'private', name='feed', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('up_to_id', sa.Integer(), nullable=False),
    sa.Column('read_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['business_id'], ['businesses.id'], name=op.f('fk_read_receipts_business_id_businesses')),
    sa.ForeignKeyConstraint(['client_id'], ['clients.id'], name=op.f('fk_read_receipts_client_id_clients'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_read_receipts_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_read_receipts'))
    )
    op.create_index('ix_read_receipts_feed', 'read_receipts', ['client_id', 'feed', 'up_to_id'])

    # Plain ALTERs, not batches: the batch would copy these tables on SQLite.
    op.add_column('businesses', sa.Column(
        'client_read_receipts', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column('notifications', sa.Column('provider_id', sa.String(length=64), nullable=True))
    op.add_column('notifications', sa.Column('provider_status', sa.String(length=20), nullable=True))
    # Its index comes in the next migration, built concurrently on PostgreSQL.


def downgrade():
    # Plain ALTERs again (SQLite has DROP COLUMN since 3.35).
    op.drop_column('notifications', 'provider_status')
    op.drop_column('notifications', 'provider_id')
    op.drop_column('businesses', 'client_read_receipts')
    op.drop_index('ix_read_receipts_feed', table_name='read_receipts')
    op.drop_table('read_receipts')
