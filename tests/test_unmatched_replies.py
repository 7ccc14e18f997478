"""Unmatched replies: what came back and could not be posted waits for the admin team, who
file it into a client's feed (as policy allows) or discard it, audited."""

import re
from email.message import EmailMessage
from email.utils import make_msgid

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.inbound import queue
from portal.inbound.ingest import ingest_email
from portal.models import (
    Attachment,
    AuditEvent,
    Client,
    Feed,
    InboundChannel,
    InboundMessage,
    InboundOutcome,
    Message,
    Notification,
    Role,
    User,
)
from portal.reply_addresses import ReplyToken, address_for
from portal.storage import storage

from .helpers import count_queries, count_rows, every_row, png_bytes, set_private_messaging


def record(**fields):
    values = {
        "channel": InboundChannel.EMAIL, "dedupe_key": "a" * 64,
        "reason": "The reply address is not one the portal gave out", "raw": b"raw email",
        "sender": "someone@example.com",
    }
    return queue.record_unmatched(**{**values, **fields})


def test_an_unmatched_reply_is_queued_with_its_raw_email(app, business, household,
                                                         household_login):
    with app.app_context():
        token = ReplyToken(business.id, household.id, Feed.PRIVATE, household_login.id)
        row = record(token=token, text="The gate code changed", attachment_count=1)
        assert (row.outcome, row.business_id, row.client_id, row.feed, row.recipient_id) == (
            InboundOutcome.UNMATCHED, business.id, household.id, Feed.PRIVATE, household_login.id)
        assert storage().read(row.raw_key) == b"raw email"
        assert queue.find("a" * 64).id == row.id


def test_the_same_delivery_queued_twice_is_one_row_and_one_stored_file(app):
    with app.app_context():
        first = record()
        second = record(raw=b"raw email again")
        assert second.id == first.id
        assert db.session.query(InboundMessage).count() == 1
        assert storage().keys() == [first.raw_key]


def test_a_token_naming_rows_that_do_not_exist_is_queued_without_them(app, business,
                                                                      make_business):
    with app.app_context():
        row = record(token=ReplyToken(business.id, 999_999, Feed.CONVERSATION, 999_999))
        assert (row.business_id, row.client_id, row.recipient_id) == (business.id, None, None)
        # A business that is not here: the portal's only business takes it...
        alone = record(dedupe_key="c" * 64,
                       token=ReplyToken(999_999, 999_999, Feed.CONVERSATION, 999_999))
        assert (alone.business_id, alone.client_id) == (business.id, None)
    # ...and with more than one, it is nobody's.
    make_business("Other Paws")
    with app.app_context():
        other = record(dedupe_key="d" * 64,
                       token=ReplyToken(999_999, 999_999, Feed.CONVERSATION, 999_999))
        assert (other.business_id, other.client_id) == (None, None)


def test_nothing_found_for_an_unknown_key(app):
    with app.app_context():
        assert queue.find("b" * 64) is None


# --- the page and its actions --------------------------------------------------------------------

REPLY_DOMAIN = "replies.example.com"
PAGE = "/settings/unmatched-replies"


@pytest.fixture(autouse=True)
def reply_domain(app):
    app.config["REPLY_DOMAIN"] = REPLY_DOMAIN


def reply_email(to: str, sender: str, text="The gate code is 4321 now.", files=(),
                headers=None) -> bytes:
    message = EmailMessage()
    message["From"] = f"Carla Client <{sender}>"
    message["To"] = to
    message["Subject"] = "Re: Rex's walk"
    message["Message-ID"] = make_msgid(domain="mail.example.net")
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(text)
    for name, data in files:
        message.add_attachment(data, maintype="image", subtype="png", filename=name)
    return bytes(message)


