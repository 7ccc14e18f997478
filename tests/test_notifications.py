"""Notifications: who is told, by which channel, through a real SMTP server on loopback;
undo window, batching, outages, retries, and nothing private to staff or by text message."""

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from portal.extensions import db
from portal.models import (
    Channel,
    DeliveryStatus,
    Feed,
    Notification,
    Role,
    ScheduledService,
    ServiceStatus,
    User,
    utcnow,
)
from portal.notifications import outbox, sms
from portal.notifications.notices import Notice
from portal.services import messages

from .helpers import (
    confirmed_phone,
    deliver,
    grant_private_access,
    make_due,
    set_private_messaging,
    update_row,
)


def rows(app, **where) -> list[Notification]:
    with app.app_context():
        query = select(Notification).order_by(Notification.id)
        for name, value in where.items():
            query = query.where(getattr(Notification, name) == value)
        found = list(db.session.scalars(query))
        for row in found:
            db.session.expunge(row)
        return found


@pytest.fixture
def cast(admin, office_manager, assigned_staff, preferred_sitter, unassigned_staff,
         household_login, other_household_login):
    return {
        "admin": admin, "office_manager": office_manager, "assigned": assigned_staff,
        "preferred": preferred_sitter, "unassigned": unassigned_staff,
        "client": household_login, "other_client": other_household_login,
    }


# --- who is told -------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("author", "told"),
    [
        ("admin", {"assigned", "preferred", "client"}),
        ("office_manager", {"assigned", "preferred", "client"}),
        ("assigned", {"preferred", "client"}),
        ("client", {"admin", "office_manager", "assigned", "preferred"}),
    ],
)
def test_conversation_message_tells_the_right_people(app, smtp, cast, household, make_message,
                                                     author, told):
    make_message(household, cast[author], "Biscuit loved the park today")
    deliver(app)
    assert smtp.inbox.recipients() == sorted(cast[name].email for name in told)
    message = smtp.inbox.received[0][1]
    assert message["Subject"] == f"New message from {cast[author].name} · Happy Tails"
    text = message.get_body(("plain",)).get_content()
    assert "Biscuit loved the park today" in text
    assert f"https://portal.example/clients/{household.id}/feeds/conversation" in text
    html = message.get_body(("html",)).get_content()
    assert "Biscuit loved the park today" in html and "Read and reply" in html


@pytest.mark.parametrize(
    ("author", "told"),
    [("admin", {"client"}), ("client", {"admin", "office_manager"})],
)
def test_private_message_tells_admin_team_or_client_never_staff(
    app, smtp, cast, business, household, make_message, author, told
):
    set_private_messaging(app, business, True)
    grant_private_access(app, cast["office_manager"])
    make_message(household, cast[author], "invoice question zz-4411", feed=Feed.PRIVATE)
    deliver(app)
    assert smtp.inbox.recipients() == sorted(cast[name].email for name in told)
    for name in ("assigned", "preferred", "unassigned"):
        assert smtp.inbox.to(cast[name].email) == []
    message = smtp.inbox.received[0][1]
    assert message["Subject"] == f"New private message from {cast[author].name}"
    assert "zz-4411" not in message.as_string()
    assert all(row.channel != Channel.SMS for row in rows(app))


def test_private_email_without_its_text_says_so_in_words(app, smtp, cast, business, household,
                                                          make_message):
    set_private_messaging(app, business, True)
    make_message(household, cast["admin"], "invoice question zz-4411", feed=Feed.PRIVATE)
    deliver(app)
    [message] = smtp.inbox.to(cast["client"].email)
    withheld = "Private messages are not included in emails. Open the portal to read it."
    text = message.get_body(("plain",)).get_content()
    assert withheld in text
    # The line about who wrote ends as a sentence, not on a colon with nothing after it.
    wrote = next(line for line in text.splitlines() if "wrote a private message" in line)
    assert wrote.endswith(".") and not wrote.endswith(":")
    assert withheld in message.get_body(("html",)).get_content()
    assert "zz-4411" not in message.as_string()


