"""Text messages: Conversation messages only, by construction, and the codes that confirm a
person's number.

A provider only accepts an SmsText, and an SmsText can only be made from a Conversation message
or a confirmation code: there is no way to hand the SMS path a private message.
"""

from dataclasses import dataclass

import requests
from flask import current_app
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from portal.models import Feed
from portal.notifications.errors import PermanentError, TransientError
from portal.notifications.notices import Notice
from portal.phones import e164

SMS_LENGTH = 300


@dataclass(frozen=True)
class SmsText:
    to: str
    body: str
    # Who the number belongs to: named where a text is shown rather than sent (the console).
    to_name: str = ""

    @classmethod
    def for_conversation(cls, to: str, notice: Notice, to_name: str = "") -> "SmsText":
        if notice.feed != Feed.CONVERSATION:
            raise TypeError("private messages are never sent by text message")
        excerpt = notice.excerpt or f"{notice.attachments} attachment(s)"
        if notice.report is not None:  # the card is in the portal, a tap away
            excerpt = " ".join(filter(None, (f"Visit report, {notice.report.title}.",
                                             notice.excerpt)))
        # The business's own words (an automatic reply) are not signed twice.
        author = "" if notice.author_name == notice.business_name else f"{notice.author_name}: "
        body = f"{notice.business_name}: {author}{excerpt}"
        link = f" {notice.link}"
        if len(body) + len(link) > SMS_LENGTH:
            body = body[: SMS_LENGTH - len(link) - 1] + "…"
        return cls(to, body + link, to_name)

    @classmethod
    def quiet_hours_summary(cls, to: str, notices: list[Notice], to_name: str = "") -> "SmsText":
        """What was held for the person's quiet hours, in one text: how many, and where."""
        if any(notice.feed != Feed.CONVERSATION for notice in notices):
            raise TypeError("private messages are never sent by text message")
        first, count = notices[0], len(notices)
        clients = list(dict.fromkeys(notice.client_name for notice in notices))
        same_feed = len({notice.client_id for notice in notices}) == 1
        link = f" {first.link if same_feed else first.home_link}"
        body = (f"{first.business_name}: {count} new message{'s' if count != 1 else ''} while "
                f"your quiet hours were on, in {', '.join(clients)}.")
        if len(body) + len(link) > SMS_LENGTH:
            body = body[: SMS_LENGTH - len(link) - 1] + "…"
        return cls(to, body + link, to_name)

    @classmethod
    def confirmation_code(cls, to: str, code: str, business_name: str, minutes: int,
                          to_name: str = "") -> "SmsText":
        """The code that confirms this number is the person's: nothing else in it."""
        if not (len(code) == 6 and code.isdigit()):
            raise ValueError("a confirmation code is six digits")
        body = (f"{business_name}: your code to confirm this number for texts is {code}. "
                f"It works for {minutes} minutes. If you did not ask for it, ignore this text.")
        return cls(to, body[:SMS_LENGTH], to_name)


@dataclass(frozen=True)
class Accepted:
    """A provider's answer to a text it took: its id for the message, and its status."""

    provider_id: str | None = None
    status: str | None = None


class ConsoleSms:
    """Development and tests without a provider: the text goes to the log."""

    def send(self, text: SmsText) -> Accepted:
        if not isinstance(text, SmsText):
            raise TypeError("send() takes an SmsText")
        to = f"{text.to_name} ({text.to})" if text.to_name else text.to
        print(f"--- text message to {to} (no SMS provider set) ---\n{text.body}", flush=True)
        return Accepted()


class TwilioSms:
    """Twilio's Messages resource, through Twilio's own library."""

    def __init__(self, config):
        self.sender = config["TWILIO_FROM_NUMBER"]
        self.status_callback = public_url(config, STATUS_PATH)
        self.client = twilio_client(config)

    def send(self, text: SmsText) -> Accepted:
        if not isinstance(text, SmsText):
            raise TypeError("send() takes an SmsText")
        to = e164(text.to)
        if to is None:
            raise PermanentError(f"{text.to[:40]!r} is not a phone number a text can go to")
        try:
            # Twilio reports to the status callback whether the text reached the phone.
            sent = self.client.messages.create(
                to=to, from_=self.sender, body=text.body,
                status_callback=self.status_callback,
            )
        except TwilioRestException as error:
            kind = TransientError if error.status >= 500 or error.status == 429 else PermanentError
            raise kind(f"Twilio answered {error.status}") from error
        except (requests.RequestException, OSError, ValueError) as error:
            raise TransientError(f"Twilio unreachable: {error}") from error
        return Accepted(_short(sent.sid, 64), _short(sent.status, 20))


STATUS_PATH = "/sms/status"
INBOUND_PATH = "/sms/twilio"
TWILIO_TIMEOUT_SECONDS = 10


def twilio_client(config) -> Client:
    """A client for the account, speaking to TWILIO_API_BASE (Twilio itself in production, a
    stand-in in tests). Region and edge are not taken from the environment: config.py is the
    only reader of it."""
    client = Client(
        config["TWILIO_ACCOUNT_SID"], config["TWILIO_AUTH_TOKEN"], environment={},
        http_client=TwilioHttpClient(timeout=TWILIO_TIMEOUT_SECONDS),
    )
    client.api.base_url = config["TWILIO_API_BASE"].rstrip("/")
    return client


def provider():
    if current_app.config["SMS_PROVIDER"] == "twilio":
        return TwilioSms(current_app.config)
    return ConsoleSms()


def public_url(config, path: str) -> str:
    """An address of the portal as Twilio calls and signs it (the portal's public address)."""
    return config["PORTAL_BASE_URL"].rstrip("/") + path


def signed_by_twilio(config, url: str, fields, signature: str | None) -> bool:
    """Whether a webhook request carries the account's X-Twilio-Signature for this address and
    these fields. Without an auth token nothing is signed."""
    token = config.get("TWILIO_AUTH_TOKEN")
    if not token or not signature:
        return False
    return RequestValidator(token).validate(url, fields, signature)


def _short(value, length: int) -> str | None:
    return str(value)[:length] if value else None
