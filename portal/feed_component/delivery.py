"""Where each message went: one quiet line under it, "Emailed Dana ✓ · Texted Sam: delivered ·
Seen by Dana 9:14", built from the outbox, the SMS provider's reports and read receipts.

A page of messages costs one query whatever its length: the outbox rows of the page's messages,
and the read receipts reaching the first of them.
"""

from bisect import bisect_left
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import bindparam, func, null, select, type_coerce, union_all

from portal import policy
from portal.clock import ViewerClock
from portal.driver_reads import DriverRead
from portal.models import (
    Channel,
    Client,
    DeliveryStatus,
    Feed,
    Message,
    Notification,
    ReadReceipt,
    User,
)
from portal.notifications.outbox import READ_IN_PORTAL, UNREACHABLE_REASONS
from portal.services.reachability import BOUNCED
from portal.text import and_list

# Readers named in "Seen by …" before the rest are counted ("and 3 others").
SEEN_NAMED = 3
# A line asks again by itself while something of it goes out soon; a notification waiting
# longer (a retry after an outage) shows when the page is next opened.
SOON = timedelta(minutes=1)

_DONE = {Channel.EMAIL: "Emailed", Channel.SMS: "Texted", Channel.PUSH: "App notification to"}

def _none_as(column):
    """A NULL in the place of `column`, read back as its type: the outbox and the receipts
    share one result, each leaving the other's columns empty."""
    return type_coerce(null(), column.type).label(column.key)


_OUTBOX = (
    select(
        Notification.message_id.label("subject_id"), User.name, Notification.channel,
        Notification.status, Notification.provider_status, Notification.last_error,
        Notification.due_at, _none_as(User.role), _none_as(ReadReceipt.up_to_id),
        _none_as(ReadReceipt.read_at),
    )
    .join(Message, Message.id == Notification.message_id)
    .join(User, User.id == Notification.recipient_id)
    # The feed's messages from the first to the last shown, by the feed's index: a fixed
    # statement, where an IN list of ids is expanded and compiled anew on every page.
    .where(
        Message.client_id == bindparam("client_id"), Message.feed == bindparam("feed"),
        Message.id.between(bindparam("first_id"), bindparam("last_id")),
    )
)
_IN_FEED = (ReadReceipt.client_id == bindparam("client_id"), ReadReceipt.feed == bindparam("feed"))
_PAGE_RECEIPTS = union_all(
    # The receipts that stop within the page's messages,
    select(ReadReceipt.user_id, ReadReceipt.up_to_id, ReadReceipt.read_at).where(
        *_IN_FEED, ReadReceipt.up_to_id.between(bindparam("first_id"), bindparam("last_id"))
    ),
    # and each reader's first one past them: the first time they reached the page's end.
    select(ReadReceipt.user_id, func.min(ReadReceipt.up_to_id), func.min(ReadReceipt.read_at))
    .where(*_IN_FEED, ReadReceipt.up_to_id > bindparam("last_id"))
    .group_by(ReadReceipt.user_id),
).subquery()
_RECEIPTS = (
    select(
        _PAGE_RECEIPTS.c.user_id, User.name, _none_as(Notification.channel),
        _none_as(Notification.status), _none_as(Notification.provider_status),
        _none_as(Notification.last_error), _none_as(Notification.due_at), User.role,
        _PAGE_RECEIPTS.c.up_to_id, _PAGE_RECEIPTS.c.read_at,
    )
    .join(User, User.id == _PAGE_RECEIPTS.c.user_id)
)
# Both in one round trip: outbox rows (by message) have a channel, receipts (by reader) none.
_BOTH = union_all(_OUTBOX, _RECEIPTS).subquery()
_DELIVERY = DriverRead(select(_BOTH).order_by(
    _BOTH.c.subject_id, _BOTH.c.name, _BOTH.c.channel, _BOTH.c.up_to_id
))
# For a viewer who is not told who has seen what.
_OUTBOX_ONLY = DriverRead(
    _OUTBOX.order_by(Notification.message_id, User.name, Notification.channel)
)


@dataclass(frozen=True, slots=True)
class Part:
    text: str
    # "done", "waiting", "failed" or "seen": how the part is shown.
    kind: str


@dataclass(frozen=True, slots=True)
class Delivery:
    parts: tuple[Part, ...]
    # A notification failed and the viewer may send it again.
    retry: bool
    # Something is still waiting or on its way: the line asks again until it has settled.
    settling: bool


_NOTHING_TO_SAY = Delivery((), False, False)


class _Written(NamedTuple):
    """A notification row just written, in the shape of an _OUTBOX row."""

    name: str
    channel: Channel
    due_at: datetime
    status: DeliveryStatus = DeliveryStatus.PENDING
    provider_status: None = None
    last_error: None = None


