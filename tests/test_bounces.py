"""People who cannot be reached: an address that bounced gets no more emails, a phone that
replied STOP no more texts, until the address changes or the admin team tries emails again;
their rows, their Notifications page and the delivery line say so."""

import html
import re

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import AuditEvent, Channel, DeliveryStatus, Feed, Notification, User
from portal.services import reachability

from .helpers import (
    confirmed_phone,
    count_rows,
    deliver,
    make_due,
    set_private_messaging,
    update_row,
)

REASON = "550 5.1.1 The email account that you tried to reach does not exist"
STOPPED = ("Texts are off: this number opted out by text (STOP, or a word like it). Text START "
           "to +15550001111 to turn them back on.")


def rows(app, **where) -> list[Notification]:
    with app.app_context():
        query = select(Notification).order_by(Notification.id)
        for name, value in where.items():
            query = query.where(getattr(Notification, name) == value)
        found = list(db.session.scalars(query))
        db.session.expunge_all()
        return found


def bounce(app, person, provider_id: str | None = None) -> None:
    """What ingest does with a delivery failure report for the person's address."""
    with app.app_context():
        reachability.mark_email_bounced(db.session.get(User, person.id), REASON, provider_id)
        db.session.commit()


def stop_texts(app, person) -> None:
    with app.app_context():
        reachability.set_texts_stopped(db.session.get(User, person.id), True)
        db.session.commit()


def person(app, someone) -> User:
    with app.app_context():
        found = db.session.get(User, someone.id)
        db.session.expunge(found)
        return found