def test_private_email_body_follows_the_business_setting(app, smtp, cast, business, household,
                                                         make_message):
    set_private_messaging(app, business, True)
    update_row(app, type(business), business.id, private_email_includes_text=True)
    make_message(household, cast["admin"], "invoice question zz-4411", feed=Feed.PRIVATE)
    deliver(app)
    [message] = smtp.inbox.to(cast["client"].email)
    assert "zz-4411" in message.get_body(("plain",)).get_content()
    assert "not included in emails" not in message.as_string()


def test_office_manager_without_private_access_is_not_told(app, smtp, cast, business, household,
                                                           make_message):
    set_private_messaging(app, business, True)
    make_message(household, cast["client"], "private note", feed=Feed.PRIVATE)
    deliver(app)
    assert smtp.inbox.recipients() == [cast["admin"].email]


def test_who_reads_it_in_the_portal_within_the_window_is_not_told(
    app, smtp, cast, household, make_message, logged_in
):
    app.config["NOTIFICATION_DELAY_SECONDS"] = 20
    update_row(app, User, cast["assigned"].id, **confirmed_phone("+15550102030"), notify_sms=True)
    message = make_message(household, cast["admin"], "Running ten minutes late")
    # The sitter has the feed open (or opens it) before the window ends: the message is read.
    page = logged_in(cast["assigned"]).get(f"/clients/{household.id}").get_data(as_text=True)
    assert "Running ten minutes late" in page
    make_due(app)
    deliver(app)
    assert smtp.inbox.to(cast["assigned"].email) == []
    assert sorted(smtp.inbox.recipients()) == sorted(
        [cast["preferred"].email, cast["client"].email])
    theirs = [row for row in rows(app, message_id=message.id)
              if row.recipient_id == cast["assigned"].id]
    assert {row.channel for row in theirs} == {Channel.EMAIL, Channel.SMS}
    assert all(row.status == DeliveryStatus.CANCELLED for row in theirs)
    assert all(row.last_error == outbox.READ_IN_PORTAL for row in theirs)


def test_access_is_checked_again_at_send_time(app, smtp, cast, household, make_message):
    with app.app_context():
        app.config["NOTIFICATION_DELAY_SECONDS"] = 60
    make_message(household, cast["admin"], "see you tomorrow")
    with app.app_context():
        db.session.execute(update(ScheduledService).values(status=ServiceStatus.CANCELLED))
        db.session.get(User, cast["client"].id).active = False
        db.session.commit()
    make_due(app)
    deliver(app)
    assert smtp.inbox.recipients() == [cast["preferred"].email]
    cancelled = {row.recipient_id for row in rows(app, status=DeliveryStatus.CANCELLED)}
    assert cancelled == {cast["assigned"].id, cast["client"].id}


# --- the undo window and batching ----------------------------------------------------------------

def test_message_deleted_inside_the_undo_window_is_never_delivered(app, smtp, cast, household,
                                                                   make_message, logged_in):
    app.config["NOTIFICATION_DELAY_SECONDS"] = 20
    message = make_message(household, cast["admin"], "oops, wrong household")
    assert deliver(app) == 0  # nothing is due yet
    logged_in(cast["admin"]).submit(f"/messages/{message.id}/delete")
    make_due(app)
    deliver(app)
    assert smtp.inbox.received == []
    assert {row.status for row in rows(app)} == {DeliveryStatus.CANCELLED}


def test_messages_inside_the_window_go_out_as_one_email(app, smtp, cast, household, make_message):
    app.config["NOTIFICATION_DELAY_SECONDS"] = 20
    for text in ("First note", "Second note", "Third note"):
        make_message(household, cast["admin"], text)
    make_due(app)
    deliver(app)
    [message] = smtp.inbox.to(cast["client"].email)
    assert message["Subject"] == "3 new messages from Happy Tails"
    body = message.get_body(("plain",)).get_content()
    assert body.index("First note") < body.index("Second note") < body.index("Third note")


