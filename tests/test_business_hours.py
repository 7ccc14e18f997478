"""Business hours: the week's opening hours and closed days on Portal Settings; while the
business is closed, clients see its away notice and get one automatic reply (at most every 12
hours), and its own side can send at opening. The clock is moved with time-machine."""

import html
import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import select

from portal.extensions import db
from portal.hours import Hours, closed_notice, opening_label
from portal.models import (
    AuditEvent,
    Business,
    Message,
    Notification,
    ScheduledMessage,
)

from .helpers import update_row

WEEKDAYS_8_TO_6 = {str(day): ["08:00", "18:00"] for day in range(5)}
# Chicago is UTC-6 in January.
MONDAY_NOON = datetime(2027, 1, 4, 18, tzinfo=UTC)
SATURDAY_10 = datetime(2027, 1, 9, 16, tzinfo=UTC)
NEXT_MONDAY_8 = datetime(2027, 1, 11, 14, tzinfo=UTC)


class Kept:
    """A business's hours as the row keeps them."""

    def __init__(self, weekly, closed=(), time_zone="America/Chicago", away_message=None):
        self.weekly_hours, self.time_zone, self.away_message = weekly, time_zone, away_message
        self.closed_days = [{"day": day, "label": label} for day, label in closed]


@pytest.fixture
def open_weekdays(app, business):
    update_row(app, Business, business.id, weekly_hours=WEEKDAYS_8_TO_6,
               away_message="Urgent? Call (312) 555-0100.")


def page_text(browser, url: str) -> str:
    return html.unescape(browser.get(url).get_data(as_text=True))


def conversation(household) -> str:
    return f"/clients/{household.id}/feeds/conversation"


def messages_of(app, household) -> list[Message]:
    with app.app_context():
        return list(db.session.scalars(
            select(Message).where(Message.client_id == household.id).order_by(Message.id)))


# --- when the business is open ------------------------------------------------------------------

def test_open_in_its_hours_and_closed_outside_them():
    hours = Hours.of(Kept(WEEKDAYS_8_TO_6))
    assert hours.is_open(MONDAY_NOON)
    assert not hours.is_open(MONDAY_NOON + timedelta(hours=6))  # 6 PM: closing time
    assert not hours.is_open(SATURDAY_10)
    assert hours.next_opening(SATURDAY_10) == NEXT_MONDAY_8
    # Before opening on a weekday: opens that same morning.
    assert hours.next_opening(datetime(2027, 1, 5, 12, tzinfo=UTC)) == \
        datetime(2027, 1, 5, 14, tzinfo=UTC)


def test_no_hours_kept_means_always_open():
    hours = Hours.of(Kept(None))
    assert not hours.is_set and hours.is_open(SATURDAY_10)
    assert closed_notice(Kept(None), SATURDAY_10) is None


def test_a_closed_day_closes_a_weekday_and_the_next_opening_skips_it():
    hours = Hours.of(Kept(WEEKDAYS_8_TO_6, closed=[("2027-01-11", "Staff day")]))
    assert not hours.is_open(NEXT_MONDAY_8 + timedelta(hours=1))
    assert hours.next_opening(SATURDAY_10) == NEXT_MONDAY_8 + timedelta(days=1)


def test_opening_in_the_hour_the_clocks_skip_opens_when_it_ends():
    # Sunday March 14, 2027: Chicago skips 2:00 to 3:00 AM.
    hours = Hours.of(Kept({"6": ["02:30", "12:00"]}))
    opening = hours.next_opening(datetime(2027, 3, 13, 12, tzinfo=UTC))
    assert opening == datetime(2027, 3, 14, 8, 30, tzinfo=UTC)  # 3:30 AM CDT


def test_the_away_notice_says_when_it_opens():
    kept = Kept(WEEKDAYS_8_TO_6, away_message="Urgent? Call (312) 555-0100.")
    assert closed_notice(kept, SATURDAY_10) == \
        "We're closed until Monday 8:00 AM. Urgent? Call (312) 555-0100."
    friday_evening = datetime(2027, 1, 8, 1, tzinfo=UTC)  # Thursday 7 PM in Chicago
    assert closed_notice(kept, friday_evening).startswith("We're closed until tomorrow 8:00 AM.")
    early = datetime(2027, 1, 5, 12, tzinfo=UTC)  # Tuesday 6 AM
    assert closed_notice(kept, early).startswith("We're closed until 8:00 AM.")
    assert closed_notice(kept, MONDAY_NOON) is None
    assert opening_label(kept, SATURDAY_10) == "Mon 8:00 AM"
    assert opening_label(kept, MONDAY_NOON) is None


# --- Portal Settings ------------------------------------------------------------------------------

