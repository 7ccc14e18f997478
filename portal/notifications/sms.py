"""Text messages: Conversation messages only, by construction.

A provider only accepts an SmsText, and an SmsText can only be made from a Conversation message:
there is no way to hand the SMS path a private message.
"""

import base64
import hashlib
import hmac
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from flask import current_app

from portal.models import Feed
from portal.notifications.errors import PermanentError, TransientError
from portal.notifications.notices import Notice

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
        body = f"{notice.business_name}: {notice.author_name}: {excerpt}"
        link = f" {notice.link}"
        if len(body) + len(link) > SMS_LENGTH:
            body = body[: SMS_LENGTH - len(link) - 1] + "…"
        return cls(to, body + link, to_name)


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
    """Twilio's REST API (Messages resource), over plain HTTPS."""

    def __init__(self, config):
        self.account = config["TWILIO_ACCOUNT_SID"]
        self.token = config["TWILIO_AUTH_TOKEN"]
        self.sender = config["TWILIO_FROM_NUMBER"]
        self.status_callback = status_callback_url(config)
        self.url = (f"{config['TWILIO_API_BASE'].rstrip('/')}/2010-04-01/Accounts/"
                    f"{urllib.parse.quote(self.account)}/Messages.json")

    def send(self, text: SmsText) -> Accepted:
        if not isinstance(text, SmsText):
            raise TypeError("send() takes an SmsText")
        fields = {"To": text.to, "From": self.sender, "Body": text.body}
        if self.status_callback:
            # Twilio reports there whether the text reached the phone (delivered, undelivered).
            fields["StatusCallback"] = self.status_callback
        data = urllib.parse.urlencode(fields)
        credentials = base64.b64encode(f"{self.account}:{self.token}".encode()).decode()
        request = urllib.request.Request(
            self.url, data=data.encode(), method="POST",
            headers={"Authorization": f"Basic {credentials}",
                     "Content-Type": "application/x-www-form-urlencoded"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                answer = json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            kind = TransientError if error.code >= 500 or error.code == 429 else PermanentError
            raise kind(f"Twilio answered {error.code}") from error
        except (OSError, ValueError) as error:
            raise TransientError(f"Twilio unreachable: {error}") from error
        return Accepted(_short(answer.get("sid"), 64), _short(answer.get("status"), 20))


def provider():
    if current_app.config["SMS_PROVIDER"] == "twilio":
        return TwilioSms(current_app.config)
    return ConsoleSms()


def status_callback_url(config) -> str:
    """Where Twilio posts a text's status, as Twilio signs it (the portal's public address)."""
    return config["PORTAL_BASE_URL"].rstrip("/") + "/sms/status"


def _short(value, length: int) -> str | None:
    return str(value)[:length] if value else None


def twilio_signature(auth_token: str, url: str, fields) -> str:
    """Twilio's request signature: HMAC-SHA1 over the URL followed by each POST field's name
    and value, sorted by name, keyed with the account's auth token, in base64."""
    signed = url + "".join(name + value for name, value in sorted(fields))
    digest = hmac.new(auth_token.encode(), signed.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def twilio_signature_valid(auth_token: str | None, url: str, fields, signature: str) -> bool:
    if not auth_token or not signature:
        return False
    return hmac.compare_digest(twilio_signature(auth_token, url, fields), signature)
