"""Texts that come back: Twilio's incoming-message webhook (POST /sms/twilio), signed, answered
in TwiML; a text lands in the feed its sender may post in, or waits in Unmatched replies;
MMS pictures are fetched from (the loopback) Twilio; STOP, START and HELP. And texts going out
through Twilio's library, with its errors mapped for the worker's retries."""

import email
import secrets
import threading
from datetime import UTC, datetime, timedelta
from email.policy import default as email_policy
from http.server import ThreadingHTTPServer
from io import BytesIO
from xml.etree import ElementTree

import pillow_heif
import pytest
import time_machine
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from twilio.request_validator import RequestValidator

from portal import throttle
from portal.extensions import db
from portal.inbound import queue
from portal.inbound.texts import dedupe_key
from portal.models import (
    Attachment,
    AttachmentKind,
    Business,
    Channel,
    Client,
    DeliveryStatus,
    Feed,
    InboundChannel,
    InboundMessage,
    InboundOutcome,
    Message,
    MessageApproval,
    Notification,
    Role,
    User,
    utcnow,
)
from portal.phones import e164
from portal.storage import LocalStorage, storage

from .helpers import (
    BASE_URL,
    TwilioStandIn,
    confirmed_phone,
    deliver,
    every_row,
    free_port,
    make_due,
    update_row,
)

INBOUND_URL = f"{BASE_URL}/sms/twilio"
CARLA = "+15550102030"
MEDIA = "/2010-04-01/Accounts/AC123/Messages/MM1/Media/ME{}"


@pytest.fixture
def texting(app, twilio, smtp):
    """Twilio on loopback, the portal at its public address, notifications due at once."""
    app.config.update(PORTAL_BASE_URL=BASE_URL, NOTIFICATION_DELAY_SECONDS=0)
    return twilio


@pytest.fixture
def carla(app, household_login):
    """The household's login, with her mobile number written as people write it."""
    update_row(app, User, household_login.id, **confirmed_phone("(555) 010-2030"), notify_sms=True)
    return household_login


def text_in(app, body: str = "", sender: str = CARLA, *, sid: str | None = None,
            media: tuple = (), signature: str | None = None, signed_url: str = INBOUND_URL,
            **fields):
    """Twilio's incoming-message webhook, signed as Twilio signs it unless told otherwise.
    media: (content type, address) pairs."""
    form = {"MessageSid": sid or "SM" + secrets.token_hex(16), "AccountSid": "AC123",
            "From": sender, "To": "+15550001111", "Body": body, "NumMedia": str(len(media)),
            **fields}
    for index, (content_type, url) in enumerate(media):
        form[f"MediaContentType{index}"], form[f"MediaUrl{index}"] = content_type, url
    if signature is None:
        signature = RequestValidator("secret").compute_signature(signed_url, form)
    headers = {"X-Twilio-Signature": signature} if signature else {}
    return app.test_client().post("/sms/twilio", data=form, headers=headers)


def replied(response) -> list[str]:
    """The texts a TwiML answer sends back."""
    assert response.status_code == 200 and response.mimetype == "text/xml"
    root = ElementTree.fromstring(response.data)
    assert root.tag == "Response"
    return [element.text for element in root.iter("Message")]


def inbound_rows(app) -> list[InboundMessage]:
    with app.app_context():
        rows = list(db.session.scalars(select(InboundMessage).order_by(InboundMessage.id)))
        for row in rows:
            db.session.expunge(row)
        return rows


def feed_messages(app, client) -> list[Message]:
    with app.app_context():
        found = list(db.session.scalars(
            select(Message).where(Message.client_id == client.id).order_by(Message.id)))
        for message in found:
            db.session.expunge(message)
        return found


def served(app, path: str, content_type: str, data: bytes) -> str:
    """Puts a picture on the loopback Twilio; its address, as a webhook names it."""
    TwilioStandIn.media[path] = (content_type, data)
    return twilio_url(app, path)


def twilio_url(app, path: str) -> str:
    return app.config["TWILIO_API_BASE"] + path


def phone_jpeg() -> bytes:
    image = Image.new("RGB", (64, 48), "orange")
    exif = image.getexif()
    exif[0x8825] = {1: "N", 2: (41.0, 53.0, 24.0)}  # GPS: where the client lives
    output = BytesIO()
    image.save(output, "JPEG", exif=exif)
    return output.getvalue()


def heic() -> bytes:
    pillow_heif.register_heif_opener()
    output = BytesIO()
    Image.new("RGB", (64, 48), "teal").save(output, "HEIF")
    return output.getvalue()


# --- the signature ------------------------------------------------------------------------------

def test_a_signed_text_is_accepted_and_answered_with_empty_twiml(app, texting, carla, household):
    response = text_in(app, "Gate code is 4321 now")
    assert replied(response) == []
    assert [m.text for m in feed_messages(app, household)] == ["Gate code is 4321 now"]


