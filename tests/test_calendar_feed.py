"""A staff member's schedule as an iCalendar feed at a secret URL: who it answers, what it
holds (and what it never holds), its headers and its cost."""

from datetime import UTC, timedelta

import pytest
from icalendar import Calendar
from sqlalchemy import update

from portal.clock import exact_time
from portal.extensions import db
from portal.models import Client, Role, ScheduledService, ServiceStatus, User, utcnow

from .helpers import count_queries, insert_visit, record_sql, update_row


def add_visit(app, client, staff, *, days: float, hours: float = 0.5, title="Walk",
              status=ServiceStatus.SCHEDULED) -> ScheduledService:
    starts_at = (utcnow() + timedelta(days=days)).replace(microsecond=0)
    return insert_visit(app, client, staff, starts_at=starts_at,
                        ends_at=starts_at + timedelta(hours=hours), title=title, status=status)


def with_token(app, staff, token=None) -> str:
    token = token or f"secret-{staff.id}-abcdefghijklmnopqrstuvwxyz"
    update_row(app, User, staff.id, calendar_token=token)
    return f"/calendar/{token}.ics"


def events(response) -> dict[str, object]:
    """The feed's events by UID."""
    calendar = Calendar.from_ical(response.get_data())
    return {str(event["UID"]): event for event in calendar.walk("VEVENT")}


def by_summary(response) -> dict[str, object]:
    return {str(event["SUMMARY"]): event for event in events(response).values()}


@pytest.fixture
def sitter(make_user):
    return make_user(Role.STAFF, name="Sam Sitter")


@pytest.fixture
def rivera(app, household):
    update_row(app, Client, household.id, name="Rivera household",
               address="12 Elm St, Springfield", entry_instructions="Key under the blue pot",
               gate_code="4321")
    return household


def test_calendar_feed_answers_unknown_token_with_404(client, sitter, app):
    with_token(app, sitter)
    for token in ("nothing", "x" * 300, f"secret-{sitter.id}-abcdefghijklmnopqrstuvwxyZ"):
        assert client.get(f"/calendar/{token}.ics").status_code == 404


def test_calendar_feed_answers_404_for_a_deactivated_login(app, client, sitter):
    url = with_token(app, sitter)
    assert client.get(url).status_code == 200
    update_row(app, User, sitter.id, active=False)
    assert client.get(url).status_code == 404


def test_calendar_feed_answers_404_for_a_non_staff_token(app, client, admin):
    assert client.get(with_token(app, admin)).status_code == 404


def test_calendar_feed_holds_visits_as_events(app, client, sitter, rivera, make_message,
                                             household_login):
    walk = add_visit(app, rivera, sitter, days=1, title="Walk")
    stay = add_visit(app, rivera, sitter, days=3, hours=40, title="Overnight stay")
    make_message(rivera, household_login, "The alarm code is 9999")
    response = client.get(with_token(app, sitter))
    assert response.status_code == 200
    found = by_summary(response)
    assert set(found) == {"Walk \u2013 Rivera household", "Overnight stay \u2013 Rivera household"}
    event = found["Walk \u2013 Rivera household"]
    assert event.decoded("DTSTART") == walk.starts_at.astimezone(UTC)
    assert event.decoded("DTSTART").utcoffset() == timedelta(0)
    assert event.decoded("DTEND") == walk.ends_at
    assert str(event["LOCATION"]) == "12 Elm St, Springfield"
    description = str(event["DESCRIPTION"])
    assert "Key under the blue pot" in description and "Gate code: in the portal" in description
    assert str(event["STATUS"]) == "CONFIRMED"
    assert found["Overnight stay \u2013 Rivera household"].decoded("DTEND") == stay.ends_at
    body = response.get_data(as_text=True)
    assert "4321" not in body and "alarm code" not in body and "9999" not in body


def test_calendar_feed_keeps_uid_per_visit_and_marks_cancelled(app, client, sitter, rivera,
                                                              business):
    walk = add_visit(app, rivera, sitter, days=2)
    url = with_token(app, sitter)
    [uid] = events(client.get(url))
    first = events(client.get(url))[uid]
    assert first["SEQUENCE"] == 0 and first.decoded("LAST-MODIFIED") is not None
    update_row(app, ScheduledService, walk.id, status=ServiceStatus.CANCELLED,
               starts_at=walk.starts_at + timedelta(hours=1),
               ends_at=walk.ends_at + timedelta(hours=1))
    again = events(client.get(url))
    assert list(again) == [uid]
    assert str(again[uid]["STATUS"]) == "CANCELLED"
    assert again[uid]["SEQUENCE"] == 1
    assert again[uid].decoded("LAST-MODIFIED") >= first.decoded("LAST-MODIFIED")
    assert again[uid].decoded("DTSTART") == walk.starts_at + timedelta(hours=1)
    # A bulk statement (a series edited "this and following") counts as a change too.
    with app.app_context():
        db.session.execute(update(ScheduledService).where(ScheduledService.id == walk.id)
                           .values(title="Long walk"))
        db.session.commit()
    assert events(client.get(url))[uid]["SEQUENCE"] == 2
    assert str(walk.id) in uid and str(business.id) in uid


