"""Email: Flask-Mail over SMTP, or printed to the console in development."""

import contextlib
import smtplib

from flask import current_app, render_template
from flask_mail import Message as MailMessage

from portal.bidi import without_bidi_controls
from portal.extensions import mail
from portal.models import Business, User
from portal.notifications.errors import PermanentError, TransientError
from portal.notifications.notices import Notice


def header_safe(text: str) -> str:
    """Names end up in headers: no line breaks, so nothing can add a Bcc; no direction
    controls, so a name cannot turn the rest of the subject around."""
    return " ".join(without_bidi_controls(text).split())


def compose(recipient: User, notices: list[Notice], business: Business) -> MailMessage:
    """One email for everything due to this person."""
    first = notices[0]
    if len(notices) > 1:
        subject = f"{len(notices)} new messages from {business.name}"
    elif first.private:
        subject = f"New private message from {first.author_name}"
    else:
        subject = f"New message from {first.author_name} · {business.name}"
    context = {"recipient": recipient, "items": notices, "business": business}
    return MailMessage(
        subject=header_safe(subject),
        recipients=[recipient.email],
        sender=(header_safe(business.name), current_app.config["MAIL_DEFAULT_SENDER"]),
        body=render_template("email/new_messages.txt", **context),
        html=render_template("email/new_messages.html", **context),
    )


class EmailSender:
    """Sends a batch over one SMTP connection, opened on the first email."""

    def __init__(self):
        self._connection = None
        self._context = None

    def send(self, message: MailMessage) -> None:
        if current_app.config["MAIL_TRANSPORT"] == "console":
            # Development without an SMTP server: the console is the mail viewer.
            print(
                "--- email (MAIL_SERVER is not set, so it is printed here) ---\n"
                f"To: {', '.join(message.recipients)}\nSubject: {message.subject}\n\n"
                f"{message.body}\n--- end of email ---",
                flush=True,
            )
            return
        try:
            if self._connection is None:
                self._context = mail.connect()
                self._connection = self._context.__enter__()
            self._connection.send(message)
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
