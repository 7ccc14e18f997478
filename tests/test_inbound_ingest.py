"""An email to a reply address: posted where the address says when everything holds, queued for
the admin team when anything does not, recorded (never a message) when a machine sent it, and
taken once however often it is delivered."""

import dataclasses
import threading
import tomllib
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.inbound.ingest import NOT_OUR_ADDRESS, ingest_email
from portal.models import (
    Attachment,
    Business,
    Channel,
    DeliveryStatus,
    Feed,
    InboundMessage,
    InboundOutcome,
    Message,
    Notification,
    Role,
    User,
)
from portal.reply_addresses import ReplyToken, address_for
from portal.storage import storage

from .helpers import (
    confirmed_phone,
    count_rows,
    every_row,
    png_bytes,
    set_private_messaging,
    update_row,
)

REPLY_DOMAIN = "replies.example.com"


@pytest.fixture(autouse=True)
def reply_domain(app):
    app.config["REPLY_DOMAIN"] = REPLY_DOMAIN
    app.config["INBOUND_AUTHSERV_ID"] = "mx.happytails.example"


def reply_address(app, person, client, feed=Feed.CONVERSATION, business_id=None) -> str:
    with app.app_context():
        return address_for(ReplyToken(business_id or person.business_id, client.id, feed,
                                      person.id))


def email(to: str, sender: str, text="The gate code is 4321 now.", *, message_id=None,
          files=(), headers=None) -> bytes:
    message = EmailMessage()
    message["From"] = f"Carla <{sender}>"
    message["To"] = to
    message["Subject"] = "Re: New message from Happy Tails"
    message["Message-ID"] = message_id or make_msgid(domain="mail.example.net")
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(text)
    for name, data, subtype in files:
        message.add_attachment(data, maintype="image", subtype=subtype, filename=name)
    return bytes(message)


def ingest(app, raw, recipient=None):
    with app.app_context():
        return ingest_email(raw, recipient)


def messages_in(app, client, feed=None) -> list[Message]:
    with app.app_context():
        query = select(Message).where(Message.client_id == client.id).order_by(Message.id)
        if feed is not None:
            query = query.where(Message.feed == feed)
        rows = list(db.session.scalars(query))
        db.session.expunge_all()
        return rows


def inbound(app, row_id) -> InboundMessage:
    with app.app_context():
        row = db.session.get(InboundMessage, row_id)
        db.session.expunge(row)
        return row


def test_a_reply_becomes_a_message_by_its_recipient_via_email(app, household, household_login):
    raw = email(reply_address(app, household_login, household), household_login.email)
    outcome = ingest(app, raw)
    assert (outcome.kind, outcome.duplicate) == (InboundOutcome.POSTED, False)
    [message] = messages_in(app, household)
    assert (message.id, message.author_id, message.feed, message.via, message.text) == (
        outcome.message_id, household_login.id, Feed.CONVERSATION, "email",
        "The gate code is 4321 now.")
    row = inbound(app, outcome.inbound_id)
    assert (row.outcome, row.message_id, row.client_id, row.raw_key) == (
        InboundOutcome.POSTED, message.id, household.id, None)


def test_the_envelope_recipient_is_the_reply_address_when_given(app, household,
                                                                household_login):
    address = reply_address(app, household_login, household)
    raw = email("carla-list@example.net", household_login.email)
    assert ingest(app, raw, recipient=address).kind == InboundOutcome.POSTED


