"""The one way a text comes in: `ingest_text` takes the fields of Twilio's incoming-message
webhook (already checked for Twilio's signature) and does everything with them.

- The same MessageSid twice is taken once.
- A text that is only STOP, STOPALL, UNSUBSCRIBE, START, UNSTOP or HELP (any case and spacing)
  is a keyword: texts are turned off or on for everyone with that number, HELP is answered;
  never a message. Words people also write as answers ("Cancel", "Yes", "End", "Info") are
  messages, but when Twilio's own opt-out handling acted on one (OptOutType), the number is
  opted out or in at the carrier: the portal records it too, and the text is still a message.
- The sender's number finds the person: a client's text goes to their Conversation feed; a
  staff member's or the admin team's to the one client the portal texted them about in the
  last day, where the policy lets them post now. Anything else waits in Unmatched replies.
- Whatever fault of ours a text meets, it waits in Unmatched replies (see `ingest_text`).
- MMS media is fetched from Twilio (the account's own media only) and goes through the same
  upload path as the composer. Twilio does not retry an incoming-message webhook, so a picture
  that cannot be fetched or used does not fail the request: the text waits in Unmatched
  replies, with the reason and the pictures that could be used, for the admin team.
"""

import hashlib
import logging
import mimetypes
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from email.message import EmailMessage
from email.utils import formatdate
from urllib.parse import urljoin, urlsplit

import requests
from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

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
    utcnow,
)
from portal.phones import e164
from portal.services import away, reachability
from portal.services.messages import AlreadySent, UploadLimits, post_message, prepare_uploads
from portal.services.uploads import PreparedFile, Upload, UploadError

# Only words no one answers a question with: "Cancel", "Yes" or "End" are messages.
STOP_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE"}
START_WORDS = {"START", "UNSTOP"}
HELP_WORDS = {"HELP"}
# A staff member's text answers the client they were texted about within this time, when
# there is only one.
ANSWERS_WITHIN = timedelta(hours=24)
FAULT_REASON = "The portal could not take this text in."
# The database cannot be reached: nothing can be kept, not even in the queue.
DATABASE_UNREACHABLE = (OperationalError, InterfaceError, PoolTimeout)
# Where Twilio keeps media once its API redirects a media address there (with HTTP Basic
# Authentication on media, mms.twiliocdn.com; without it, S3).
TWILIO_MEDIA_HOSTS = {"mms.twiliocdn.com", "s3-external-1.amazonaws.com"}
MEDIA_REDIRECTS = 3
MEDIA_TIMEOUT = (5, 10)  # seconds to connect, and between two reads (Twilio waits 15)
MAX_MEDIA = 10  # Twilio's own limit on one MMS
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_LINE_BREAKS = re.compile(r"[\x00-\x1f\x7f]")

