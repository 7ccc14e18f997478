"""Email: Flask-Mail over SMTP, or printed to the console in development."""

import contextlib
import secrets
import smtplib
from dataclasses import dataclass
from email.utils import parseaddr

from flask import current_app, render_template
from flask_mail import Message as MailMessage

from portal.bidi import without_bidi_controls
from portal.extensions import mail
from portal.models import Business, User
from portal.notifications.errors import PermanentError, TransientError
from portal.notifications.notices import Notice
from portal.reply_addresses import ReplyToken, address_for


def header_safe(text: str) -> str:
    """Names end up in headers: no line breaks, so nothing can add a Bcc; no direction
    controls, so a name cannot turn the rest of the subject around."""
    return " ".join(without_bidi_controls(text).split())


@dataclass(frozen=True)
class NotificationEmail:
    """A notification email, with what the worker keeps of it: its id (the Message-ID's part
    before the @), which a delivery failure report names, and the reply address, which is also
    its envelope sender, so that such a report comes back to the portal. No reply address
    without a reply domain: replies and reports then go to MAIL_DEFAULT_SENDER."""

    message: MailMessage
    provider_id: str
    reply_address: str | None
    # Where its delivery failure reports go: the reply address, or for a summary spanning
    # feeds (whose replies are not read) the first feed's.
    bounce_address: str | None = None


def compose(recipient: User, notices: list[Notice], business: Business,
            summary: bool = False) -> NotificationEmail:
    """One email for everything due to this person in one feed of one client: its reply
    address names that feed. A `summary` of what was held for their quiet hours may span
    feeds: it has a reply address only when it holds one feed's messages."""
    first = notices[0]
    one_feed = len({(notice.client_id, notice.feed) for notice in notices}) == 1
    # Also where delivery failure reports go (MAIL FROM), whether or not replies are read.
    feed_address = address_for(ReplyToken(business.id, first.client_id, first.feed,
                                          recipient.id))
    reply_address = feed_address if one_feed else None
    if summary:
        count = len(notices)
        subject = (f"{count} new message{'s' if count != 1 else ''} while your quiet hours "
                   f"were on · {business.name}")
    elif len(notices) > 1:
        subject = f"{len(notices)} new messages from {business.name}"
    elif first.report is not None:
        subject = f"Visit report: {first.report.title} · {business.name}"
    elif first.private:
        subject = f"New private message from {first.author_name}"
    elif first.author_name == business.name:  # an automatic reply: the business's own words
        subject = f"New message from {business.name}"
    else:
        subject = f"New message from {first.author_name} · {business.name}"
    context = {"recipient": recipient, "items": notices, "business": business,
               "replies_read": reply_address is not None, "private": first.private,
               "summary": summary}
    message = MailMessage(
        subject=header_safe(subject),
        recipients=[recipient.email],
        sender=(header_safe(business.name), current_app.config["MAIL_DEFAULT_SENDER"]),
        reply_to=reply_address,
        body=render_template("email/new_messages.txt", **context),
        html=render_template("email/new_messages.html", **context),
    )
    provider_id = secrets.token_hex(12)
    message.msgId = f"<{provider_id}@{_message_id_domain()}>"
    return NotificationEmail(message, provider_id, reply_address, feed_address)


def _message_id_domain() -> str:
    """The reply domain, where reports about the email come back; else the sender's."""
    if domain := current_app.config.get("REPLY_DOMAIN"):
        return domain
    _, address = parseaddr(current_app.config["MAIL_DEFAULT_SENDER"])
    return address.rpartition("@")[2] or "localhost"


class EmailSender:
    """Sends a batch over one SMTP connection, opened on the first email."""

    def __init__(self):
        self._connection = None
        self._context = None

    def send(self, message: MailMessage, envelope_from: str | None = None) -> None:
        """`envelope_from`: where delivery failure reports go (MAIL FROM); by default the
        message's sender."""
        if current_app.config["MAIL_TRANSPORT"] == "console":
            # Development without an SMTP server: the console is the mail viewer.
            reply_to = f"Reply-To: {message.reply_to}\n" if message.reply_to else ""
            print(
                "--- email (MAIL_SERVER is not set, so it is printed here) ---\n"
                f"To: {', '.join(message.recipients)}\n{reply_to}Subject: {message.subject}\n\n"
                f"{message.body}\n--- end of email ---",
                flush=True,
            )
            return
        try:
            if self._connection is None:
                self._context = mail.connect()
                self._connection = self._context.__enter__()
            self._connection.send(message, envelope_from)
        except smtplib.SMTPRecipientsRefused as error:
            codes = [code for code, _ in error.recipients.values()]
            raise (PermanentError if all(code >= 500 for code in codes) else TransientError)(
                f"recipient refused: {codes}") from error
        except smtplib.SMTPResponseException as error:
            self.close()
            raise (PermanentError if error.smtp_code >= 500 else TransientError)(
                f"SMTP {error.smtp_code}") from error
        except (OSError, smtplib.SMTPException) as error:
            self.close()
            raise TransientError(f"SMTP unavailable: {error}") from error

    def close(self) -> None:
        if self._context is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self._context.__exit__(None, None, None)
        self._connection = self._context = None