def test_a_photo_alone_is_a_message_and_goes_through_the_upload_path(app, household,
                                                                     household_login):
    raw = email(reply_address(app, household_login, household), household_login.email, text="",
                files=[("limp.png", png_bytes((40, 30)), "png")])
    outcome = ingest(app, raw)
    assert outcome.kind == InboundOutcome.POSTED
    with app.app_context():
        [attachment] = db.session.scalars(
            select(Attachment).where(Attachment.message_id == outcome.message_id))
        assert (attachment.original_name, attachment.width, attachment.height) == (
            "limp.png", 40, 30)
        assert storage().read(attachment.storage_key)[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_same_email_twice_makes_one_message(app, household, household_login):
    raw = email(reply_address(app, household_login, household), household_login.email)
    first = ingest(app, raw)
    before = every_row(app)
    again = ingest(app, raw)
    assert every_row(app) == before
    assert again == dataclasses.replace(first, duplicate=True)


def test_the_new_message_notifies_the_others_not_its_author(app, household, household_login,
                                                           admin, assigned_staff):
    raw = email(reply_address(app, household_login, household), household_login.email)
    outcome = ingest(app, raw)
    with app.app_context():
        told = {row.recipient_id for row in db.session.scalars(
            select(Notification).where(Notification.message_id == outcome.message_id))}
    assert admin.id in told and assigned_staff.id in told
    assert household_login.id not in told


def test_a_reply_to_a_private_email_lands_in_private_and_is_never_texted(
        app, business, household, household_login, admin, make_user):
    set_private_messaging(app, business, True)
    update_row(app, User, admin.id, **confirmed_phone("+15550102030"), notify_sms=True)
    granted = make_user(Role.OFFICE_MANAGER, private_messages_access=True)
    not_granted = make_user(Role.OFFICE_MANAGER)
    raw = email(reply_address(app, household_login, household, Feed.PRIVATE),
                household_login.email)
    outcome = ingest(app, raw)
    assert outcome.kind == InboundOutcome.POSTED
    [message] = messages_in(app, household)
    assert message.feed == Feed.PRIVATE
    with app.app_context():
        rows = list(db.session.scalars(
            select(Notification).where(Notification.message_id == message.id)))
    assert {row.recipient_id for row in rows} == {admin.id, granted.id}
    assert not_granted.id not in {row.recipient_id for row in rows}
    assert Channel.SMS not in {row.channel for row in rows}


def test_a_staff_reply_is_posted_while_they_serve_the_client(app, household, assigned_staff):
    raw = email(reply_address(app, assigned_staff, household), assigned_staff.email)
    assert ingest(app, raw).kind == InboundOutcome.POSTED


def test_a_staff_reply_that_needs_approval_is_queued_for_the_admin_team(app, business,
                                                                       household, assigned_staff):
    update_row(app, Business, business.id, staff_messages_need_approval=True)
    raw = email(reply_address(app, assigned_staff, household), assigned_staff.email)
    row = queued(app, ingest(app, raw), "Sam Sitter's messages need approval before clients "
                                        "see them: file it to approve it.")
    assert row.sender_user_id == assigned_staff.id
    assert messages_in(app, household) == []


# --- queued for the admin team -----------------------------------------------------------------

def queued(app, outcome, reason_part: str) -> InboundMessage:
    assert outcome.kind == InboundOutcome.UNMATCHED, outcome
    assert reason_part in outcome.reason
    row = inbound(app, outcome.inbound_id)
    assert row.outcome == InboundOutcome.UNMATCHED and row.raw_key
    return row


def test_an_address_the_portal_never_gave_out_is_queued_under_the_senders_business(
        app, business, household_login):
    raw = email(f"reply+aaaaaaaaaaaaaaaaaaaaaaaaaa@{REPLY_DOMAIN}", household_login.email)
    row = queued(app, ingest(app, raw), "not one the portal gave out")
    # Her business's admin team reviews it; a From line is no proof that she wrote it.
    assert (row.business_id, row.sender_user_id, row.client_id) == (business.id, None, None)
    with app.app_context():
        assert storage().read(row.raw_key) == raw
    assert messages_in(app, household_login) == []


def test_a_forged_token_from_a_stranger_is_queued_under_no_business(app):
    raw = email(f"reply+aaaaaaaaaaaaaaaaaaaaaaaaaa@{REPLY_DOMAIN}", "nobody@example.org")
    row = queued(app, ingest(app, raw), "not one the portal gave out")
    assert row.business_id is None


def test_a_token_signed_with_another_secret_is_forged(app, household, household_login):
    address = reply_address(app, household_login, household)
    app.config["SECRET_KEY"] = "another-secret"
    queued(app, ingest(app, email(address, household_login.email)), "not one the portal")


def test_a_sender_who_is_not_the_tokens_recipient_is_queued(app, business, household,
                                                           household_login, make_user):
    other = make_user(Role.CLIENT, client=household)
    raw = email(reply_address(app, household_login, household), other.email)
    row = queued(app, ingest(app, raw), f"not from {household_login.email}")
    # The From line names another login of hers: not verified, so not the sender.
    assert (row.business_id, row.client_id, row.feed, row.recipient_id, row.sender_user_id) == (
        business.id, household.id, Feed.CONVERSATION, household_login.id, None)
    assert messages_in(app, household) == []


def test_the_senders_address_is_compared_without_case(app, household, household_login):
    raw = email(reply_address(app, household_login, household), household_login.email.upper())
    assert ingest(app, raw).kind == InboundOutcome.POSTED


def test_another_business_token_with_a_sender_of_this_business_is_queued_with_the_token(
        app, business, stranger_business, make_client, make_user, household_login):
    their_household = make_client(business=stranger_business)
    their_client = make_user(Role.CLIENT, business=stranger_business, client=their_household)
    raw = email(reply_address(app, their_client, their_household), household_login.email)
    row = queued(app, ingest(app, raw), "not from")
    assert (row.business_id, row.client_id) == (stranger_business.id, their_household.id)
    assert messages_in(app, their_household) == []


FAILED_AUTHENTICATION = {"Authentication-Results":
                         "mx.happytails.example; dkim=fail; spf=fail smtp.mailfrom=x.example"}


def test_failed_authentication_from_our_mail_server_is_queued(app, household, household_login):
    raw = email(reply_address(app, household_login, household), household_login.email,
                headers=FAILED_AUTHENTICATION)
    row = queued(app, ingest(app, raw), "forged")
    assert (row.recipient_id, row.sender_user_id) == (household_login.id, None)


def test_a_forged_token_with_failed_authentication_names_both(app, business, household_login):
    raw = email(f"reply+aaaaaaaaaaaaaaaaaaaaaaaaaa@{REPLY_DOMAIN}", household_login.email,
                headers=FAILED_AUTHENTICATION)
    row = queued(app, ingest(app, raw), NOT_OUR_ADDRESS)
    assert "found the sender's address forged" in row.reason
    assert (row.business_id, row.sender_user_id) == (business.id, None)


def test_only_the_verified_sender_of_a_queued_reply_is_recorded_as_its_sender(
        app, household, household_login, make_user):
    """The token's own person writing from her login's address, not found forged: her reply
    queued for another reason keeps her as the sender; the same words from another login of
    the household to her address do not."""
    address = reply_address(app, household_login, household)
    hers = queued(app, ingest(app, email(address, household_login.email, "")),
                  "Nothing was written")
    assert hers.sender_user_id == household_login.id
    other = make_user(Role.CLIENT, client=household)
    theirs = queued(app, ingest(app, email(address, other.email, "")), "not from")
    assert theirs.sender_user_id is None


def test_a_recipient_who_lost_access_is_queued(app, household, make_user, make_service):
    staff = make_user(Role.STAFF)
    address = reply_address(app, staff, household)  # given while they served the client
    queued(app, ingest(app, email(address, staff.email)), "can no longer write")


def test_a_deactivated_login_is_queued(app, household, household_login):
    update_row(app, User, household_login.id, active=False)
    raw = email(reply_address(app, household_login, household), household_login.email)
    queued(app, ingest(app, raw), "no longer has a login")


def test_a_private_reply_while_private_messaging_is_off_is_queued(app, business, household,
                                                                 household_login):
    set_private_messaging(app, business, False)
    raw = email(reply_address(app, household_login, household, Feed.PRIVATE),
                household_login.email)
    row = queued(app, ingest(app, raw), "Private Messaging is turned off")
    assert row.feed == Feed.PRIVATE
    assert messages_in(app, household) == []


def test_nothing_written_and_nothing_attached_is_queued(app, household, household_login):
    raw = email(reply_address(app, household_login, household), household_login.email, text="")
    queued(app, ingest(app, raw), "Nothing was written")


def test_a_text_longer_than_a_message_may_be_is_queued(app, household, household_login):
    app.config["MESSAGE_MAX_LENGTH"] = 50
    raw = email(reply_address(app, household_login, household), household_login.email,
                text="x" * 51)
    queued(app, ingest(app, raw), "Longer than the 50 characters")


def test_an_attachment_the_upload_path_refuses_is_queued(app, household, household_login):
    raw = email(reply_address(app, household_login, household), household_login.email,
                files=[("broken.jpg", b"not really a jpeg", "jpeg")])
    row = queued(app, ingest(app, raw), "An attachment was refused")
    assert row.attachment_count == 1


def test_too_many_files_for_one_message_is_queued(app, household, household_login):
    app.config["UPLOAD_MAX_FILES"] = 2
    photo = png_bytes()
    raw = email(reply_address(app, household_login, household), household_login.email,
                files=[(f"{n}.png", photo, "png") for n in range(3)])
    queued(app, ingest(app, raw), "at most 2 files")


def test_a_flood_of_replies_is_queued_beyond_the_posting_limit(app, household, household_login):
    app.config["THROTTLE_MESSAGES_PER_USER"] = "2 per minute"
    address = reply_address(app, household_login, household)
    kinds = [ingest(app, email(address, household_login.email, text=f"Reply {n}")).kind
             for n in range(3)]
    assert kinds == [InboundOutcome.POSTED, InboundOutcome.POSTED, InboundOutcome.UNMATCHED]
    assert len(messages_in(app, household)) == 2


# --- never a message -----------------------------------------------------------------------------

def test_an_out_of_office_reply_is_recorded_and_never_a_message(app, household,
                                                                household_login):
    raw = email(reply_address(app, household_login, household), household_login.email,
                headers={"Auto-Submitted": "auto-replied"})
    outcome = ingest(app, raw)
    assert outcome.kind == InboundOutcome.AUTOMATIC
    assert messages_in(app, household) == []
    assert inbound(app, outcome.inbound_id).raw_key is None


def test_too_large_an_email_is_refused_and_nothing_stored(app, household, household_login):
    app.config["INBOUND_MAX_BYTES"] = 1024 * 1024
    raw = email(reply_address(app, household_login, household), household_login.email,
                text="x" * (1024 * 1024 + 1))
    outcome = ingest(app, raw)
    assert (outcome.kind, outcome.reason) == (InboundOutcome.REFUSED,
                                              "The email is larger than 1 MB.")
    with app.app_context():
        assert storage().keys() == []
    assert messages_in(app, household) == []
    assert ingest(app, raw).duplicate


def test_what_is_not_an_email_is_refused_with_the_reason(app):
    outcome = ingest(app, b"")
    assert outcome.kind == InboundOutcome.REFUSED
    assert outcome.reason.startswith("Not an email the portal can read")


def bounce_report(to: str, failed: str, status="5.1.1",
                  original_id="<0123456789abcdef01234567@replies.example.com>") -> bytes:
    """A delivery failure report (RFC 3464) as Postfix writes one."""
    action = "failed" if status.startswith("5") else "delayed"
    return f"""From: MAILER-DAEMON@mx.example.net (Mail Delivery System)
To: {to}
Subject: Undelivered Mail Returned to Sender
Message-ID: {make_msgid(domain="mx.example.net")}
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain

Your message could not be delivered.

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

Final-Recipient: rfc822; {failed}
Action: {action}
Status: {status}
Diagnostic-Code: smtp; 550 5.1.1 <{failed}>: Recipient address rejected

--B
Content-Type: text/rfc822-headers

Message-ID: {original_id}
From: Happy Tails <notifications@happytails.example>
To: {failed}
Subject: New message

--B--
""".replace("\n", "\r\n").encode()


def test_a_hard_bounce_marks_the_address_of_the_tokens_person(app, household, household_login,
                                                             make_message, admin):
    message = make_message(household, admin, "Walk at 3")
    with app.app_context():
        db.session.execute(Notification.__table__.update()
                           .where(Notification.recipient_id == household_login.id,
                                  Notification.channel == Channel.EMAIL)
                           .values(status=DeliveryStatus.SENT,
                                   provider_id="0123456789abcdef01234567"))
        db.session.commit()
    raw = bounce_report(reply_address(app, household_login, household), household_login.email)
    outcome = ingest(app, raw)
    assert outcome.kind == InboundOutcome.BOUNCE
    with app.app_context():
        person = db.session.get(User, household_login.id)
        assert person.email_bounced_at is not None
        statuses = set(db.session.scalars(
            select(Notification.status).where(Notification.message_id == message.id,
                                              Notification.recipient_id == household_login.id,
                                              Notification.channel == Channel.EMAIL)))
    assert statuses == {DeliveryStatus.FAILED}
    assert len(messages_in(app, household)) == 1


def test_a_bounce_for_another_address_marks_nobody(app, household, household_login):
    raw = bounce_report(reply_address(app, household_login, household), "someone@else.example")
    outcome = ingest(app, raw)
    assert outcome.kind == InboundOutcome.BOUNCE
    with app.app_context():
        assert db.session.get(User, household_login.id).email_bounced_at is None


def test_a_delay_report_marks_nobody(app, household, household_login):
    raw = bounce_report(reply_address(app, household_login, household), household_login.email,
                        status="4.4.7")
    assert ingest(app, raw).kind == InboundOutcome.AUTOMATIC
    with app.app_context():
        assert db.session.get(User, household_login.id).email_bounced_at is None


# --- two deliveries at once ------------------------------------------------------------------

@pytest.mark.committed
def test_two_deliveries_at_once_make_one_message(app, business, make_client, make_user):
    household = make_client()
    login = make_user(Role.CLIENT, client=household)
    raw = email(reply_address(app, login, household), login.email)
    outcomes, barrier = [], threading.Barrier(2)

    def deliver():
        with app.app_context():
            barrier.wait()
            outcomes.append(ingest_email(raw))
            db.session.remove()

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcome.duplicate for outcome in outcomes) == [False, True]
    assert {outcome.message_id for outcome in outcomes} == {messages_in(app, household)[0].id}
    assert count_rows(app, Message, Message.client_id == household.id) == 1
    assert count_rows(app, InboundMessage) == 1


