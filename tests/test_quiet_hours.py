"""Quiet hours: each person may keep hours without notifications on their Notifications page;
what arrives then is held and goes, when they end, as one summary per channel (never a text about
a private message). The clock is moved with time-machine."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import select

from portal.extensions import db
from portal.hours import quiet_end
from portal.models import Channel, DeliveryStatus, Feed, Notification, User
from portal.notifications import notices, outbox, push, worker

from .helpers import confirmed_phone, deliver, set_private_messaging, text_of, update_row

# 11 PM in Chicago (UTC-6 in January), and 7 AM the next morning.
LATE_EVENING = datetime(2027, 1, 6, 5, tzinfo=UTC)
NEXT_MORNING_7 = datetime(2027, 1, 6, 13, tzinfo=UTC)


def test_quiet_hours_may_run_past_midnight():
    chicago = "America/Chicago"
    assert quiet_end("22:00", "07:00", chicago, LATE_EVENING) == NEXT_MORNING_7
    assert quiet_end("22:00", "07:00", chicago, NEXT_MORNING_7 - timedelta(minutes=1)) == \
        NEXT_MORNING_7
    assert quiet_end("22:00", "07:00", chicago, NEXT_MORNING_7) is None  # 7:00: over
    assert quiet_end("12:00", "13:00", chicago, datetime(2027, 1, 6, 18, 30, tzinfo=UTC)) == \
        datetime(2027, 1, 6, 19, tzinfo=UTC)
    assert quiet_end(None, None, chicago, LATE_EVENING) is None
    assert quiet_end("22:00", "07:00", "Asia/Tokyo", LATE_EVENING) is None  # 2 PM there


# --- the Notifications page -----------------------------------------------------------------------

def test_a_person_sets_and_clears_their_quiet_hours(app, logged_in, admin):
    browser = logged_in(admin)
    page = browser.get("/notifications").get_data(as_text=True)
    assert "Quiet hours" in page and "Chicago time" in page
    response = browser.submit("/notifications/quiet-hours",
                              {"enabled": "y", "quiet_from": "21:30", "quiet_until": "06:45"})
    assert response.status_code == 302
    with app.app_context():
        saved = db.session.get(User, admin.id)
        assert (saved.quiet_from, saved.quiet_until) == ("21:30", "06:45")
    assert 'value="21:30"' in browser.get("/notifications").get_data(as_text=True)
    browser.submit("/notifications/quiet-hours", {"quiet_from": "21:30", "quiet_until": "06:45"})
    with app.app_context():
        assert db.session.get(User, admin.id).quiet_from is None


@pytest.mark.parametrize(("start", "end", "refusal"), [
    ("22:00", "22:00", "Quiet hours end at another time than they start."),
    ("late", "07:00", "Give the time your quiet hours start, such as 22:00."),
    ("22:00", "", "Give the time your quiet hours end, such as 07:00."),
])
def test_bad_quiet_hours_are_refused(app, logged_in, admin, start, end, refusal):
    response = logged_in(admin).submit(
        "/notifications/quiet-hours", {"enabled": "y", "quiet_from": start, "quiet_until": end})
    assert response.status_code == 422 and refusal in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(User, admin.id).quiet_from is None


# --- held, then one summary ----------------------------------------------------------------------

@pytest.fixture
def quiet_admin(app, admin):
    update_row(app, User, admin.id, quiet_from="22:00", quiet_until="07:00",
               **confirmed_phone("+1 555 777 0001"), notify_sms=True)
    return admin


def rows_for(app, person) -> list[Notification]:
    with app.app_context():
        return list(db.session.scalars(
            select(Notification).where(Notification.recipient_id == person.id)
            .order_by(Notification.id)))


def test_messages_in_quiet_hours_come_as_one_summary_when_they_end(
        app, smtp, twilio, quiet_admin, household, household_login, other_household,
        other_household_login, make_message):
    with time_machine.travel(LATE_EVENING, tick=True):
        make_message(household, household_login, "Rex threw up after dinner")
        make_message(other_household, other_household_login, "Can you come at 8 tomorrow?")
        deliver(app)
    held = rows_for(app, quiet_admin)
    assert {(row.channel, row.summary, row.due_at) for row in held} == {
        (Channel.EMAIL, True, NEXT_MORNING_7), (Channel.SMS, True, NEXT_MORNING_7)}
    assert {row.status for row in held} == {DeliveryStatus.PENDING}
    assert smtp.inbox.to(quiet_admin.email) == [] and twilio == []

    with time_machine.travel(NEXT_MORNING_7 + timedelta(seconds=30), tick=True):
        deliver(app)
    [email] = smtp.inbox.to(quiet_admin.email)
    assert email["Subject"].startswith("2 new messages while your quiet hours were on")
    body = text_of(email)
    assert "These came while your quiet hours were on." in body
    assert "Rex threw up after dinner" in body and "Can you come at 8 tomorrow?" in body
    assert email["Reply-To"] is None  # two feeds: no one reply address
    [(_, form)] = twilio
    assert form["To"] == ["+15557770001"]
    assert "2 new messages while your quiet hours were on" in form["Body"][0]
    assert {row.status for row in rows_for(app, quiet_admin)} == {DeliveryStatus.SENT}


def test_outside_quiet_hours_nothing_is_held(app, smtp, quiet_admin, household,
                                             household_login, make_message):
    with time_machine.travel(NEXT_MORNING_7 + timedelta(hours=2), tick=True):
        make_message(household, household_login, "Morning!")
        deliver(app)
    assert {row.summary for row in rows_for(app, quiet_admin)} == {False}
    [email] = smtp.inbox.to(quiet_admin.email)
    assert email["Subject"].startswith("New message from")


def test_a_held_private_message_is_never_texted_nor_quoted(
        app, smtp, twilio, quiet_admin, business, household, household_login, make_message):
    set_private_messaging(app, business, True)
    with time_machine.travel(LATE_EVENING, tick=True):
        make_message(household, household_login, "The invoice zq-7781", feed=Feed.PRIVATE)
    assert {row.channel for row in rows_for(app, quiet_admin)} == {Channel.EMAIL}
    with time_machine.travel(NEXT_MORNING_7 + timedelta(seconds=30), tick=True):
        deliver(app)
    [email] = smtp.inbox.to(quiet_admin.email)
    assert "zq-7781" not in text_of(email) and twilio == []


def test_the_push_summary_names_households_not_words(app, household, household_login,
                                                     other_household, other_household_login,
                                                     make_message):
    first = make_message(household, household_login, "secret words one")
    second = make_message(other_household, other_household_login, "secret words two")
    with app.app_context():
        built = notices.build({first.id, second.id})
        data = push.summary_payload([built[first.id][0], built[second.id][0]])
    assert data["title"] == "2 new messages while your quiet hours were on"
    assert household.name in data["body"] and other_household.name in data["body"]
    assert "secret" not in data["title"] + data["body"]
    assert data["url"].endswith("/")


def test_one_summary_per_person_however_small_the_claims(app, smtp, quiet_admin, household,
                                                         household_login, other_household,
                                                         other_household_login, make_message):
    with time_machine.travel(LATE_EVENING, tick=True):
        make_message(household, household_login, "First")
        make_message(other_household, other_household_login, "Second")
    with time_machine.travel(NEXT_MORNING_7 + timedelta(seconds=30), tick=True):
        while worker.run_once(app, "small-claims", limit=1):
            pass
    [email] = smtp.inbox.to(quiet_admin.email)
    assert email["Subject"].startswith("2 new messages while your quiet hours were on")


def test_a_message_just_before_quiet_hours_is_not_held_back_by_what_follows(
        app, smtp, quiet_admin, household, household_login, make_message):
    before = LATE_EVENING - timedelta(hours=1, seconds=10)  # 9:59:50 PM
    with time_machine.travel(before, tick=True):
        make_message(household, household_login, "Just before")
    with time_machine.travel(before + timedelta(seconds=40), tick=True):  # 10:00:30 PM
        make_message(household, household_login, "Just after")
        deliver(app)
    [email] = smtp.inbox.to(quiet_admin.email)
    assert "Just before" in text_of(email) and "Just after" not in text_of(email)


def test_a_summary_texts_delivery_report_reaches_every_row(app, twilio, quiet_admin, household,
                                                           household_login, make_message):
    with time_machine.travel(LATE_EVENING, tick=True):
        make_message(household, household_login, "One")
        make_message(household, household_login, "Two")
    with time_machine.travel(NEXT_MORNING_7 + timedelta(seconds=30), tick=True):
        deliver(app)
    texts = [row for row in rows_for(app, quiet_admin) if row.channel == Channel.SMS]
    assert len(texts) == 2 and len({row.provider_id for row in texts}) == 1
    with app.app_context():
        outbox.record_provider_status(texts[0].provider_id, "undelivered", "30003")
    texts = [row for row in rows_for(app, quiet_admin) if row.channel == Channel.SMS]
    assert {row.status for row in texts} == {DeliveryStatus.FAILED}


def test_quiet_hours_across_the_night_the_clocks_change():
    # March 14, 2027: Chicago moves from CST (UTC-6) to CDT (UTC-5) at 2 AM. Quiet from 10 PM
    # the night before ends at 7 AM daylight time: 12:00 UTC, not 13:00.
    night = datetime(2027, 3, 14, 5, tzinfo=UTC)  # 11 PM CST, March 13
    assert quiet_end("22:00", "07:00", "America/Chicago", night) == \
        datetime(2027, 3, 14, 12, tzinfo=UTC)
    # Quiet hours ending in the skipped hour end an hour later (3:30 AM CDT).
    assert quiet_end("22:00", "02:30", "America/Chicago", night) == \
        datetime(2027, 3, 14, 8, 30, tzinfo=UTC)