@pytest.mark.parametrize("signature, signed_url", [
    ("Zm9yZ2Vk", INBOUND_URL),                               # a wrong signature
    ("", INBOUND_URL),                                       # none at all
    (None, "https://elsewhere.example/sms/twilio"),          # signed for another address
    (None, f"{BASE_URL}/sms/status"),                        # signed for the other webhook
], ids=["wrong", "missing", "other-host", "other-path"])
def test_an_unsigned_or_wrongly_signed_text_is_refused_and_changes_nothing(
    app, texting, carla, household, signature, signed_url
):
    before = every_row(app)
    response = text_in(app, "STOP", signature=signature, signed_url=signed_url)
    assert response.status_code == 403
    assert text_in(app, "Gate code", signature=signature,
                   signed_url=signed_url).status_code == 403
    assert every_row(app) == before


def test_without_an_auth_token_nothing_is_signed(app, texting, carla, household):
    app.config["TWILIO_AUTH_TOKEN"] = None
    before = every_row(app)
    assert text_in(app, "Hello").status_code == 403
    assert every_row(app) == before


def test_status_callbacks_are_checked_with_twilios_validator(app, texting):
    fields = {"MessageSid": "SM1", "MessageStatus": "delivered"}
    url = f"{BASE_URL}/sms/status"
    good = RequestValidator("secret").compute_signature(url, fields)
    other = RequestValidator("not-the-token").compute_signature(url, fields)
    post = app.test_client().post
    assert post("/sms/status", data=fields, headers={"X-Twilio-Signature": good}).status_code \
        == 204
    assert post("/sms/status", data=fields, headers={"X-Twilio-Signature": other}).status_code \
        == 403
    assert post("/sms/status", data=fields).status_code == 403


# --- who sent it, and where it goes -------------------------------------------------------------

def test_a_clients_text_lands_in_their_conversation_via_text_and_tells_the_admin_team(
    app, texting, carla, household, admin, logged_in
):
    update_row(app, User, admin.id, **confirmed_phone("+1 555 777 0001"), notify_sms=True)
    assert replied(text_in(app, "Rex is limping a little")) == []
    [message] = feed_messages(app, household)
    assert (message.author_id, message.feed, message.via, message.text) == (
        carla.id, Feed.CONVERSATION, "sms", "Rex is limping a little")
    [row] = inbound_rows(app)
    assert (row.outcome, row.channel, row.message_id, row.sender_user_id, row.client_id) == (
        InboundOutcome.POSTED, InboundChannel.SMS, message.id, carla.id, household.id)
    make_due(app)
    deliver(app)
    texted_to = [form["To"][0] for _, form in texting]
    assert texted_to == ["+15557770001"]  # the admin; never Carla her own text
    assert "Rex is limping a little" in texting[0][1]["Body"][0]
    with app.app_context():
        told = {row.recipient_id for row in db.session.scalars(select(Notification))}
    assert admin.id in told and carla.id not in told
    page = logged_in(admin).get(f"/clients/{household.id}").get_data(as_text=True)
    assert "Rex is limping a little" in page and "via text" in page


def test_a_clients_text_while_the_business_is_closed_is_answered_automatically(
    app, texting, carla, household, admin, business
):
    # Open weekdays 8 to 6 in Chicago; Saturday, Jan 9, 2027 at 10 AM there.
    update_row(app, Business, business.id,
               weekly_hours={str(day): ["08:00", "18:00"] for day in range(5)})
    with time_machine.travel(datetime(2027, 1, 9, 16, tzinfo=UTC), tick=True):
        assert replied(text_in(app, "Can you walk Rex today?")) == []
        make_due(app)
        deliver(app)
    asked, answer = feed_messages(app, household)
    assert (asked.via, answer.via) == ("sms", "auto")
    # The answer goes back the way the question came: by text, to Carla alone.
    [(to, body)] = [(form["To"][0], form["Body"][0]) for _, form in texting]
    assert to == "+15550102030" and "We're closed until Monday 8:00 AM" in body
    assert body.startswith(f"{business.name}: Thanks for your message.")  # signed once


def texted_about(app, person, *clients, hours_ago: float = 1):
    """Texts the portal sent this person about these clients, in this order, that long ago
    (the last one a minute later than the one before)."""
    with app.app_context():
        for minutes, client in enumerate(clients):
            message = Message(business_id=client.business_id, client_id=client.id,
                              feed=Feed.CONVERSATION, author_id=person.id,
                              text=f"About {client.name}")
            db.session.add(message)
            db.session.flush()
            sent = utcnow() - timedelta(hours=hours_ago) + timedelta(minutes=minutes)
            db.session.add(Notification(
                business_id=client.business_id, message_id=message.id, recipient_id=person.id,
                channel=Channel.SMS, status=DeliveryStatus.SENT, due_at=sent, sent_at=sent))
        db.session.commit()


