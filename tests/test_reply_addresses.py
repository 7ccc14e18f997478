"""Reply addresses on notification emails, through a real SMTP server on loopback: each email
carries its recipient's own address (Reply-To and envelope sender alike) naming one client and
feed, and a Message-ID that its outbox rows keep; without a reply domain it says replies are
not read."""

import re
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from portal.extensions import db
from portal.models import Channel, Feed, Message, Notification, utcnow
from portal.reply_addresses import ReplyToken, token_from_address

from .helpers import deliver, make_due, set_private_messaging, text_of

REPLY_DOMAIN = "replies.happytails.example"


@pytest.fixture
def replies(app):
    app.config["REPLY_DOMAIN"] = REPLY_DOMAIN


def address(header) -> str:
    return str(header).strip().strip("<>")


def token_of(app, message) -> ReplyToken | None:
    with app.app_context():
        return token_from_address(address(message["Reply-To"]))


def email_rows(app, **where) -> list[Notification]:
    with app.app_context():
        query = select(Notification).where(Notification.channel == Channel.EMAIL)
        for name, value in where.items():
            query = query.where(getattr(Notification, name) == value)
        found = list(db.session.scalars(query.order_by(Notification.id)))
        db.session.expunge_all()
        return found


def test_each_recipient_gets_an_address_of_their_own_as_reply_to_and_envelope_sender(
    app, smtp, replies, business, household, admin, assigned_staff, preferred_sitter,
    household_login, make_message
):
    make_message(household, admin, "Walk moved to 3pm")
    deliver(app)
    addresses = set()
    for person in (assigned_staff, preferred_sitter, household_login):
        [message] = smtp.inbox.to(person.email)
        reply_to = address(message["Reply-To"])
        assert re.fullmatch(rf"reply\+[a-z2-7]+@{re.escape(REPLY_DOMAIN)}", reply_to)
        # Bounce reports go where replies go: the report names the person whose address failed.
        assert address(message["Return-Path"]) == reply_to
        assert token_of(app, message) == ReplyToken(
            business.id, household.id, Feed.CONVERSATION, person.id)
        addresses.add(reply_to)
    assert len(addresses) == 3


def test_a_private_message_email_names_the_private_feed_and_says_the_reply_stays_private(
    app, smtp, replies, business, household, admin, household_login, make_message
):
    set_private_messaging(app, business, True)
    make_message(household, admin, "Your invoice", feed=Feed.PRIVATE)
    deliver(app)
    [message] = smtp.inbox.to(household_login.email)
    assert token_of(app, message) == ReplyToken(
        business.id, household.id, Feed.PRIVATE, household_login.id)
    for body in (text_of(message), message.get_body(("html",)).get_content()):
        assert "Reply to this email to answer in the portal: your reply stays private" in body


def test_conversation_email_invites_a_reply_without_speaking_of_privacy(
    app, smtp, replies, household, admin, household_login, make_message
):
    make_message(household, admin, "Walk moved to 3pm")
    deliver(app)
    [message] = smtp.inbox.to(household_login.email)
    body = text_of(message)
    assert "Reply to this email to answer in the portal." in body
    assert "private" not in body and "not read" not in body


def test_two_clients_make_two_emails_each_with_its_own_address(
    app, smtp, replies, business, household, other_household, admin, household_login,
    other_household_login, make_message
):
    make_message(household, household_login, "Gate code is 4321")
    make_message(other_household, other_household_login, "Back on Friday")
    deliver(app)
    emails = smtp.inbox.to(admin.email)
    assert len(emails) == 2
    tokens = {token_of(app, message): text_of(message) for message in emails}
    assert set(tokens) == {
        ReplyToken(business.id, household.id, Feed.CONVERSATION, admin.id),
        ReplyToken(business.id, other_household.id, Feed.CONVERSATION, admin.id),
    }
    for token, body in tokens.items():
        assert ("Gate code" in body) == (token.client_id == household.id)
        assert ("Back on Friday" in body) == (token.client_id == other_household.id)


