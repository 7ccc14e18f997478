"""The staff access window follows visits exactly (portal/policy.py, one SQL rule): stays across
days, visits near now, recurring series only through their visits near now, cancelled,
reassigned and unassigned visits; asked alike by pages, lists, counts and notifications."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from portal import policy, unread
from portal.extensions import db
from portal.models import (
    Business,
    Client,
    Feed,
    Role,
    ScheduledService,
    ServiceSeries,
    ServiceStatus,
    User,
    utcnow,
)

from .test_policy import ask, everywhere, staff_access_everywhere


def add_visit(app, client, staff, starts_in: timedelta, lasts: timedelta, *,
              status=ServiceStatus.SCHEDULED, series_id=None) -> int:
    """A visit row starting `starts_in` from now (negative: in the past)."""
    with app.app_context():
        starts_at = utcnow() + starts_in
        visit = ScheduledService(
            business_id=client.business_id, client_id=client.id,
            staff_id=staff.id if staff else None, title="Visit", starts_at=starts_at,
            ends_at=starts_at + lasts, status=status, series_id=series_id,
        )
        db.session.add(visit)
        db.session.commit()
        return visit.id


def add_series(app, client) -> int:
    with app.app_context():
        series = ServiceSeries(business_id=client.business_id, client_id=client.id,
                               rule="FREQ=WEEKLY;INTERVAL=1;BYDAY=MO;COUNT=104",
                               time_zone="America/Chicago")
        db.session.add(series)
        db.session.commit()
        return series.id


def everywhere_including_counts_and_notices(app, staff, client, message_from) -> dict:
    """staff_access_everywhere, plus the unread count, the notification audience and
    may_be_notified: every place the rule is asked."""
    answers = staff_access_everywhere(app, staff, client)
    answers["unread_counted"] = ask(app, unread.total, staff) > 0
    answers["in_notification_audience"] = staff.id in [
        user.id for user in ask(app, policy.notification_audience, message_from, client,
                                Feed.CONVERSATION)]
    answers["may_be_notified"] = ask(app, policy.may_be_notified, staff, client,
                                     Feed.CONVERSATION)
    return answers


def all_places(allowed: bool) -> dict:
    return {**everywhere(allowed), "unread_counted": allowed,
            "in_notification_audience": allowed, "may_be_notified": allowed}


@pytest.fixture
def client_wrote(make_message, household, household_login):
    make_message(household, household_login, "Is Biscuit's walk still on?")
    return household_login


def pages(browser, client) -> dict[str, bool]:
    """What the staff member's browser gets: the profile, and the client in My Clients and in
    the Message Center."""
    return {
        "profile": browser.get(f"/clients/{client.id}").status_code == 200,
        "my_clients": client.name in browser.get("/my-clients").get_data(as_text=True),
        "message_center": client.name in browser.get("/messages").get_data(as_text=True),
    }


def every_page(allowed: bool) -> dict[str, bool]:
    return dict.fromkeys(("profile", "my_clients", "message_center"), allowed)


# --- the window, visit by visit ---

VISITS = {
    # id: (starts in, lasts, access expected) with staff_access_days = 7
    "stay_began_ten_days_ago_ends_tomorrow": (timedelta(days=-10), timedelta(days=11), True),
    "overnight_stay_tonight": (timedelta(hours=6), timedelta(hours=15), True),
    "visit_in_six_days": (timedelta(days=6), timedelta(minutes=30), True),
    "visit_in_eight_days": (timedelta(days=8), timedelta(minutes=30), False),
    "stay_ended_eight_days_ago": (timedelta(days=-20), timedelta(days=12), False),
    "long_stay_ended_six_days_ago": (timedelta(days=-30), timedelta(days=24), True),
}


@pytest.mark.parametrize(("starts_in", "lasts", "expected"), VISITS.values(), ids=VISITS)
def test_staff_access_follows_visit_window(app, make_user, household, client_wrote, starts_in,
                                           lasts, expected):
    staff = make_user(Role.STAFF, name="Sam Sitter")
    add_visit(app, household, staff, starts_in, lasts)
    assert everywhere_including_counts_and_notices(app, staff, household, client_wrote) == (
        all_places(expected))


def test_staff_access_follows_visit_window_in_pages(app, make_user, household, client_wrote,
                                                    logged_in):
    near, far = make_user(Role.STAFF, name="Nora Near"), make_user(Role.STAFF, name="Fay Far")
    add_visit(app, household, near, timedelta(days=-10), timedelta(days=11))
    add_visit(app, household, far, timedelta(days=9), timedelta(days=2))
    assert pages(logged_in(near), household) == every_page(True)
    assert pages(logged_in(far), household) == every_page(False)


# --- recurrence: only the visits near now ---

def test_weekly_series_gives_access_only_through_visits_near_now(app, make_user, household,
                                                                 client_wrote):
    staff = make_user(Role.STAFF, name="Sam Sitter")
    series = add_series(app, household)
    # Weekly visits three weeks ago and from three weeks ahead: a series spanning now, but
    # with no visit inside the window (seven days either side).
    for weeks in (-5, -4, -3, 3, 4, 5, 50, 100):
        add_visit(app, household, staff, timedelta(weeks=weeks), timedelta(minutes=30),
                  series_id=series)
    assert everywhere_including_counts_and_notices(app, staff, household, client_wrote) == (
        all_places(False))
    add_visit(app, household, staff, timedelta(days=5), timedelta(minutes=30), series_id=series)
    assert everywhere_including_counts_and_notices(app, staff, household, client_wrote) == (
        all_places(True))


def test_weekly_series_scheduled_far_ahead_gives_no_access_yet(app, admin_browser, make_user,
                                                               household, client_wrote):
    staff = make_user(Role.STAFF, name="Sam Sitter")
    start = (utcnow() + timedelta(days=14)).date()
    response = admin_browser.submit(f"/clients/{household.id}/services", {
        "staff_id": staff.id, "title": "Dog walk", "date": start.isoformat(), "starts": "09:00",
        "ends": "09:30", "repeat": "weekly", "interval": "1", "count": "50",
    })
    assert response.status_code == 302
    with app.app_context():
        assert db.session.scalar(select(db.func.count()).select_from(ScheduledService)
                                 .where(ScheduledService.staff_id == staff.id)) == 50
    assert everywhere_including_counts_and_notices(app, staff, household, client_wrote) == (
        all_places(False))


# --- cancelled, reassigned and unassigned visits ---

def test_cancelled_visit_stops_access_on_next_request(app, admin_browser, make_user, household,
                                                      client_wrote, logged_in):
    staff = make_user(Role.STAFF, name="Sam Sitter")
    visit = add_visit(app, household, staff, timedelta(days=1), timedelta(hours=1))
    browser = logged_in(staff)
    assert pages(browser, household) == every_page(True)
    assert admin_browser.submit(f"/services/{visit}/cancel", {"scope": "one"}).status_code == 302
    assert pages(browser, household) == every_page(False)
    assert everywhere_including_counts_and_notices(app, staff, household, client_wrote) == (
        all_places(False))


def test_reassigned_visit_moves_access_on_next_request(app, admin_browser, make_user, household,
                                                       client_wrote, logged_in):
    old, new = make_user(Role.STAFF, name="Olive Old"), make_user(Role.STAFF, name="Ned New")
    visit = add_visit(app, household, old, timedelta(days=1), timedelta(hours=1))
    old_browser, new_browser = logged_in(old), logged_in(new)
    assert pages(old_browser, household) == every_page(True)
    assert pages(new_browser, household) == every_page(False)
    response = admin_browser.submit(f"/services/{visit}/reassign",
                                    {"staff_id": new.id, "scope": "one"})
    assert response.status_code == 302
    # Counted before the new staff member's page marks the message read.
    assert everywhere_including_counts_and_notices(app, old, household, client_wrote) == (
        all_places(False))
    assert everywhere_including_counts_and_notices(app, new, household, client_wrote) == (
        all_places(True))
    assert pages(old_browser, household) == every_page(False)
    assert pages(new_browser, household) == every_page(True)


def test_unassigned_visit_gives_nobody_access(app, make_user, household, client_wrote):
    staff = make_user(Role.STAFF, name="Sam Sitter")
    add_visit(app, household, None, timedelta(hours=-1), timedelta(hours=3))
    assert everywhere_including_counts_and_notices(app, staff, household, client_wrote) == (
        all_places(False))
    with app.app_context():
        audience = policy.notification_audience(
            db.session.get(User, client_wrote.id), db.session.get(Client, household.id),
            Feed.CONVERSATION)
        assert all(user.role != Role.STAFF for user in audience)
        business = db.session.get(Business, household.business_id)
        assert policy.staff_with_feed_access(db.session.get(Client, household.id),
                                             business) == []


def test_access_is_read_from_rows_each_request_not_cached(app, make_user, household):
    """The per-request cache of staff access (flask.g) never outlives its request."""
    staff = make_user(Role.STAFF, name="Sam Sitter")
    visit = add_visit(app, household, staff, timedelta(days=1), timedelta(hours=1))
    assert ask(app, policy.can_view_client, staff, household) is True
    with app.app_context():
        db.session.get(ScheduledService, visit).staff_id = None
        db.session.commit()
    assert ask(app, policy.can_view_client, staff, household) is False