class DeliveryLines:
    """The delivery lines of one feed's messages as one viewer may see them."""

    def __init__(self, viewer: User, client: Client, feed: Feed, clock: ViewerClock):
        self.viewer, self.client, self.feed, self.clock = viewer, client, feed, clock
        self._written = None
        self.sees_all = policy.sees_delivery(viewer, client, feed, author_id=-1)
        self.sees_own = policy.sees_delivery(viewer, client, feed, author_id=viewer.id)
        self.details = policy.sees_delivery_details(viewer)
        self.receipts = policy.sees_read_receipts(viewer)
        self.retries = policy.can_manage_notifications(viewer)

    def shows_line(self, author_id: int) -> bool:
        return self.sees_all or (self.sees_own and author_id == self.viewer.id)

    def just_posted(self, message_id: int, told, due_at: datetime) -> None:
        """The line of a message just posted comes from the notifications just written for it
        (outbox.Recipient: name and channels, all waiting until due_at), not read back: nobody
        can have been sent one, nor been shown the message, yet."""
        self._written = {message_id: sorted(
            _Written(recipient.name, channel, due_at)
            for recipient in told for channel in recipient.channels
        )}

    def for_messages(self, messages) -> dict[int, Delivery]:
        """Lines for the messages, (id, author id, deleted) in ascending id order, that show
        one (not deleted, and the viewer's to see)."""
        shown = [(message_id, author_id) for message_id, author_id, deleted in messages
                 if not deleted and self.shows_line(author_id)]
        if not shown:
            return {}
        if self._written is not None:
            outbox, readers = self._written, {}
        else:
            outbox, readers = self._rows(shown[0][0], shown[-1][0])
        return {
            message_id: self._line(author_id, outbox.get(message_id, ()),
                                   self._seen(readers, message_id, author_id))
            for message_id, author_id in shown
        }

    def _rows(self, first_id: int, last_id: int) -> tuple[dict[int, list], dict[int, tuple]]:
        """The outbox rows of the feed's messages from first_id to last_id, by message (the
        rows of messages in between that show no line come too, and are left unread); and,
        when the viewer is told of them, each reader's receipts that tell when they reached
        those messages: marks reached, and when (name, role, marks, times). However long the
        feed went on after them, a reader brings at most their page's receipts and one more."""
        outbox, readers = defaultdict(list), {}
        rows = (_DELIVERY if self.receipts else _OUTBOX_ONLY).rows({
            "client_id": self.client.id, "feed": self.feed, "first_id": first_id,
            "last_id": last_id,
        })
        for row in rows:
            if row.channel is not None:
                outbox[row.subject_id].append(row)
                continue
            reader = readers.setdefault(row.subject_id, (row.name, row.role, [], []))
            reader[2].append(row.up_to_id)
            reader[3].append(row.read_at)
        return outbox, readers

    def _seen(self, readers, message_id: int, author_id: int) -> list[tuple[datetime, str]]:
        """(when, who) for everyone but the author who has been shown the message: the first
        receipt reaching it (markers only move forward). A client hears only of the business."""
        seen = []
        for user_id, (name, role, marks, times) in readers.items():
            if user_id == author_id or not policy.shows_reader(self.viewer, role):
                continue
            index = bisect_left(marks, message_id)
            if index < len(marks):
                seen.append((times[index], name))
        return sorted(seen)

    def _line(self, author_id: int, rows, seen) -> Delivery:
        if not rows and not seen:
            return _NOTHING_TO_SAY  # most of a feed's older messages: one made for all
        parts, waiting, failed = [], defaultdict(list), False
        for row in rows:
            status = row.status
            if status == DeliveryStatus.CANCELLED:
                # Not sent: deleted, read in the portal first, or access gone since; or the
                # person could no longer be reached there, which the admin team is told.
                if self.details and row.last_error in UNREACHABLE_REASONS:
                    parts.append(Part(f"{row.channel.noun.capitalize()} to {row.name} not sent: "
                                      f"{row.last_error}", "failed"))
                continue
            if status == DeliveryStatus.FAILED:
                failed = True
            if not self.details:
                continue
            if status in (DeliveryStatus.PENDING, DeliveryStatus.SENDING):
                waiting[row.name].append(row.channel.noun)
            elif status == DeliveryStatus.FAILED:
                parts.append(Part(_failed_text(row), "failed"))
            else:
                report = f": {row.provider_status}" if row.provider_status else " ✓"
                parts.append(Part(f"{_DONE[row.channel]} {row.name}{report}", "done"))
        soon = self.clock.now + SOON
        settling = any(
            row.status == DeliveryStatus.SENDING
            or (row.status == DeliveryStatus.PENDING and row.due_at <= soon)
            for row in rows
        )
        if waiting:
            people = [f"{name} ({', '.join(nouns)})" for name, nouns in waiting.items()]
            parts.insert(0, Part("Waiting to notify " + and_list(people), "waiting"))
        if not self.details:
            parts += self._client_summary(rows, failed)
        if seen:
            parts.append(Part(self._seen_text(seen), "seen"))
        return Delivery(tuple(parts), failed and self.retries, settling)

    def _client_summary(self, rows, failed: bool) -> list[Part]:
        """A client's own message: that the business was told, not whom by which channel."""
        told = any(row.status == DeliveryStatus.SENT or row.last_error == READ_IN_PORTAL
                   for row in rows)
        if told and not failed:
            return [Part(f"{self.viewer.business.name} was notified ✓", "done")]
        return []

    def _seen_text(self, seen: list[tuple[datetime, str]]) -> str:
        if not self.details:
            return f"Seen {self.clock.short(seen[0][0])}"
        named = [f"{name} {self.clock.short(when)}" for when, name in seen[:SEEN_NAMED]]
        if len(seen) > SEEN_NAMED:
            others = len(seen) - SEEN_NAMED
            named.append(f"{others} other{'s' if others != 1 else ''}")
        return "Seen by " + and_list(named)


def _failed_text(row) -> str:
    """"Email to Dana failed", or, when a report came back, "Email to Dana bounced: …"."""
    what = f"{row.channel.noun.capitalize()} to {row.name}"
    if row.last_error and row.last_error.startswith(BOUNCED):
        return f"{what} bounced: {row.last_error.removeprefix(BOUNCED)}"
    return f"{what} failed"
