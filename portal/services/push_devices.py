"""The devices a person gets app notifications on: their browsers' push subscriptions."""

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from portal.extensions import db
from portal.models import PushSubscription, User, utcnow

MAX_DEVICES = 10  # per person; the oldest beyond this are forgotten


def endpoints(user: User) -> list[str]:
    return list(db.session.scalars(
        select(PushSubscription.endpoint).where(PushSubscription.user_id == user.id)
    ))


def save(user: User, endpoint: str, p256dh: str, auth: str) -> bool:
    """Upsert by endpoint: a browser has one subscription, so a device another login enabled
    before now notifies this person instead. Returns whether a row was created. Commits."""
    fields = {"user_id": user.id, "business_id": user.business_id,
              "p256dh": p256dh, "auth": auth}
    for _ in range(2):
        existing = db.session.scalar(
            select(PushSubscription).where(PushSubscription.endpoint == endpoint)
        )
        if existing is not None:
            if existing.user_id != user.id:
                existing.created_at = utcnow()  # a new device for its new owner
            for name, value in fields.items():
                setattr(existing, name, value)
        else:
            db.session.add(PushSubscription(endpoint=endpoint, **fields))
        try:
            db.session.flush()
        except IntegrityError:
            db.session.rollback()  # the same endpoint saved meanwhile: update that one
            continue
        _forget_oldest_devices(user)
        db.session.commit()
        return existing is None
    raise RuntimeError("could not save the push subscription")


def forget(user: User, endpoint: str) -> bool:
    """This person's subscription at the endpoint, if any. Returns whether there was one.
    Commits."""
    result = db.session.execute(
        delete(PushSubscription)
        .where(PushSubscription.endpoint == endpoint, PushSubscription.user_id == user.id),
        execution_options={"synchronize_session": False},
    )
    db.session.commit()
    return result.rowcount > 0


def _forget_oldest_devices(user: User) -> None:
    keep = (
        select(PushSubscription.id)
        .where(PushSubscription.user_id == user.id)
        .order_by(PushSubscription.created_at.desc(), PushSubscription.id.desc())
        .limit(MAX_DEVICES)
    )
    db.session.execute(
        delete(PushSubscription)
        .where(PushSubscription.user_id == user.id, PushSubscription.id.not_in(keep)),
        execution_options={"synchronize_session": False},
    )
