"""Send later: a message scheduled from the composer waits, seen only by its author and the admin
team, and is posted at its time by the worker as a message written then; once, however many
workers run, and late rather than never when none ran at its time. The clock is moved with
time-machine, which every utcnow reads."""

import re
import threading
from datetime import UTC, datetime, timedelta
from io import BytesIO

import pytest
import time_machine
from sqlalchemy import insert, select

from portal.clock import day_and_time, exact_time, zone
from portal.extensions import db
from portal.models import (
    AccountEmail,
    AccountEmailKind,
    Attachment,
    AuditEvent,
    Client,
    DeliveryStatus,
    Feed,
    Message,
    Notification,
    Role,
    ScheduledMessage,
    ScheduledMessageFile,
    utcnow,
)
from portal.notifications import outbox
from portal.services import messages, send_later
from portal.storage import storage

from .helpers import (
    count_rows,
    deliver,
    png_bytes,
    set_private_messaging,
    text_of,
    update_row,
)

CHICAGO = zone("America/Chicago")


def local_input(moment: datetime) -> str:
    """A moment as the composer's datetime-local field sends it (the business is in Chicago)."""
    return moment.astimezone(CHICAGO).strftime("%Y-%m-%dT%H:%M")


def in_an_hour() -> datetime:
    return (utcnow() + timedelta(hours=1)).replace(second=0, microsecond=0)


def schedule(browser, client, text="Biscuit's walk moves to 3pm", *, at=None,
             feed="conversation", htmx=False, **extra):
    data = {"text": text, "send_at": local_input(at or in_an_hour()), "action": "schedule",
            **extra}
    url = f"/clients/{client.id}/feeds/{feed}/messages"
    if htmx:
        return browser.htmx("POST", url, data=data)
    return browser.submit(url, data)


def scheduled_rows(app) -> list[ScheduledMessage]:
    with app.app_context():
        return list(db.session.scalars(select(ScheduledMessage).order_by(ScheduledMessage.id)))


def feed_messages(app, client) -> list[Message]:
    with app.app_context():
        return list(db.session.scalars(
            select(Message).where(Message.client_id == client.id).order_by(Message.id)))


def at_its_time(app, row: ScheduledMessage, after=timedelta(seconds=5)):
    """Moves the clock to just after the row's time and lets the worker run."""
    with time_machine.travel(row.due_at + after, tick=True):
        deliver(app)


# --- scheduling ---------------------------------------------------------------------------------

def test_scheduled_message_waits_unseen_then_is_posted_at_its_time(
        app, logged_in, admin, household, household_login, assigned_staff, office_manager):
    author = logged_in(assigned_staff)
    response = schedule(author, household, "Running 10 minutes late tomorrow")
    assert response.status_code == 302
    assert response.headers["Location"].endswith(
        f"/clients/{household.id}/feeds/conversation#scheduled-conversation")
    [row] = scheduled_rows(app)
    assert row.status == DeliveryStatus.PENDING and row.author_id == assigned_staff.id
    assert feed_messages(app, household) == []

    # Listed for its author and the admin team, with its time in the business's zone.
    when = f"Scheduled for {day_and_time(row.due_at, 'America/Chicago')}"
    for viewer in (assigned_staff, admin, office_manager):
        page = logged_in(viewer).get(f"/clients/{household.id}").get_data(as_text=True)
        assert when in page and "Running 10 minutes late tomorrow" in page, viewer.role
    # Not for the client, who learns of it when it arrives.
    page = logged_in(household_login).get(f"/clients/{household.id}").get_data(as_text=True)
    assert "Running 10 minutes late" not in page and "Scheduled for" not in page
    assert 'name="send_at"' not in page  # clients do not schedule

    deliver(app)  # not yet due
    assert feed_messages(app, household) == []
    at_its_time(app, row)
    [message] = feed_messages(app, household)
    assert message.text == "Running 10 minutes late tomorrow"
    assert message.author_id == assigned_staff.id and message.via == "scheduled"
    assert message.created_at >= row.due_at
    [row] = scheduled_rows(app)
    assert row.status == DeliveryStatus.SENT and row.message_id == message.id
    # Told like any message the business posts then: the household.
    with app.app_context():
        told = set(db.session.scalars(
            select(Notification.recipient_id).where(Notification.message_id == message.id)))
    assert household_login.id in told
    page = logged_in(household_login).get(f"/clients/{household.id}").get_data(as_text=True)
    assert "Running 10 minutes late tomorrow" in page and "scheduled" in page