def queued_reply(app, token: ReplyToken | None, sender: str, **kwargs) -> InboundMessage:
    """A reply that ingest queues: to the token's address (or a forged one) from `sender`."""
    with app.app_context():
        address = address_for(token) if token else f"reply+aaaaaaaaaaaaaaaa@{REPLY_DOMAIN}"
        outcome = ingest_email(reply_email(address, sender, **kwargs))
        assert outcome.kind == InboundOutcome.UNMATCHED, outcome
        row = db.session.get(InboundMessage, outcome.inbound_id)
        db.session.expunge(row)
        return row


def token_for(person, client, feed=Feed.CONVERSATION) -> ReplyToken:
    return ReplyToken(person.business_id, client.id, feed, person.id)


def reply_of_a_stranger(app, household, household_login, **kwargs) -> InboundMessage:
    """A reply to Carla's address from an address the portal does not know."""
    return queued_reply(app, token_for(household_login, household), "stranger@example.org",
                        **kwargs)


def row(app, model, row_id):
    with app.app_context():
        found = db.session.get(model, row_id)
        db.session.expunge(found)
        return found


def test_the_queue_shows_what_came_and_why(app, admin_browser, household, household_login):
    reply = reply_of_a_stranger(app, household, household_login,
                                files=[("rex.png", png_bytes())])
    page = admin_browser.get(PAGE)
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    item = body[body.index(f'id="reply-{reply.id}"'):]
    for shown in ("stranger@example.org", "Re: Rex&#39;s walk", "The gate code is 4321 now.",
                  "1 attachment", f"not from {household_login.email}",
                  f"{household.name}'s Conversation feed", "<time datetime="):
        assert shown in item, shown
    # The settings menu counts what waits.
    assert 'aria-label="1 waiting"' in body


def test_an_empty_queue_says_so(admin_browser):
    assert "No replies are waiting" in admin_browser.get(PAGE).get_data(as_text=True)


@pytest.mark.parametrize("role", ["staff", "client"])
def test_staff_and_clients_find_no_queue(app, logged_in, assigned_staff, household,
                                         household_login, role):
    reply = reply_of_a_stranger(app, household, household_login)
    browser = logged_in(assigned_staff if role == "staff" else household_login)
    before = every_row(app)
    assert browser.get(PAGE).status_code == 404
    assert browser.htmx("GET", f"{PAGE}/{reply.id}").status_code == 404
    assert browser.submit(f"{PAGE}/{reply.id}/discard").status_code == 404
    assert browser.submit(f"{PAGE}/{reply.id}/file", data={
        "client_id": household.id, "feed": "conversation"}).status_code == 404
    assert every_row(app) == before


def test_another_business_admin_finds_no_reply_of_ours(app, logged_in, stranger_admin,
                                                       household, household_login):
    reply = reply_of_a_stranger(app, household, household_login)
    browser = logged_in(stranger_admin)
    assert "stranger@example.org" not in browser.get(PAGE).get_data(as_text=True)
    before = every_row(app)
    assert browser.submit(f"{PAGE}/{reply.id}/discard").status_code == 404
    assert every_row(app) == before


def test_a_private_reply_exists_only_for_those_with_private_access(
        app, business, logged_in, household, household_login, office_manager,
        office_manager_private):
    set_private_messaging(app, business, True)
    reply = queued_reply(app, token_for(household_login, household, Feed.PRIVATE),
                         "stranger@example.org")
    without = logged_in(office_manager)
    page = without.get(PAGE).get_data(as_text=True)
    assert "stranger@example.org" not in page and 'aria-label="1 waiting"' not in page
    before = every_row(app)
    assert without.htmx("GET", f"{PAGE}/{reply.id}").status_code == 404
    assert without.get(f"{PAGE}/{reply.id}/discard").status_code == 404
    assert without.submit(f"{PAGE}/{reply.id}/discard").status_code == 404
    assert without.submit(f"{PAGE}/{reply.id}/file", data={
        "client_id": household.id, "feed": "conversation"}).status_code == 404
    assert every_row(app) == before
    granted = logged_in(office_manager_private).get(PAGE).get_data(as_text=True)
    assert "stranger@example.org" in granted and 'aria-label="1 waiting"' in granted


