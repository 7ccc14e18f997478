"""Loading rows for a route: always within the viewer's business, 404 when absent."""

from sqlalchemy import select

from portal.extensions import db
from portal.models import Client, Message, Role, ScheduledService, User


def client_of_business(user: User, client_id: int, *options) -> Client:
    return db.first_or_404(
        select(Client)
        .where(Client.id == client_id, Client.business_id == user.business_id)
        .options(*options)
    )


def message_of_business(user: User, message_id: int) -> Message:
    return db.first_or_404(
        select(Message).where(Message.id == message_id, Message.business_id == user.business_id)
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