def test_who_is_told_is_decided_at_its_time(app, logged_in, admin, household, make_user,
                                           make_service):
    schedule(logged_in(admin), household, "Keys are under the mat")
    [row] = scheduled_rows(app)
    sitter = make_user(Role.STAFF)
    make_service(household, sitter, days_from_now=1)  # assigned after it was written
    at_its_time(app, row)
    [message] = feed_messages(app, household)
    with app.app_context():
        told = set(db.session.scalars(
            select(Notification.recipient_id).where(Notification.message_id == message.id)))
    assert sitter.id in told


def test_htmx_schedule_answers_with_the_list_and_a_fresh_composer(
        app, logged_in, admin, household):
    response = schedule(logged_in(admin), household, "See you Monday", htmx=True)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'id="scheduled-conversation" class="scheduled" hx-swap-oob="true"' in html
    assert "See you Monday" in html and "Scheduled for" in html
    assert 'id="composer-conversation"' in html and "hx-swap-oob" in html
    assert not re.search(r'id="message-\d', html)  # nothing joins the feed yet


def test_schedule_pressed_twice_schedules_once(app, logged_in, admin, household):
    browser = logged_in(admin)
    for _ in range(2):
        assert schedule(browser, household, send_key="k" * 22).status_code == 302
    assert len(scheduled_rows(app)) == 1


@pytest.mark.parametrize(("when", "refusal"), [
    ("", "Choose the date and time to send it."),
    ("tomorrow at noon", "Choose the date and time to send it."),
    ("2020-01-06T08:00", "has passed: choose a time still to come."),
    ("2099-01-06T08:00", "Schedule it at most a year ahead."),
])
def test_bad_times_are_refused_and_nothing_is_saved(app, logged_in, admin, household, when,
                                                    refusal):
    browser = logged_in(admin)
    response = browser.submit(f"/clients/{household.id}/feeds/conversation/messages",
                              {"text": "Hello", "send_at": when, "action": "schedule"})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert refusal in page and "Hello</textarea>" in page
    assert scheduled_rows(app) == [] and feed_messages(app, household) == []


def test_a_time_the_clocks_skip_is_refused(app, logged_in, admin, household):
    # March 14, 2027: Chicago's clocks go from 1:59 AM to 3:00 AM.
    with time_machine.travel(datetime(2027, 3, 1, 12, tzinfo=UTC), tick=True):
        browser = logged_in(admin)
        response = browser.submit(f"/clients/{household.id}/feeds/conversation/messages",
                                  {"text": "Hello", "send_at": "2027-03-14T02:30",
                                   "action": "schedule"})
        assert response.status_code == 422
        assert "the clocks skip that hour" in response.get_data(as_text=True)
        # The hour that happens twice in autumn takes its first time (daylight time).
        assert schedule(browser, household, at=None,
                        send_at="2027-11-07T01:30").status_code == 302
    [row] = scheduled_rows(app)
    assert row.due_at == datetime(2027, 11, 7, 6, 30, tzinfo=UTC)