def unreadable_reply(app, monkeypatch, to="office@happytails.example") -> InboundMessage:
    """An email the portal fails to read (a fault of ours inside ingest), with no envelope
    address: queued, its feed unknown unless its header lines name a reply address."""
    def broken_parse(raw, authserv_id=None):
        raise RuntimeError("a fault of ours")

    with monkeypatch.context() as patch, app.app_context():
        patch.setattr("portal.inbound.ingest.parse", broken_parse)
        outcome = ingest_email(reply_email(to, "unread@example.org"))
    assert "could not read" in outcome.reason
    return row(app, InboundMessage, outcome.inbound_id)


def test_a_reply_the_portal_could_not_read_exists_only_for_those_with_private_access(
        app, monkeypatch, business, logged_in, admin, office_manager, office_manager_private,
        household):
    """Its feed is unknown, and unknown means Private; a reply that was read and names no
    feed (a reply address the portal never gave out) is every reviewer's."""
    set_private_messaging(app, business, True)
    unread = unreadable_reply(app, monkeypatch)
    assert (unread.business_id, unread.feed, unread.unreadable) == (business.id, None, True)
    ordinary = queued_reply(app, None, "stranger@example.org")
    assert (ordinary.business_id, ordinary.feed, ordinary.unreadable) == (
        business.id, None, False)
    without = logged_in(office_manager)
    page = without.get(PAGE).get_data(as_text=True)
    assert "stranger@example.org" in page and "unread@example.org" not in page
    assert 'aria-label="1 waiting"' in page
    before = every_row(app)
    assert without.htmx("GET", f"{PAGE}/{unread.id}").status_code == 404
    assert without.get(f"{PAGE}/{unread.id}/discard").status_code == 404
    assert without.submit(f"{PAGE}/{unread.id}/discard").status_code == 404
    assert without.submit(f"{PAGE}/{unread.id}/file", data={
        "client_id": household.id, "feed": "conversation"}).status_code == 404
    assert every_row(app) == before
    for person in (admin, office_manager_private):
        granted = logged_in(person).get(PAGE).get_data(as_text=True)
        assert "unread@example.org" in granted and 'aria-label="2 waiting"' in granted
        assert "Feed unknown: treated as Private" in granted


def test_an_office_manager_reviews_replies_from_a_settings_menu_of_their_own(
        app, logged_in, office_manager, household, household_login):
    reply_of_a_stranger(app, household, household_login)
    browser = logged_in(office_manager)
    home = browser.get("/clients").get_data(as_text=True)
    assert f'href="{PAGE}"' in home
    page = browser.get(PAGE).get_data(as_text=True)
    assert "stranger@example.org" in page
    assert "/settings/permissions" not in page and "/settings/client/portal" not in page


def test_filing_a_reply_from_another_login_posts_it_as_the_filer_naming_the_sender(
        app, admin_browser, admin, household, household_login, make_user):
    other_login = make_user(Role.CLIENT, client=household)
    # Carla's reply address, but her household's other login wrote: they may post there, but
    # a From line is no proof, so the filer posts it with a line naming the sender.
    reply = queued_reply(app, token_for(household_login, household), other_login.email,
                         files=[("rex.png", png_bytes((30, 20)))])
    with app.app_context():
        raw_key = reply.raw_key
        assert storage().read(raw_key)
    answer = admin_browser.htmx("POST", f"{PAGE}/{reply.id}/file",
                                data={"client_id": household.id, "feed": "conversation"})
    assert answer.status_code == 200
    assert "Filed into" in answer.get_data(as_text=True)
    filed = row(app, InboundMessage, reply.id)
    assert (filed.outcome, filed.resolved_by_id, filed.raw_key) == (
        InboundOutcome.FILED, admin.id, None)
    assert filed.resolved_at is not None and filed.message_id
    message = row(app, Message, filed.message_id)
    assert (message.author_id, message.via, message.text, message.client_id, message.feed) == (
        admin.id, "email",
        f"Reply by email from Carla Client <{other_login.email}>:\n\nThe gate code is 4321 now.",
        household.id, Feed.CONVERSATION)
    assert count_rows(app, Attachment, Attachment.message_id == message.id) == 1
    with app.app_context():
        with pytest.raises(FileNotFoundError):
            storage().read(raw_key)
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "reply.filed"))
        assert (event.actor_id, event.object_id, event.details["client_id"]) == (
            admin.id, reply.id, household.id)
    log = admin_browser.get("/settings/audit-log?kind=replies").get_data(as_text=True)
    assert "filed a reply by email from <bdi>" in log and household.name in log


