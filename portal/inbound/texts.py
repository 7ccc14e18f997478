"""The one way a text comes in: `ingest_text` takes the fields of Twilio's incoming-message
webhook (already checked for Twilio's signature) and does everything with them.

- The same MessageSid twice is taken once.
- STOP, START and HELP (and their usual variants, or Twilio's own OptOutType) are keywords:
  texts are turned off or on for everyone with that number, HELP is answered; never a message.
- The sender's number finds the person: a client's text goes to their Conversation feed; a
  staff member's or the admin team's to the client of the latest text the portal sent them,
  where the policy lets them post now. Anything else waits in Unmatched replies.
- MMS media is fetched from Twilio (the account's own media only) and goes through the same
  upload path as the composer. Twilio does not retry an incoming-message webhook, so a picture
  that cannot be fetched or used does not fail the request: the text waits in Unmatched
  replies, with the reason and the pictures that could be used, for the admin team.
"""

import hashlib
import mimetypes
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from email.message import EmailMessage
from email.utils import formatdate
from urllib.parse import urljoin, urlsplit

import requests
from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from portal import policy, throttle
from portal.extensions import db
from portal.inbound import queue
from portal.inbound.ingest import Outcome
from portal.models import (
    Business,
    Channel,
    Client,
    DeliveryStatus,
    Feed,
    InboundChannel,
    InboundMessage,
    InboundOutcome,
    Message,
    Notification,
    User,
)
from portal.phones import e164
from portal.services import reachability
from portal.services.messages import AlreadySent, UploadLimits, post_message, prepare_uploads
from portal.services.uploads import PreparedFile, Upload, UploadError

STOP_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"}
START_WORDS = {"START", "YES", "UNSTOP", "OPTIN"}
HELP_WORDS = {"HELP", "INFO"}
# Where Twilio keeps media once its API redirects a media address there (with HTTP Basic
# Authentication on media, mms.twiliocdn.com; without it, S3).
TWILIO_MEDIA_HOSTS = {"mms.twiliocdn.com", "s3-external-1.amazonaws.com"}
MEDIA_REDIRECTS = 3
MEDIA_TIMEOUT = (5, 10)  # seconds to connect, and between two reads (Twilio waits 15)
MAX_MEDIA = 10  # Twilio's own limit on one MMS
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@dataclass(frozen=True)
class TextOutcome(Outcome):
    """What became of a text, and what to answer the sender (TwiML), if anything."""

    reply: str | None = None


class MediaError(Exception):
    """A picture could not be fetched from Twilio; the message says why."""


def dedupe_key(message_sid: str) -> str:
    return hashlib.sha256(f"sms:{message_sid}".encode()).hexdigest()


def ingest_text(form: Mapping[str, str]) -> TextOutcome:
    """Takes one incoming text (Twilio's webhook fields). Commits; never raises for what a
    sender sent."""
    sid = (form.get("MessageSid") or form.get("SmsMessageSid") or "").strip()[:64]
    if not sid:
        return TextOutcome(InboundOutcome.REFUSED, "the request names no MessageSid")
    key = dedupe_key(sid)
    if earlier := queue.find(key):
        return TextOutcome(earlier.outcome, earlier.reason or "", earlier.message_id, earlier.id,
                           duplicate=True)
    sender = _printable(form.get("From") or "").strip()[:40]
    body = _printable((form.get("Body") or "").replace("\r\n", "\n").replace("\r", "\n")).strip()
    if keyword := keyword_of(form, body):
        return _keyword(keyword, key, sender, body, twilio_answered="OptOutType" in form)
    return _message(form, key, sender, body)


def _printable(text: str) -> str:
    """Without control characters but line breaks and tabs (a NUL no database column takes)."""
    return _CONTROL.sub("", text)


