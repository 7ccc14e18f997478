"""Loading rows for a route: always within the viewer's business, 404 when absent (or, for a
feed, not the viewer's to see)."""

from functools import lru_cache

from flask import abort
from sqlalchemy import bindparam, select

from portal import policy
from portal.extensions import db
from portal.models import (
    Client,
    Feed,
    Message,
    Pet,
    Role,
    SavedReply,
    ScheduledMessage,
    ScheduledService,
    User,
)


def client_of_business(user: User, client_id: int, *options) -> Client:
    statement = _client_statement(options)
    client = db.session.scalar(statement, {"client_id": client_id, "business_id": user.business_id})
    if client is None:
        abort(404)
    return client


@lru_cache(maxsize=16)
def _client_statement(options: tuple):
    """Every client route loads its client: the statement is built once per set of options."""
    return (
        select(Client)
        .where(Client.id == bindparam("client_id"), Client.business_id == bindparam("business_id"))
        .options(*options)
    )


def visible_feed(user: User, client_id: int, feed_name: str, *options) -> tuple[Client, Feed]:
    """The client and feed of a feed route, or a 404 unless the user may see that feed."""
    client = client_of_business(user, client_id, *options)
    feed = Feed(feed_name)
    policy.require(policy.can_view_feed(user, client, feed))
    return client, feed


def pet_of_client(user: User, client: Client, pet_id: int) -> Pet:
    """One of this client's pets (the client already loaded inside the user's business)."""
    return db.first_or_404(
        select(Pet).where(
            Pet.id == pet_id, Pet.client_id == client.id, Pet.business_id == user.business_id
        )
    )


def message_of_business(user: User, message_id: int) -> Message:
    return db.first_or_404(
        select(Message).where(Message.id == message_id, Message.business_id == user.business_id)
    )


def scheduled_of_business(user: User, scheduled_id: int) -> ScheduledMessage:
    return db.first_or_404(
        select(ScheduledMessage).where(
            ScheduledMessage.id == scheduled_id, ScheduledMessage.business_id == user.business_id
        )
    )


def saved_reply_of_business(user: User, reply_id: int) -> SavedReply:
    return db.first_or_404(
        select(SavedReply).where(SavedReply.id == reply_id,
                                 SavedReply.business_id == user.business_id)
    )


def service_of_business(user: User, service_id: int) -> ScheduledService:
    return db.first_or_404(
        select(ScheduledService).where(
            ScheduledService.id == service_id, ScheduledService.business_id == user.business_id
        )
    )


def staff_of_business(user: User, staff_id: int) -> User:
    return db.first_or_404(
        select(User).where(
            User.id == staff_id, User.business_id == user.business_id, User.role == Role.STAFF
        )
    )


def active_staff(business_id: int) -> list[User]:
    return list(
        db.session.scalars(
            select(User)
            .where(User.business_id == business_id, User.role == Role.STAFF, User.active)
            .order_by(User.name)
        )
    )
