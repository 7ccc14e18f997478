"""One-time form keys: a form that creates something, submitted twice (a double tap on a slow
phone, a request retried), creates it once.

Each such form carries a new key every time it is shown (the `once()` macro). The first post
with it records the key in the same commit as what it made, then where that led; a repeat goes
there too and makes nothing. A post without a usable key (a page from before keys) is made as
it always was. Messages keep their key on themselves instead (Message.send_key).
"""

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from portal.extensions import db
from portal.models import UsedFormKey, User, utcnow
from portal.services import composers

FIELD = "once"
# A repeat comes within seconds; a day covers a page left open and sent again after a reload.
KEPT = timedelta(days=1)


def new_key() -> str:
    return composers.new_token()


def once(user: User, key: str | None, make: Callable[[], str], repeated_url: str) -> str:
    """Runs make() (which commits what it creates and returns the URL to go to next) unless
    the user's form sent a key (its FIELD) used already; returns where to go. A repeat goes
    to `repeated_url` until make()'s own URL, when it differs (a new record's page), is
    recorded just after."""
    if not composers.is_token(key):
        return make()
    if (used := _used(user, key)) is not None:
        return used.result_url
    db.session.execute(delete(UsedFormKey).where(UsedFormKey.used_at < utcnow() - KEPT))
    db.session.add(UsedFormKey(user_id=user.id, key=key, result_url=repeated_url,
                               business_id=user.business_id))
    try:
        url = make()  # its commit takes the key with it
    except IntegrityError:
        db.session.rollback()
        if (used := _used(user, key)) is None:
            raise
        return used.result_url  # the same post, committed first meanwhile
    if url != repeated_url:
        _record(user, key, url)
    return url


def _used(user: User, key: str) -> UsedFormKey | None:
    return db.session.scalar(
        select(UsedFormKey).where(UsedFormKey.user_id == user.id, UsedFormKey.key == key)
    )


def _record(user: User, key: str, url: str) -> None:
    db.session.execute(
        update(UsedFormKey)
        .where(UsedFormKey.user_id == user.id, UsedFormKey.key == key)
        .values(result_url=url[:300])
    )
    db.session.commit()