def test_a_staff_text_answers_the_one_client_they_were_texted_about_today(
    app, texting, admin, household, other_household, assigned_staff, make_message,
    make_service
):
    update_row(app, User, assigned_staff.id, **confirmed_phone("555-010-9999"), notify_sms=True)
    make_service(other_household, assigned_staff)
    texted_about(app, assigned_staff, other_household, hours_ago=30)  # yesterday's
    make_message(household, admin, "Riveras: walk at 3")
    make_due(app)
    deliver(app)
    assert len(texting) == 1
    text_in(app, "On my way", sender="+15550109999")
    [_, answer] = feed_messages(app, household)
    assert (answer.author_id, answer.text, answer.via) == (assigned_staff.id, "On my way", "sms")
    assert len(feed_messages(app, other_household)) == 1


def test_a_staff_text_that_needs_approval_waits_in_the_queue_and_filing_approves_it(
    app, texting, logged_in, admin, household, assigned_staff, make_message
):
    update_row(app, User, assigned_staff.id, **confirmed_phone("555-010-9999"),
               message_approval=MessageApproval.ALWAYS)
    texted_about(app, assigned_staff, household)
    text_in(app, "Walk done, all good", sender="+15550109999")
    assert len(feed_messages(app, household)) == 1  # the text it answers
    [row] = inbound_rows(app)
    assert row.outcome == InboundOutcome.UNMATCHED
    assert row.reason == ("Sam Sitter's messages need approval before clients see them: file it "
                          "to approve it.")
    # Filed by the admin team into the feed: posted as the sitter's, as approved.
    logged_in(admin).submit(f"/settings/unmatched-replies/{row.id}/file",
                            {"client_id": household.id, "feed": "conversation"})
    assert [(m.author_id, m.text) for m in feed_messages(app, household)][-1] == (
        assigned_staff.id, "Walk done, all good")


def test_a_staff_text_after_texts_about_two_clients_today_asks_which_is_meant(
    app, texting, admin, household, other_household, assigned_staff, make_service
):
    """Texted about the Okafors, then the Riveras: the answer may be the Okafors'; posting it
    into the Riveras' feed, which the Riveras read, would be a guess."""
    update_row(app, User, assigned_staff.id, **confirmed_phone("555-010-9999"))
    make_service(other_household, assigned_staff)
    texted_about(app, assigned_staff, other_household, household, other_household, household)
    text_in(app, "Done, the key is back under the mat", sender="+15550109999")
    assert len(feed_messages(app, household)) == 2 and len(feed_messages(app, other_household)) == 2
    [row] = inbound_rows(app)
    assert row.outcome == InboundOutcome.UNMATCHED
    assert row.reason == ("Sam Sitter was texted about The Rivera Household and The Okafor "
                          "Household in the last day (the latest first): which one is meant?")
    assert (row.client_id, row.feed, row.sender_user_id) == (
        household.id, Feed.CONVERSATION, assigned_staff.id)


def test_a_staff_text_names_at_most_four_clients_it_may_answer(
    app, texting, admin, household, assigned_staff, make_client, make_service
):
    update_row(app, User, assigned_staff.id, **confirmed_phone("555-010-9999"))
    clients = [household] + [make_client(name=f"Family {n}") for n in range(1, 6)]
    for client in clients:
        make_service(client, assigned_staff)
    texted_about(app, assigned_staff, *clients)
    text_in(app, "Done", sender="+15550109999")
    [row] = inbound_rows(app)
    assert row.reason == ("Sam Sitter was texted about Family 5, Family 4, Family 3 and 3 more "
                          "in the last day (the latest first): which one is meant?")
    assert row.client_id == clients[-1].id


def test_a_staff_text_a_day_after_their_last_text_is_queued(
    app, texting, admin, household, assigned_staff
):
    update_row(app, User, assigned_staff.id, **confirmed_phone("555-010-9999"))
    texted_about(app, assigned_staff, household, hours_ago=25)
    text_in(app, "Sorry, only saw this now", sender="+15550109999")
    assert len(feed_messages(app, household)) == 1
    [row] = inbound_rows(app)
    assert row.reason == ("Sam Sitter has not been texted about a client in the last day, so "
                          "there is no feed this answers. The last text to them, earlier, was "
                          "about The Rivera Household.")
    assert (row.outcome, row.client_id) == (InboundOutcome.UNMATCHED, household.id)


def test_an_office_managers_text_follows_the_same_rule(
    app, texting, household, household_login, office_manager, make_message
):
    update_row(app, User, office_manager.id, **confirmed_phone("+15550104444"), notify_sms=True)
    make_message(household, household_login, "Is Friday still on?")
    make_due(app)
    deliver(app)
    text_in(app, "Yes, Friday at 9", sender="+15550104444")
    assert [(m.author_id, m.text) for m in feed_messages(app, household)][-1] == (
        office_manager.id, "Yes, Friday at 9")


def test_a_staff_text_where_policy_no_longer_lets_them_post_is_queued(
    app, texting, admin, household, unassigned_staff, make_message
):
    """Texted about the household while they served it; the service is over since."""
    update_row(app, User, unassigned_staff.id, **confirmed_phone("+15550108888"))
    message = make_message(household, admin, "Thanks for today")
    with app.app_context():
        db.session.add(Notification(
            business_id=household.business_id, message_id=message.id,
            recipient_id=unassigned_staff.id, channel=Channel.SMS, status=DeliveryStatus.SENT,
            due_at=message.created_at, sent_at=message.created_at))
        db.session.commit()
    text_in(app, "Anytime!", sender="+15550108888")
    assert len(feed_messages(app, household)) == 1
    [row] = inbound_rows(app)
    assert row.outcome == InboundOutcome.UNMATCHED
    assert row.reason == "Uma Unassigned may not post in The Rivera Household's feed now."
    assert (row.sender_user_id, row.business_id) == (unassigned_staff.id, household.business_id)


