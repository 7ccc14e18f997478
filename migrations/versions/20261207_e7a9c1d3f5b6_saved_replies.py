"""saved replies: answers the admin team keeps, with placeholders and files

Revision ID: e7a9c1d3f5b6
Revises: d5f7b9c1e3a4
Create Date: 2026-12-07 08:00:00.000000

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'e7a9c1d3f5b6'
down_revision = 'd5f7b9c1e3a4'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('saved_replies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('business_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=100), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['business_id'], ['businesses.id'], name=op.f('fk_saved_replies_business_id_businesses')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_saved_replies'))
    )
    with op.batch_alter_table('saved_replies') as batch_op:
        batch_op.create_index('ix_saved_replies_business_title', ['business_id', 'title'], unique=False)
    op.create_table('saved_reply_files',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('business_id', sa.Integer(), nullable=False),
    sa.Column('saved_reply_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('image', 'file', name='attachmentkind', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('original_name', sa.String(length=255), nullable=False),
    sa.Column('content_type', sa.String(length=100), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('storage_key', sa.String(length=100), nullable=False),
    sa.Column('thumbnail_key', sa.String(length=100), nullable=True),
    sa.Column('width', sa.Integer(), nullable=True),
    sa.Column('height', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['business_id'], ['businesses.id'], name=op.f('fk_saved_reply_files_business_id_businesses')),
    sa.ForeignKeyConstraint(['saved_reply_id'], ['saved_replies.id'], name=op.f('fk_saved_reply_files_saved_reply_id_saved_replies'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_saved_reply_files'))
    )
    with op.batch_alter_table('saved_reply_files') as batch_op:
        batch_op.create_index(batch_op.f('ix_saved_reply_files_saved_reply_id'), ['saved_reply_id'], unique=False)


def downgrade():
    with op.batch_alter_table('saved_reply_files') as batch_op:
        batch_op.drop_index(batch_op.f('ix_saved_reply_files_saved_reply_id'))
    op.drop_table('saved_reply_files')
    with op.batch_alter_table('saved_replies') as batch_op:
        batch_op.drop_index('ix_saved_replies_business_title')
    op.drop_table('saved_replies')