def keyword_of(form: Mapping[str, str], body: str) -> str | None:
    """STOP, START or HELP when the whole text is one of their words (any case and spacing),
    or when Twilio's own opt-out handling says so (OptOutType)."""
    for word in ((form.get("OptOutType") or "").strip().upper(), body.upper()):
        if word in STOP_WORDS:
            return "STOP"
        if word in START_WORDS:
            return "START"
        if word in HELP_WORDS:
            return "HELP"
    return None


def people_with_number(number: str, active_only: bool = True) -> list[User]:
    """Everyone whose phone, however it was written, is this number."""
    wanted = e164(number)
    if not wanted:
        return []
    query = select(User.id, User.phone).where(User.phone.is_not(None), User.phone != "")
    if active_only:
        query = query.where(User.active.is_(True))
    ids = [user_id for user_id, phone in db.session.execute(query)
           if e164(phone) == wanted]
    if not ids:
        return []
    return list(db.session.scalars(select(User).where(User.id.in_(ids)).order_by(User.id)))


# --- STOP, START, HELP ------------------------------------------------------------------------

def _keyword(keyword: str, key: str, sender: str, body: str,
             twilio_answered: bool) -> TextOutcome:
    people = people_with_number(sender, active_only=False)
    if keyword in ("STOP", "START"):
        for person in people:
            reachability.set_texts_stopped(person, keyword == "STOP")
    names = ", ".join(person.name for person in people) or "no one in the portal"
    reason = {
        "STOP": f"STOP: texts turned off for {names}",
        "START": f"START: texts turned back on for {names}",
        "HELP": f"HELP from {names}",
    }[keyword]
    row = InboundMessage(
        business_id=_one_business(people), channel=InboundChannel.SMS, dedupe_key=key,
        outcome=InboundOutcome.KEYWORD, reason=reason[:300], sender=sender,
        sender_name=people[0].name if len(people) == 1 else "", text=body,
        sender_user_id=people[0].id if len(people) == 1 else None,
    )
    db.session.add(row)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        earlier = queue.find(key)
        return TextOutcome(InboundOutcome.KEYWORD, reason, inbound_id=earlier and earlier.id,
                           duplicate=True)
    # With Twilio's Advanced Opt-Out, Twilio answers the keyword itself.
    reply = _help_reply(people) if keyword == "HELP" and not twilio_answered else None
    return TextOutcome(InboundOutcome.KEYWORD, reason, inbound_id=row.id, reply=reply)


def _help_reply(people: list[User]) -> str:
    business = db.session.get(Business, business_id) \
        if (business_id := _one_business(people)) else None
    name = business.name if business else "Your pet-care portal"
    link = current_app.config["PORTAL_BASE_URL"]
    return (f"{name}: texts from this number tell you of new messages in your portal. "
            f"Read and answer them at {link}. Reply STOP to stop texts, START to turn them "
            f"back on.")


def _one_business(people: list[User]) -> int | None:
    """The business a text from these people is for: theirs, or for a number no one (or
    people of several businesses) has, the business the portal serves when it serves one
    (the Twilio number is the portal's), so that its admin team sees it."""
    businesses = {person.business_id for person in people}
    if len(businesses) == 1:
        return businesses.pop()
    return queue.sole_business_id()


# --- a message --------------------------------------------------------------------------------

def _message(form: Mapping[str, str], key: str, sender: str, body: str) -> TextOutcome:
    people = people_with_number(sender)
    person = people[0] if len(people) == 1 else None
    client, held = _destination(people, sender)
    prepared, kept, refused = _pictures(form)
    if not body and not kept and not refused:
        held.append("The text was empty.")
    if not held and not refused and (
            refusal := throttle.message_refusal(person, len(prepared))):
        held.append(f"Too many texts from this number in a short time ({refusal.reason})")
    if not held and not refused:
        return _post(person, client, key, sender, body, prepared)
    outcome = _queue(key, sender, body, kept, person, " ".join([*held, *refused]),
                     _one_business(people))
    if refused and not held:
        # The sender learns that a picture did not go through, and why.
        return replace(outcome, reply=_refused_reply(person, refused))
    return outcome


