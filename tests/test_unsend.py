"""Undo that is real: within the undo window the author unsends a message, which leaves the feed
with every notification of it recalled; once anything has gone out it is too late, and Delete
says truthfully what cannot be recalled."""

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from portal.extensions import db
from portal.models import AuditEvent, Channel, DeliveryStatus, Message, Notification, utcnow
from portal.notifications import worker
from portal.services import messages

from .helpers import POSTGRES_URL, count_rows


@pytest.fixture
def sent(make_message, household, household_login, assigned_staff, admin):
    """The client's message, with notifications waiting for the staff and the admin team."""
    return make_message(household, household_login, "Gate code is 4411")


def statuses(app, message) -> set[DeliveryStatus]:
    with app.app_context():
        return set(db.session.scalars(
            select(Notification.status).where(Notification.message_id == message.id)
        ))


def set_statuses(app, message, status: DeliveryStatus) -> None:
    with app.app_context():
        db.session.execute(update(Notification).where(Notification.message_id == message.id)
                           .values(status=status))
        db.session.commit()


def age(app, message, seconds: int) -> None:
    with app.app_context():
        db.session.execute(update(Message).where(Message.id == message.id).values(
            created_at=utcnow() - timedelta(seconds=seconds)))
        db.session.commit()


def test_feed_offers_unsend_with_the_seconds_left_to_the_author_only(
    logged_in, household_login, admin, household, sent
):
    page = logged_in(household_login).get(f"/clients/{household.id}").get_data(as_text=True)
    assert f'action="/messages/{sent.id}/unsend"' in page
    assert "s left · nobody notified yet" in page
    assert 'hidden data-after-unsend>Delete' in page  # Delete waits for the window to end
    other = logged_in(admin).get(f"/clients/{household.id}").get_data(as_text=True)
    assert "/unsend" not in other and f"/messages/{sent.id}/delete" in other


def test_unsend_recalls_every_notification_and_leaves_a_tombstone(
    app, logged_in, household_login, household, sent
):
    assert statuses(app, sent) == {DeliveryStatus.PENDING}
    response = logged_in(household_login).htmx("POST", f"/messages/{sent.id}/unsend")
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "Message unsent" in body
    # The text comes back for its own feed's composer, and nowhere else.
    assert (f'<template class="unsent-text" data-action="/clients/{household.id}/feeds/'
            'conversation/messages">') in body
    assert "Gate code is 4411</template>" in body
    assert statuses(app, sent) == {DeliveryStatus.CANCELLED}
    with app.app_context():
        stored = db.session.get(Message, sent.id)
        assert (stored.unsent, stored.text, stored.deleted_by_id) == (
            True, None, household_login.id)
        assert db.session.scalar(select(AuditEvent.action).where(
            AuditEvent.object_type == "message")) == "message.unsent"
    # The worker has nothing to deliver, ever.
    age(app, sent, 60)
    with app.app_context():
        db.session.execute(update(Notification).values(due_at=utcnow()))
        db.session.commit()
    assert worker.run_once(app, "test-worker") == 0


def test_unsend_without_javascript_puts_the_text_back_in_the_composer(
    app, logged_in, household_login, household, sent
):
    browser = logged_in(household_login)
    response = browser.submit(f"/messages/{sent.id}/unsend")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Message unsent. Nobody was notified" in page
    assert ">Gate code is 4411</textarea>" in page
    # Sent again (a reload of that answer): back to the feed, nothing else happens.
    again = browser.submit(f"/messages/{sent.id}/unsend")
    assert again.status_code == 302
    assert again.location.endswith(f"/clients/{household.id}/feeds/conversation#message-{sent.id}")


@pytest.mark.parametrize("status", [DeliveryStatus.SENDING, DeliveryStatus.SENT,
                                    DeliveryStatus.FAILED])
def test_unsend_once_anything_went_out_is_too_late_and_changes_nothing(
    app, logged_in, household_login, sent, status
):
    with app.app_context():
        first = db.session.scalar(select(Notification.id).where(
            Notification.message_id == sent.id).order_by(Notification.id))
        db.session.execute(update(Notification).where(Notification.id == first)
                           .values(status=status))
        db.session.commit()
    before = statuses(app, sent)
    response = logged_in(household_login).htmx("POST", f"/messages/{sent.id}/unsend")
    body = response.get_data(as_text=True)
    assert "Too late to unsend: its notifications have gone out." in body
    assert f"/messages/{sent.id}/delete" in body and "/unsend" not in body
    assert statuses(app, sent) == before  # the waiting ones were not cancelled either
    with app.app_context():
        assert db.session.get(Message, sent.id).text == "Gate code is 4411"
    assert count_rows(app, AuditEvent, AuditEvent.object_type == "message") == 0


