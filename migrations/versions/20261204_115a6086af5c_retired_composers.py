"""retired composers: pages a person left for another feed, whose sends are refused

Revision ID: 115a6086af5c
Revises: 5e8a0c3f6b91
Create Date: 2026-12-04 16:48:58.010605

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '115a6086af5c'
down_revision = '5e8a0c3f6b91'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('retired_composers',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('token', sa.String(length=43), nullable=False),
    sa.Column('business_id', sa.Integer(), nullable=False),
    sa.Column('retired_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['business_id'], ['businesses.id'], name=op.f('fk_retired_composers_business_id_businesses')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_retired_composers_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'token', name=op.f('pk_retired_composers'))
    )
    with op.batch_alter_table('retired_composers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_retired_composers_retired_at'), ['retired_at'], unique=False)


def downgrade():
    with op.batch_alter_table('retired_composers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_retired_composers_retired_at'))

    op.drop_table('retired_composers')