def test_filing_a_strangers_reply_as_the_admin_names_the_sender(app, admin_browser, admin,
                                                                household, household_login):
    reply = reply_of_a_stranger(app, household, household_login)
    answer = admin_browser.submit(f"{PAGE}/{reply.id}/file",
                                  data={"client_id": household.id, "feed": "conversation"})
    assert answer.status_code == 302
    message = row(app, Message, row(app, InboundMessage, reply.id).message_id)
    assert message.author_id == admin.id
    assert message.text == ("Reply by email from Carla Client <stranger@example.org>:\n\n"
                            "The gate code is 4321 now.")
    assert "Filed into" in admin_browser.get(answer.location).get_data(as_text=True)


def test_a_forged_from_line_is_never_the_author_of_what_is_filed(app, admin_browser, admin,
                                                                 business, household,
                                                                 household_login):
    """Carla's address in From, a reply address the portal never gave out, and the business's
    mail server found it forged: the reason says so, and it is filed as the admin's."""
    app.config["INBOUND_AUTHSERV_ID"] = "mx.happytails.example"
    forged = {"Authentication-Results": "mx.happytails.example; dmarc=fail header.from=b1.example"}
    reply = queued_reply(app, None, household_login.email, headers=forged)
    assert "forged" in reply.reason and "not one the portal gave out" in reply.reason
    assert admin_browser.submit(f"{PAGE}/{reply.id}/file", data={
        "client_id": household.id, "feed": "conversation"}).status_code == 302
    message = row(app, Message, row(app, InboundMessage, reply.id).message_id)
    assert message.author_id == admin.id
    assert message.text.startswith(f"Reply by email from Carla Client <{household_login.email}>")


def test_filing_tells_the_others_as_a_post_does(app, admin_browser, admin, household,
                                                household_login, assigned_staff):
    reply = reply_of_a_stranger(app, household, household_login)
    admin_browser.submit(f"{PAGE}/{reply.id}/file",
                         data={"client_id": household.id, "feed": "conversation"})
    message_id = row(app, InboundMessage, reply.id).message_id
    with app.app_context():
        told = set(db.session.scalars(
            select(Notification.recipient_id).where(Notification.message_id == message_id)))
    assert household_login.id in told and assigned_staff.id in told and admin.id not in told


def test_filing_into_a_feed_the_filer_may_not_post_in_is_refused(
        app, business, logged_in, office_manager, household, household_login):
    set_private_messaging(app, business, True)
    reply = reply_of_a_stranger(app, household, household_login)
    browser = logged_in(office_manager)
    before = every_row(app)
    answer = browser.submit(f"{PAGE}/{reply.id}/file",
                                              data={"client_id": household.id, "feed": "private"})
    assert answer.status_code == 404
    assert every_row(app) == before


def private_or_unknown_reply(app, monkeypatch, kind, household, household_login):
    if kind == "private":
        return queued_reply(app, token_for(household_login, household, Feed.PRIVATE),
                            "stranger@example.org")
    return unreadable_reply(app, monkeypatch)


def reply_item(body: str, reply_id: int) -> str:
    start = body.index(f'id="reply-{reply_id}"')
    return body[start:body.index("</li>", start)]