def _pictures(form: Mapping[str, str]) -> tuple[list[PreparedFile], list[Upload], list[str]]:
    """The text's pictures through the composer's upload path: prepared, as fetched (for the
    queue), and why any could not be used."""
    uploads, refused = _media(form)
    prepared, kept = [], []
    limits = UploadLimits.from_config(current_app.config)
    for upload in uploads:
        try:
            prepared += prepare_uploads([upload], limits)
            kept.append(upload)
        except UploadError as error:
            refused.append(str(error))
    if len(prepared) > limits.max_files:
        refused.append(f"The text has {len(prepared)} pictures; a message takes at most "
                       f"{limits.max_files}.")
    return prepared, kept, refused


def _refused_reply(person: User, refused: list[str]) -> str:
    return (f"{person.business.name}: your text was passed to the team, but without what "
            f"could not be used: {' '.join(refused)}")[:600]


def _destination(people: list[User], sender: str) -> tuple[Client | None, list[str]]:
    """The client whose Conversation feed a text from these people goes to, or why none."""
    if not people:
        return None, [f"No one in the portal has the number {sender or '(none)'}."]
    if len(people) > 1:
        return None, [f"{len(people)} people have the number {sender}: "
                      f"{', '.join(person.name for person in people)}."]
    person = people[0]
    if policy.is_client(person):
        client = db.session.get(Client, person.client_id) if person.client_id else None
    else:
        client = _client_last_texted(person)
        if client is None:
            return None, [f"{person.name} has not been texted about a client, so there is "
                          f"no feed this answers."]
    if client is None or not policy.can_post(person, client, Feed.CONVERSATION):
        name = client.name if client else "their client"
        return None, [f"{person.name} may not post in {name}'s feed now."]
    return client, []


def _client_last_texted(person: User) -> Client | None:
    """The client of the most recent text the portal sent this person: what they answer."""
    client_id = db.session.scalar(
        select(Message.client_id)
        .join(Notification, Notification.message_id == Message.id)
        .where(Notification.recipient_id == person.id, Notification.channel == Channel.SMS,
               Notification.status == DeliveryStatus.SENT,
               Message.business_id == person.business_id)
        .order_by(Notification.sent_at.desc(), Notification.id.desc())
        .limit(1)
    )
    return db.session.get(Client, client_id) if client_id else None


def _post(person: User, client: Client, key: str, sender: str, body: str,
          prepared: list[PreparedFile]) -> TextOutcome:
    inbound = InboundMessage(
        business_id=client.business_id, channel=InboundChannel.SMS, dedupe_key=key,
        outcome=InboundOutcome.POSTED, sender=sender, sender_name=person.name, text=body,
        attachment_count=len(prepared), client_id=client.id, feed=Feed.CONVERSATION,
        sender_user_id=person.id,
    )
    try:
        message = post_message(person, client, Feed.CONVERSATION, body, prepared,
                               send_key=key, via="sms", inbound=inbound)
    except AlreadySent as sent:
        return TextOutcome(InboundOutcome.POSTED, message_id=sent.message.id, duplicate=True)
    return TextOutcome(InboundOutcome.POSTED, message_id=message.id, inbound_id=inbound.id)


def _queue(key: str, sender: str, body: str, kept: list[Upload], person: User | None,
           reason: str, business_id: int | None) -> TextOutcome:
    row = queue.record_unmatched(
        channel=InboundChannel.SMS, dedupe_key=key, reason=reason[:300],
        raw=raw_text(sender, body, kept), sender=sender,
        sender_name=person.name if person else "", text=body, attachment_count=len(kept),
        business_id=business_id, sender_user=person,
    )
    return TextOutcome(InboundOutcome.UNMATCHED, reason, inbound_id=row.id)