def hours_form(**days) -> dict:
    data = {"closed_days": "", "away_message": "", "auto_reply": "yes"}
    for day in range(7):
        if str(day) in days:
            opens, closes = days[str(day)]
            data |= {f"open_{day}": "y", f"opens_{day}": opens, f"closes_{day}": closes}
    return data


def test_admin_saves_the_week_and_closed_days(app, admin_browser, business):
    page = admin_browser.get("/settings/client/portal").get_data(as_text=True)
    assert "Business hours" in page and 'name="opens_0"' in page
    response = admin_browser.submit("/settings/client/portal/hours", hours_form(
        **WEEKDAYS_8_TO_6) | {"closed_days": "2027-12-25 Christmas Day\n\n2027-01-01 New Year",
                             "away_message": "Urgent? Call us.", "auto_reply": "no"})
    assert response.status_code == 302
    with app.app_context():
        saved = db.session.get(Business, business.id)
        assert saved.weekly_hours == WEEKDAYS_8_TO_6
        assert saved.closed_days == [{"day": "2027-01-01", "label": "New Year"},
                                     {"day": "2027-12-25", "label": "Christmas Day"}]
        assert saved.away_message == "Urgent? Call us." and saved.auto_reply is False
        [event] = db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "settings.changed")).all()
        assert set(event.details) == {"weekly_hours", "closed_days", "away_message",
                                      "auto_reply"}
    page = admin_browser.get("/settings/client/portal").get_data(as_text=True)
    assert "2027-01-01 New Year\n2027-12-25 Christmas Day" in page
    assert re.search(r'name="open_0"[^>]*checked', page) or 'checked id="open_0"' in page
    log = re.sub(r"<[^>]+>", "", admin_browser.get("/settings/audit-log").get_data(as_text=True))
    assert "Business hours" in log and "Closed days" in log


@pytest.mark.parametrize(("change", "refusal"), [
    ({"opens_0": "18:00", "closes_0": "08:00"}, "Monday must close after it opens."),
    ({"opens_0": "nine"}, "Give the times Monday opens and closes."),
    ({"closed_days": "Christmas 2027-12-25"}, "Line 1: start with the date as 2026-12-25"),
])
def test_bad_hours_are_refused_and_nothing_changes(app, admin_browser, business, change,
                                                   refusal):
    response = admin_browser.submit("/settings/client/portal/hours",
                                    hours_form(**WEEKDAYS_8_TO_6) | change)
    assert response.status_code == 422
    assert refusal in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Business, business.id).weekly_hours is None


def test_only_admins_reach_the_hours(logged_in, office_manager, assigned_staff):
    for person in (office_manager, assigned_staff):
        response = logged_in(person).submit("/settings/client/portal/hours",
                                            hours_form(**WEEKDAYS_8_TO_6))
        assert response.status_code == 404


# --- while closed: the away notice, the automatic reply, send at opening -------------------------

def test_client_sees_the_away_notice_only_while_closed(logged_in, household, household_login,
                                                      admin, open_weekdays):
    with time_machine.travel(SATURDAY_10, tick=True):
        page = page_text(logged_in(household_login), conversation(household))
        assert "We're closed until Monday 8:00 AM. Urgent? Call (312) 555-0100." in page
        staff_page = page_text(logged_in(admin), conversation(household))
        assert "We're closed until" not in staff_page
        assert "Send at opening (Mon 8:00 AM)" in staff_page
    with time_machine.travel(MONDAY_NOON, tick=True):
        page = page_text(logged_in(household_login), conversation(household))
        assert "We're closed" not in page
        assert "Send at opening" not in logged_in(admin).get(
            conversation(household)).get_data(as_text=True)


def test_client_writing_while_closed_gets_one_automatic_reply(
        app, logged_in, business, household, household_login, admin, assigned_staff,
        open_weekdays):
    with time_machine.travel(SATURDAY_10, tick=True):
        browser = logged_in(household_login)
        browser.submit(f"{conversation(household)}/messages", {"text": "Is Rex OK?"})
        browser.submit(f"{conversation(household)}/messages", {"text": "And his paw?"})
    posted = messages_of(app, household)
    assert [(m.text[:20], m.via) for m in posted] == [
        ("Is Rex OK?", None), ("Thanks for your mess", "auto"), ("And his paw?", None)]
    reply = posted[1]
    assert reply.text == ("Thanks for your message. We're closed until Monday 8:00 AM and will "
                          "answer then. Urgent? Call (312) 555-0100.")
    # Told to the household alone: not the sitter who sees the feed, not the admin team.
    with app.app_context():
        told = set(db.session.scalars(
            select(Notification.recipient_id).where(Notification.message_id == reply.id)))
    assert told <= {household_login.id} and assigned_staff.id not in told
    # Shown as the business's, marked automatic, to the household and the admin who "wrote" it.
    for viewer in (household_login, admin):
        with time_machine.travel(SATURDAY_10 + timedelta(minutes=5), tick=True):
            page = logged_in(viewer).get(conversation(household)).get_data(as_text=True)
        article = page[page.index(f'id="message-{reply.id}"'):]
        article = article[:article.index("</article>")]
        assert business.name in article and "automatic reply" in article
        assert "You" not in re.sub(r"<[^>]+>", " ", article).split()
        assert admin.name not in article
    # Twelve hours on, still closed (Sunday): one more.
    with time_machine.travel(SATURDAY_10 + timedelta(hours=13), tick=True):
        logged_in(household_login).submit(f"{conversation(household)}/messages",
                                          {"text": "Sunday question"})
    assert [m.via for m in messages_of(app, household)].count("auto") == 2


