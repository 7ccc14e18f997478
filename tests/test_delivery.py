"""Where each message went: the line under a message for the admin team and its author, built
from the outbox, the SMS provider's reports and read receipts, in two queries a page."""

import html
import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update
from twilio.request_validator import RequestValidator

from portal.extensions import db
from portal.models import (
    Channel,
    DeliveryStatus,
    Notification,
    ReadReceipt,
    Role,
    User,
    utcnow,
)
from portal.notifications import sms

from .helpers import confirmed_phone, deliver, make_due, record_sql, update_row

STATUS_URL = "https://portal.example/sms/status"


def line(page: str, message_id: int) -> str:
    """The delivery line's words, tags and the separators' spacing dropped."""
    found = re.search(rf'<div class="delivery" id="delivery-{message_id}"[^>]*>(.*?)</div>',
                      page, re.S)
    if not found:
        return ""
    words = re.sub(r"<form.*?</form>", " [Retry]", found.group(1), flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", words)).split())


def page_of(browser, household) -> str:
    return browser.get(f"/clients/{household.id}").get_data(as_text=True)


def set_rows(app, message, **values) -> None:
    with app.app_context():
        db.session.execute(update(Notification).where(Notification.message_id == message.id)
                           .values(**values))
        db.session.commit()


@pytest.fixture
def texted(app, admin, household_login, assigned_staff, preferred_sitter):
    """The client and the assigned sitter take texts; everyone takes email."""
    for person in (household_login, assigned_staff):
        update_row(app, User, person.id, **confirmed_phone("+15550102030"), notify_sms=True)


def test_admin_team_sees_each_notification_and_who_saw_it(
    app, smtp, twilio, logged_in, admin, office_manager, household, household_login, assigned_staff,
    preferred_sitter, texted, make_message
):
    message = make_message(household, admin, "Walk moved to 3pm")
    assert line(page_of(logged_in(office_manager), household), message.id) == (
        "Waiting to notify Carla Client (email, text message), Pat Preferred (email) and "
        "Sam Sitter (email, text message)"
    )
    make_due(app)
    deliver(app)
    # The client opens the feed: that is a read receipt, with its time.
    logged_in(household_login).get(f"/clients/{household.id}")
    shown = line(page_of(logged_in(office_manager), household), message.id)
    # Texts as the provider took them ("queued"); who saw it, first seen first: the office
    # manager, whose look above was a read too, then the client. Never the author.
    assert re.fullmatch(
        r"Emailed Carla Client ✓ · Texted Carla Client: queued · Emailed Pat Preferred ✓ · "
        r"Emailed Sam Sitter ✓ · Texted Sam Sitter: queued · "
        r"Seen by Oscar Office \d{1,2}:\d\d [AP]M and Carla Client \d{1,2}:\d\d [AP]M", shown)
    assert "Alice" not in line(page_of(logged_in(admin), household), message.id)


def test_author_sees_their_own_line_and_nobody_elses(
    app, logged_in, admin, household, assigned_staff, preferred_sitter, make_message
):
    theirs = make_message(household, admin, "From the office")
    mine = make_message(household, assigned_staff, "Walk done")
    page = page_of(logged_in(assigned_staff), household)
    assert line(page, mine.id).startswith("Waiting to notify ")
    assert f'id="delivery-{theirs.id}"' not in page
    assert f'id="delivery-{mine.id}"' not in page_of(logged_in(preferred_sitter), household)


def test_client_hears_only_that_the_business_was_told_and_seen_if_turned_on(
    app, smtp, business, logged_in, admin, household, household_login, assigned_staff,
    make_message
):
    message = make_message(household, household_login, "Is Friday still on?")
    make_due(app)
    deliver(app)
    logged_in(admin).get(f"/clients/{household.id}")  # the business reads it
    client = logged_in(household_login)
    assert line(page_of(client, household), message.id) == "Happy Tails was notified ✓"
    update_row(app, type(business), business.id, client_read_receipts=True)
    shown = line(page_of(client, household), message.id)
    assert re.fullmatch(r"Happy Tails was notified ✓ · Seen \d{1,2}:\d\d [AP]M", shown)
    assert "Alice" not in shown and "Sam" not in shown


def test_failure_shows_with_a_retry_for_the_admin_team(
    app, logged_in, admin, household, household_login, assigned_staff, make_message
):
    message = make_message(household, household_login, "Gate code?")
    set_rows(app, message, status=DeliveryStatus.FAILED, last_error="SMTP 550")
    admin_browser = logged_in(admin)
    shown = line(page_of(admin_browser, household), message.id)
    assert "Email to Alice Admin failed" in shown and shown.endswith("[Retry]")
    assert "[Retry]" not in line(page_of(logged_in(household_login), household), message.id)

    response = admin_browser.htmx("POST", f"/messages/{message.id}/delivery/retry")
    assert response.status_code == 200
    retried = line(response.get_data(as_text=True), message.id)
    assert retried.startswith("Waiting to notify Alice Admin (email)")
    with app.app_context():
        assert set(db.session.scalars(select(Notification.status))) == {DeliveryStatus.PENDING}


def test_a_settling_line_asks_again_and_a_settled_one_stops(
    app, smtp, logged_in, admin, household, household_login, make_message
):
    message = make_message(household, admin, "Hello")
    browser = logged_in(admin)
    url = f"/messages/{message.id}/delivery"
    assert f'hx-get="{url}" hx-trigger="every 5s"' in page_of(browser, household)
    make_due(app)
    deliver(app)
    fragment = browser.htmx("GET", url).get_data(as_text=True)
    assert line(fragment, message.id) == "Emailed Carla Client ✓"
    assert "hx-get" not in fragment
    assert browser.get(url).status_code == 302  # no page of its own: the feed, at the message


def test_delivery_lines_cost_one_query_whatever_the_page(
    app, logged_in, admin, household, household_login, assigned_staff, make_message
):
    browser = logged_in(admin)

    def queries() -> list[str]:
        with record_sql(app) as statements:
            browser.get(f"/clients/{household.id}")
        return [s for s, _ in statements
                if "FROM notifications" in s or "FROM read_receipts" in s]

    make_message(household, household_login, "one")
    logged_in(household_login).get(f"/clients/{household.id}")
    few = queries()
    for number in range(40):
        make_message(household, household_login if number % 2 else admin, f"more {number}")
        if number % 5 == 0:
            logged_in(household_login).get(f"/clients/{household.id}")
    assert len(few) == len(queries()) == 1


@pytest.fixture
def client_texted(app, household_login):
    update_row(app, User, household_login.id, **confirmed_phone("+15550102030"), notify_sms=True)


@pytest.fixture
def texted_message(app, smtp, twilio, admin, household, client_texted, make_message):
    """The admin's message, delivered: emailed, and texted to the client through Twilio."""
    app.config["PORTAL_BASE_URL"] = "https://portal.example"
    message = make_message(household, admin, "Running late")
    make_due(app)
    deliver(app)
    return message


def report_status(app, fields: dict, signature: str | None = None):
    """Twilio's status callback, signed as Twilio signs it unless a signature is given."""
    signed = signature or RequestValidator("secret").compute_signature(STATUS_URL, fields)
    return app.test_client().post("/sms/status", data=fields,
                                  headers={"X-Twilio-Signature": signed})


def test_worker_keeps_the_providers_id_and_its_status_reports_arrive(
    app, twilio, logged_in, admin, household, texted_message
):
    message = texted_message
    [(_, form)] = twilio
    assert form["StatusCallback"] == [STATUS_URL]
    with app.app_context():
        row = db.session.scalar(select(Notification).where(Notification.channel == Channel.SMS))
        assert (row.provider_id, row.provider_status, row.status) == (
            "SM1", "queued", DeliveryStatus.SENT)

    def report(status: str, signature: str | None = None):
        fields = {"MessageSid": "SM1", "MessageStatus": status, "AccountSid": "AC123"}
        return report_status(app, fields, signature)

    admin_browser = logged_in(admin)
    assert report("delivered").status_code == 204
    assert "Texted Carla Client: delivered" in line(page_of(admin_browser, household), message.id)
    # A late "sent" after "delivered" does not move it back; a forged report changes nothing.
    assert report("sent").status_code == 204
    assert report("undelivered", signature="Zm9yZ2Vk").status_code == 403
    shown = line(page_of(admin_browser, household), message.id)
    assert "Texted Carla Client: delivered" in shown and "[Retry]" not in shown


def test_a_text_the_phone_company_could_not_deliver_is_a_failure(
    app, logged_in, admin, household, texted_message
):
    message = texted_message
    fields = {"MessageSid": "SM1", "MessageStatus": "undelivered", "ErrorCode": "30003"}
    assert report_status(app, fields).status_code == 204
    with app.app_context():
        row = db.session.scalar(select(Notification).where(Notification.channel == Channel.SMS))
        assert row.status == DeliveryStatus.FAILED
        assert row.last_error == "the phone company reported the text undelivered (error 30003)"
    shown = line(page_of(logged_in(admin), household), message.id)
    assert "Text message to Carla Client failed" in shown and shown.endswith("[Retry]")


def test_seen_names_three_and_counts_the_rest(
    app, logged_in, make_user, admin, household, household_login, make_message
):
    message = make_message(household, household_login, "Anyone there?")
    readers = [make_user(Role.OFFICE_MANAGER, name=f"Reader {n}") for n in range(5)]
    for reader in readers:
        logged_in(reader).get(f"/clients/{household.id}")
    shown = line(page_of(logged_in(admin), household), message.id)
    assert re.search(r"Seen by Reader 0 [\d:]+ [AP]M, Reader 1 [\d:]+ [AP]M, Reader 2 [\d:]+ "
                     r"[AP]M and 2 others$", shown), shown


def test_seen_is_the_first_time_the_reader_reached_the_message(
    app, logged_in, admin, office_manager, household, household_login, make_message
):
    first = make_message(household, household_login, "first")
    admin_browser = logged_in(admin)
    admin_browser.get(f"/clients/{household.id}")
    month_ago = utcnow() - timedelta(days=30)
    with app.app_context():
        db.session.execute(update(ReadReceipt).values(read_at=month_ago))
        db.session.commit()
    second = make_message(household, household_login, "second")
    admin_browser.get(f"/clients/{household.id}")  # reaches the second; the first long since
    page = page_of(logged_in(office_manager), household)
    seen_there = month_ago.astimezone(ZoneInfo(office_manager.time_zone))  # the reader's day
    day = f"{seen_there:%b} {seen_there.day}"
    assert line(page, first.id).endswith(f"Seen by Alice Admin {day}")
    assert re.search(r"Seen by Alice Admin \d{1,2}:\d\d [AP]M$", line(page, second.id))
    # Alone (the line's own refresh): the same answer, from the receipt past it.
    manager = logged_in(office_manager)
    fragment = manager.htmx("GET", f"/messages/{first.id}/delivery").get_data(as_text=True)
    assert f"Seen by Alice Admin {day} and Oscar Office" in line(fragment, first.id)


@pytest.mark.parametrize("fields", [
    {"MessageSid": "SM1" * 100, "MessageStatus": "delivered"},
    {"MessageSid": "SM1", "MessageStatus": "<script>alert(1)</script>"},
    {"MessageSid": "SM1", "MessageStatus": "undelivered", "ErrorCode": "9" * 5000},
    {"MessageSid": "' OR 1=1 --", "MessageStatus": "failed"},
    {"MessageStatus": "failed"},
])
def test_signed_status_reports_with_hostile_values_change_nothing_they_should_not(
    app, texted_message, fields
):
    assert report_status(app, fields).status_code == 204
    with app.app_context():
        row = db.session.scalar(select(Notification).where(Notification.channel == Channel.SMS))
    if fields.get("MessageSid") == "SM1" and fields["MessageStatus"] == "undelivered":
        assert row.status == DeliveryStatus.FAILED and len(row.last_error) <= 500
    else:
        assert (row.status, row.provider_status) == (DeliveryStatus.SENT, "queued")


def test_a_line_asking_about_a_message_deleted_meanwhile_stops_asking(
    app, logged_in, admin, household, household_login, make_message
):
    message = make_message(household, household_login, "Oops")
    browser = logged_in(admin)
    assert 'hx-trigger="every 5s"' in page_of(browser, household)
    assert logged_in(household_login).htmx("POST", f"/messages/{message.id}/unsend").status_code \
        == 200
    answer = browser.htmx("GET", f"/messages/{message.id}/delivery")
    assert answer.status_code == 286  # htmx stops polling
    assert answer.get_data(as_text=True) == f'<div class="delivery" id="delivery-{message.id}">' \
        "</div>"


def test_a_notification_waiting_long_does_not_keep_the_line_asking(
    app, logged_in, admin, household, household_login, make_message
):
    message = make_message(household, household_login, "Hello")
    set_rows(app, message, due_at=utcnow() + timedelta(minutes=30))  # a retry after an outage
    page = page_of(logged_in(admin), household)
    assert line(page, message.id).startswith("Waiting to notify")
    assert f'hx-get="/messages/{message.id}/delivery"' not in page


def test_the_signature_is_checked_by_twilios_validator():
    """Twilio's published example: auth token, address and fields give this signature; the
    portal takes it with that token alone, and nothing without a token."""
    fields = {"CallSid": "CA1234567890ABCDE", "Caller": "+14158675309", "Digits": "1234",
              "From": "+14158675309", "To": "+18005551212"}
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    signature = "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    assert sms.signed_by_twilio({"TWILIO_AUTH_TOKEN": "12345"}, url, fields, signature)
    assert not sms.signed_by_twilio({"TWILIO_AUTH_TOKEN": "12346"}, url, fields, signature)
    assert not sms.signed_by_twilio({"TWILIO_AUTH_TOKEN": None}, url, fields, signature)
    assert not sms.signed_by_twilio({"TWILIO_AUTH_TOKEN": "12345"}, url, fields, None)


@pytest.mark.parametrize("author", ["admin", "assigned_staff", "household_login"])
def test_a_message_just_posted_shows_the_line_its_page_shows(
    request, logged_in, household, preferred_sitter, texted, author
):
    browser = logged_in(request.getfixturevalue(author))
    posted = browser.htmx("post", f"/clients/{household.id}/feeds/conversation/messages",
                          data={"text": "Walk moved to 3pm"}).get_data(as_text=True)
    message_id = int(re.search(r'id="message-(\d+)"', posted).group(1))
    page = page_of(browser, household)
    assert line(posted, message_id) == line(page, message_id)
    shown = f'id="delivery-{message_id}"'
    assert (shown in posted) == (shown in page)
    if author != "household_login":
        assert line(posted, message_id).startswith("Waiting to notify ")