def test_files_wait_with_it_and_go_at_its_time(app, logged_in, admin, household):
    browser = logged_in(admin)
    url = f"/clients/{household.id}/feeds/conversation/messages"
    response = browser.post(url, data={
        "csrf_token": browser.csrf_token(), "text": "With a photo", "action": "schedule",
        "send_at": local_input(in_an_hour()),
        "files": [(BytesIO(png_bytes((40, 30))), "walk.png"), (BytesIO(b"%PDF-1.4 x"), "a.pdf")],
    }, content_type="multipart/form-data")
    assert response.status_code == 302
    [row] = scheduled_rows(app)
    with app.app_context():
        row = db.session.get(ScheduledMessage, row.id)
        waiting = [(file.original_name, file.storage_key) for file in row.files]
        assert [name for name, _ in waiting] == ["walk.png", "a.pdf"]
        # Its author sees the photo it carries before it goes; nobody else may ask for it.
        token = row.files[0].token
    assert browser.get(f"/waiting-files/{token}").status_code == 200
    at_its_time(app, row)
    [message] = feed_messages(app, household)
    with app.app_context():
        names = [attachment.original_name for attachment in db.session.scalars(
            select(Attachment).where(Attachment.message_id == message.id)
            .order_by(Attachment.position))]
        assert names == ["walk.png", "a.pdf"]
        assert count_rows(app, ScheduledMessageFile) == 0
        # The waiting copies are gone, bytes too; the message's own copies stay.
        kept = set(storage().keys())
    assert not {key for _, key in waiting} & kept
    assert browser.get(f"/waiting-files/{token}").status_code == 404


def test_a_fake_image_or_empty_text_is_refused_and_nothing_kept(app, logged_in, admin,
                                                                household):
    browser = logged_in(admin)
    url = f"/clients/{household.id}/feeds/conversation/messages"
    response = browser.post(url, data={
        "csrf_token": browser.csrf_token(), "text": "With a photo", "action": "schedule",
        "send_at": local_input(in_an_hour()), "files": (BytesIO(b"not a png"), "a.png"),
    }, content_type="multipart/form-data")
    assert response.status_code == 422
    response = schedule(browser, household, "   ")
    assert response.status_code == 422
    assert "Write a message before sending." in response.get_data(as_text=True)
    assert scheduled_rows(app) == []
    with app.app_context():
        assert list(storage().keys()) == []


def test_a_time_chosen_then_send_pressed_sends_nothing(app, logged_in, admin, household):
    # Enter in the time field, without JavaScript, presses the form's first button: Send.
    response = logged_in(admin).submit(
        f"/clients/{household.id}/feeds/conversation/messages",
        {"text": "Meant for tomorrow", "send_at": local_input(in_an_hour())})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "press Schedule, or clear the time to send it now" in page
    assert "Meant for tomorrow</textarea>" in page
    assert scheduled_rows(app) == [] and feed_messages(app, household) == []


def test_a_restored_page_scheduling_changed_text_again_is_refused(app, logged_in, admin,
                                                                  household):
    browser = logged_in(admin)
    assert schedule(browser, household, "First", send_key="r" * 22).status_code == 302
    response = schedule(browser, household, "First, changed", send_key="r" * 22)
    assert response.status_code == 409
    assert "This text was not scheduled yet" in response.get_data(as_text=True)
    assert [row.text for row in scheduled_rows(app)] == ["First"]


def test_deactivating_a_login_cancels_what_it_scheduled(app, logged_in, admin, household,
                                                        assigned_staff):
    schedule(logged_in(assigned_staff), household, "From a sitter who leaves")
    response = logged_in(admin).submit(f"/accounts/{assigned_staff.id}/deactivate",
                                       follow_redirects=True)
    assert "1 message they scheduled will not go." in response.get_data(as_text=True)
    [row] = scheduled_rows(app)
    assert row.status == DeliveryStatus.CANCELLED
    at_its_time(app, row)
    assert feed_messages(app, household) == []


