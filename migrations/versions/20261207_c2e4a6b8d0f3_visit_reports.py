"""visit reports: Start and End visit times (and, when the business records it, where the
phone was), the business's checklist, and reports tied to their visit and their message

Revision ID: c2e4a6b8d0f3
Revises: b1d3f5a7c9e2
Create Date: 2026-12-07 11:00:00.000000

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'c2e4a6b8d0f3'
down_revision = 'b1d3f5a7c9e2'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('businesses') as batch_op:
        batch_op.add_column(sa.Column('visit_checklist', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('record_visit_location', sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table('scheduled_services') as batch_op:
        batch_op.add_column(sa.Column('started_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('start_latitude', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('start_longitude', sa.Float(), nullable=True))
    op.create_table('visit_reports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('business_id', sa.Integer(), nullable=False),
    sa.Column('client_id', sa.Integer(), nullable=False),
    sa.Column('service_id', sa.Integer(), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=True),
    sa.Column('checklist', sa.JSON(), nullable=False),
    sa.Column('card', sa.Text(), nullable=False),
    sa.Column('send_key', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'], name=op.f('fk_visit_reports_author_id_users')),
    sa.ForeignKeyConstraint(['business_id'], ['businesses.id'], name=op.f('fk_visit_reports_business_id_businesses')),
    sa.ForeignKeyConstraint(['client_id'], ['clients.id'], name=op.f('fk_visit_reports_client_id_clients')),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name=op.f('fk_visit_reports_message_id_messages'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['service_id'], ['scheduled_services.id'], name=op.f('fk_visit_reports_service_id_scheduled_services')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_visit_reports')),
    sa.UniqueConstraint('message_id', name=op.f('uq_visit_reports_message_id')),
    sa.UniqueConstraint('service_id', name=op.f('uq_visit_reports_service_id'))
    )
    with op.batch_alter_table('visit_reports') as batch_op:
        batch_op.create_index(batch_op.f('ix_visit_reports_client_id'), ['client_id'], unique=False)


def downgrade():
    with op.batch_alter_table('visit_reports') as batch_op:
        batch_op.drop_index(batch_op.f('ix_visit_reports_client_id'))
    op.drop_table('visit_reports')
    with op.batch_alter_table('scheduled_services') as batch_op:
        batch_op.drop_column('start_longitude')
        batch_op.drop_column('start_latitude')
        batch_op.drop_column('ended_at')
        batch_op.drop_column('started_at')
    with op.batch_alter_table('businesses') as batch_op:
        batch_op.drop_column('record_visit_location')
        batch_op.drop_column('visit_checklist')
