"""The schedule: entering visits in the business's zone, recurrence, edits of one visit, this and
following, or all, cancelling, overlaps, the admin team's week schedule and the business time
zone setting."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import (
    AuditEvent,
    Business,
    Client,
    Role,
    ScheduledService,
    ServiceSeries,
    ServiceStatus,
    User,
    utcnow,
)
from portal.services import schedule

from .dates import (
    CHICAGO,
    local_today,
    next_february_29,
    next_january_31,
    next_monday,
    next_spring_forward,
    next_winter_weekday,
    short,
)
from .helpers import count_queries, count_rows, update_row

SPRING_FORWARD = next_spring_forward()  # a Sunday at least two weeks away
DST_MONDAY = SPRING_FORWARD - timedelta(days=13)  # a Monday, the week before the one before
MONDAY = next_monday()


def iso(day: date) -> str:
    return day.isoformat()


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
    return (local_today() + timedelta(days=days)).isoformat()


# --- scheduling ---

def test_schedule_weekly_series_keeps_wall_clock_time_across_dst(app, admin_browser, household,
                                                                  assigned_staff):
    # Clocks spring forward in Chicago on SPRING_FORWARD, the Sunday of the second week:
    # 9:00 stays 9:00.
    response = post_schedule(admin_browser, household, staff_id=assigned_staff.id,
                             date=iso(DST_MONDAY), repeat="weekly", weekdays=["0", "2"],
                             count="6")
    assert response.status_code == 302
    rows = visits(app, ScheduledService.series_id.is_not(None))
    assert [local(row.starts_at).replace(tzinfo=None) for row in rows] == [
        datetime.combine(DST_MONDAY + timedelta(days=days), time(9))
        for days in (0, 2, 7, 9, 14, 16)]
    assert {row.starts_at.astimezone(UTC).hour for row in rows} == {15, 14}
    with app.app_context():
        series = db.session.scalar(select(ServiceSeries))
        assert series.rule == "FREQ=WEEKLY;COUNT=6;BYDAY=MO,WE"
        assert series.time_zone == "America/Chicago"
        assert schedule.describe_rule(series.rule) == "Repeats weekly on Mon, Wed, 6 visits"


def test_schedule_every_two_weeks_until_a_date(app, admin_browser, household):
    until = MONDAY + timedelta(days=55)  # a Sunday
    response = post_schedule(admin_browser, household, date=iso(MONDAY), repeat="weekly",
                             interval="2", until=iso(until))
    assert response.status_code == 302
    rows = visits(app)
    assert [local(row.starts_at).date() for row in rows] == [
        MONDAY + timedelta(days=days) for days in (0, 14, 28, 42)]
    assert all(row.staff_id is None for row in rows)  # unassigned
    with app.app_context():
        rule = db.session.scalar(select(ServiceSeries.rule))
        assert rule == f"FREQ=WEEKLY;INTERVAL=2;UNTIL={until:%Y%m%d}T235959;BYDAY=MO"
        assert schedule.describe_rule(rule) == (
            f"Repeats every 2 weeks on Mon until {until:%b} {until.day}, {until.year}")


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
    "spring_forward_start": ({"date": iso(SPRING_FORWARD), "starts": "02:30", "ends": "03:30"},
                             f"does not exist on {SPRING_FORWARD:%b} {SPRING_FORWARD.day}, "
                             f"{SPRING_FORWARD.year}"),
    "spring_forward_end": ({"date": iso(SPRING_FORWARD - timedelta(days=1)), "starts": "22:00",
                            "end_date": iso(SPRING_FORWARD), "ends": "02:15"},
                           f"does not exist on {SPRING_FORWARD:%b} {SPRING_FORWARD.day}, "
                           f"{SPRING_FORWARD.year}"),
    "series_occurrence_in_gap": ({"date": iso(SPRING_FORWARD - timedelta(days=14)),
                                  "starts": "02:30", "ends": "03:00", "repeat": "weekly",
                                  "count": "4"},
                                 f"The visit on {short(SPRING_FORWARD)}, {SPRING_FORWARD.year} "
                                 f"cannot happen"),
    "yearly_february_29": ({"date": iso(next_february_29()), "repeat": "yearly", "count": "2"},
                           "only happen in leap years"),
    "monthly_on_the_31st": ({"date": iso(next_january_31()), "repeat": "monthly",
                             "count": "3"}, "skip the months that are shorter"),
    "longer_than_two_years_by_date": ({"date": iso(MONDAY), "repeat": "weekly",
                                       "until": iso(MONDAY + timedelta(days=2 * 366 + 30))},
                                      "at most two years"),
    "longer_than_two_years_by_count": ({"date": iso(MONDAY), "repeat": "weekly",
                                        "count": "120"}, "at most two years"),
    "series_without_end": ({"date": iso(MONDAY), "repeat": "daily"},
                           "Choose when the repeats end"),
    "series_overlapping_itself": ({"date": in_days(2), "starts": "09:00", "end_date": in_days(4),
                                   "ends": "10:00", "repeat": "daily", "count": "3"},
                                  "Each visit would overlap the next"),
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
    post_schedule(admin_browser, household, staff_id=assigned_staff.id, date=iso(MONDAY),
                  repeat="weekly", weekdays=["0"], count="3")
    with app.app_context():
        event = db.session.scalar(select(AuditEvent).where(
            AuditEvent.action == "service.scheduled").order_by(AuditEvent.id.desc()))
        assert event.details["visits"] == 3 and "FREQ=WEEKLY" in event.details["rule"]
    page = admin_browser.get("/settings/audit-log").get_data(as_text=True)
    assert "scheduled Dog walk (repeats weekly on Mon, 3 visits) for" in page


# --- cancelling ---

def clear_the_fixtures_visit(app, staff) -> None:
    """assigned_staff's own visit is a day from now at this time of day: between 8 and 10 in
    the morning it would overlap the series' 9:00 tomorrow, so it moves six hours later then."""
    if not 8 <= datetime.now(ZoneInfo("America/Chicago")).hour < 10:
        return
    with app.app_context():
        for visit in db.session.scalars(select(ScheduledService).where(
                ScheduledService.staff_id == staff.id, ScheduledService.series_id.is_(None))):
            visit.starts_at += timedelta(hours=6)
            visit.ends_at += timedelta(hours=6)
        db.session.commit()