def test_the_feed_shows_via_email_beside_the_replys_time(app, household, household_login,
                                                         admin, make_message, logged_in):
    make_message(household, admin, "Written in the portal")
    texted = make_message(household, household_login, "Sent by text")
    update_row(app, Message, texted.id, via="sms")
    raw = email(reply_address(app, household_login, household), household_login.email)
    outcome = ingest(app, raw)
    page = logged_in(admin).get(f"/clients/{household.id}/feeds/conversation")
    body = page.get_data(as_text=True)
    reply = body[body.index(f'id="message-{outcome.message_id}"'):]
    assert '<span class="message-via">via email</span>' in reply.split("</header>")[0]
    texted_item = body[body.index(f'id="message-{texted.id}"'):]
    assert '<span class="message-via">via text</span>' in texted_item.split("</header>")[0]
    assert body.count('class="message-via"') == 2


def test_a_fault_while_reading_keeps_the_email_for_the_admin_team(app, monkeypatch, household,
                                                                  household_login):
    """Not a sender's doing: the email waits in the queue, raw and all, rather than being lost."""
    def broken_parse(raw, authserv_id=None):
        raise RuntimeError("a fault of ours")

    monkeypatch.setattr("portal.inbound.ingest.parse", broken_parse)
    address = reply_address(app, household_login, household)
    raw = email(address, household_login.email)
    row = queued(app, ingest(app, raw, recipient=address), "could not read")
    assert (row.business_id, row.client_id) == (household.business_id, household.id)
    with app.app_context():
        assert storage().read(row.raw_key) == raw
    assert ingest(app, raw, recipient=address).duplicate