def test_calendar_feed_leaves_out_other_staff_unassigned_and_archived(
    app, client, sitter, make_user, make_client, rivera
):
    colleague = make_user(Role.STAFF)
    archived = make_client(name="Archived household")
    add_visit(app, rivera, sitter, days=1, title="Mine")
    add_visit(app, rivera, colleague, days=1, title="Colleague's")
    add_visit(app, rivera, None, days=1, title="Unassigned")
    add_visit(app, archived, sitter, days=1, title="Archived")
    update_row(app, Client, archived.id, archived_at=utcnow())
    found = by_summary(client.get(with_token(app, sitter)))
    assert list(found) == ["Mine \u2013 Rivera household"]


def test_calendar_feed_leaves_location_and_entry_out_beyond_the_access_window(
    app, client, sitter, rivera, other_household, business
):
    # A one-day window: a visit in five days has its client's page closed to the sitter, so
    # its event has no location and no entry instructions, only when they open.
    update_row(app, type(business), business.id, staff_access_days=1)
    update_row(app, Client, other_household.id, name="Okafor household", address="7 Oak Ave",
               entry_instructions="Side door")
    later = add_visit(app, rivera, sitter, days=5, title="Later")
    add_visit(app, other_household, sitter, days=0.5, title="Soon")
    response = client.get(with_token(app, sitter))
    found = by_summary(response)
    closed = found["Later \u2013 Rivera household"]
    assert "LOCATION" not in closed
    opens = exact_time(later.starts_at - timedelta(days=1), "America/Chicago")
    assert str(closed["DESCRIPTION"]) == f"Details open {opens}"
    body = response.get_data(as_text=True)
    assert "12 Elm St" not in body and "blue pot" not in body and "4321" not in body
    soon = found["Soon \u2013 Okafor household"]
    assert str(soon["LOCATION"]) == "7 Oak Ave" and "Side door" in str(soon["DESCRIPTION"])


def test_calendar_feed_covers_thirty_days_back_to_180_ahead(app, client, sitter, rivera):
    for days, title in ((-40, "Too old"), (-20, "Recent"), (170, "Planned"),
                        (190, "Too far")):
        add_visit(app, rivera, sitter, days=days, title=title)
    found = by_summary(client.get(with_token(app, sitter)))
    assert sorted(found) == ["Planned \u2013 Rivera household", "Recent \u2013 Rivera household"]


def test_calendar_feed_sends_private_calendar_headers(app, client, sitter):
    response = client.get(with_token(app, sitter))
    assert response.mimetype == "text/calendar"
    assert response.mimetype_params.get("charset") == "utf-8"
    assert "no-store" in response.headers["Cache-Control"]
    assert "private" in response.headers["Cache-Control"]
    assert "noindex" in response.headers["X-Robots-Tag"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    calendar = Calendar.from_ical(response.get_data())
    assert str(calendar["VERSION"]) == "2.0" and "PRODID" in calendar


def test_calendar_feed_reset_link_answers_404_at_once(app, client, logged_in, sitter):
    browser = logged_in(sitter)
    browser.submit("/today/calendar-link")
    with app.app_context():
        old = db.session.get(User, sitter.id).calendar_token
    assert client.get(f"/calendar/{old}.ics").status_code == 200
    browser.submit("/today/calendar-link")
    assert client.get(f"/calendar/{old}.ics").status_code == 404


def test_calendar_feed_is_throttled_per_link(app, client, sitter, make_user):
    app.config["THROTTLE_CALENDAR_FEED_PER_LINK"] = "2 per hour"
    url = with_token(app, sitter)
    assert [client.get(url).status_code for _ in range(3)] == [200, 200, 429]
    refused = client.get(url)
    assert int(refused.headers["Retry-After"]) > 0
    # Another staff member's link has its own count.
    other = make_user(Role.STAFF)
    assert client.get(with_token(app, other)).status_code == 200


def test_calendar_feed_takes_constant_queries_however_many_visits(app, client, sitter,
                                                                 make_client):
    url = with_token(app, sitter)
    add_visit(app, make_client(), sitter, days=1)
    few = count_queries(app, client, url)
    for number in range(8):
        add_visit(app, make_client(), sitter, days=number - 3,
                  status=ServiceStatus.CANCELLED if number % 3 == 0
                  else ServiceStatus.SCHEDULED)
    many = count_queries(app, client, url)
    assert many == few
    with record_sql(app) as statements:
        assert len(events(client.get(url))) == 9
    assert len(statements) == few