@pytest.mark.parametrize("kind", ["private", "unknown"])
@pytest.mark.parametrize("hx", [False, True], ids=["page", "htmx"])
def test_a_private_reply_is_filed_into_private_only(app, monkeypatch, business, admin_browser,
                                                    household, household_login, kind, hx):
    """A reply to a private message, or one whose feed is unknown, never lands in
    Conversation: File into offers Private alone, and refuses Conversation, changing nothing."""
    set_private_messaging(app, business, True)
    reply = private_or_unknown_reply(app, monkeypatch, kind, household, household_login)
    if hx:
        item = admin_browser.htmx("GET", f"{PAGE}/{reply.id}").get_data(as_text=True)
    else:
        item = reply_item(admin_browser.get(PAGE).get_data(as_text=True), reply.id)
    assert re.findall(r'<option value="(conversation|private)"', item) == ["private"]
    before = every_row(app)
    data = {"client_id": household.id, "feed": "conversation"}
    refusal = "can be filed into a Private feed only"
    if hx:
        answer = admin_browser.htmx("POST", f"{PAGE}/{reply.id}/file", data=data)
        assert answer.status_code == 200 and refusal in answer.get_data(as_text=True)
    else:
        answer = admin_browser.submit(f"{PAGE}/{reply.id}/file", data=data)
        assert answer.status_code == 302
        assert refusal in admin_browser.get(answer.location).get_data(as_text=True)
    assert every_row(app) == before
    admin_browser.submit(f"{PAGE}/{reply.id}/file",
                         data={"client_id": household.id, "feed": "private"})
    message = row(app, Message, row(app, InboundMessage, reply.id).message_id)
    assert (message.client_id, message.feed) == (household.id, Feed.PRIVATE)


def test_a_private_reply_while_private_messaging_is_off_can_only_be_discarded(
        app, business, admin_browser, household, household_login):
    set_private_messaging(app, business, True)
    reply = queued_reply(app, token_for(household_login, household, Feed.PRIVATE),
                         "stranger@example.org")
    set_private_messaging(app, business, False)
    item = reply_item(admin_browser.get(PAGE).get_data(as_text=True), reply.id)
    assert "File into" not in item and "it can only be discarded" in item
    assert "Discard" in item
    before = every_row(app)
    answer = admin_browser.submit(f"{PAGE}/{reply.id}/file",
                                  data={"client_id": household.id, "feed": "conversation"})
    assert answer.status_code == 302
    assert every_row(app) == before


def test_filing_into_another_business_client_is_refused(app, admin_browser, household,
                                                        household_login, stranger_business,
                                                        make_client):
    theirs = make_client(business=stranger_business)
    reply = reply_of_a_stranger(app, household, household_login)
    before = every_row(app)
    assert admin_browser.submit(f"{PAGE}/{reply.id}/file", data={
        "client_id": theirs.id, "feed": "conversation"}).status_code == 404
    assert every_row(app) == before


@pytest.mark.parametrize("hx", [False, True], ids=["page", "htmx"])
def test_filing_without_a_choice_says_so_and_changes_nothing(app, admin_browser, household,
                                                             household_login, hx):
    reply = reply_of_a_stranger(app, household, household_login)
    before = every_row(app)
    data = {"client_id": "", "feed": "conversation"}
    if hx:
        answer = admin_browser.htmx("POST", f"{PAGE}/{reply.id}/file", data=data)
        assert answer.status_code == 200
        body = answer.get_data(as_text=True)
    else:
        answer = admin_browser.submit(f"{PAGE}/{reply.id}/file", data=data)
        assert answer.status_code == 302
        body = admin_browser.get(answer.location).get_data(as_text=True)
    assert "Choose a client and a feed" in body and f'id="reply-{reply.id}"' in body
    assert every_row(app) == before


