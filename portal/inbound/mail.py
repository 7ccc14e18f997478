"""Reading an email that came in: who sent it, to which reply address, what they wrote, what
they attached, and whether a machine sent it (an auto-reply, a delivery failure report)."""

from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import getaddresses

from portal.services.uploads import Upload


class MalformedEmail(ValueError):
    """Not an email we can read: the reason is said to the sender's server or to support."""


@dataclass(frozen=True)
class Bounce:
    """A delivery failure report (RFC 3464): which address failed, how, and for which email."""

    recipients: tuple[str, ...]
    # "5.1.1": permanent (a hard bounce) when it starts with 5.
    status: str
    diagnostic: str
    # The Message-ID of the email that could not be delivered, when the report includes it.
    original_message_id: str | None

    @property
    def permanent(self) -> bool:
        return self.status.startswith("5")


@dataclass(frozen=True)
class ParsedEmail:
    message_id: str | None
    sender: str             # the From address, lower case
    sender_name: str
    subject: str
    # Every address in Delivered-To, To and Cc, lower case, in that order (the reply address
    # is found among them when the delivery itself does not say).
    addressed_to: tuple[str, ...]
    # What the person wrote: quoted history and signature taken off; HTML-only mail as text.
    text: str
    uploads: tuple[Upload, ...] = ()
    # An out-of-office or other automatic reply: never a message.
    automatic: bool = False
    bounce: Bounce | None = None
    # What the business's own mail server (INBOUND_AUTHSERV_ID) found of the sender: "pass",
    # "fail" (DKIM or SPF failed: the sender is not trusted), or None when it said nothing.
    authentication: str | None = None
    headers: dict = field(default_factory=dict, compare=False)


def parse(raw: bytes, authserv_id: str | None = None) -> ParsedEmail:
    """Reads a raw message. Raises MalformedEmail when it is not one."""
    message = message_from_bytes(raw, policy=policy.default)
    if not isinstance(message, EmailMessage) or not message.keys():
        raise MalformedEmail("not an email message")
    senders = getaddresses([str(message.get("From", ""))])
    sender_name, sender = senders[0] if senders else ("", "")
    addressed_to = tuple(
        address.lower() for _, address in getaddresses(
            [str(value) for name in ("Delivered-To", "To", "Cc")
             for value in message.get_all(name, [])]
        ) if address
    )
    body = message.get_body(preferencelist=("plain",))
    text = body.get_content() if body is not None else ""
    uploads = tuple(
        Upload(part.get_filename() or "attachment", part.get_content(), part.get_content_type())
        for part in message.iter_attachments()
        if isinstance(part.get_content(), bytes)
    )
    return ParsedEmail(
        message_id=(str(message.get("Message-ID", "")).strip() or None),
        sender=sender.lower(), sender_name=sender_name,
        subject=str(message.get("Subject", "")), addressed_to=addressed_to,
        text=text.strip(), uploads=uploads,
    )
