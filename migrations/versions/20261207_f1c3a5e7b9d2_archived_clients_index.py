"""archived clients by id: the partial index the lists' and counts' anti-join reads

Revision ID: f1c3a5e7b9d2
Revises: e4a8c2f61d37
Create Date: 2026-12-07 00:40:00.000000

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'f1c3a5e7b9d2'
down_revision = 'e4a8c2f61d37'
branch_labels = None
depends_on = None

ARCHIVED = sa.text("archived_at IS NOT NULL")


def upgrade():
    op.create_index('ix_clients_archived', 'clients', ['id'], unique=False,
                    postgresql_where=ARCHIVED, sqlite_where=ARCHIVED)


def downgrade():
    op.drop_index('ix_clients_archived', table_name='clients')