def raw_email_with_utf8_headers(to: str, sender: str) -> bytes:
    """As some mail clients send (RFC 6532): UTF-8 display names unencoded, To folded."""
    return (f"From: José García <{sender}>\r\n"
            f"To: Happy Tails\r\n <{to}>\r\n"
            "Subject: Re: Rex's walk\r\n"
            "Message-ID: <unreadable-1@mail.example.net>\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\n"
            "Rex limps on his left paw.\r\n").encode()


def fail_inside_ingest(monkeypatch):
    def broken_parse(raw, authserv_id=None):
        raise RuntimeError("a fault of ours")

    monkeypatch.setattr("portal.inbound.ingest.parse", broken_parse)


def test_a_fault_with_no_envelope_address_keeps_what_the_headers_reply_address_names(
        app, monkeypatch, business, household, household_login):
    """By IMAP or a pipe the envelope address is not known: the reply address is read from the
    header lines as they are, so the queued email keeps its business, client and feed."""
    set_private_messaging(app, business, True)
    fail_inside_ingest(monkeypatch)
    raw = raw_email_with_utf8_headers(
        reply_address(app, household_login, household, Feed.PRIVATE), household_login.email)
    row = queued(app, ingest(app, raw), "could not read")
    assert (row.business_id, row.client_id, row.feed, row.recipient_id) == (
        business.id, household.id, Feed.PRIVATE, household_login.id)
    assert (row.sender, row.sender_user_id, row.unreadable) == (
        household_login.email, None, True)
    assert ingest(app, raw).duplicate


