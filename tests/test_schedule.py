"""The schedule: entering visits in the business's zone, recurrence, edits of one visit, this and
following, or all, cancelling, overlaps, the admin team's week schedule and the business time
zone setting."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import (
    AuditEvent,
    Business,
    Role,
    ScheduledService,
    ServiceSeries,
    ServiceStatus,
    User,
    utcnow,
)
from portal.services import schedule

from .helpers import count_queries, count_rows, update_row

CHICAGO = ZoneInfo("America/Chicago")


def post_schedule(browser, household, **fields):
    data = {"title": "Dog walk", "staff_id": "", "starts": "09:00", "ends": "09:30",
            "repeat": "none", "interval": "1"}
    data.update({key: value for key, value in fields.items() if value is not None})
    return browser.submit(f"/clients/{household.id}/services", data)


def visits(app, *where) -> list[ScheduledService]:
    with app.app_context():
        rows = list(db.session.scalars(
            select(ScheduledService).where(*where).order_by(ScheduledService.starts_at)))
        db.session.expunge_all()
        return rows


def local(moment: datetime) -> datetime:
    return moment.astimezone(CHICAGO)


def in_days(days: int) -> str:
    return (utcnow().astimezone(CHICAGO).date() + timedelta(days=days)).isoformat()


# --- scheduling ---

def test_schedule_weekly_series_keeps_wall_clock_time_across_dst(app, admin_browser, household,
                                                                  assigned_staff):
    # Clocks spring forward in Chicago on March 14, 2027: 9:00 stays 9:00.
    response = post_schedule(admin_browser, household, staff_id=assigned_staff.id,
                             date="2027-03-01", repeat="weekly", weekdays=["0", "2"],
                             count="6")
    assert response.status_code == 302
    rows = visits(app, ScheduledService.series_id.is_not(None))
    assert [local(row.starts_at).strftime("%a %b %d %H:%M") for row in rows] == [
        "Mon Mar 01 09:00", "Wed Mar 03 09:00", "Mon Mar 08 09:00", "Wed Mar 10 09:00",
        "Mon Mar 15 09:00", "Wed Mar 17 09:00"]
    assert {row.starts_at.astimezone(UTC).hour for row in rows} == {15, 14}
    with app.app_context():
        series = db.session.scalar(select(ServiceSeries))
        assert series.rule == "FREQ=WEEKLY;COUNT=6;BYDAY=MO,WE"
        assert series.time_zone == "America/Chicago"
        assert schedule.describe_rule(series.rule) == "Repeats weekly on Mon, Wed, 6 visits"


def test_schedule_every_two_weeks_until_a_date(app, admin_browser, household):
    response = post_schedule(admin_browser, household, date="2027-01-04", repeat="weekly",
                             interval="2", until="2027-02-28")
    assert response.status_code == 302
    rows = visits(app)
    assert [local(row.starts_at).date().isoformat() for row in rows] == [
        "2027-01-04", "2027-01-18", "2027-02-01", "2027-02-15"]
    assert all(row.staff_id is None for row in rows)  # unassigned
    with app.app_context():
        rule = db.session.scalar(select(ServiceSeries.rule))
        assert rule == "FREQ=WEEKLY;INTERVAL=2;UNTIL=20270228T235959;BYDAY=MO"
        assert schedule.describe_rule(rule) == "Repeats every 2 weeks on Mon until Feb 28, 2027"


def test_schedule_overnight_stay_ends_on_a_later_date(app, admin_browser, household,
                                                      assigned_staff):
    response = post_schedule(admin_browser, household, staff_id=assigned_staff.id,
                             title="Overnight stay", date=in_days(3), starts="18:00",
                             end_date=in_days(5), ends="09:00")
    assert response.status_code == 302
    stay = visits(app, ScheduledService.title == "Overnight stay")[0]
    assert stay.ends_at - stay.starts_at == timedelta(hours=39)
    assert (local(stay.starts_at).hour, local(stay.ends_at).hour) == (18, 9)


def test_schedule_allows_a_visit_earlier_today_for_the_records(app, admin_browser, household):
    response = post_schedule(admin_browser, household, date=in_days(0), starts="00:00",
                             ends="00:15")
    assert response.status_code == 302
    assert count_rows(app, ScheduledService) == 1


REFUSED = {
    # id: (form fields, words of the message)
    "end_before_start": ({"date": in_days(2), "starts": "10:00", "ends": "09:00"},
                         "must end after it starts"),
    "end_equal_start": ({"date": in_days(2), "starts": "10:00", "ends": "10:00"},
                        "must end after it starts"),
    "spring_forward_start": ({"date": "2027-03-14", "starts": "02:30", "ends": "03:30"},
                             "does not exist on Mar 14, 2027"),
    "spring_forward_end": ({"date": "2027-03-13", "starts": "22:00", "end_date": "2027-03-14",
                            "ends": "02:15"}, "does not exist on Mar 14, 2027"),
    "series_occurrence_in_gap": ({"date": "2027-02-28", "starts": "02:30", "ends": "03:00",
                                  "repeat": "weekly", "count": "4"},
                                 "The visit on Sun, Mar 14, 2027 cannot happen"),
    "yearly_february_29": ({"date": "2028-02-29", "repeat": "yearly", "count": "2"},
                           "only happen in leap years"),
    "monthly_on_the_31st": ({"date": "2027-01-31", "repeat": "monthly", "count": "3"},
                            "skip the months that are shorter"),
    "longer_than_two_years_by_date": ({"date": "2027-01-04", "repeat": "weekly",
                                       "until": "2029-06-01"}, "at most two years"),
    "longer_than_two_years_by_count": ({"date": "2027-01-04", "repeat": "weekly",
                                        "count": "120"}, "at most two years"),
    "series_without_end": ({"date": "2027-01-04", "repeat": "daily"},
                           "Choose when the repeats end"),
    "start_on_a_past_day": ({"date": in_days(-1)}, "a day that has passed"),
    "stay_longer_than_sixty_days": ({"date": in_days(1), "end_date": in_days(70)},
                                    "at most 60 days"),
}


@pytest.mark.parametrize(("fields", "words"), REFUSED.values(), ids=REFUSED)
def test_schedule_refuses_bad_input_saving_nothing(app, admin_browser, household, fields, words):
    response = post_schedule(admin_browser, household, **fields)
    assert response.status_code == 422
    assert words in response.get_data(as_text=True)
    assert count_rows(app, ScheduledService) == 0
    assert count_rows(app, ServiceSeries) == 0
    assert count_rows(app, AuditEvent, AuditEvent.action == "service.scheduled") == 0


def test_schedule_refuses_staff_of_another_business(app, admin_browser, household, make_user,
                                                    stranger_business):
    foreign = make_user(Role.STAFF, business=stranger_business)
    assert post_schedule(admin_browser, household, staff_id=foreign.id,
                         date=in_days(2)).status_code == 422  # not one of the choices
    assert count_rows(app, ScheduledService) == 0


def test_schedule_overlap_warns_and_saves_only_when_confirmed(app, admin_browser, household,
                                                              other_household, make_user):
    staff = make_user(Role.STAFF, name="Sam Sitter")
    assert post_schedule(admin_browser, household, staff_id=staff.id, date=in_days(2),
                         starts="09:00", ends="10:00").status_code == 302
    clash = post_schedule(admin_browser, other_household, staff_id=staff.id,
                          title="Drop-in", date=in_days(2), starts="09:30", ends="09:45")
    page = clash.get_data(as_text=True)
    assert clash.status_code == 422
    assert "already busy" in page and "Dog walk:" in page and "Schedule anyway" in page
    assert 'value="Drop-in"' in page  # what was entered comes back
    assert count_rows(app, ScheduledService) == 1
    confirmed = post_schedule(admin_browser, other_household, staff_id=staff.id,
                              title="Drop-in", date=in_days(2), starts="09:30", ends="09:45",
                              confirm_overlap="y")
    assert confirmed.status_code == 302
    assert count_rows(app, ScheduledService) == 2


def test_schedule_overlap_not_warned_for_unassigned_or_back_to_back(app, admin_browser,
                                                                    household, make_user):
    staff = make_user(Role.STAFF)
    post_schedule(admin_browser, household, staff_id=staff.id, date=in_days(2), starts="09:00",
                  ends="10:00")
    assert post_schedule(admin_browser, household, staff_id=staff.id, date=in_days(2),
                         starts="10:00", ends="10:30").status_code == 302
    assert post_schedule(admin_browser, household, date=in_days(2), starts="09:00",
                         ends="10:00").status_code == 302


def test_schedule_series_overlap_lists_each_clash(app, admin_browser, household, make_user):
    staff = make_user(Role.STAFF)
    for day in (7, 14):
        post_schedule(admin_browser, household, staff_id=staff.id, date=in_days(day),
                      starts="09:15", ends="09:45")
    response = post_schedule(admin_browser, household, staff_id=staff.id, date=in_days(7),
                             repeat="weekly", count="3")
    assert response.status_code == 422
    assert response.get_data(as_text=True).count("<li>Dog walk:") == 2
    assert count_rows(app, ScheduledService) == 2


def test_schedule_records_audit_with_sentence(app, admin_browser, household, assigned_staff):
    post_schedule(admin_browser, household, staff_id=assigned_staff.id, date="2027-03-01",
                  repeat="weekly", weekdays=["0"], count="3")
    with app.app_context():
        event = db.session.scalar(select(AuditEvent).where(
            AuditEvent.action == "service.scheduled").order_by(AuditEvent.id.desc()))
        assert event.details["visits"] == 3 and "FREQ=WEEKLY" in event.details["rule"]
    page = admin_browser.get("/settings/audit-log").get_data(as_text=True)
    assert "scheduled Dog walk (repeats weekly on Mon, 3 visits) for" in page


# --- cancelling ---

def make_series(app, admin_browser, household, staff, start: str, count: int = 6):
    response = post_schedule(admin_browser, household, staff_id=staff.id if staff else "",
                             date=start, repeat="weekly", count=str(count))
    assert response.status_code == 302
    return visits(app, ScheduledService.series_id.is_not(None))


def test_cancel_one_visit_of_a_series(app, admin_browser, household, assigned_staff):
    rows = make_series(app, admin_browser, household, assigned_staff, in_days(1))
    response = admin_browser.submit(f"/services/{rows[2].id}/cancel", {"scope": "one"})
    assert response.status_code == 302
    statuses = [row.status for row in visits(app, ScheduledService.series_id.is_not(None))]
    assert statuses.count(ServiceStatus.CANCELLED) == 1
    assert statuses[2] == ServiceStatus.CANCELLED


def test_cancel_this_and_following(app, admin_browser, household, assigned_staff):
    rows = make_series(app, admin_browser, household, assigned_staff, in_days(1))
    admin_browser.submit(f"/services/{rows[3].id}/cancel", {"scope": "following"})
    statuses = [row.status for row in visits(app, ScheduledService.series_id.is_not(None))]
    assert statuses == [ServiceStatus.SCHEDULED] * 3 + [ServiceStatus.CANCELLED] * 3
    with app.app_context():
        event = db.session.scalar(select(AuditEvent).where(
            AuditEvent.action == "service.cancelled"))
        assert event.details["changes"] == {"status": ["scheduled", "cancelled"]}
        assert (event.details["scope"], event.details["visits"]) == ("following", 3)


def test_cancel_all_leaves_visits_that_started(app, admin_browser, household, assigned_staff):
    rows = make_series(app, admin_browser, household, assigned_staff, in_days(1), count=4)
    # The first visit has begun meanwhile.
    update_row(app, ScheduledService, rows[0].id, starts_at=utcnow() - timedelta(minutes=5),
               ends_at=utcnow() + timedelta(minutes=25))
    response = admin_browser.submit(f"/services/{rows[2].id}/cancel", {"scope": "all"})
    assert response.status_code == 302
    statuses = [row.status for row in visits(app, ScheduledService.series_id.is_not(None))]
    assert statuses == [ServiceStatus.SCHEDULED] + [ServiceStatus.CANCELLED] * 3


def test_cancel_refuses_a_visit_that_started(app, admin_browser, household, make_service,
                                             make_user):
    staff = make_user(Role.STAFF)
    started = make_service(household, staff, days_from_now=-0.01)
    response = admin_browser.submit(f"/services/{started.id}/cancel", {"scope": "one"})
    assert response.status_code == 303
    assert visits(app)[0].status == ServiceStatus.SCHEDULED
    page = admin_browser.get(f"/clients/{household.id}").get_data(as_text=True)
    assert "past visits cannot be cancelled" in page


# --- editing and reassigning ---

def test_edit_all_moves_each_visit_by_the_same_wall_clock_change(app, admin_browser, household,
                                                                 assigned_staff):
    rows = make_series(app, admin_browser, household, assigned_staff, "2027-03-01", count=4)
    response = admin_browser.submit(f"/services/{rows[0].id}/edit", {
        "title": "Long walk", "staff_id": assigned_staff.id, "date": "2027-03-01",
        "starts": "10:00", "end_date": "", "ends": "11:00", "scope": "all",
    })
    assert response.status_code == 302
    after = visits(app, ScheduledService.series_id.is_not(None))
    assert [local(row.starts_at).strftime("%b %d %H:%M") for row in after] == [
        "Mar 01 10:00", "Mar 08 10:00", "Mar 15 10:00", "Mar 22 10:00"]
    assert all(row.ends_at - row.starts_at == timedelta(hours=1) for row in after)
    assert {row.title for row in after} == {"Long walk"}
    with app.app_context():
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "service.changed"))
        assert event.details["changes"]["title"] == ["Dog walk", "Long walk"]
        assert event.details["changes"]["starts_at"][0].startswith("2027-03-01T15:00")
        assert event.details["changes"]["starts_at"][1].startswith("2027-03-01T16:00")
    page = admin_browser.get("/settings/audit-log").get_data(as_text=True)
    assert "title from <bdi>Dog walk</bdi> to <bdi>Long walk</bdi>" in page


def test_edit_refuses_time_in_spring_forward_gap_for_one_visit_of_the_series(
        app, admin_browser, household, assigned_staff):
    rows = make_series(app, admin_browser, household, assigned_staff, "2027-02-28", count=3)
    response = admin_browser.submit(f"/services/{rows[0].id}/edit", {
        "title": "Dog walk", "staff_id": assigned_staff.id, "date": "2027-02-28",
        "starts": "02:30", "end_date": "", "ends": "03:00", "scope": "all",
    })
    assert response.status_code == 422
    assert "Sun, Mar 14, 2027" in response.get_data(as_text=True)
    assert [local(row.starts_at).hour for row in visits(
        app, ScheduledService.series_id.is_not(None))] == [9, 9, 9]


def test_reassign_this_and_following_moves_only_those(app, admin_browser, household,
                                                      assigned_staff, make_user):
    other = make_user(Role.STAFF, name="Wendy Walker")
    rows = make_series(app, admin_browser, household, assigned_staff, in_days(10), count=4)
    response = admin_browser.submit(f"/services/{rows[2].id}/reassign",
                                    {"staff_id": other.id, "scope": "following"})
    assert response.status_code == 302
    after = visits(app, ScheduledService.series_id.is_not(None))
    assert [row.staff_id for row in after] == [assigned_staff.id] * 2 + [other.id] * 2
    with app.app_context():
        event = db.session.scalar(select(AuditEvent).where(
            AuditEvent.action == "service.reassigned"))
        assert event.details["changes"]["staff"] == ["Sam Sitter", "Wendy Walker"]


def test_reassign_to_unassigned(app, admin_browser, household, assigned_staff):
    service = visits(app)[0]
    response = admin_browser.submit(f"/services/{service.id}/reassign",
                                    {"staff_id": "", "scope": "one"})
    assert response.status_code == 302
    assert visits(app)[0].staff_id is None


def test_reassign_overlap_warns_and_saves_when_confirmed(app, admin_browser, household,
                                                         other_household, make_user):
    busy, free = make_user(Role.STAFF, name="Busy Bee"), make_user(Role.STAFF, name="Free Fox")
    post_schedule(admin_browser, household, staff_id=busy.id, date=in_days(2))
    post_schedule(admin_browser, other_household, staff_id=free.id, date=in_days(2))
    moved = visits(app, ScheduledService.staff_id == free.id)[0]
    response = admin_browser.submit(f"/services/{moved.id}/reassign",
                                    {"staff_id": busy.id, "scope": "one"})
    assert response.status_code == 422 and "Reassign anyway" in response.get_data(as_text=True)
    assert visits(app, ScheduledService.id == moved.id)[0].staff_id == free.id
    response = admin_browser.submit(f"/services/{moved.id}/reassign",
                                    {"staff_id": busy.id, "scope": "one",
                                     "confirm_overlap": "y"})
    assert response.status_code == 302
    assert visits(app, ScheduledService.id == moved.id)[0].staff_id == busy.id


# --- the client's profile ---

def test_profile_lists_visits_with_repeat_line_unassigned_and_cancelled(
        app, admin_browser, household, assigned_staff):
    rows = make_series(app, admin_browser, household, None, in_days(1), count=3)
    admin_browser.submit(f"/services/{rows[1].id}/cancel", {"scope": "one"})
    page = admin_browser.get(f"/clients/{household.id}").get_data(as_text=True)
    assert "Unassigned" in page and "Repeats weekly on" in page and "Cancelled" in page
    assert "This and following" in page  # the scope choice of a series
    assert f"/services/{rows[0].id}/edit" in page


def test_profile_hides_cancelled_visits_from_staff(app, household, assigned_staff, logged_in,
                                                   make_service):
    make_service(household, assigned_staff, days_from_now=2, status=ServiceStatus.CANCELLED)
    page = logged_in(assigned_staff).get(f"/clients/{household.id}").get_data(as_text=True)
    assert "Cancelled" not in page


# --- the week schedule ---

def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def test_week_schedule_shows_visits_by_staff_with_unassigned_row(
        app, admin_browser, household, other_household, make_user):
    staff = make_user(Role.STAFF, name="Sam Sitter")
    make_user(Role.STAFF, name="Idle Ida")
    monday = monday_of(date(2027, 1, 6))
    post_schedule(admin_browser, household, staff_id=staff.id, title="Overnight stay",
                  date="2027-01-05", starts="18:00", end_date="2027-01-07", ends="09:00")
    post_schedule(admin_browser, other_household, title="Lunch walk", date="2027-01-08",
                  starts="12:00", ends="12:30")
    page = admin_browser.get(f"/schedule?week={monday.isoformat()}").get_data(as_text=True)
    assert "Week of Jan 4, 2027" in page
    assert "Sam Sitter" in page and "Idle Ida" in page and "Unassigned" in page
    # The stay shows on each day it covers: Tuesday (from), Wednesday (all day), Thursday (until).
    assert "from 6:00 PM" in page and "all day" in page and "until 9:00 AM" in page
    assert "Lunch walk" in page and f"/clients/{other_household.id}#service-" in page
    assert "?week=2026-12-28" in page and "?week=2027-01-11" in page


def test_week_schedule_toggles_cancelled_visits(app, admin_browser, household):
    post_schedule(admin_browser, household, title="Dropped visit", date="2027-01-06")
    update_row(app, ScheduledService, visits(app)[0].id, status=ServiceStatus.CANCELLED)
    admin_browser.get("/clients")  # shows (and so clears) "... Dropped visit ... scheduled"
    assert "Dropped visit" not in admin_browser.get("/schedule?week=2027-01-04").get_data(
        as_text=True)
    page = admin_browser.get("/schedule?week=2027-01-04&cancelled=1").get_data(as_text=True)
    assert "<s>Dropped visit</s>" in page


def test_week_schedule_takes_constant_queries(app, admin_browser, household, make_user):
    staff = make_user(Role.STAFF)
    url = "/schedule?week=2027-01-04"
    few = count_queries(app, admin_browser, url)
    post_schedule(admin_browser, household, staff_id=staff.id, date="2027-01-04",
                  repeat="daily", count="7", confirm_overlap="y")
    post_schedule(admin_browser, household, date="2027-01-04", starts="13:00", ends="14:00",
                  repeat="daily", count="7")
    make_user(Role.STAFF)
    assert count_rows(app, ScheduledService) == 14
    assert count_queries(app, admin_browser, url) == few


def test_week_schedule_ignores_a_bad_week(app, admin_browser):
    assert admin_browser.get("/schedule?week=not-a-date").status_code == 200


# --- the business time zone ---

def portal_settings(zone: str) -> dict:
    return {"private_messaging_enabled": "no", "client_read_receipts": "no",
            "staff_access_days": "7", "time_zone": zone}


def test_portal_settings_time_zone_saved_and_audited(app, admin_browser, business):
    page = admin_browser.get("/settings/client/portal").get_data(as_text=True)
    assert '<optgroup label="America">' in page
    assert '<option selected value="America/Chicago">Chicago</option>' in page
    response = admin_browser.submit("/settings/client/portal", portal_settings("Europe/Paris"))
    assert response.status_code == 302
    with app.app_context():
        assert db.session.get(Business, business.id).time_zone == "Europe/Paris"
        event = db.session.scalar(select(AuditEvent).where(
            AuditEvent.action == "settings.changed"))
        assert event.details["time_zone"] == {"old": "America/Chicago", "new": "Europe/Paris"}
    log = admin_browser.get("/settings/audit-log").get_data(as_text=True)
    assert "Business time zone</a> from America/Chicago to Europe/Paris" in log


def test_portal_settings_refuses_unknown_time_zone(app, admin_browser, business):
    response = admin_browser.submit("/settings/client/portal", portal_settings("Mars/Olympus"))
    assert response.status_code == 422
    with app.app_context():
        assert db.session.get(Business, business.id).time_zone == "America/Chicago"


def test_visits_are_entered_in_the_business_zone(app, admin_browser, business, household):
    update_row(app, Business, business.id, time_zone="Europe/Paris")
    post_schedule(admin_browser, household, date="2027-01-06", starts="09:00", ends="09:30")
    assert visits(app)[0].starts_at.astimezone(UTC).hour == 8


def test_profile_shows_visit_in_business_zone_and_viewers_own(app, admin, admin_browser,
                                                              household):
    update_row(app, User, admin.id, time_zone="America/New_York")
    post_schedule(admin_browser, household, title="Morning walk", date="2027-01-06",
                  starts="09:00", ends="09:30")
    page = admin_browser.get(f"/clients/{household.id}").get_data(as_text=True)
    assert ("Wed, Jan 6, 9:00 AM\u20139:30 AM CST (10:00 AM\u201310:30 AM EST your time)"
            in page)


def test_edit_page_shows_the_visit_in_the_business_zone(app, admin_browser, household,
                                                        assigned_staff):
    rows = make_series(app, admin_browser, household, assigned_staff, "2027-01-04", count=2)
    page = admin_browser.get(f"/services/{rows[0].id}/edit").get_data(as_text=True)
    assert 'value="2027-01-04"' in page and 'value="09:00"' in page and 'value="09:30"' in page
    assert "Repeats weekly on Mon, 2 visits" in page and "This and following visits" in page