log = logging.getLogger(__name__)


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
    sender sent, nor for a fault of ours: the text then waits in Unmatched replies.

    It raises only when the database cannot be reached (nothing can be kept then, not even in
    the queue), so that the route answers 500. Twilio does not retry an incoming-message
    webhook, but an error shows in its console's error log, Twilio calls the number's fallback
    URL when one is set, and its message log keeps the text; an answer of 200 would say all
    went well, and the text would be lost unseen (our log line aside)."""
    try:
        return _ingest(form)
    except DATABASE_UNREACHABLE:
        log.critical("The database could not be reached: text %s from %s NOT taken in "
                     "(Twilio's message log keeps it)", _sid(form), _sender(form), exc_info=True)
        db.session.rollback()
        raise
    except Exception:
        log.exception("Could not take text %s in; queued for review", _sid(form))
        db.session.rollback()
        return _queue_fault(form)


def _ingest(form: Mapping[str, str]) -> TextOutcome:
    sid = _sid(form)
    if not sid:
        return TextOutcome(InboundOutcome.REFUSED, "the request names no MessageSid")
    key = dedupe_key(sid)
    if earlier := queue.find(key):
        return TextOutcome(earlier.outcome, earlier.reason or "", earlier.message_id, earlier.id,
                           duplicate=True)
    sender, body = _sender(form), _body(form)
    twilio_keyword = (form.get("OptOutType") or "").strip().upper()
    if keyword := keyword_of(body):
        return _keyword(keyword, key, sender, body, twilio_answered=bool(twilio_keyword))
    if twilio_keyword in ("STOP", "START"):
        # Twilio opted the number out (or in) at the carrier on a word like "Cancel" or
        # "Yes": so be it here too; what the person wrote is still a message.
        _opt_out(people_with_number(sender, active_only=False), twilio_keyword == "STOP")
        db.session.commit()
    return _message(form, key, sender, body)


def _sid(form: Mapping[str, str]) -> str:
    return _one_line(form.get("MessageSid") or form.get("SmsMessageSid") or "")[:64]


def _sender(form: Mapping[str, str]) -> str:
    return _one_line(form.get("From") or "")[:40]


def _body(form: Mapping[str, str]) -> str:
    return _printable((form.get("Body") or "").replace("\r\n", "\n").replace("\r", "\n")).strip()


def _printable(text: str) -> str:
    """Without control characters but line breaks and tabs (a NUL no database column takes)."""
    return _CONTROL.sub("", text)


def _one_line(text: str) -> str:
    """Without any control character: a header field of the raw, a column of one line."""
    return _LINE_BREAKS.sub("", text).strip()


def keyword_of(body: str) -> str | None:
    """STOP, START or HELP when the whole text is one of their words (any case and spacing)."""
    word = body.upper()
    if word in STOP_WORDS:
        return "STOP"
    if word in START_WORDS:
        return "START"
    if word in HELP_WORDS:
        return "HELP"
    return None


def people_with_number(number: str, active_only: bool = True) -> list[User]:
    """Everyone whose phone, however it was written, is this number, and who confirmed it
    with a code texted to it: a number someone else typed in for them (an invitation) is
    not theirs until then, so neither its replies nor its STOP are."""
    wanted = e164(number)
    if not wanted:
        return []
    query = select(User.id, User.phone).where(
        User.phone.is_not(None), User.phone != "", User.phone_confirmed_at.is_not(None)
    )
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
        _opt_out(people, keyword == "STOP")
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


def _opt_out(people: list[User], stopped: bool) -> None:
    """Texts off (or back on) for everyone with the number, in the caller's transaction."""
    for person in people:
        reachability.set_texts_stopped(person, stopped)


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
                     _one_business(people), client)
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
    """The client whose Conversation feed a text from these people goes to; or why it cannot
    go there, with the client it most likely answers (None when there is no guess)."""
    if not people:
        return None, [f"No one in the portal has the number {sender or '(none)'}."]
    if len(people) > 1:
        return None, [f"{len(people)} people have the number {sender}: "
                      f"{', '.join(person.name for person in people)}."]
    person = people[0]
    if policy.is_client(person):
        client = db.session.get(Client, person.client_id) if person.client_id else None
    else:
        lately = _clients_texted_lately(person)
        if len(lately) != 1:
            return _unclear_client(person, lately)
        client = lately[0]
    if client is None or not policy.can_post(person, client, Feed.CONVERSATION):
        name = client.name if client else "their client"
        return client, [f"{person.name} may not post in {name}'s feed now."]
    if policy.needs_approval(person):
        return client, [queue.NEEDS_APPROVAL.format(person.name)]
    return client, []


def _unclear_client(person: User, lately: list[Client]) -> tuple[Client | None, list[str]]:
    """Why a staff member's text answers no one client: texted about several in the last day
    (the latest is the likely one), or about none (then the last one ever, if any)."""
    if lately:
        names = [client.name for client in lately[:4]]
        if len(lately) > 4:
            names[-1] = f"{len(lately) - 3} more"
        listed = ", ".join(names[:-1]) + f" and {names[-1]}"
        return lately[0], [f"{person.name} was texted about {listed} in the last day "
                           f"(the latest first): which one is meant?"]
    last = _clients_texted(person, since=None, limit=1)
    earlier = f" The last text to them, earlier, was about {last[0].name}." if last else ""
    return (last[0] if last else None), [
        f"{person.name} has not been texted about a client in the last day, so there is no "
        f"feed this answers.{earlier}"]


def _clients_texted_lately(person: User) -> list[Client]:
    """The clients the portal texted this person about in the last day, the latest first."""
    return _clients_texted(person, since=utcnow() - ANSWERS_WITHIN, limit=None)


def _clients_texted(person: User, since, limit: int | None) -> list[Client]:
    """The clients of the texts the portal sent this person (since then), the latest first."""
    latest = func.max(Notification.sent_at)
    query = (
        select(Message.client_id)
        .join(Notification, Notification.message_id == Message.id)
        .where(Notification.recipient_id == person.id, Notification.channel == Channel.SMS,
               Notification.status == DeliveryStatus.SENT,
               Message.business_id == person.business_id)
        .group_by(Message.client_id)
        .order_by(latest.desc(), func.max(Notification.id).desc())
        .limit(limit)
    )
    if since is not None:
        query = query.where(Notification.sent_at >= since)
    client_ids = list(db.session.scalars(query))
    found = {client.id: client for client in db.session.scalars(
        select(Client).where(Client.id.in_(client_ids)))} if client_ids else {}
    return [found[client_id] for client_id in client_ids if client_id in found]


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
                               send_key=key, via="sms", origin=inbound)
    except AlreadySent as sent:
        return TextOutcome(InboundOutcome.POSTED, message_id=sent.message.id, duplicate=True)
    away.reply_if_closed(message, person, client)
    return TextOutcome(InboundOutcome.POSTED, message_id=message.id, inbound_id=inbound.id)