def test_a_fault_with_no_reply_address_anywhere_is_queued_with_its_feed_unknown(
        app, monkeypatch, business, household_login):
    fail_inside_ingest(monkeypatch)
    raw = raw_email_with_utf8_headers("office@happytails.example", household_login.email)
    row = queued(app, ingest(app, raw), "could not read")
    assert (row.business_id, row.client_id, row.feed, row.unreadable) == (
        business.id, None, None, True)


# --- the corpus of real reply shapes (tests/data/mail), end to end ------------------------------

CORPUS = Path(__file__).parent / "data" / "mail"
MANIFEST = tomllib.loads((CORPUS / "manifest.toml").read_text(encoding="utf-8"))
REPLIES = sorted(name for name, expected in MANIFEST.items() if isinstance(expected, dict)
                 and not expected.get("automatic") and not expected.get("bounce"))


@pytest.mark.parametrize("name", REPLIES)
def test_a_corpus_reply_lands_with_what_the_person_wrote(app, household, household_login,
                                                        name):
    """Delivered to the person's own reply address (the envelope's), from their login's address:
    the feed gets their words and their files, or the queue says why not."""
    expected = MANIFEST[name]
    app.config["INBOUND_AUTHSERV_ID"] = "mx.happypaws.example"
    update_row(app, User, household_login.id, email=expected["sender"])
    raw = (CORPUS / f"{name}.eml").read_bytes()
    text = (CORPUS / f"{name}.expected.txt").read_text(encoding="utf-8").rstrip("\n")
    outcome = ingest(app, raw, recipient=reply_address(app, household_login, household))
    if not text and not expected.get("uploads"):
        assert (outcome.kind, outcome.reason) == (InboundOutcome.UNMATCHED,
                                                  "Nothing was written and nothing attached.")
        return
    assert outcome.kind == InboundOutcome.POSTED, outcome
    [message] = messages_in(app, household)
    assert (message.text, message.author_id, message.via) == (text, household_login.id, "email")
    assert count_rows(app, Attachment, Attachment.message_id == message.id) == len(
        expected.get("uploads", []))