def test_a_reply_filed_or_discarded_is_gone_from_the_queue(app, admin_browser, household,
                                                          household_login):
    reply = reply_of_a_stranger(app, household, household_login)
    admin_browser.submit(f"{PAGE}/{reply.id}/discard")
    before = every_row(app)
    assert admin_browser.submit(f"{PAGE}/{reply.id}/file", data={
        "client_id": household.id, "feed": "conversation"}).status_code == 404
    assert admin_browser.submit(f"{PAGE}/{reply.id}/discard").status_code == 404
    assert every_row(app) == before
    assert "stranger@example.org" not in admin_browser.get(PAGE).get_data(as_text=True)


def test_two_people_filing_at_once_make_one_message(app, admin, office_manager, household,
                                                    household_login):
    reply = reply_of_a_stranger(app, household, household_login)
    with app.app_context():
        client = db.session.get(Client, household.id)
        queue.file_reply(db.session.get(User, admin.id), db.session.get(InboundMessage, reply.id),
                         client, Feed.CONVERSATION)
        db.session.expire_all()
        stale = InboundMessage(**{column: getattr(reply, column) for column in (
            "id", "dedupe_key", "channel", "raw_key", "sender", "business_id")})
        with pytest.raises(queue.AlreadyResolved):
            queue.file_reply(db.session.get(User, office_manager.id), stale, client,
                             Feed.CONVERSATION)
    assert count_rows(app, Message, Message.client_id == household.id) == 1


def test_discarding_asks_first_then_removes_the_reply_and_its_raw_email(
        app, admin_browser, admin, household, household_login):
    reply = reply_of_a_stranger(app, household, household_login)
    url = f"{PAGE}/{reply.id}/discard"
    question = admin_browser.htmx("GET", url).get_data(as_text=True)
    assert "Discard this reply?" in question and f'id="reply-{reply.id}"' in question
    page = admin_browser.get(url).get_data(as_text=True)
    assert "Discard this reply?" in page and "<html" in page
    kept = admin_browser.htmx("GET", f"{PAGE}/{reply.id}").get_data(as_text=True)
    assert "Discard this reply?" not in kept and "File into" in kept
    answer = admin_browser.htmx("POST", url)
    body = answer.get_data(as_text=True)
    assert answer.status_code == 200 and "discarded" in body
    # The menu's count goes with it, out of band: nothing waits any more.
    assert '<span id="unmatched-replies-count" hx-swap-oob="true"></span>' in body
    discarded = row(app, InboundMessage, reply.id)
    assert (discarded.outcome, discarded.resolved_by_id, discarded.raw_key) == (
        InboundOutcome.DISCARDED, admin.id, None)
    with app.app_context():
        with pytest.raises(FileNotFoundError):
            storage().read(reply.raw_key)
        event = db.session.scalar(
            select(AuditEvent).where(AuditEvent.action == "reply.discarded"))
        assert (event.actor_id, event.details["sender"]) == (admin.id, "stranger@example.org")
    log = admin_browser.get("/settings/audit-log").get_data(as_text=True)
    assert "discarded a reply by email from <bdi>stranger@example.org</bdi>" in log


def test_the_queue_pages_newest_first_at_a_constant_query_count(app, admin_browser, admin,
                                                                business):
    def queue_some(count, start):
        with app.app_context():
            for number in range(start, start + count):
                record(dedupe_key=f"{number:064d}", business_id=business.id,
                       sender=f"person{number}@example.org")

    queue_some(2, 0)
    few = count_queries(app, admin_browser, PAGE)
    queue_some(40, 2)
    many = count_queries(app, admin_browser, PAGE)
    assert many == few
    body = admin_browser.get(PAGE).get_data(as_text=True)
    assert body.index("person41@") < body.index("person40@")
    assert "person17@" in body and "person16@" not in body  # 25 a page
    more = re.search(r'href="([^"]+before=\d+)"', body).group(1).replace("&amp;", "&")
    older = admin_browser.htmx("GET", more).get_data(as_text=True)
    assert "person16@" in older and "person0@" in older and "person17@" not in older