def _queue(key: str, sender: str, body: str, kept: list[Upload], person: User | None,
           reason: str, business_id: int | None, likely: Client | None) -> TextOutcome:
    """Queues the text; `likely` is the client it most likely answers, chosen beforehand
    when the admin team files it. A text answers Conversation only: the portal never texts
    about the Private feed."""
    row, new = queue.queue_reply(
        channel=InboundChannel.SMS, dedupe_key=key, reason=reason[:300],
        raw=raw_text(sender, body, kept), sender=sender,
        sender_name=person.name if person else "", text=body, attachment_count=len(kept),
        business_id=business_id, sender_user=person, token=None,
        client_id=likely.id if likely else None, feed=Feed.CONVERSATION,
    )
    return TextOutcome(row.outcome, row.reason or "", row.message_id, row.id,
                       duplicate=not new)


def _queue_fault(form: Mapping[str, str]) -> TextOutcome:
    """A text a fault of ours stopped: kept as it came (its pictures, which may not have been
    fetched, listed by their address at Twilio), for the admin team. Without the raw copy
    when storage is what failed."""
    sender, body = _sender(form), _body(form)
    people = _people_leniently(sender)
    person = people[0] if len(people) == 1 else None
    fields = dict(
        channel=InboundChannel.SMS, dedupe_key=dedupe_key(_sid(form)), reason=FAULT_REASON,
        sender=sender, sender_name=person.name if person else "", text=body,
        business_id=_one_business(people), sender_user=person, token=None,
        feed=Feed.CONVERSATION,
    )
    try:
        row, new = queue.queue_reply(raw=_fault_raw(form, sender, body), **fields)
    except (OSError, ValueError):
        log.exception("Could not keep a raw copy of text %s; queued without it", _sid(form))
        db.session.rollback()
        row, new = queue.queue_reply(raw=None, **fields)
    return TextOutcome(row.outcome, row.reason or "", row.message_id, row.id,
                       duplicate=not new)


def _people_leniently(sender: str) -> list[User]:
    """Who has the number, when that can still be found out (the fault may be right there)."""
    try:
        return people_with_number(sender)
    except DATABASE_UNREACHABLE:
        raise
    except Exception:
        log.exception("Could not look up the number of a text that met a fault")
        db.session.rollback()
        return []


def _fault_raw(form: Mapping[str, str], sender: str, body: str) -> bytes:
    addresses = [_one_line(form.get(f"MediaUrl{index}") or "")
                 for index in range(_media_count(form))]
    if addresses := [address for address in addresses if address]:
        listed = "\n".join(f"- {address}" for address in addresses)
        body = (f"{body}\n\nPictures sent with the text, not taken in (at Twilio, with the "
                f"account's credentials):\n{listed}").strip()
    return raw_text(sender, body, [])


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
    uploads, problems = [], []
    for index in range(_media_count(form)):
        url = form.get(f"MediaUrl{index}") or ""
        content_type = (form.get(f"MediaContentType{index}") or "").strip().lower()[:100]
        name = _media_name(index, content_type)
        try:
            uploads.append(Upload(name, fetch_media(url), content_type or None))
        except MediaError as error:
            problems.append(f"“{name}” could not be fetched from Twilio: {error}.")
    return uploads, problems


def _media_count(form: Mapping[str, str]) -> int:
    try:
        return max(0, min(int(form.get("NumMedia") or 0), MAX_MEDIA))
    except ValueError:
        return 0


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
    if _declared_length(response) > limit:
        raise too_large
    data = bytearray()
    for chunk in response.iter_content(64 * 1024):
        data += chunk
        if len(data) > limit:
            raise too_large
    return bytes(data)


def _declared_length(response: requests.Response) -> int:
    """The Content-Length the server declared, or 0 when it declared none it could mean
    (not a number, or several that differ): the count while reading holds the limit anyway."""
    declared = {value.strip() for value in
                (response.headers.get("Content-Length") or "").split(",")}
    if len(declared) != 1 or not (value := declared.pop()).isdecimal() or not value.isascii():
        return 0
    return int(value)