def test_a_staff_member_never_texted_is_queued(app, texting, unassigned_staff):
    update_row(app, User, unassigned_staff.id, **confirmed_phone("+15550108888"))
    text_in(app, "Who is this?", sender="+15550108888")
    [row] = inbound_rows(app)
    assert row.outcome == InboundOutcome.UNMATCHED and "has not been texted" in row.reason


def test_an_unknown_number_is_queued_with_the_text_kept(app, texting, carla, household):
    text_in(app, "Hi, do you walk cats?", sender="+15559990000")
    [row] = inbound_rows(app)
    # The portal serves one business: the text is for its admin team.
    assert (row.outcome, row.business_id, row.sender, row.text) == (
        InboundOutcome.UNMATCHED, household.business_id, "+15559990000",
        "Hi, do you walk cats?")
    assert row.reason == "No one in the portal has the number +15559990000."
    with app.app_context():
        raw = email.message_from_bytes(storage().read(row.raw_key), policy=email_policy)
    assert raw["From"] == "+15559990000"
    assert raw.get_body(("plain",)).get_content().strip() == "Hi, do you walk cats?"
    assert feed_messages(app, household) == []


def test_an_unknown_number_names_no_business_when_the_portal_serves_several(
    app, texting, household, stranger_business
):
    text_in(app, "Hi, do you walk cats?", sender="+15559990000")
    [row] = inbound_rows(app)
    assert (row.outcome, row.business_id) == (InboundOutcome.UNMATCHED, None)


def test_a_number_two_people_share_is_queued(app, texting, carla, household, make_user):
    make_user(Role.CLIENT, client=household, name="Carlos Client", phone="+1 555 010 2030")
    text_in(app, "Which of us is this?")
    [row] = inbound_rows(app)
    assert row.outcome == InboundOutcome.UNMATCHED
    assert row.reason == "2 people have the number +15550102030: Carla Client, Carlos Client."
    assert (row.business_id, row.sender_user_id) == (household.business_id, None)


def test_a_deactivated_login_does_not_share_the_number(app, texting, carla, household, make_user):
    make_user(Role.CLIENT, client=household, name="Old Login", phone=CARLA, active=False)
    text_in(app, "Still me")
    assert [m.author_id for m in feed_messages(app, household)] == [carla.id]


def test_a_number_not_confirmed_does_not_share_the_number(app, texting, carla, household,
                                                          make_user):
    # Typed in for someone else (an invitation), never confirmed: not theirs yet.
    make_user(Role.CLIENT, client=household, name="Carlos Client", phone=CARLA,
              phone_confirmed_at=None)
    text_in(app, "Still me")
    assert [m.author_id for m in feed_messages(app, household)] == [carla.id]


def test_a_text_from_a_number_nobody_confirmed_is_queued(app, texting, carla, household):
    update_row(app, User, carla.id, phone_confirmed_at=None)
    text_in(app, "Is this thing on?")
    [row] = inbound_rows(app)
    assert (row.outcome, row.sender_user_id) == (InboundOutcome.UNMATCHED, None)
    assert row.reason == "No one in the portal has the number +15550102030."
    assert feed_messages(app, household) == []


def test_stop_from_a_number_nobody_confirmed_names_no_one(app, texting, carla, household):
    update_row(app, User, carla.id, phone_confirmed_at=None)
    text_in(app, "STOP")
    [row] = inbound_rows(app)
    assert row.reason == "STOP: texts turned off for no one in the portal"
    with app.app_context():
        assert db.session.get(User, carla.id).sms_opted_out_at is None


def test_the_same_message_sid_twice_makes_one_message(app, texting, carla, household):
    assert replied(text_in(app, "Twice?", sid="SMsame")) == []
    assert replied(text_in(app, "Twice?", sid="SMsame")) == []
    assert len(feed_messages(app, household)) == 1
    [row] = inbound_rows(app)
    assert row.dedupe_key == dedupe_key("SMsame")
    assert feed_messages(app, household)[0].send_key == dedupe_key("SMsame")


def test_a_flood_of_texts_is_queued_beyond_the_posting_limit(app, texting, carla, household):
    app.config["THROTTLE_MESSAGES_PER_USER"] = "2 per minute"
    for number in range(3):
        text_in(app, f"Text {number}")
    assert [m.text for m in feed_messages(app, household)] == ["Text 0", "Text 1"]
    assert inbound_rows(app)[-1].outcome == InboundOutcome.UNMATCHED
    assert inbound_rows(app)[-1].reason.startswith("Too many texts from this number")


