"""pending imports: CSV files kept between their preview and the confirm

Revision ID: e4a8c2f61d37
Revises: d4b8e2a6c1f3
Create Date: 2026-12-06 17:45:00.000000

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'e4a8c2f61d37'
down_revision = 'd4b8e2a6c1f3'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('pending_imports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token', sa.String(length=64), nullable=False),
    sa.Column('business_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('file_name', sa.String(length=255), nullable=False),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('imported_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['business_id'], ['businesses.id'], name=op.f('fk_pending_imports_business_id_businesses')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_pending_imports_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pending_imports')),
    sa.UniqueConstraint('token', name=op.f('uq_pending_imports_token'))
    )
    with op.batch_alter_table('pending_imports', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pending_imports_business_id'), ['business_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_pending_imports_created_at'), ['created_at'], unique=False)
        batch_op.create_index('ix_pending_imports_user_kind', ['user_id', 'kind'], unique=False)


def downgrade():
    with op.batch_alter_table('pending_imports', schema=None) as batch_op:
        batch_op.drop_index('ix_pending_imports_user_kind')
        batch_op.drop_index(batch_op.f('ix_pending_imports_created_at'))
        batch_op.drop_index(batch_op.f('ix_pending_imports_business_id'))

    op.drop_table('pending_imports')