@pytest.mark.parametrize("name", sorted(name for name, expected in MANIFEST.items()
                                        if isinstance(expected, dict)
                                        and (expected.get("automatic") or expected.get("bounce"))))
def test_corpus_automatic_mail_and_bounces_are_never_messages(app, household, household_login,
                                                              name):
    raw = (CORPUS / f"{name}.eml").read_bytes()
    outcome = ingest(app, raw, recipient=reply_address(app, household_login, household))
    assert outcome.kind in (InboundOutcome.AUTOMATIC, InboundOutcome.BOUNCE), outcome
    assert messages_in(app, household) == []
    with app.app_context():
        # The failed addresses are not Carla's: nobody is marked.
        assert db.session.get(User, household_login.id).email_bounced_at is None


# --- hostile input: a clear outcome each, no message, nothing half-written -----------------------

def test_500_attachments_are_refused_as_unreadable(app, household, household_login):
    photo = png_bytes()
    raw = email(reply_address(app, household_login, household), household_login.email,
                files=[(f"{n}.png", photo, "png") for n in range(500)])
    outcome = ingest(app, raw)
    assert (outcome.kind, outcome.reason) == (
        InboundOutcome.REFUSED, "Not an email the portal can read: too many parts")
    assert messages_in(app, household) == []
    with app.app_context():
        assert storage().keys() == []


def test_a_decompression_bomb_is_queued_and_nothing_of_it_stored(app, household,
                                                                 household_login):
    from io import BytesIO

    from PIL import Image

    bomb = BytesIO()
    Image.new("1", (10_000, 10_000)).save(bomb, "PNG")
    raw = email(reply_address(app, household_login, household), household_login.email,
                files=[("bomb.png", bomb.getvalue(), "png")])
    row = queued(app, ingest(app, raw), "has too many pixels")
    assert messages_in(app, household) == []
    with app.app_context():
        assert storage().keys() == [row.raw_key]  # the email itself, for the admin team


def test_a_header_injection_in_the_reply_address_is_not_one_of_ours(app, household,
                                                                    household_login):
    address = reply_address(app, household_login, household)
    raw = (f"From: {household_login.email}\r\nTo: x@example.org\r\nSubject: hi\r\n"
           f"Message-ID: <injection@example.org>\r\n\r\nHello\r\n").encode()
    outcome = ingest(app, raw, recipient=f"{address}\r\nBcc: victim@example.org")
    assert (outcome.kind, outcome.reason) == (InboundOutcome.UNMATCHED, NOT_OUR_ADDRESS)
    assert messages_in(app, household) == []
