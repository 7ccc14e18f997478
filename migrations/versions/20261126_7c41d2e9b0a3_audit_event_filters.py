"""audit events by kind and by person

Revision ID: 7c41d2e9b0a3
Revises: 3b7c9e1f5a2d
Create Date: 2026-11-26 01:50:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '7c41d2e9b0a3'
down_revision = '3b7c9e1f5a2d'
branch_labels = None
depends_on = None


def upgrade():
    # The audit log's filters, newest first: by kind of event, by who acted, by whose login it
    # was about. Without them a filtered page reads the business's whole log.
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index('ix_audit_events_action', ['business_id', 'action', 'id'])
        batch_op.create_index('ix_audit_events_actor', ['business_id', 'actor_id', 'id'])
        batch_op.create_index(
            'ix_audit_events_object', ['business_id', 'object_type', 'object_id', 'id']
        )


def downgrade():
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_events_object')
        batch_op.drop_index('ix_audit_events_actor')
        batch_op.drop_index('ix_audit_events_action')