def test_the_open_feed_drops_what_went_from_its_list(app, logged_in, admin, household):
    browser = logged_in(admin)
    schedule(browser, household, "Goes while the page is open")
    [row] = scheduled_rows(app)
    at_its_time(app, row)
    [message] = feed_messages(app, household)
    feed = f"/clients/{household.id}/feeds/conversation"
    html = browser.htmx("GET", f"{feed}/updates?after={message.id - 1}").get_data(as_text=True)
    assert "Goes while the page is open" in html  # the new message
    assert 'id="scheduled-conversation" class="scheduled" hx-swap-oob="true"' in html
    assert "Scheduled for" not in html


# --- who may see and change it -----------------------------------------------------------------

def test_only_its_author_and_the_admin_team_reach_it(
        app, logged_in, admin, office_manager, household, household_login, assigned_staff,
        make_user, make_service, stranger_admin):
    schedule(logged_in(assigned_staff), household, "Mine alone")
    [row] = scheduled_rows(app)
    colleague = make_user(Role.STAFF)
    make_service(household, colleague, days_from_now=1)
    page = logged_in(colleague).get(f"/clients/{household.id}").get_data(as_text=True)
    assert "Mine alone" not in page
    for outsider in (colleague, household_login, stranger_admin):
        browser = logged_in(outsider)
        assert browser.get(f"/scheduled/{row.id}/edit").status_code == 404
        for action in ("send-now", "cancel"):
            assert browser.submit(f"/scheduled/{row.id}/{action}").status_code == 404
    assert scheduled_rows(app)[0].status == DeliveryStatus.PENDING
    for insider in (assigned_staff, admin, office_manager):
        assert logged_in(insider).get(f"/scheduled/{row.id}/edit").status_code == 200


def test_a_client_cannot_schedule(app, logged_in, household, household_login):
    response = schedule(logged_in(household_login), household)
    assert response.status_code == 404
    assert scheduled_rows(app) == []


def test_private_scheduled_messages_stay_with_those_who_see_private(
        app, logged_in, admin, office_manager, business, household):
    set_private_messaging(app, business, True)
    assert schedule(logged_in(admin), household, "Invoice reminder",
                    feed="private").status_code == 302
    [row] = scheduled_rows(app)
    assert logged_in(office_manager).get(f"/scheduled/{row.id}/edit").status_code == 404
    page = logged_in(office_manager).get(
        f"/clients/{household.id}/feeds/conversation").get_data(as_text=True)
    assert "Invoice reminder" not in page


# --- edit, send now, cancel ----------------------------------------------------------------------

def test_edit_changes_text_and_time(app, logged_in, admin, household):
    browser = logged_in(admin)
    schedule(browser, household, "First draft")
    [row] = scheduled_rows(app)
    page = browser.get(f"/scheduled/{row.id}/edit").get_data(as_text=True)
    assert "First draft" in page and local_input(row.due_at) in page
    later = row.due_at + timedelta(days=1)
    response = browser.submit(f"/scheduled/{row.id}/edit",
                              {"text": "Second draft", "send_at": local_input(later)})
    assert response.status_code == 302
    [row] = scheduled_rows(app)
    assert row.text == "Second draft" and row.due_at == later
    response = browser.submit(f"/scheduled/{row.id}/edit",
                              {"text": "Third", "send_at": "2020-01-01T08:00"})
    assert response.status_code == 422 and "has passed" in response.get_data(as_text=True)
    assert scheduled_rows(app)[0].text == "Second draft"
    with app.app_context():
        actions = set(db.session.scalars(select(AuditEvent.action)))
    assert {"message.scheduled", "message.schedule_changed"} <= actions
    log = browser.get("/settings/audit-log?kind=scheduled").get_data(as_text=True)
    log = re.sub(r"<[^>]+>", "", log)
    going = exact_time(later, admin.time_zone)
    assert f"changed a scheduled message in {household.name}'s Conversation feed, to go {going}" \
        in log
    assert f"scheduled a message in {household.name}'s Conversation feed" in log