@pytest.mark.parametrize("written, expected", [
    ("(555) 010-2030", "+15550102030"), ("555.010.2030", "+15550102030"),
    ("1-555-010-2030", "+15550102030"), ("+1 555 010 2030 ext. 7", "+15550102030"),
    ("+44 20 7946 0958", "+442079460958"), ("0044 20 7946 0958", "+442079460958"),
    ("010-2030", None), ("call me", None), ("", None),
])
def test_numbers_are_compared_as_e164(written, expected):
    assert e164(written) == expected


# --- MMS ----------------------------------------------------------------------------------------

def test_mms_photos_land_as_attachments_through_the_upload_path(app, texting, carla, household):
    media = (("image/jpeg", served(app, MEDIA.format(1), "image/jpeg", phone_jpeg())),
             ("image/heic", served(app, MEDIA.format(2), "image/heic", heic())))
    assert replied(text_in(app, "Look at his paw", media=media)) == []
    [message] = feed_messages(app, household)
    assert message.text == "Look at his paw"
    with app.app_context():
        attachments = list(db.session.scalars(
            select(Attachment).where(Attachment.message_id == message.id)
            .order_by(Attachment.position)))
        stored = [storage().read(attachment.storage_key) for attachment in attachments]
    assert [(a.kind, a.content_type, a.original_name) for a in attachments] == [
        (AttachmentKind.IMAGE, "image/jpeg", "photo-1.jpg"),
        (AttachmentKind.IMAGE, "image/jpeg", "photo-2.heic"),
    ]
    assert b"Exif" not in stored[0] and Image.open(BytesIO(stored[1])).format == "JPEG"
    assert TwilioStandIn.fetched == [MEDIA.format(1), MEDIA.format(2)]


def test_a_photo_alone_is_a_message(app, texting, carla, household):
    media = (("image/jpeg", served(app, MEDIA.format(1), "image/jpeg", phone_jpeg())),)
    text_in(app, "", media=media)
    [message] = feed_messages(app, household)
    assert message.text == "" and message.via == "sms"


def test_media_is_fetched_only_with_the_accounts_credentials(app, texting, carla, household):
    """The loopback Twilio refuses media without them: a fetch that sent none would fail."""
    app.config["TWILIO_AUTH_TOKEN"] = "secret"
    TwilioStandIn.ACCOUNT = ("AC123", "another-token")
    try:
        media = (("image/jpeg", served(app, MEDIA.format(1), "image/jpeg", phone_jpeg())),)
        text_in(app, "Paw", media=media)
    finally:
        TwilioStandIn.ACCOUNT = ("AC123", "secret")
    [row] = inbound_rows(app)
    assert row.reason == "“photo-1.jpg” could not be fetched from Twilio: Twilio answered 401."


def test_a_fake_image_is_refused_clearly_and_the_text_waits_for_the_team(
    app, texting, carla, household
):
    media = (("image/jpeg", served(app, MEDIA.format(1), "image/jpeg", b"MZ\x90\x00 not a photo")),)
    answer = replied(text_in(app, "See attached", media=media))
    assert feed_messages(app, household) == []
    [row] = inbound_rows(app)
    assert row.outcome == InboundOutcome.UNMATCHED
    assert row.reason == ("“photo-1.jpg” is not a photo we can show. "
                          "Use JPEG, PNG, WebP, GIF or HEIC.")
    assert (row.text, row.attachment_count, row.sender_user_id) == ("See attached", 0, carla.id)
    assert answer == ["Happy Tails: your text was passed to the team, but without what could "
                      "not be used: “photo-1.jpg” is not a photo we can show. Use JPEG, PNG, "
                      "WebP, GIF or HEIC."]


@pytest.mark.parametrize("where, reason", [
    ("https://evil.example/2010-04-01/Accounts/AC123/Messages/MM1/Media/ME1",
     "it is not the account's media at Twilio"),
    ("{api}/2010-04-01/Accounts/AC999/Messages/MM1/Media/ME1",
     "it is not the account's media at Twilio"),
    ("redirect-elsewhere", "Twilio sent it on to 127.0.0.2"),
    ("missing", "Twilio answered 404"),
    ("too-large", "it is larger than 1 MB"),
], ids=["other-host", "other-account", "redirected-elsewhere", "gone", "too-large"])
def test_media_from_anywhere_but_the_accounts_twilio_is_not_fetched(
    app, texting, carla, household, where, reason
):
    url = served(app, MEDIA.format(1), "image/jpeg", phone_jpeg())
    if where == "redirect-elsewhere":
        TwilioStandIn.media[MEDIA.format(1)] = ("redirect", f"http://127.0.0.2:{free_port()}/ME1")
    elif where == "missing":
        url = twilio_url(app, MEDIA.format(404))
    elif where == "too-large":
        app.config["UPLOAD_MAX_FILE_BYTES"] = 1024 * 1024
        served(app, MEDIA.format(1), "image/jpeg", b"\xff" * (1024 * 1024 + 1))
    elif where != "ok":
        url = where.format(api=app.config["TWILIO_API_BASE"])
    text_in(app, "Paw", media=(("image/jpeg", url),))
    [row] = inbound_rows(app)
    assert row.reason == f"“photo-1.jpg” could not be fetched from Twilio: {reason}."
    assert row.text == "Paw" and feed_messages(app, household) == []