def test_unsend_after_the_window_is_too_late(app, logged_in, household_login, sent):
    age(app, sent, 21)
    browser = logged_in(household_login)
    page = browser.get(f"/clients/{sent.client_id}").get_data(as_text=True)
    assert "/unsend" not in page
    response = browser.submit(f"/messages/{sent.id}/unsend")
    assert response.status_code == 409
    assert "Too late to unsend" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Message, sent.id).deleted_at is None


def test_only_the_author_may_unsend(app, logged_in, admin, assigned_staff, sent):
    for person in (admin, assigned_staff):
        assert logged_in(person).htmx("POST", f"/messages/{sent.id}/unsend").status_code == 404
    assert statuses(app, sent) == {DeliveryStatus.PENDING}


def test_a_worker_claim_committed_first_makes_the_unsend_too_late(app, household_login, sent):
    set_statuses(app, sent, DeliveryStatus.SENDING)
    with app.app_context(), pytest.raises(messages.TooLateToUnsend):
        messages.unsend_message(db.session.get(type(household_login), household_login.id),
                                db.session.get(Message, sent.id))
    assert statuses(app, sent) == {DeliveryStatus.SENDING}


@pytest.mark.committed  # two threads, each with its own connection
@pytest.mark.skipif(not POSTGRES_URL, reason="row locks: several workers run on PostgreSQL")
def test_an_unsend_racing_a_workers_claim_waits_for_it_and_refuses(
    app, household_login, sent
):
    """The worker is claiming the rows (not committed yet) as the unsend comes: the unsend's
    cancel waits for the claim, finds the rows sending, and refuses. Looking first and
    cancelling after would see them waiting, recall nothing, and report nothing was sent."""
    claimed, finished = threading.Event(), []

    def claim_slowly():
        with app.app_context():
            db.session.execute(update(Notification).where(Notification.message_id == sent.id)
                               .values(status=DeliveryStatus.SENDING))
            claimed.set()
            time.sleep(0.5)
            db.session.commit()
            db.session.remove()

    worker_thread = threading.Thread(target=claim_slowly)
    worker_thread.start()
    assert claimed.wait(5)
    with app.app_context():
        author = db.session.get(type(household_login), household_login.id)
        try:
            messages.unsend_message(author, db.session.get(Message, sent.id))
        except messages.TooLateToUnsend:
            finished.append("too late")
    worker_thread.join()
    assert finished == ["too late"]
    assert statuses(app, sent) == {DeliveryStatus.SENDING}


def test_delete_confirmation_says_what_was_delivered(app, logged_in, admin, sent):
    age(app, sent, 60)
    with app.app_context():
        rows = list(db.session.scalars(select(Notification).where(
            Notification.message_id == sent.id).order_by(Notification.id)))
        for row in rows:
            row.status = DeliveryStatus.SENT
        rows[0].channel = Channel.SMS
        db.session.commit()
        emails = len(rows) - 1
    body = logged_in(admin).htmx("GET", f"/messages/{sent.id}/delete").get_data(as_text=True)
    plural = "s" if emails != 1 else ""
    assert (f"The {emails} email{plural} and 1 text message already delivered cannot be "
            "recalled.") in body


def test_delete_within_the_window_says_nobody_was_told(logged_in, admin, sent):
    body = logged_in(admin).get(f"/messages/{sent.id}/delete").get_data(as_text=True)
    assert "Nobody has been notified yet, and nobody will be." in body


def test_a_client_deleting_hears_only_that_the_business_was_told(
    app, logged_in, household_login, sent
):
    age(app, sent, 60)
    set_statuses(app, sent, DeliveryStatus.SENT)
    body = logged_in(household_login).htmx("GET", f"/messages/{sent.id}/delete").get_data(
        as_text=True)
    assert "Happy Tails has already been notified of it." in body
    assert "email" not in body and "text message" not in body