def words(page: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def delivery_line(page: str, message_id: int) -> str:
    found = re.search(rf'<div class="delivery" id="delivery-{message_id}"[^>]*>(.*?)</div>',
                      page, re.S)
    return words(re.sub(r"<form.*?</form>", " [Retry]", found.group(1), flags=re.S))


@pytest.fixture
def texting(app, twilio, household_login):
    """The household's login takes texts."""
    update_row(app, User, household_login.id, **confirmed_phone("+15550102030"), notify_sms=True)
    return twilio


# --- who gets nothing on which channel -----------------------------------------------------------

def test_no_email_goes_to_an_address_that_bounced(
    app, smtp, household, admin, assigned_staff, household_login, make_message
):
    bounce(app, admin)
    make_message(household, household_login, "Gate code is 4321")
    deliver(app)
    assert admin.id not in {row.recipient_id for row in rows(app, channel=Channel.EMAIL)}
    assert smtp.inbox.to(admin.email) == []
    assert smtp.inbox.to(assigned_staff.email)  # the others are told as before


def test_no_text_goes_to_a_phone_that_replied_stop(
    app, smtp, texting, household, admin, household_login, make_message
):
    stop_texts(app, household_login)
    make_message(household, admin, "Walk moved to 3pm")
    deliver(app)
    assert rows(app, channel=Channel.SMS) == []
    assert texting == []
    assert smtp.inbox.to(household_login.email)  # email still goes


def test_a_phone_that_said_start_again_gets_texts_again(
    app, smtp, texting, household, admin, household_login, make_message
):
    stop_texts(app, household_login)
    with app.app_context():
        reachability.set_texts_stopped(db.session.get(User, household_login.id), False)
        db.session.commit()
    make_message(household, admin, "Walk moved to 3pm")
    deliver(app)
    assert len(texting) == 1


def test_a_private_message_never_goes_by_text(
    app, smtp, texting, business, household, admin, household_login, make_message
):
    set_private_messaging(app, business, True)
    make_message(household, admin, "Your invoice", feed=Feed.PRIVATE)
    deliver(app)
    assert rows(app, channel=Channel.SMS) == [] and texting == []
    assert smtp.inbox.to(household_login.email)


def test_a_bounce_after_the_message_was_written_cancels_its_email(
    app, smtp, household, admin, assigned_staff, household_login, make_message
):
    app.config["NOTIFICATION_DELAY_SECONDS"] = 20
    make_message(household, household_login, "Gate code is 4321")
    bounce(app, admin)
    make_due(app)
    deliver(app)
    [row] = rows(app, channel=Channel.EMAIL, recipient_id=admin.id)
    assert (row.status, row.last_error) == (DeliveryStatus.CANCELLED,
                                            "the email address bounces")
    assert smtp.inbox.to(admin.email) == [] and smtp.inbox.to(assigned_staff.email)


def test_a_stop_after_the_message_was_written_cancels_its_text(
    app, smtp, texting, household, admin, household_login, make_message
):
    app.config["NOTIFICATION_DELAY_SECONDS"] = 20
    make_message(household, admin, "Walk moved to 3pm")
    stop_texts(app, household_login)
    make_due(app)
    deliver(app)
    [row] = rows(app, channel=Channel.SMS)
    assert (row.status, row.last_error) == (DeliveryStatus.CANCELLED, "the phone opted out")
    assert texting == []


# --- the delivery line ---------------------------------------------------------------------------

def test_a_bounce_report_fails_the_email_and_the_admin_team_reads_why(
    app, smtp, logged_in, household, admin, office_manager, household_login, make_message
):
    message = make_message(household, household_login, "Gate code is 4321")
    deliver(app)
    [email] = smtp.inbox.to(admin.email)
    page_url = f"/clients/{household.id}"
    client = logged_in(household_login)
    before = delivery_line(client.get(page_url).get_data(as_text=True), message.id)
    # The report names the Message-ID; ingest hands its id part over.
    bounce(app, admin, provider_id=str(email["Message-ID"]).strip("<>").partition("@")[0])
    [row] = rows(app, channel=Channel.EMAIL, recipient_id=admin.id)
    assert row.status == DeliveryStatus.FAILED
    shown = delivery_line(logged_in(office_manager).get(page_url).get_data(as_text=True),
                          message.id)
    assert f"Email to Alice Admin bounced: {REASON}" in shown and shown.endswith("[Retry]")
    assert "Emailed Oscar Office ✓" in shown  # the others' emails went
    # The client hears, as for any failed notification, no more than that; never the reason.
    after = delivery_line(client.get(page_url).get_data(as_text=True), message.id)
    assert before == "Happy Tails was notified ✓" and after == ""
    # Retry sends nothing to an address that still bounces, and says so.
    assert logged_in(office_manager).submit(
        f"/messages/{message.id}/delivery/retry").status_code in (200, 302)
    deliver(app)
    assert len(smtp.inbox.to(admin.email)) == 1
    shown = delivery_line(logged_in(office_manager).get(page_url).get_data(as_text=True),
                          message.id)
    assert "Email to Alice Admin not sent: the email address bounces" in shown
    assert "[Retry]" not in shown
    assert delivery_line(client.get(page_url).get_data(as_text=True), message.id) == (
        "Happy Tails was notified ✓")


def test_a_bounce_report_for_another_email_fails_nothing_else(
    app, smtp, household, admin, household_login, make_message
):
    make_message(household, household_login, "Gate code is 4321")
    deliver(app)
    bounce(app, admin, provider_id="0123456789abcdef01234567")
    assert {row.status for row in rows(app, channel=Channel.EMAIL)} == {DeliveryStatus.SENT}


# --- where a person's reachability shows ---------------------------------------------------------

def test_the_staff_list_shows_a_bounce_and_a_stop_to_the_admin_team(
    app, logged_in, admin, assigned_staff, unassigned_staff, twilio
):
    bounce(app, assigned_staff)
    stop_texts(app, unassigned_staff)
    page = words(logged_in(admin).get("/staff").get_data(as_text=True))
    assert f"Emails to this address bounce: {REASON}" in page
    assert STOPPED in page
    assert page.count("Emails to this address bounce") == 1 and page.count("Texts are off") == 1


def test_the_clients_logins_show_a_bounce_and_a_stop(
    app, logged_in, admin, office_manager, assigned_staff, household, household_login, twilio
):
    bounce(app, household_login)
    stop_texts(app, household_login)
    for viewer in (admin, office_manager):
        page = words(logged_in(viewer).get(f"/clients/{household.id}").get_data(as_text=True))
        assert f"Emails to this address bounce: {REASON}" in page and STOPPED in page
    # Staff see the client's page without its logins, and so without their contact troubles.
    page = words(logged_in(assigned_staff).get(f"/clients/{household.id}")
                 .get_data(as_text=True))
    assert "bounce" not in page and "Texts are off" not in page


def test_the_persons_own_notifications_page_says_so(
    app, logged_in, household_login, assigned_staff, unassigned_staff, twilio
):
    bounce(app, household_login)
    # The number first: STOP belongs to the number it came from (a new number clears it).
    update_row(app, User, household_login.id, **confirmed_phone("+15550102030"), notify_sms=True)
    stop_texts(app, household_login)
    page = words(logged_in(household_login).get("/notifications").get_data(as_text=True))
    assert f"Emails to this address bounce: {REASON}" in page and STOPPED in page
    # Whatever was chosen, neither goes now.
    assert re.search(r"Email .*? Off Text message \(SMS\) .*? Off App", page)
    bounce(app, assigned_staff)
    # Nobody else's trouble shows on another person's page.
    page = words(logged_in(unassigned_staff).get("/notifications").get_data(as_text=True))
    assert "bounce" not in page and "Texts are off" not in page


def test_without_a_texting_number_the_stop_line_still_says_how(app, logged_in, household_login):
    stop_texts(app, household_login)
    page = words(logged_in(household_login).get("/notifications").get_data(as_text=True))
    assert "Text START to the business's texting number to turn them back on." in page


# --- emails again -------------------------------------------------------------------------------

def test_a_new_address_clears_the_bounce(app, household_login):
    bounce(app, household_login)
    update_row(app, User, household_login.id, email=household_login.email)  # the same one
    assert person(app, household_login).email_bounced_at is not None
    update_row(app, User, household_login.id, email="carla.new@example.com")
    changed = person(app, household_login)
    assert changed.email_bounced_at is None and changed.email_bounce_reason is None


@pytest.mark.parametrize("htmx", [False, True])
def test_the_admin_team_can_try_emails_again(
    app, smtp, logged_in, household, admin, household_login, make_message, htmx
):
    bounce(app, household_login)
    browser = logged_in(admin)
    url = f"/accounts/{household_login.id}/emails"
    if htmx:
        response = browser.htmx("POST", url)
        assert response.status_code == 200
        shown = words(response.get_data(as_text=True))
    else:
        response = browser.submit(url)
        assert response.status_code == 302
        assert response.location.endswith(f"/clients/{household.id}#logins")
        shown = words(browser.get(response.location).get_data(as_text=True))
    assert f"Notification emails go to {household_login.email} again." in shown
    assert "Emails to this address bounce" not in shown
    assert person(app, household_login).email_bounced_at is None
    assert count_rows(app, AuditEvent, AuditEvent.action == "user.emails_resumed",
                      AuditEvent.object_id == household_login.id) == 1
    make_message(household, admin, "Walk moved to 3pm")
    deliver(app)
    assert smtp.inbox.to(household_login.email)
    log = words(browser.get("/settings/audit-log?kind=accounts").get_data(as_text=True))
    assert ("Alice Admin turned notification emails to Carla Client back on after they bounced"
            in log)


def test_the_button_shows_only_beside_a_bounced_address(app, logged_in, admin, household,
                                                          household_login):
    page = logged_in(admin).get(f"/clients/{household.id}").get_data(as_text=True)
    assert "Try emails again" not in page
    bounce(app, household_login)
    page = logged_in(admin).get(f"/clients/{household.id}").get_data(as_text=True)
    assert "Try emails again" in page


def test_trying_emails_again_to_an_address_that_did_not_bounce_changes_nothing(
    app, logged_in, admin, household_login
):
    response = logged_in(admin).htmx("POST", f"/accounts/{household_login.id}/emails")
    assert "have not bounced: they go out as usual" in response.get_data(as_text=True)
    assert count_rows(app, AuditEvent, AuditEvent.action == "user.emails_resumed") == 0


@pytest.mark.parametrize("who", ["office_manager", "assigned_staff", "household_login"])
def test_only_those_who_manage_the_login_may_try_emails_again(app, logged_in, admin, who,
                                                              request):
    """An admin's login is for admins to manage: the office manager, staff and clients get
    404, and the bounce stays."""
    bounce(app, admin)
    response = logged_in(request.getfixturevalue(who)).htmx(
        "POST", f"/accounts/{admin.id}/emails")
    assert response.status_code == 404
    assert person(app, admin).email_bounced_at is not None