def test_media_redirected_within_twilio_is_followed(
    app, texting, carla, household
):
    url = served(app, "/cdn/ME1", "image/jpeg", phone_jpeg())
    TwilioStandIn.media[MEDIA.format(1)] = ("redirect", url)
    text_in(app, "Paw", media=(("image/jpeg", twilio_url(app, MEDIA.format(1))),))
    assert TwilioStandIn.fetched == [MEDIA.format(1), "/cdn/ME1"]
    assert len(feed_messages(app, household)) == 1


def test_a_queued_texts_raw_keeps_its_pictures(app, texting, household):
    media = (("image/jpeg", served(app, MEDIA.format(1), "image/jpeg", phone_jpeg())),)
    text_in(app, "From a stranger", sender="+15559990000", media=media)
    [row] = inbound_rows(app)
    assert row.attachment_count == 1
    with app.app_context():
        raw = email.message_from_bytes(storage().read(row.raw_key), policy=email_policy)
    [picture] = list(raw.iter_attachments())
    assert (picture.get_filename(), picture.get_content()) == ("photo-1.jpg", phone_jpeg())


def test_a_queued_text_is_filed_with_its_text_and_picture(app, texting, household, admin):
    media = (("image/jpeg", served(app, MEDIA.format(1), "image/jpeg", phone_jpeg())),)
    text_in(app, "This is Carla's sister, Rex's paw?", sender="+15559990000", media=media)
    [row] = inbound_rows(app)
    with app.app_context():
        filed = queue.file_reply(db.session.get(User, admin.id),
                                 db.session.get(InboundMessage, row.id),
                                 db.session.get(Client, household.id), Feed.CONVERSATION)
        kinds = [a.kind for a in db.session.scalars(
            select(Attachment).where(Attachment.message_id == filed.id))]
        assert "This is Carla's sister, Rex's paw?" in filed.text and filed.via == "sms"
    assert kinds == [AttachmentKind.IMAGE]


def test_a_queued_text_is_filed_word_for_word_never_cut_as_an_email_quote(
    app, texting, household, admin
):
    written = "On Monday he wrote:\n> the gate code is 4821\nIt is 9034 now. Thanks, Sam"
    text_in(app, written, sender="+15559990000")
    [row] = inbound_rows(app)
    with app.app_context():
        filed = queue.file_reply(db.session.get(User, admin.id),
                                 db.session.get(InboundMessage, row.id),
                                 db.session.get(Client, household.id), Feed.CONVERSATION)
        assert filed.text.endswith(written)


# --- STOP, START, HELP --------------------------------------------------------------------------

@pytest.mark.parametrize("word", ["STOP", " stop ", "Unsubscribe\n", "STOPALL"])
def test_stop_turns_texts_off_and_is_never_a_message(
    app, texting, carla, household, admin, make_message, word
):
    assert replied(text_in(app, word)) == []
    assert feed_messages(app, household) == []
    [row] = inbound_rows(app)
    assert (row.outcome, row.reason) == (InboundOutcome.KEYWORD,
                                         "STOP: texts turned off for Carla Client")
    with app.app_context():
        assert db.session.get(User, carla.id).sms_opted_out_at is not None
    make_message(household, admin, "Walk moved to 3pm")
    make_due(app)
    deliver(app)
    assert texting == []  # emailed, not texted


def test_start_turns_them_back_on(app, texting, carla, household, admin, make_message):
    text_in(app, "STOP")
    assert replied(text_in(app, "Start")) == []
    with app.app_context():
        assert db.session.get(User, carla.id).sms_opted_out_at is None
    make_message(household, admin, "Walk moved to 3pm")
    make_due(app)
    deliver(app)
    assert [form["To"] for _, form in texting] == [["+15550102030"]]  # as Twilio wants it


def test_a_stop_by_text_shows_on_the_persons_page_until_start(
    app, texting, carla, household, logged_in
):
    stopped = "Texts are off: this number opted out by text (STOP, or a word like it). " \
        "Text START to +15550001111 to turn them back on."
    text_in(app, "STOP")
    assert stopped in logged_in(carla).get("/notifications").get_data(as_text=True)
    text_in(app, "START")
    assert stopped not in logged_in(carla).get("/notifications").get_data(as_text=True)


def test_stop_is_for_everyone_with_that_number(app, texting, carla, household, make_user):
    other = make_user(Role.STAFF, name="Shared Phone", phone="5550102030")
    text_in(app, "STOP")
    with app.app_context():
        assert all(db.session.get(User, person.id).sms_opted_out_at
                   for person in (carla, other))


