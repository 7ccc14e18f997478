"""The one way an email comes in: `ingest_email` takes the raw bytes and does everything."""

from dataclasses import dataclass

from portal.models import InboundOutcome


@dataclass(frozen=True)
class Outcome:
    """What became of a delivery, for the receiver's SMTP answer and the command's output."""

    kind: InboundOutcome
    reason: str = ""
    message_id: int | None = None      # the feed message it became
    inbound_id: int | None = None      # its InboundMessage row
    duplicate: bool = False            # the same delivery was taken before


def ingest_email(raw: bytes, recipient: str | None = None) -> Outcome:
    """Takes one delivery of an email to the portal (`recipient`: the envelope address it was
    delivered to, when the way in knows it). Commits; never raises for what a sender sent."""
    raise NotImplementedError