def test_two_feeds_of_one_client_make_two_emails(
    app, smtp, replies, business, household, admin, household_login, make_message
):
    set_private_messaging(app, business, True)
    make_message(household, household_login, "Gate code is 4321")
    make_message(household, household_login, "About the invoice", feed=Feed.PRIVATE)
    deliver(app)
    emails = smtp.inbox.to(admin.email)
    assert {token_of(app, message).feed for message in emails} == {Feed.CONVERSATION,
                                                                   Feed.PRIVATE}
    assert len({address(message["Reply-To"]) for message in emails}) == 2


def test_one_feed_still_makes_one_email_for_several_messages(
    app, smtp, replies, household, admin, household_login, make_message
):
    for text in ("First", "Second"):
        make_message(household, admin, text)
    deliver(app)
    [message] = smtp.inbox.to(household_login.email)
    assert "First" in text_of(message) and "Second" in text_of(message)


def test_the_message_id_is_kept_on_every_row_the_email_carried(
    app, smtp, replies, household, admin, household_login, assigned_staff, make_message
):
    for text in ("First", "Second", "Third"):
        make_message(household, admin, text)
    deliver(app)
    [message] = smtp.inbox.to(household_login.email)
    found = re.fullmatch(r"<([0-9a-f]{24})@(.+)>", str(message["Message-ID"]))
    assert found and found[2] == REPLY_DOMAIN
    rows = email_rows(app, recipient_id=household_login.id)
    assert len(rows) == 3 and {row.provider_id for row in rows} == {found[1]}
    # Every email has its own: the sitter's is another.
    [other] = smtp.inbox.to(assigned_staff.email)
    assert other["Message-ID"] != message["Message-ID"]
    assert {row.provider_id for row in email_rows(app, recipient_id=assigned_staff.id)} == {
        str(other["Message-ID"])[1:25]}


def test_without_a_reply_domain_there_is_no_reply_address_and_the_email_says_so(
    app, smtp, household, admin, household_login, make_message
):
    assert app.config["REPLY_DOMAIN"] is None
    make_message(household, admin, "Walk moved to 3pm")
    deliver(app)
    [message] = smtp.inbox.to(household_login.email)
    assert "Reply-To" not in message
    assert address(message["Return-Path"]) == "portal@happytails.example"
    for body in (text_of(message), message.get_body(("html",)).get_content()):
        assert "Replies to this email are not read" in body
        assert "Reply to this email" not in body
    # The Message-ID is on the sender's domain then, and still kept on the rows.
    found = re.fullmatch(r"<([0-9a-f]{24})@happytails\.example>", str(message["Message-ID"]))
    assert found
    [row] = email_rows(app, recipient_id=household_login.id)
    assert row.provider_id == found[1]


def test_one_feed_waiting_on_its_batch_does_not_hold_back_another(
    app, smtp, replies, household, other_household, admin, household_login,
    other_household_login, make_message
):
    """The batch waits for more messages in its own feed only: another client's message still
    in its undo window does not hold this one's email back."""
    app.config["NOTIFICATION_DELAY_SECONDS"] = 20
    make_message(household, household_login, "Written a while ago")
    make_due(app)
    make_message(other_household, other_household_login, "Just now")
    deliver(app)
    [message] = smtp.inbox.to(admin.email)
    assert "Written a while ago" in text_of(message) and "Just now" not in text_of(message)
    # And one still waiting in its own feed does hold it back.
    smtp.inbox.received.clear()
    make_message(household, household_login, "Part one")
    with app.app_context():
        db.session.execute(
            update(Notification)
            .where(Notification.message_id.in_(select(Message.id).where(
                Message.text == "Part one")))
            .values(due_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    make_message(household, household_login, "Part two, just now")
    deliver(app)
    assert all("Part one" not in text_of(message) for message in smtp.inbox.to(admin.email))


def test_the_console_mail_viewer_shows_the_reply_address(
    app, replies, household, admin, household_login, make_message, capsys
):
    app.config.update(MAIL_TRANSPORT="console", NOTIFICATION_DELAY_SECONDS=0)
    make_message(household, admin, "Printed for the developer")
    deliver(app)
    printed = capsys.readouterr().out
    found = re.search(rf"^Reply-To: (reply\+[a-z2-7]+@{re.escape(REPLY_DOMAIN)})$", printed,
                      re.M)
    assert found
    with app.app_context():
        assert token_from_address(found[1]).recipient_id == household_login.id