@pytest.mark.parametrize("word", [
    "Cancel", "End", "Quit", "Yes", "Info", "OPTOUT", "revoke", "optin",
])
def test_words_people_answer_with_are_messages_and_change_nothing(
    app, texting, carla, household, word
):
    """"Walk tomorrow at 3?" "Cancel." is an answer, not a wish for no more texts."""
    assert replied(text_in(app, word)) == []
    assert [m.text for m in feed_messages(app, household)] == [word]
    [row] = inbound_rows(app)
    assert row.outcome == InboundOutcome.POSTED
    with app.app_context():
        assert db.session.get(User, carla.id).sms_opted_out_at is None


def test_when_twilio_opted_the_number_out_on_a_word_it_is_off_and_the_word_posted(
    app, texting, carla, household, admin, make_message, logged_in
):
    """Twilio's Advanced Opt-Out stops texts to the number at the carrier on "Cancel" (and
    says so in OptOutType): the portal records it too, and the answer still reaches the feed."""
    assert replied(text_in(app, "Cancel", OptOutType="STOP")) == []
    assert [m.text for m in feed_messages(app, household)] == ["Cancel"]
    page = logged_in(carla).get("/notifications").get_data(as_text=True)
    assert "Texts are off: this number opted out by text (STOP, or a word like it). Text " \
           "START to +15550001111 to turn them back on." in page
    make_message(household, admin, "Walk moved to 3pm")
    make_due(app)
    deliver(app)
    assert texting == []
    text_in(app, "Yes", OptOutType="START")
    with app.app_context():
        assert db.session.get(User, carla.id).sms_opted_out_at is None
    assert [m.text for m in feed_messages(app, household)][-1] == "Yes"


def test_twilios_help_on_a_word_is_a_message_twilio_answered(app, texting, carla, household):
    assert replied(text_in(app, "Info", OptOutType="HELP")) == []
    assert [m.text for m in feed_messages(app, household)] == ["Info"]


def test_twilios_opt_out_holds_for_a_text_that_is_queued(
    app, texting, carla, household, make_user
):
    other = make_user(Role.STAFF, name="Shared Phone", phone="5550102030")
    text_in(app, "End", OptOutType="STOP")
    [row] = inbound_rows(app)
    assert (row.outcome, row.text) == (InboundOutcome.UNMATCHED, "End")
    with app.app_context():
        assert all(db.session.get(User, person.id).sms_opted_out_at
                   for person in (carla, other))


def test_help_answers_with_the_business_and_the_portals_link(app, texting, carla, household):
    [answer] = replied(text_in(app, "help"))
    assert answer.startswith("Happy Tails: ") and BASE_URL in answer and "STOP" in answer
    assert feed_messages(app, household) == []
    # From a number no one has: the business the portal serves.
    [answer] = replied(text_in(app, "HELP", sender="+15559990000"))
    assert answer.startswith("Happy Tails: ")
    # Twilio answers HELP itself when its own opt-out handling is on.
    assert replied(text_in(app, "HELP", OptOutType="HELP")) == []


# --- texts going out through Twilio's library ------------------------------------------------

@pytest.mark.parametrize("answer, status", [
    (500, DeliveryStatus.PENDING), (429, DeliveryStatus.PENDING), (400, DeliveryStatus.FAILED),
])
def test_twilios_refusals_are_retried_or_failed(
    app, texting, carla, household, admin, make_message, answer, status
):
    TwilioStandIn.answer = answer
    make_message(household, admin, "Walk moved to 3pm")
    make_due(app)
    deliver(app)
    with app.app_context():
        row = db.session.scalar(select(Notification).where(Notification.channel == Channel.SMS))
    assert row.status == status
    assert row.last_error == f"Twilio answered {answer}"


def test_twilio_unreachable_is_tried_again_later(app, texting, carla, household, admin,
                                                 make_message):
    app.config["TWILIO_API_BASE"] = f"http://127.0.0.1:{free_port()}"
    make_message(household, admin, "Walk moved to 3pm")
    make_due(app)
    deliver(app)
    with app.app_context():
        row = db.session.scalar(select(Notification).where(Notification.channel == Channel.SMS))
    assert row.status == DeliveryStatus.PENDING and row.last_error.startswith("Twilio unreachable")


def test_texts_go_to_the_number_as_twilio_wants_it_or_fail_clearly(
    app, texting, carla, household, admin, make_message
):
    make_message(household, admin, "Walk moved to 3pm")
    make_due(app)
    deliver(app)
    update_row(app, User, carla.id, **confirmed_phone("call the office"))
    make_message(household, admin, "Walk moved to 4pm")
    make_due(app)
    deliver(app)
    assert [form["To"] for _, form in texting] == [["+15550102030"]]
    with app.app_context():
        failed = db.session.scalar(select(Notification).where(
            Notification.channel == Channel.SMS, Notification.status == DeliveryStatus.FAILED))
    assert failed.last_error == "'call the office' is not a phone number a text can go to"


@pytest.mark.parametrize("fields", [
    {"NumMedia": "many"},
    {"NumMedia": "-3"},
    {"NumMedia": "999999"},
    {"NumMedia": "1", "MediaUrl0": "javascript:alert(1)"},
    {"NumMedia": "1", "MediaUrl0": "file:///etc/passwd"},
    {"From": "<script>alert(1)</script>" * 10},
    {"MessageSid": ""},
    {"MessageSid": "SM" + "9" * 5000},
    {"Body": "\x00\u202e" * 700},
], ids=["count-words", "count-negative", "count-huge", "javascript-url", "file-url",
        "from-markup", "no-sid", "long-sid", "control-characters"])
