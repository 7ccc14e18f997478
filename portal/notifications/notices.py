"""What a notification says about its message: a Notice, built once for every channel."""

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from portal.bidi import without_bidi_controls
from portal.clock import zone
from portal.extensions import db
from portal.models import (
    VIA_AUTOMATIC,
    Attachment,
    AttachmentKind,
    Client,
    Feed,
    Message,
    VisitReport,
)
from portal.notifications.links import external_url
from portal.report_cards import ReportCard

EXCERPT_LENGTH = 280


@dataclass(frozen=True)
class Notice:
    """What a notification says about its message, as channels render it."""

    message_id: int
    client_id: int
    client_name: str
    feed: Feed
    author_name: str
    business_name: str
    excerpt: str | None
    # A private message whose text the business keeps out of emails (the default).
    text_withheld: bool
    attachments: int
    link: str
    time: str
    # The portal's home for the person (a summary of several feeds links there).
    home_link: str = ""
    # A visit report's card, and links to its photos in the portal (each behind the login and
    # the policy, as any file).
    report: ReportCard | None = None
    photo_links: tuple[str, ...] = ()

    @property
    def private(self) -> bool:
        return self.feed == Feed.PRIVATE

    @property
    def feed_label(self) -> str:
        return self.feed.label


def build(message_ids: set[int]) -> dict[int, tuple[Notice, Client]]:
    """What every channel says of these messages, by message id, with each one's client."""
    attachment_counts = (
        select(func.count(Attachment.id)).where(Attachment.message_id == Message.id)
        .scalar_subquery()
    )
    rows = db.session.execute(
        select(Message, Client, attachment_counts, VisitReport.card)
        .join(Client, Message.client_id == Client.id)
        .outerjoin(VisitReport, VisitReport.message_id == Message.id)
        .options(joinedload(Message.author))
        .where(Message.id.in_(message_ids))
    ).all()
    photos = photo_tokens([message.id for message, _, _, card in rows if card])
    return {message.id: (_notice(message, client, count, card, tuple(
        external_url("files.view", token=token) for token in photos.get(message.id, ()))),
        client) for message, client, count, card in rows}


def photo_tokens(message_ids: list[int]) -> dict[int, tuple[str, ...]]:
    """The photos of these messages (visit reports), in order, by message: one query, none
    for no messages."""
    if not message_ids:
        return {}
    found: dict[int, list[str]] = {}
    for message_id, token in db.session.execute(
        select(Attachment.message_id, Attachment.token)
        .where(Attachment.message_id.in_(message_ids),
               Attachment.kind == AttachmentKind.IMAGE)
        .order_by(Attachment.message_id, Attachment.position)
    ):
        found.setdefault(message_id, []).append(token)
    return {message_id: tuple(tokens) for message_id, tokens in found.items()}


def _notice(message: Message, client: Client, attachments: int, card: str | None = None,
            photo_links: tuple[str, ...] = ()) -> Notice:
    business = message.author.business
    show_text = message.feed == Feed.CONVERSATION or business.private_email_includes_text
    # Every channel shows these as plain text: the text messages and push notifications too,
    # not only the pages and emails that Jinja cleans, lose their direction controls.
    text = without_bidi_controls(message.text or "").strip()
    excerpt = None
    if show_text and text:
        excerpt = text if len(text) <= EXCERPT_LENGTH else text[:EXCERPT_LENGTH - 1] + "…"
    link = external_url("feeds.show", client_id=client.id, feed_name=message.feed.value)
    if message.reply_to_id is not None:
        # An answer to a visit report opens its thread (also for the report's writer, whom
        # the feed may no longer open to: policy.report_thread_open).
        link = external_url("visits.thread", message_id=message.reply_to_id) + \
            f"#answer-{message.id}"
    local = message.created_at.astimezone(zone(business.time_zone))
    return Notice(
        message.id, client.id, without_bidi_controls(client.name), message.feed,
        without_bidi_controls(business.name if message.via == VIA_AUTOMATIC
                              else message.author.name),
        without_bidi_controls(business.name),
        excerpt, bool(text) and not show_text, attachments, link,
        local.strftime("%b %-d at %-I:%M %p"), external_url("auth.home"),
        ReportCard.of(card, zone(business.time_zone)) if card else None, photo_links,
    )
