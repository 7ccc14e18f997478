"""replies to visit reports: a message names the report it answers (messages.reply_to_id), as
does a message waiting to be posted; and a visit report awaiting approval waits as a held message

Revision ID: d3f5b7c9e1a4
Revises: c2e4a6b8d0f3
Create Date: 2026-12-07 11:30:00.000000

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'd3f5b7c9e1a4'
down_revision = 'c2e4a6b8d0f3'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('messages') as batch_op:
        batch_op.add_column(sa.Column('reply_to_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_messages_reply_to_id_messages'), 'messages', ['reply_to_id'], ['id'], ondelete='SET NULL')
    with op.batch_alter_table('scheduled_messages') as batch_op:
        batch_op.add_column(sa.Column('reply_to_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('visit_report_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_scheduled_messages_reply_to_id_messages'), 'messages', ['reply_to_id'], ['id'], ondelete='SET NULL')
        batch_op.create_foreign_key(batch_op.f('fk_scheduled_messages_visit_report_id_visit_reports'), 'visit_reports', ['visit_report_id'], ['id'], ondelete='CASCADE')


def downgrade():
    # A report awaiting approval would be posted as a plain message: withdrawn instead.
    op.execute("UPDATE scheduled_messages SET status = 'cancelled', "
               "last_error = 'withdrawn by a downgrade of the portal' "
               "WHERE status IN ('pending', 'sending') AND visit_report_id IS NOT NULL")
    with op.batch_alter_table('scheduled_messages') as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_scheduled_messages_visit_report_id_visit_reports'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_scheduled_messages_reply_to_id_messages'), type_='foreignkey')
        batch_op.drop_column('visit_report_id')
        batch_op.drop_column('reply_to_id')
    with op.batch_alter_table('messages') as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_messages_reply_to_id_messages'), type_='foreignkey')
        batch_op.drop_column('reply_to_id')
