"""used_form_keys: a form that creates something, submitted twice, creates it once

Revision ID: 7d2b6e0c4a91
Revises: 5e1a9c3f7b20
Create Date: 2026-12-04 22:30:00.000000

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '7d2b6e0c4a91'
down_revision = '5e1a9c3f7b20'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'used_form_keys',
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('key', sa.String(length=43), nullable=False),
        sa.Column('business_id', sa.Integer(), nullable=False),
        sa.Column('result_url', sa.String(length=300), nullable=False),
        sa.Column('used_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['business_id'], ['businesses.id'],
                                name=op.f('fk_used_form_keys_business_id_businesses')),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE',
                                name=op.f('fk_used_form_keys_user_id_users')),
        sa.PrimaryKeyConstraint('user_id', 'key', name=op.f('pk_used_form_keys')),
    )
    op.create_index(op.f('ix_used_form_keys_used_at'), 'used_form_keys', ['used_at'])


def downgrade():
    op.drop_index(op.f('ix_used_form_keys_used_at'), table_name='used_form_keys')
    op.drop_table('used_form_keys')