def test_a_queued_text_is_filed_as_a_text_with_its_picture(app, admin_browser, admin, household):
    """A text's raw is a small email (From: the number, the text as body, MMS pictures as
    attachments): filing reads it the same way."""
    text = EmailMessage()
    text["From"] = "+15550102030"
    text.set_content("Running late, back at 6")
    text.add_attachment(png_bytes((16, 12)), maintype="image", subtype="png",
                        filename="mms.png")
    with app.app_context():
        reply = queue.record_unmatched(
            channel=InboundChannel.SMS, dedupe_key="e" * 64, raw=bytes(text),
            reason="No login has this phone number.", sender="+15550102030",
            text="Running late, back at 6", attachment_count=1, business_id=household.business_id,
        )
    answer = admin_browser.submit(f"{PAGE}/{reply.id}/file",
                                  data={"client_id": household.id, "feed": "conversation"})
    assert answer.status_code == 302
    message = row(app, Message, row(app, InboundMessage, reply.id).message_id)
    assert (message.author_id, message.via, message.text) == (
        admin.id, "sms", "Reply by text from +15550102030:\n\nRunning late, back at 6")
    assert count_rows(app, Attachment, Attachment.message_id == message.id) == 1


def test_filing_leaves_out_a_file_the_upload_path_refuses_and_says_so(
        app, admin_browser, household, household_login):
    with app.app_context():
        outcome = ingest_email(reply_email(
            address_for(token_for(household_login, household)), household_login.email,
            files=[("broken.png", b"not a picture"), ("rex.png", png_bytes())]))
    assert outcome.kind == InboundOutcome.UNMATCHED and "attachment" in outcome.reason
    admin_browser.submit(f"{PAGE}/{outcome.inbound_id}/file",
                         data={"client_id": household.id, "feed": "conversation"})
    message = row(app, Message, row(app, InboundMessage, outcome.inbound_id).message_id)
    assert message.author_id == household_login.id
    assert message.text.startswith("Not attached: broken.png: ")
    assert message.text.endswith("\n\nThe gate code is 4321 now.")
    assert count_rows(app, Attachment, Attachment.message_id == message.id) == 1


def test_the_queue_rule_and_its_sql_twin_agree(app, business, stranger_business, admin,
                                              office_manager, office_manager_private,
                                              assigned_staff, household_login, stranger_admin):
    from portal import policy

    people = [admin, office_manager, office_manager_private, assigned_staff, household_login,
              stranger_admin]
    with app.app_context():
        owners = [business, business, business, stranger_business, business, business]
        rows = [record(dedupe_key=f"{n:064d}", business_id=owner.id, sender=f"p{n}@example.org")
                for n, owner in enumerate(owners)]
        # The last two the portal could not read: one whose feed is unknown, one whose header
        # lines still named a Conversation reply address.
        shapes = [(None, False), (Feed.CONVERSATION, False), (Feed.PRIVATE, False),
                  (None, False), (None, True), (Feed.CONVERSATION, True)]
        for reply, (feed, unreadable) in zip(rows, shapes, strict=True):
            reply.feed, reply.unreadable = feed, unreadable
        db.session.commit()
        for person in people:
            viewer = db.session.get(User, person.id)
            listed = {reply.id for reply in queue.pending(viewer).replies}
            allowed = {reply.id for reply in rows if policy.can_see_unmatched_reply(
                viewer, reply.business_id, reply.feed, reply.unreadable)}
            assert listed == allowed, viewer
            assert queue.pending_count(viewer) == len(allowed)
        visible = {person.name: {reply.id for reply in queue.pending(
            db.session.get(User, person.id)).replies} for person in people}
    assert visible[admin.name] == visible[office_manager_private.name] == {
        rows[0].id, rows[1].id, rows[2].id, rows[4].id, rows[5].id}
    assert visible[office_manager.name] == {rows[0].id, rows[1].id, rows[5].id}
    assert visible[assigned_staff.name] == visible[household_login.name] == set()
    assert visible[stranger_admin.name] == {rows[3].id}
