"""records and schedule: client and pet details, archiving, visits across days and recurring
series, unassigned visits, calendar feed secrets

Revision ID: c9f1a7d3e5b2
Revises: b8e4d2f6a3c1
Create Date: 2026-12-06 17:32:39.447818

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'c9f1a7d3e5b2'
down_revision = 'b8e4d2f6a3c1'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('service_series',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('business_id', sa.Integer(), nullable=False),
    sa.Column('client_id', sa.Integer(), nullable=False),
    sa.Column('rule', sa.String(length=500), nullable=False),
    sa.Column('time_zone', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['business_id'], ['businesses.id'], name=op.f('fk_service_series_business_id_businesses')),
    sa.ForeignKeyConstraint(['client_id'], ['clients.id'], name=op.f('fk_service_series_client_id_clients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_service_series'))
    )
    with op.batch_alter_table('service_series', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_service_series_business_id'), ['business_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_service_series_client_id'), ['client_id'], unique=False)

    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('first_name', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('last_name', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('alt_phone', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('entry_instructions', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('gate_code', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('emergency_contact_name', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('emergency_contact_phone', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('vet_name', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('vet_phone', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('external_id', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('archived_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_unique_constraint('uq_clients_business_external_id', ['business_id', 'external_id'])

    with op.batch_alter_table('pets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('breed', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('birthday', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('feeding_notes', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('medication_notes', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('photo_key', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('archived_at', sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table('scheduled_services', schema=None) as batch_op:
        batch_op.add_column(sa.Column('series_id', sa.Integer(), nullable=True))
        batch_op.alter_column('staff_id',
               existing_type=sa.INTEGER(),
               nullable=True)
        batch_op.create_index('ix_scheduled_services_business_starts', ['business_id', 'starts_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_scheduled_services_series_id'), ['series_id'], unique=False)
        batch_op.create_index('ix_scheduled_services_staff_starts', ['staff_id', 'starts_at'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_scheduled_services_series_id_service_series'), 'service_series', ['series_id'], ['id'])

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('calendar_token', sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_users_calendar_token'), ['calendar_token'])



def downgrade():
    # Before this revision every visit had a staff member. Unassigned visits have no place
    # there: stop before changing anything (a failure halfway would leave SQLite's batch copy
    # of the table behind) and say what to do.
    unassigned = op.get_bind().scalar(
        sa.text("SELECT count(*) FROM scheduled_services WHERE staff_id IS NULL"))
    if unassigned:
        raise RuntimeError(
            f"Cannot downgrade below c9f1a7d3e5b2: {unassigned} scheduled visit(s) have no "
            "staff member, and the earlier schema requires one. Assign them to a staff member "
            "or delete them, then downgrade again. Nothing was changed by this revision.")

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_users_calendar_token'), type_='unique')
        batch_op.drop_column('calendar_token')

    with op.batch_alter_table('scheduled_services', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_scheduled_services_series_id_service_series'), type_='foreignkey')
        batch_op.drop_index('ix_scheduled_services_staff_starts')
        batch_op.drop_index(batch_op.f('ix_scheduled_services_series_id'))
        batch_op.drop_index('ix_scheduled_services_business_starts')
        batch_op.alter_column('staff_id',
               existing_type=sa.INTEGER(),
               nullable=False)
        batch_op.drop_column('series_id')

    with op.batch_alter_table('pets', schema=None) as batch_op:
        batch_op.drop_column('archived_at')
        batch_op.drop_column('photo_key')
        batch_op.drop_column('medication_notes')
        batch_op.drop_column('feeding_notes')
        batch_op.drop_column('birthday')
        batch_op.drop_column('breed')

    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.drop_constraint('uq_clients_business_external_id', type_='unique')
        batch_op.drop_column('archived_at')
        batch_op.drop_column('external_id')
        batch_op.drop_column('vet_phone')
        batch_op.drop_column('vet_name')
        batch_op.drop_column('emergency_contact_phone')
        batch_op.drop_column('emergency_contact_name')
        batch_op.drop_column('gate_code')
        batch_op.drop_column('entry_instructions')
        batch_op.drop_column('alt_phone')
        batch_op.drop_column('last_name')
        batch_op.drop_column('first_name')

    with op.batch_alter_table('service_series', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_service_series_client_id'))
        batch_op.drop_index(batch_op.f('ix_service_series_business_id'))

    op.drop_table('service_series')