def test_email_waits_while_more_messages_are_still_in_their_window(app, smtp, cast, household,
                                                                   make_message):
    app.config["NOTIFICATION_DELAY_SECONDS"] = 20
    make_message(household, cast["admin"], "first")
    with app.app_context():
        db.session.execute(update(Notification).values(due_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    make_message(household, cast["admin"], "second, just now")
    deliver(app)
    assert smtp.inbox.to(cast["client"].email) == []


def test_an_email_waits_for_the_batch_at_most_five_minutes(app, smtp, cast, household,
                                                            make_message):
    """Messages that keep coming (each within the last one's window) never hold an email back
    for longer than the batch may wait."""
    app.config["NOTIFICATION_DELAY_SECONDS"] = 20
    make_message(household, cast["admin"], "written six minutes ago")
    with app.app_context():
        db.session.execute(update(Notification).values(
            created_at=utcnow() - timedelta(minutes=6), due_at=utcnow() - timedelta(minutes=5)))
        db.session.commit()
    make_message(household, cast["admin"], "and the latest, just now")
    deliver(app)
    [message] = smtp.inbox.to(cast["client"].email)
    body = message.get_body(("plain",)).get_content()
    assert "written six minutes ago" in body and "the latest" not in body


# --- outages and failures ----------------------------------------------------------------------

def test_smtp_outage_then_everything_arrives_once(app, smtp, cast, household, make_message,
                                                  logged_in):
    smtp.stop()
    response = logged_in(cast["admin"]).submit(
        f"/clients/{household.id}/feeds/conversation/messages", {"text": "during the outage"}
    )
    assert response.status_code == 302  # posting works while mail is down
    deliver(app)
    pending = rows(app, status=DeliveryStatus.PENDING)
    assert pending and all(row.attempts == 1 and row.last_error for row in pending)
    assert all(row.due_at > utcnow() for row in pending)  # backing off
    smtp.start()
    make_due(app)
    deliver(app)
    make_due(app)
    deliver(app)
    assert smtp.inbox.recipients() == sorted(
        cast[name].email for name in ("assigned", "preferred", "client"))
    assert {row.status for row in rows(app)} == {DeliveryStatus.SENT}


def test_refused_recipient_fails_without_retry(app, smtp, cast, household, make_message):
    smtp.inbox.refuse_with = "550 No such user"
    make_message(household, cast["admin"], "hello")
    deliver(app)
    failed = rows(app, channel=Channel.EMAIL)
    assert {row.status for row in failed} == {DeliveryStatus.FAILED}
    assert all(row.attempts == 0 for row in failed)


def test_transient_failures_stop_after_the_attempt_limit(app, smtp, cast, household, make_message):
    app.config["NOTIFICATION_MAX_ATTEMPTS"] = 3
    smtp.stop()
    make_message(household, cast["admin"], "hello")
    for _ in range(3):
        make_due(app)
        deliver(app)
    email_rows = rows(app, channel=Channel.EMAIL)
    assert {row.status for row in email_rows} == {DeliveryStatus.FAILED}
    assert {row.attempts for row in email_rows} == {3}


def test_failed_notifications_can_be_retried(app, smtp, cast, household, make_message, business):
    smtp.inbox.refuse_with = "550 No such user"
    make_message(household, cast["admin"], "hello")
    deliver(app)
    smtp.inbox.refuse_with = None
    with app.app_context():
        ids = [row.id for row in rows(app, status=DeliveryStatus.FAILED)]
        assert outbox.retry_failed(ids, business.id) == len(ids)
    deliver(app)
    assert len(smtp.inbox.received) == len(ids)


def test_rolled_back_message_sends_nothing(app, smtp, cast, household, monkeypatch):
    def enqueue_then_fail(*args):
        outbox_enqueue(*args)
        raise RuntimeError("database went away")

    outbox_enqueue = outbox.enqueue
    monkeypatch.setattr(outbox, "enqueue", enqueue_then_fail)
    with app.app_context(), pytest.raises(RuntimeError):
        from portal.models import Client

        messages.post_message(db.session.get(User, cast["admin"].id),
                              db.session.get(Client, household.id), Feed.CONVERSATION, "lost")
    assert rows(app) == []
    deliver(app)
    assert smtp.inbox.received == []


def test_names_cannot_inject_headers(app, smtp, make_user, household, make_message, cast):
    sneaky = make_user(Role.ADMIN, name="Eve\r\nBcc: victim@evil.example")
    make_message(household, sneaky, "hi")
    deliver(app)
    assert "victim@evil.example" not in smtp.inbox.recipients()
    assert all("Bcc" not in message for _, message in smtp.inbox.received)


@pytest.mark.committed  # two worker threads, each with its own connection
def test_workers_deliver_each_notification_exactly_once(app, smtp, make_user, household,
                                                        make_message):
    people = [make_user(Role.CLIENT, client=household) for _ in range(6)]
    author = make_user(Role.ADMIN)
    for n in range(10):
        make_message(household, author, f"note {n}")
    assert len(rows(app)) == 60
    make_due(app)
    threads = [threading.Thread(target=deliver, args=(app,)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {row.status for row in rows(app)} == {DeliveryStatus.SENT}
    delivered = smtp.inbox.recipients()
    assert sorted(set(delivered)) == sorted(person.email for person in people)
    assert len(delivered) == len(set(delivered)) * 1  # one batched email each, none twice
    assert len(delivered) == 6


# --- text messages -------------------------------------------------------------------------------

def test_text_messages_only_for_conversation_to_opted_in_phones(
    app, smtp, twilio, cast, business, household, make_message
):
    set_private_messaging(app, business, True)
    update_row(app, User, cast["client"].id, **confirmed_phone("+15551234567"), notify_sms=True)
    update_row(app, User, cast["assigned"].id, **confirmed_phone("+15557654321"))  # did not opt in
    make_message(household, cast["admin"], "Walk moved to 3pm")
    make_message(household, cast["admin"], "private invoice zz-9", feed=Feed.PRIVATE)
    deliver(app)
    assert len(twilio) == 1
    path, form = twilio[0]
    assert path == "/2010-04-01/Accounts/AC123/Messages.json"
    assert form["To"] == ["+15551234567"] and form["From"] == ["+15550001111"]
    assert "Walk moved to 3pm" in form["Body"][0] and "zz-9" not in form["Body"][0]
    assert [row.channel for row in rows(app, channel=Channel.SMS)] == [Channel.SMS]


def test_sms_path_cannot_be_handed_a_private_message():
    notice = Notice(1, 1, "Household", Feed.PRIVATE, "Alice", "Happy Tails",
                    "secret", False, 0, "https://x", "now")
    with pytest.raises(TypeError):
        sms.SmsText.for_conversation("+15551234567", notice)
    with pytest.raises(TypeError):
        sms.ConsoleSms().send("a plain string is refused")


def test_console_mail_prints_emails_in_development(app, cast, household, make_message, capsys):
    app.config.update(MAIL_TRANSPORT="console", NOTIFICATION_DELAY_SECONDS=0)
    make_message(household, cast["admin"], "Printed for the developer")
    deliver(app)
    printed = capsys.readouterr().out
    assert "Printed for the developer" in printed and cast["client"].email in printed


def test_console_texts_name_the_person_and_the_number(app, cast, household, make_message,
                                                     capsys):
    app.config.update(NOTIFICATION_DELAY_SECONDS=0)
    update_row(app, User, cast["client"].id, **confirmed_phone("+15550102030"), notify_sms=True)
    make_message(household, cast["admin"], "Texted to the household")
    deliver(app)
    printed = capsys.readouterr().out
    assert "--- text message to Carla Client (+15550102030) (no SMS provider set) ---" in printed


def test_posting_decides_channels_from_preferences(app, cast, household, make_message, business):
    update_row(app, User, cast["client"].id, notify_email=False)
    make_message(household, cast["admin"], "hello")
    told = {row.recipient_id for row in rows(app, channel=Channel.EMAIL)}
    assert cast["client"].id not in told and cast["assigned"].id in told