def make_series(app, admin_browser, household, staff, start: str, count: int = 6):
    if staff:
        clear_the_fixtures_visit(app, staff)
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
    # Across the spring-forward Sunday: each stays at 10:00 on its own date.
    rows = make_series(app, admin_browser, household, assigned_staff, iso(DST_MONDAY), count=4)
    response = admin_browser.submit(f"/services/{rows[0].id}/edit", {
        "title": "Long walk", "staff_id": assigned_staff.id, "date": iso(DST_MONDAY),
        "starts": "10:00", "end_date": "", "ends": "11:00", "scope": "all",
    })
    assert response.status_code == 302
    after = visits(app, ScheduledService.series_id.is_not(None))
    assert [local(row.starts_at).replace(tzinfo=None) for row in after] == [
        datetime.combine(DST_MONDAY + timedelta(weeks=weeks), time(10)) for weeks in range(4)]
    assert all(row.ends_at - row.starts_at == timedelta(hours=1) for row in after)
    assert {row.title for row in after} == {"Long walk"}
    with app.app_context():
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "service.changed"))
        assert event.details["changes"]["title"] == ["Dog walk", "Long walk"]
        assert event.details["changes"]["starts_at"][0].startswith(f"{DST_MONDAY}T15:00")
        assert event.details["changes"]["starts_at"][1].startswith(f"{DST_MONDAY}T16:00")
    page = admin_browser.get("/settings/audit-log").get_data(as_text=True)
    assert "title from <bdi>Dog walk</bdi> to <bdi>Long walk</bdi>" in page


def test_edit_refuses_time_in_spring_forward_gap_for_one_visit_of_the_series(
        app, admin_browser, household, assigned_staff):
    first = SPRING_FORWARD - timedelta(days=14)
    rows = make_series(app, admin_browser, household, assigned_staff, iso(first), count=3)
    response = admin_browser.submit(f"/services/{rows[0].id}/edit", {
        "title": "Dog walk", "staff_id": assigned_staff.id, "date": iso(first),
        "starts": "02:30", "end_date": "", "ends": "03:00", "scope": "all",
    })
    assert response.status_code == 422
    assert f"{short(SPRING_FORWARD)}, {SPRING_FORWARD.year}" in response.get_data(as_text=True)
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


