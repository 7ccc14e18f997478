"""Text messages: Conversation messages only, by construction.

A provider only accepts an SmsText, and an SmsText can only be made from a Conversation message:
there is no way to hand the SMS path a private message.
"""

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from flask import current_app

from portal.models import Feed
from portal.notifications.errors import PermanentError, TransientError

SMS_LENGTH = 300


@dataclass(frozen=True)
class SmsText:
    to: str
    body: str
    # Who the number belongs to: named where a text is shown rather than sent (the console).
    to_name: str = ""

    @classmethod
    def for_conversation(cls, to: str, item, to_name: str = "") -> "SmsText":
        if item.feed != Feed.CONVERSATION:
            raise TypeError("private messages are never sent by text message")
        excerpt = item.excerpt or f"{item.attachments} attachment(s)"
        body = f"{item.business_name}: {item.author_name}: {excerpt}"
        link = f" {item.link}"
        if len(body) + len(link) > SMS_LENGTH:
            body = body[: SMS_LENGTH - len(link) - 1] + "…"
        return cls(to, body + link, to_name)


class ConsoleSms:
    """Development and tests without a provider: the text goes to the log."""

    def send(self, text: SmsText) -> None:
        if not isinstance(text, SmsText):
            raise TypeError("send() takes an SmsText")
        to = f"{text.to_name} ({text.to})" if text.to_name else text.to
        print(f"--- text message to {to} (no SMS provider set) ---\n{text.body}", flush=True)


class TwilioSms:
    """Twilio's REST API (Messages resource), over plain HTTPS."""

    def __init__(self, config):
        self.account = config["TWILIO_ACCOUNT_SID"]
        self.token = config["TWILIO_AUTH_TOKEN"]
        self.sender = config["TWILIO_FROM_NUMBER"]
        self.url = (f"{config['TWILIO_API_BASE'].rstrip('/')}/2010-04-01/Accounts/"
                    f"{urllib.parse.quote(self.account)}/Messages.json")

    def send(self, text: SmsText) -> None:
        if not isinstance(text, SmsText):
            raise TypeError("send() takes an SmsText")
        data = urllib.parse.urlencode({"To": text.to, "From": self.sender, "Body": text.body})
        credentials = base64.b64encode(f"{self.account}:{self.token}".encode()).decode()
        request = urllib.request.Request(
            self.url, data=data.encode(), method="POST",
            headers={"Authorization": f"Basic {credentials}",
                     "Content-Type": "application/x-www-form-urlencoded"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            kind = TransientError if error.code >= 500 or error.code == 429 else PermanentError
            raise kind(f"Twilio answered {error.code}") from error
        except (OSError, ValueError) as error:
            raise TransientError(f"Twilio unreachable: {error}") from error


def provider():
    if current_app.config["SMS_PROVIDER"] == "twilio":
        return TwilioSms(current_app.config)
    return ConsoleSms()