def test_send_now_posts_at_once_and_cancel_posts_nothing(app, logged_in, admin, household):
    browser = logged_in(admin)
    schedule(browser, household, "Now please")
    schedule(browser, household, "Never mind")
    now_row, cancelled_row = scheduled_rows(app)
    response = browser.htmx("POST", f"/scheduled/{now_row.id}/send-now")
    assert response.status_code == 200 and response.headers["HX-Trigger"] == "poll-now"
    html = response.get_data(as_text=True)
    assert "Sent." in html and "Now please" not in html and "Never mind" in html
    response = browser.submit(f"/scheduled/{cancelled_row.id}/cancel")
    assert response.status_code == 302
    [message] = feed_messages(app, household)
    assert message.text == "Now please" and message.via is None  # written now, in effect
    statuses = [row.status for row in scheduled_rows(app)]
    assert statuses == [DeliveryStatus.SENT, DeliveryStatus.CANCELLED]
    # Gone is gone: neither moves again, and the worker posts nothing more.
    for action in ("send-now", "cancel"):
        response = browser.htmx("POST", f"/scheduled/{cancelled_row.id}/{action}")
        assert "is no longer waiting" in response.get_data(as_text=True)
    # An edit that comes too late keeps what was typed on the page, saying why it was not saved.
    response = browser.submit(f"/scheduled/{now_row.id}/edit",
                              {"text": "Changed", "send_at": local_input(in_an_hour())})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "is no longer waiting" in page and "Changed</textarea>" in page
    assert browser.get(f"/scheduled/{now_row.id}/edit").status_code == 302
    with time_machine.travel(utcnow() + timedelta(days=2), tick=True):
        deliver(app)
    assert len(feed_messages(app, household)) == 1


# --- when it cannot go ---------------------------------------------------------------------------

def test_archived_client_is_not_sent_and_the_author_is_emailed(
        app, smtp, logged_in, assigned_staff, business, household):
    schedule(logged_in(assigned_staff), household, "Treats are in the cupboard")
    [row] = scheduled_rows(app)
    update_row(app, Client, household.id, archived_at=utcnow())
    at_its_time(app, row)
    assert feed_messages(app, household) == []
    [row] = scheduled_rows(app)
    assert row.status == DeliveryStatus.FAILED and row.last_error == "the client is archived"
    [email] = smtp.inbox.to(assigned_staff.email)
    assert email["Subject"] == f"{business.name}: your scheduled message was not sent"
    body = text_of(email)
    assert "was not sent: the client is archived" in body
    assert "Treats are in the cupboard" in body
    # A staff member no longer sees an archived client: no link to a feed they cannot open.
    assert "/feeds/" not in body
    assert count_rows(app, AccountEmail, AccountEmail.kind == AccountEmailKind.SCHEDULED_NOT_SENT,
                      AccountEmail.status == DeliveryStatus.SENT) == 1


def test_private_feed_turned_off_is_not_sent(app, smtp, logged_in, admin, business, household):
    set_private_messaging(app, business, True)
    schedule(logged_in(admin), household, "Private note", feed="private")
    [row] = scheduled_rows(app)
    set_private_messaging(app, business, False)
    at_its_time(app, row)
    assert feed_messages(app, household) == []
    assert scheduled_rows(app)[0].last_error == "Private Messaging was turned off"
    [email] = smtp.inbox.to(admin.email)
    assert "Private Messaging was turned off" in text_of(email)


def test_staff_who_lost_access_is_not_sent(app, smtp, logged_in, household, make_user,
                                           make_service):
    sitter = make_user(Role.STAFF)
    make_service(household, sitter, days_from_now=0.5)
    schedule(logged_in(sitter), household, "See you soon",
             at=(utcnow() + timedelta(days=30)).replace(second=0, microsecond=0))
    [row] = scheduled_rows(app)
    at_its_time(app, row)  # a month on, the visit long past
    assert feed_messages(app, household) == []
    ended = "its author's access to this client's feed had ended"
    assert scheduled_rows(app)[0].last_error == ended