def test_profile_schedule_form_lists_the_staff_as_they_are_now(app, admin_browser, household,
                                                               make_user):
    # The empty fields are rendered once per set of staff: a renamed or added sitter shows.
    sam = make_user(Role.STAFF, name="Sam Sitter")
    page = admin_browser.get(f"/clients/{household.id}").get_data(as_text=True)
    assert f'<option value="{sam.id}" selected>Sam Sitter</option>' in page
    update_row(app, User, sam.id, name="Sam <Walker>")
    ida = make_user(Role.STAFF, name="Ida Idle")
    page = admin_browser.get(f"/clients/{household.id}").get_data(as_text=True)
    assert "Sam Sitter" not in page
    assert f'<option value="{ida.id}"' in page and "Sam &lt;Walker&gt;" in page
    assert 'id="service-title" name="title" value="Dog walk"' in page
    assert "Times are in the business's time zone, " in page


# --- the week schedule ---

def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def test_week_schedule_shows_visits_by_staff_with_unassigned_row(
        app, admin_browser, household, other_household, make_user):
    staff = make_user(Role.STAFF, name="Sam Sitter")
    make_user(Role.STAFF, name="Idle Ida")
    monday = monday_of(MONDAY + timedelta(days=2))
    post_schedule(admin_browser, household, staff_id=staff.id, title="Overnight stay",
                  date=iso(monday + timedelta(days=1)), starts="18:00",
                  end_date=iso(monday + timedelta(days=3)), ends="09:00")
    post_schedule(admin_browser, other_household, title="Lunch walk",
                  date=iso(monday + timedelta(days=4)), starts="12:00", ends="12:30")
    page = admin_browser.get(f"/schedule?week={monday.isoformat()}").get_data(as_text=True)
    assert f"Week of {monday:%b} {monday.day}, {monday.year}" in page
    assert "Sam Sitter" in page and "Idle Ida" in page and "Unassigned" in page
    # The stay shows on each day it covers: Tuesday (from), Wednesday (all day), Thursday (until).
    assert "from 6:00 PM" in page and "all day" in page and "until 9:00 AM" in page
    assert "Lunch walk" in page and f"/clients/{other_household.id}#service-" in page
    assert f"?week={monday - timedelta(days=7)}" in page
    assert f"?week={monday + timedelta(days=7)}" in page


def test_week_schedule_toggles_cancelled_visits(app, admin_browser, household):
    post_schedule(admin_browser, household, title="Dropped visit",
                  date=iso(MONDAY + timedelta(days=2)))
    update_row(app, ScheduledService, visits(app)[0].id, status=ServiceStatus.CANCELLED)
    admin_browser.get("/clients")  # shows (and so clears) "... Dropped visit ... scheduled"
    assert "Dropped visit" not in admin_browser.get(f"/schedule?week={MONDAY}").get_data(
        as_text=True)
    page = admin_browser.get(f"/schedule?week={MONDAY}&cancelled=1").get_data(as_text=True)
    assert "<s>Dropped visit</s>" in page