def raw_text(sender: str, body: str, media: list[Upload]) -> bytes:
    """A text as an email (From: the number; the text; the pictures attached), so that a
    queued text is filed the way a queued email is."""
    message = EmailMessage()
    message["From"] = sender
    message["Subject"] = "Text message"
    message["Date"] = formatdate(usegmt=True)
    message.set_content(body or "")
    for upload in media:
        maintype, _, subtype = (upload.claimed_type or "application/octet-stream").partition("/")
        message.add_attachment(upload.data, maintype=maintype, subtype=subtype or "octet-stream",
                               filename=upload.filename)
    return message.as_bytes()


# --- MMS media --------------------------------------------------------------------------------

def _media(form: Mapping[str, str]) -> tuple[list[Upload], list[str]]:
    """The text's pictures as fetched from Twilio, and what could not be fetched."""
    try:
        count = min(int(form.get("NumMedia") or 0), MAX_MEDIA)
    except ValueError:
        count = 0
    uploads, problems = [], []
    for index in range(count):
        url = form.get(f"MediaUrl{index}") or ""
        content_type = (form.get(f"MediaContentType{index}") or "").strip().lower()[:100]
        name = _media_name(index, content_type)
        try:
            uploads.append(Upload(name, fetch_media(url), content_type or None))
        except MediaError as error:
            problems.append(f"“{name}” could not be fetched from Twilio: {error}.")
    return uploads, problems


def _media_name(index: int, content_type: str) -> str:
    extension = {"image/jpeg": ".jpg", "image/heic": ".heic", "image/heif": ".heif"}.get(
        content_type) or mimetypes.guess_extension(content_type) or ""
    stem = "photo" if content_type.startswith("image/") else "file"
    return f"{stem}-{index + 1}{extension}"


def fetch_media(url: str) -> bytes:
    """One picture of an MMS: only from the account's own media at the configured Twilio API
    (with the account's credentials), or where Twilio's API redirects it among Twilio's media
    hosts (without them); at most UPLOAD_MAX_FILE_BYTES. Raises MediaError."""
    config = current_app.config
    api = urlsplit(config["TWILIO_API_BASE"])
    account = config["TWILIO_ACCOUNT_SID"] or ""
    target = urlsplit(url)
    if ((target.scheme, target.netloc) != (api.scheme, api.netloc)
            or not account or not target.path.startswith(f"/2010-04-01/Accounts/{account}/")):
        raise MediaError("it is not the account's media at Twilio")
    limit = config["UPLOAD_MAX_FILE_BYTES"]
    with requests.Session() as session:
        session.trust_env = False  # no proxy from the environment: config.py reads it alone
        for _ in range(MEDIA_REDIRECTS + 1):
            at_api = (target.scheme, target.netloc) == (api.scheme, api.netloc)
            try:
                with session.get(url, auth=(account, config["TWILIO_AUTH_TOKEN"]) if at_api
                                 else None, stream=True, allow_redirects=False,
                                 timeout=MEDIA_TIMEOUT) as response:
                    if response.is_redirect:
                        url = urljoin(url, response.headers["Location"])
                        target = urlsplit(url)
                        if not _twilio_media_host(target, api):
                            raise MediaError(f"Twilio sent it on to {target.hostname or 'nowhere'}")
                        continue
                    if response.status_code != 200:
                        raise MediaError(f"Twilio answered {response.status_code}")
                    return _read_at_most(response, limit)
            except requests.RequestException as error:
                raise MediaError(f"Twilio could not be reached ({type(error).__name__})") \
                    from error
    raise MediaError("too many redirects")


def _twilio_media_host(target, api) -> bool:
    if (target.scheme, target.netloc) == (api.scheme, api.netloc):
        return True
    return target.scheme == "https" and target.port in (None, 443) \
        and target.hostname in TWILIO_MEDIA_HOSTS


def _read_at_most(response: requests.Response, limit: int) -> bytes:
    too_large = MediaError(f"it is larger than {limit // (1024 * 1024)} MB")
    if int(response.headers.get("Content-Length") or 0) > limit:
        raise too_large
    data = bytearray()
    for chunk in response.iter_content(64 * 1024):
        data += chunk
        if len(data) > limit:
            raise too_large
    return bytes(data)