def test_no_automatic_reply_while_open_turned_off_or_from_the_business(
        app, logged_in, business, household, household_login, admin, open_weekdays):
    with time_machine.travel(MONDAY_NOON, tick=True):
        logged_in(household_login).submit(f"{conversation(household)}/messages",
                                          {"text": "Open hours"})
    with time_machine.travel(SATURDAY_10, tick=True):
        logged_in(admin).submit(f"{conversation(household)}/messages",
                                {"text": "From the business"})
        update_row(app, Business, business.id, auto_reply=False)
        logged_in(household_login).submit(f"{conversation(household)}/messages",
                                          {"text": "Replies off"})
    assert [m.via for m in messages_of(app, household)] == [None, None, None]


def test_send_at_opening_waits_for_the_opening(app, logged_in, admin, household, open_weekdays):
    with time_machine.travel(SATURDAY_10, tick=True):
        response = logged_in(admin).submit(f"{conversation(household)}/messages",
                                           {"text": "Monday it is", "action": "opening"})
        assert response.status_code == 302
    with app.app_context():
        [row] = db.session.scalars(select(ScheduledMessage)).all()
    assert row.due_at == NEXT_MONDAY_8 and row.text == "Monday it is"
    assert messages_of(app, household) == []
    # Pressed once the business opened (a page left open over the weekend): it goes now.
    with time_machine.travel(MONDAY_NOON, tick=True):
        logged_in(admin).submit(f"{conversation(household)}/messages",
                                {"text": "Open now", "action": "opening"})
    assert [m.text for m in messages_of(app, household)] == ["Open now"]


def test_client_cannot_send_at_opening(app, logged_in, household, household_login,
                                       open_weekdays):
    with time_machine.travel(SATURDAY_10, tick=True):
        response = logged_in(household_login).submit(
            f"{conversation(household)}/messages", {"text": "Hi", "action": "opening"})
    assert response.status_code == 404
    assert messages_of(app, household) == []


def test_hours_keep_their_zone():
    # The hours are the business's wall clock: a business in Honolulu opens at 8 there.
    hours = Hours.of(Kept(WEEKDAYS_8_TO_6, time_zone="Pacific/Honolulu"))
    assert hours.next_opening(SATURDAY_10) == datetime(2027, 1, 11, 18, tzinfo=UTC)


def test_the_automatic_reply_leaves_the_client_waiting_for_an_answer(
        app, logged_in, household, household_login, admin, open_weekdays):
    with time_machine.travel(SATURDAY_10, tick=True):
        logged_in(household_login).submit(f"{conversation(household)}/messages",
                                          {"text": "Is Rex OK?"})
        reply = messages_of(app, household)[-1]
        assert reply.via == "auto"
        team = logged_in(admin)
        waiting = page_text(team, "/messages?show=awaiting")
        assert household.name in waiting and "Is Rex OK?" in waiting
        assert "Thanks for your message" not in waiting
        # Nobody's to take back, not even its nominal author's.
        assert team.submit(f"/messages/{reply.id}/unsend").status_code == 404
    assert messages_of(app, household)[-1].unsent is False


def test_a_failed_portal_settings_save_keeps_the_hours_shown(admin_browser, open_weekdays):
    response = admin_browser.submit("/settings/client/portal", {"staff_access_days": "x"})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert re.search(r'<input[^>]*checked[^>]*id="open_0"|<input[^>]*id="open_0"[^>]*checked',
                     page)


def test_send_at_opening_names_the_date_beyond_a_week():
    kept = Kept(WEEKDAYS_8_TO_6, closed=[(f"2027-01-{day:02}", "Holidays")
                                         for day in range(11, 23)])
    assert opening_label(kept, SATURDAY_10) == "Mon, Jan 25, 8:00 AM"