def test_week_schedule_takes_constant_queries(app, admin_browser, household, make_user):
    staff = make_user(Role.STAFF)
    url = f"/schedule?week={MONDAY}"
    few = count_queries(app, admin_browser, url)
    post_schedule(admin_browser, household, staff_id=staff.id, date=iso(MONDAY),
                  repeat="daily", count="7", confirm_overlap="y")
    post_schedule(admin_browser, household, date=iso(MONDAY), starts="13:00", ends="14:00",
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
    day = MONDAY + timedelta(days=2)
    post_schedule(admin_browser, household, date=iso(day), starts="09:00", ends="09:30")
    paris = datetime.combine(day, time(9), ZoneInfo("Europe/Paris"))
    assert visits(app)[0].starts_at.astimezone(UTC).hour == paris.astimezone(UTC).hour


def test_profile_shows_visit_in_business_zone_and_viewers_own(app, admin, admin_browser,
                                                              household):
    update_row(app, User, admin.id, time_zone="America/New_York")
    wednesday = next_winter_weekday(2)  # in standard time: CST and EST
    post_schedule(admin_browser, household, title="Morning walk", date=iso(wednesday),
                  starts="09:00", ends="09:30")
    page = admin_browser.get(f"/clients/{household.id}").get_data(as_text=True)
    assert (f"{short(wednesday)}, 9:00 AM\u20139:30 AM CST "
            "(10:00 AM\u201310:30 AM EST your time)" in page)


def test_edit_page_shows_the_visit_in_the_business_zone(app, admin_browser, household,
                                                        assigned_staff):
    rows = make_series(app, admin_browser, household, assigned_staff, iso(MONDAY), count=2)
    page = admin_browser.get(f"/services/{rows[0].id}/edit").get_data(as_text=True)
    assert f'value="{MONDAY}"' in page and 'value="09:00"' in page and 'value="09:30"' in page
    assert "Repeats weekly on Mon, 2 visits" in page and "This and following visits" in page


def test_week_schedule_clamps_weeks_outside_1900_to_2999(app, admin_browser):
    first = admin_browser.get("/schedule?week=0001-01-01")
    assert first.status_code == 200
    page = first.get_data(as_text=True)
    assert "Week of Jan 1, 1900" in page and "?week=1900-01-08" in page
    last = admin_browser.get("/schedule?week=9999-12-31")
    assert last.status_code == 200
    page = last.get_data(as_text=True)
    assert "Week of Dec 30, 2999" in page and "?week=2999-12-23" in page
    # The links at either end lead back to the end, never out of range.
    assert "Week of Jan 1, 1900" in admin_browser.get("/schedule?week=1899-12-25").get_data(
        as_text=True)
    assert admin_browser.get("/schedule?week=3000-01-06").status_code == 200


# --- a series that overlaps itself ---

def test_edit_refuses_a_series_scope_whose_visits_would_overlap_each_other(
        app, admin_browser, household, assigned_staff):
    rows = make_series(app, admin_browser, household, assigned_staff, in_days(1), count=3)
    start = local(rows[1].starts_at).date()
    response = admin_browser.submit(f"/services/{rows[1].id}/edit", {
        "title": "Week-long stay", "staff_id": "", "date": iso(start), "starts": "09:00",
        "end_date": iso(start + timedelta(days=8)), "ends": "09:00", "scope": "following",
    })
    assert response.status_code == 422
    assert "Each visit would overlap the next" in response.get_data(as_text=True)
    after = visits(app, ScheduledService.series_id.is_not(None))
    assert [(row.title, row.ends_at - row.starts_at) for row in after] == [
        ("Dog walk", timedelta(minutes=30))] * 3
    # One visit alone may become a long stay: nothing of its own series follows it in scope.
    response = admin_browser.submit(f"/services/{rows[2].id}/edit", {
        "title": "Week-long stay", "staff_id": assigned_staff.id,
        "date": iso(local(rows[2].starts_at).date()), "starts": "09:00",
        "end_date": iso(local(rows[2].starts_at).date() + timedelta(days=8)), "ends": "09:00",
        "scope": "one",
    })
    assert response.status_code == 302


def test_schedule_series_overlapping_itself_refused_even_unassigned(app, admin, household):
    with app.app_context():
        day = local_today() + timedelta(days=2)
        with pytest.raises(schedule.ScheduleError, match="Each visit would overlap the next"):
            schedule.schedule(
                db.session.get(User, admin.id), db.session.get(Client, household.id), None,
                title="Stay", span=schedule.LocalSpan(day, time(9), day + timedelta(days=2),
                                                      time(10)),
                repeat=schedule.Repeat(schedule.Frequency.DAILY, count=3))
    assert count_rows(app, ScheduledService) == 0
    # Back to back is not an overlap: a daily 24-hour stay.
    with app.app_context():
        made = schedule.schedule(
            db.session.get(User, admin.id), db.session.get(Client, household.id), None,
            title="Stay", span=schedule.LocalSpan(day, time(9), day + timedelta(days=1),
                                                  time(9)),
            repeat=schedule.Repeat(schedule.Frequency.DAILY, count=3))
        assert len(made) == 3


# --- archived clients leave the schedule ---

def archive(admin_browser, client) -> None:
    assert admin_browser.submit(f"/clients/{client.id}/archive").status_code == 302


def test_archived_clients_visits_leave_the_week_schedule_until_restored(
        app, admin_browser, household, assigned_staff):
    day = MONDAY + timedelta(days=1)
    post_schedule(admin_browser, household, staff_id=assigned_staff.id, title="Rivera walk",
                  date=iso(day), repeat="daily", count="2")
    url = f"/schedule?week={MONDAY}"
    assert "Rivera walk" in admin_browser.get(url).get_data(as_text=True)
    archive(admin_browser, household)
    assert "Rivera walk" not in admin_browser.get(url).get_data(as_text=True)
    assert "Rivera walk" not in admin_browser.get(url + "&cancelled=1").get_data(as_text=True)
    # Archiving cancels nothing: restoring brings every visit back.
    assert {row.status for row in visits(app)} == {ServiceStatus.SCHEDULED}
    assert admin_browser.submit(f"/clients/{household.id}/unarchive").status_code == 302
    assert admin_browser.get(url).get_data(as_text=True).count("Rivera walk") >= 2


def test_archived_clients_visit_does_not_make_staff_busy(app, admin_browser, household,
                                                         other_household, make_user):
    staff = make_user(Role.STAFF, name="Sam Sitter")
    post_schedule(admin_browser, household, staff_id=staff.id, title="Rivera walk",
                  date=in_days(2), starts="09:00", ends="10:00")
    archive(admin_browser, household)
    response = post_schedule(admin_browser, other_household, staff_id=staff.id,
                             title="Okafor walk", date=in_days(2), starts="09:30", ends="09:45")
    assert response.status_code == 302  # no overlap warning
    assert count_rows(app, ScheduledService) == 2
    # Nor when a visit is moved onto it.
    moved = visits(app, ScheduledService.title == "Okafor walk")[0]
    response = admin_browser.submit(f"/services/{moved.id}/edit", {
        "title": "Okafor walk", "staff_id": staff.id, "date": in_days(2), "starts": "09:00",
        "end_date": "", "ends": "10:00", "scope": "one"})
    assert response.status_code == 302


# --- a person's own time zone ---

def test_own_time_zone_saved_audited_and_shown_beside_the_business_zone(
        app, admin, admin_browser, household):
    page = admin_browser.get("/notifications").get_data(as_text=True)
    assert '<option selected value="America/Chicago">Chicago</option>' in page
    response = admin_browser.submit("/notifications/time-zone", {"time_zone": "America/New_York"})
    assert response.status_code == 302
    with app.app_context():
        assert db.session.get(User, admin.id).time_zone == "America/New_York"
        event = db.session.scalar(select(AuditEvent).where(
            AuditEvent.action == "user.time_zone_changed"))
        assert event.details["changes"] == {"time_zone": ["America/Chicago", "America/New_York"]}
    log = admin_browser.get("/settings/audit-log").get_data(as_text=True)
    assert ("changed their time zone from “<bdi>America/Chicago</bdi>” to "
            "“<bdi>America/New_York</bdi>”") in log
    wednesday = next_winter_weekday(2)
    post_schedule(admin_browser, household, title="Morning walk", date=iso(wednesday))
    page = admin_browser.get(f"/clients/{household.id}").get_data(as_text=True)
    assert "(10:00 AM\u201310:30 AM EST your time)" in page
    # Saving the same zone again records nothing.
    admin_browser.submit("/notifications/time-zone", {"time_zone": "America/New_York"})
    assert count_rows(app, AuditEvent, AuditEvent.action == "user.time_zone_changed") == 1


def test_own_time_zone_refuses_an_unknown_zone(app, logged_in, household_login):
    browser = logged_in(household_login)
    response = browser.submit("/notifications/time-zone", {"time_zone": "Mars/Olympus"})
    assert response.status_code == 422
    assert "Not a valid choice" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(User, household_login.id).time_zone == "America/Chicago"
    assert count_rows(app, AuditEvent, AuditEvent.action == "user.time_zone_changed") == 0


def test_reassign_or_retitle_all_keeps_each_visits_own_times(app, admin_browser, household,
                                                             assigned_staff, make_user):
    other = make_user(Role.STAFF, name="Wendy Walker")
    rows = make_series(app, admin_browser, household, assigned_staff, in_days(1), count=3)
    day = local(rows[1].starts_at).date()
    assert admin_browser.submit(f"/services/{rows[1].id}/edit", {
        "title": "Dog walk", "staff_id": assigned_staff.id, "date": iso(day),
        "starts": "10:00", "end_date": "", "ends": "10:45", "scope": "following",
    }).status_code == 302
    before = [(row.starts_at, row.ends_at) for row in visits(
        app, ScheduledService.series_id.is_not(None))]
    assert [end - start for start, end in before] == [
        timedelta(minutes=30), timedelta(minutes=45), timedelta(minutes=45)]
    assert admin_browser.submit(f"/services/{rows[0].id}/reassign",
                                {"staff_id": other.id, "scope": "all"}).status_code == 302
    first = local(rows[0].starts_at)
    assert admin_browser.submit(f"/services/{rows[0].id}/edit", {
        "title": "Long walk", "staff_id": other.id, "date": iso(first.date()),
        "starts": "09:00", "end_date": "", "ends": "09:30", "scope": "all",
    }).status_code == 302
    after = visits(app, ScheduledService.series_id.is_not(None))
    assert [(row.starts_at, row.ends_at) for row in after] == before
    assert {(row.staff_id, row.title) for row in after} == {(other.id, "Long walk")}