def test_worker_down_at_its_time_posts_it_late_and_says_so(app, logged_in, admin, household):
    schedule(logged_in(admin), household, "Good morning!")
    [row] = scheduled_rows(app)
    at_its_time(app, row, after=timedelta(hours=3))
    [message] = feed_messages(app, household)
    assert message.via == "late"
    page = logged_in(admin).get(f"/clients/{household.id}").get_data(as_text=True)
    assert "scheduled, sent late" in page


# --- exactly once ---------------------------------------------------------------------------------

@pytest.mark.committed  # two workers, each with its own connection
def test_two_workers_post_a_thousand_scheduled_messages_exactly_once(app, admin, household):
    due = utcnow() - timedelta(seconds=1)
    with app.app_context():
        db.session.execute(insert(ScheduledMessage), [
            {"business_id": household.business_id, "client_id": household.id,
             "feed": Feed.CONVERSATION, "author_id": admin.id, "text": f"note {n}",
             "due_at": due, "status": DeliveryStatus.PENDING, "attempts": 0,
             "created_at": due}
            for n in range(1000)
        ])
        db.session.commit()
    failures = []

    def work():
        try:
            deliver(app)
        except Exception as error:  # surfaced below: a thread's exception is otherwise lost
            failures.append(error)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    posted = feed_messages(app, household)
    assert sorted(message.text for message in posted) == sorted(f"note {n}" for n in range(1000))
    rows = scheduled_rows(app)
    assert {row.status for row in rows} == {DeliveryStatus.SENT}
    assert sorted(row.message_id for row in rows) == [message.id for message in posted]


def test_a_post_that_fails_is_tried_again_and_the_others_go_on(app, logged_in, admin,
                                                               household, monkeypatch):
    browser = logged_in(admin)
    schedule(browser, household, "This one fails first")
    schedule(browser, household, "This one goes")
    failing, _ = scheduled_rows(app)
    real_post = messages.post_message
    tries = []

    def fails_once(author, client, feed, text, *args, **kwargs):
        tries.append(text)
        if tries.count("This one fails first") == 1 and text == "This one fails first":
            raise RuntimeError("the database went away")
        return real_post(author, client, feed, text, *args, **kwargs)

    monkeypatch.setattr(messages, "post_message", fails_once)
    at_its_time(app, failing)
    assert tries == ["This one fails first", "This one goes", "This one fails first"]
    posted = feed_messages(app, household)
    assert [message.text for message in posted] == ["This one goes", "This one fails first"]
    assert {row.status for row in scheduled_rows(app)} == {DeliveryStatus.SENT}


def test_one_that_keeps_failing_is_given_up_and_its_author_told(app, smtp, logged_in, admin,
                                                                household, monkeypatch):
    schedule(logged_in(admin), household, "Never makes it")
    [row] = scheduled_rows(app)

    def fails(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(messages, "post_message", fails)
    at_its_time(app, row)
    [row] = scheduled_rows(app)
    assert row.status == DeliveryStatus.FAILED
    assert row.attempts == app.config["NOTIFICATION_MAX_ATTEMPTS"]
    assert feed_messages(app, household) == []
    [email] = smtp.inbox.to(admin.email)
    assert "could not be posted" in text_of(email) and "Never makes it" in text_of(email)


def test_a_claim_whose_worker_died_is_taken_back_and_posted_late(app, logged_in, admin,
                                                                household):
    schedule(logged_in(admin), household, "Claimed by a worker that died")
    [row] = scheduled_rows(app)
    with time_machine.travel(row.due_at + timedelta(seconds=1), tick=True), app.app_context():
        assert send_later.claim("worker-that-dies") == [row.id]  # and never posts it
    at_its_time(app, row, after=outbox.STALE_CLAIM + timedelta(minutes=1))
    [message] = feed_messages(app, household)
    assert message.text == "Claimed by a worker that died" and message.via == "late"
