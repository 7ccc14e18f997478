"""The migrations build the schema the models describe, on SQLite and PostgreSQL: tables,
columns and their types, indexes, unique and foreign keys. Not compared: CHECK constraints
(Alembic leaves them out) and server defaults (columns added to tables with rows keep the
default their migration filled them with; the models set values in Python)."""

from datetime import date

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import current_app
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, text

from portal.extensions import db
from portal.models import (
    AttachmentKind,
    Client,
    Feed,
    PendingImport,
    Pet,
    PhoneConfirmation,
    Role,
    ScheduledMessage,
    ScheduledMessageFile,
    ScheduledService,
    ServiceSeries,
    User,
    utcnow,
)

from .helpers import count_rows, update_row


def test_migrated_schema_matches_the_models(app):
    with app.app_context(), db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, db.metadata) == []


# --- downgrading the revisions with rows in their tables ----------------------------------------

BEFORE_RECORDS_AND_SCHEDULE = "b8e4d2f6a3c1"
BEFORE_APPROVAL = "e7a9c1d3f5b6"
LATEST = "e5a7c9e1b3d6"  # the newest revision


def _revision(connection) -> str:
    return connection.scalar(text("SELECT version_num FROM alembic_version"))


def _state(app):
    """The recorded revision, the tables there are and whether a visit's staff_id may be
    NULL: what tells a clean schema from a half-changed one."""
    with app.app_context(), db.engine.connect() as connection:
        found = inspect(connection)
        staff_id = next(column for column in found.get_columns("scheduled_services")
                        if column["name"] == "staff_id")
        return _revision(connection), set(found.get_table_names()), staff_id["nullable"]


@pytest.mark.committed  # Alembic migrates through a connection of its own
def test_downgrade_below_the_schedule_keeps_rows_or_refuses_unassigned_visits(
        app, business, admin, household, make_user, make_service):
    staff = make_user(Role.STAFF)
    visit = make_service(household, staff)
    unassigned = make_service(household, staff, days_from_now=2)
    with app.app_context():
        # A row in each new table, and the new columns filled.
        series = ServiceSeries(business_id=business.id, client_id=household.id,
                               rule="FREQ=DAILY;COUNT=2", time_zone="America/Chicago")
        db.session.add(series)
        db.session.flush()
        db.session.get(ScheduledService, visit.id).series_id = series.id
        db.session.get(ScheduledService, unassigned.id).staff_id = None
        db.session.add(Pet(business_id=business.id, client_id=household.id, name="Rex",
                           breed="Beagle", birthday=date(2020, 1, 2), photo_key="a/b.jpg"))
        row = db.session.get(Client, household.id)
        row.gate_code, row.external_id, row.first_name = "1234", "C-1", "Carla"
        db.session.get(User, staff.id).calendar_token = "t" * 32
        db.session.add(PhoneConfirmation(business_id=business.id, user_id=staff.id,
                                         phone="+13125550142", due_at=utcnow()))
        db.session.add(PendingImport(token="p" * 32, business_id=business.id,
                                     user_id=admin.id, kind="clients", file_name="c.csv",
                                     content="name\r\nCarla\r\n"))
        db.session.commit()
        db.session.remove()

        # An unassigned visit cannot go back to a schema where every visit has staff: the
        # downgrade stops, saying so, and leaves a consistent schema (no batch copy behind).
        config = current_app.extensions["migrate"].migrate.get_config()
        with pytest.raises(RuntimeError, match=r"1 scheduled visit\(s\) have no staff member"):
            command.downgrade(config, BEFORE_RECORDS_AND_SCHEDULE)
    revision, tables, staff_may_be_null = _state(app)
    assert not any(name.startswith("_alembic_tmp") for name in tables), tables
    assert staff_may_be_null and "service_series" in tables
    # PostgreSQL undoes the whole downgrade; SQLite keeps the later revisions' steps.
    assert revision in {LATEST, "c9f1a7d3e5b2"}
    assert ("pending_imports" in tables) == (revision == LATEST)

    with app.app_context():
        upgrade()
        assert count_rows(app, ScheduledService) == 2
        update_row(app, ScheduledService, unassigned.id, staff_id=staff.id)
        db.session.remove()
        downgrade(revision=BEFORE_RECORDS_AND_SCHEDULE)
    revision, tables, staff_may_be_null = _state(app)
    assert revision == BEFORE_RECORDS_AND_SCHEDULE and not staff_may_be_null
    assert {"service_series", "phone_confirmations", "pending_imports"}.isdisjoint(tables)
    assert not any(name.startswith("_alembic_tmp") for name in tables), tables
    with app.app_context(), db.engine.connect() as connection:
        kept = connection.execute(text(
            "SELECT id, staff_id FROM scheduled_services ORDER BY id")).all()
        assert [tuple(row) for row in kept] == [(visit.id, staff.id), (unassigned.id, staff.id)]
        assert connection.scalar(text("SELECT count(*) FROM users")) == 2
    with app.app_context():  # and back up again, with the rows kept
        upgrade()
    assert count_rows(app, ScheduledService) == 2


@pytest.mark.committed
def test_downgrade_below_approval_withdraws_what_waits_for_it(app, business, admin, household,
                                                              make_user):
    """Nothing waits for approval before that revision: a held message must not become an
    ordinary scheduled one the worker would post, nor one with files lose them silently."""
    staff = make_user(Role.STAFF)
    with app.app_context():
        due = utcnow()
        rows = [
            ScheduledMessage(business_id=business.id, client_id=household.id,
                             feed=Feed.CONVERSATION, author_id=author.id, text=text,
                             due_at=due, held=held)
            for author, text, held in ((staff, "held", True), (admin, "with a file", False),
                                       (admin, "plain", False))
        ]
        rows[1].files = [ScheduledMessageFile(
            business_id=business.id, kind=AttachmentKind.FILE, original_name="a.pdf",
            content_type="application/pdf", size=3, storage_key="k" * 20)]
        db.session.add_all(rows)
        db.session.commit()
        db.session.remove()
        downgrade(revision=BEFORE_APPROVAL)
        with db.engine.connect() as connection:
            statuses = dict(connection.execute(text(
                "SELECT text, status FROM scheduled_messages")).all())
        assert statuses == {"held": "cancelled", "with a file": "cancelled", "plain": "pending"}
        upgrade()