def test_signed_texts_with_hostile_values_get_a_clear_outcome(
    app, texting, carla, household, fields
):
    response = text_in(app, "Hello", **fields)
    assert response.status_code == 200 and replied(response) is not None
    rows = inbound_rows(app)
    if fields.get("MessageSid") == "":
        assert rows == []
    else:
        [row] = rows
        assert row.outcome in (InboundOutcome.POSTED, InboundOutcome.UNMATCHED)
        assert len(row.sender) <= 40 and "\x00" not in (row.text or "")
    assert TwilioStandIn.fetched == []


# --- a fault of ours ----------------------------------------------------------------------------

def test_a_text_that_meets_a_fault_of_ours_waits_for_the_team_with_its_pictures_listed(
    app, texting, carla, household, monkeypatch
):
    """Twilio does not retry an incoming-message webhook: an error would lose the text."""
    def fault(*args, **kwargs):
        raise RuntimeError("a fault of ours")

    monkeypatch.setattr(throttle, "message_refusal", fault)
    url = served(app, MEDIA.format(1), "image/jpeg", phone_jpeg())
    response = text_in(app, "Rex ate a sock", sid="SMfault", media=(("image/jpeg", url),))
    assert replied(response) == []
    assert feed_messages(app, household) == []
    [row] = inbound_rows(app)
    assert (row.outcome, row.reason, row.text, row.sender, row.sender_user_id) == (
        InboundOutcome.UNMATCHED, "The portal could not take this text in.", "Rex ate a sock",
        CARLA, carla.id)
    assert (row.business_id, row.feed, row.dedupe_key) == (
        household.business_id, Feed.CONVERSATION, dedupe_key("SMfault"))
    with app.app_context():
        raw = email.message_from_bytes(storage().read(row.raw_key), policy=email_policy)
    assert raw["From"] == CARLA
    written = raw.get_body(("plain",)).get_content()
    assert written.startswith("Rex ate a sock\n\nPictures sent with the text, not taken in")
    assert f"- {url}" in written
    # Twilio's own repeat of the request is the same text.
    assert replied(text_in(app, "Rex ate a sock", sid="SMfault")) == []
    assert len(inbound_rows(app)) == 1


def test_a_text_is_queued_without_its_raw_copy_when_storage_fails(
    app, texting, carla, household, tmp_path
):
    not_a_folder = tmp_path / "uploads"
    not_a_folder.write_text("a file where the folder should be")
    app.extensions["storage"] = LocalStorage(not_a_folder)
    url = served(app, MEDIA.format(1), "image/jpeg", phone_jpeg())
    for sender in (CARLA, "+15559990000"):  # posted with a photo, and queued
        assert replied(text_in(app, "Gate code 4321", sender=sender,
                               media=(("image/jpeg", url),))) == []
    assert feed_messages(app, household) == []
    rows = inbound_rows(app)
    assert [(row.outcome, row.reason, row.text, row.raw_key) for row in rows] == [
        (InboundOutcome.UNMATCHED, "The portal could not take this text in.", "Gate code 4321",
         None)] * 2
    assert [row.sender_user_id for row in rows] == [carla.id, None]


def test_a_database_outage_answers_500_so_twilio_logs_it_and_calls_the_fallback(
    app, texting, carla, household, monkeypatch
):
    """Nothing can be kept then, not even in the queue; answering 200 would tell Twilio all
    went well. (The database goes away midway, once the sender was looked up.)"""
    def unreachable(*args, **kwargs):
        raise OperationalError("SELECT", {}, Exception("server closed the connection"))

    monkeypatch.setattr(throttle, "message_refusal", unreachable)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    before = every_row(app)
    assert text_in(app, "Gate code 4321").status_code == 500
    assert every_row(app) == before


@pytest.mark.parametrize("declared", ["many", "{n}, {n}"], ids=["words", "repeated"])
def test_media_with_a_content_length_that_is_no_number_is_fetched(
    app, texting, carla, household, declared
):
    class Declaring(TwilioStandIn):
        def _answer(self, status: int, content_type: str, body: bytes):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", declared.format(n=len(body)))
            self.end_headers()
            self.wfile.write(body)  # then the connection closes: HTTP/1.0

    server = ThreadingHTTPServer(("127.0.0.1", 0), Declaring)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        app.config["TWILIO_API_BASE"] = f"http://127.0.0.1:{server.server_address[1]}"
        url = served(app, MEDIA.format(1), "image/jpeg", phone_jpeg())
        assert replied(text_in(app, "Paw", media=(("image/jpeg", url),))) == []
    finally:
        server.shutdown()
        server.server_close()
    [message] = feed_messages(app, household)
    assert message.text == "Paw" and TwilioStandIn.fetched == [MEDIA.format(1)]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Attachment)) == 1
