"""Composer tokens: which page a send comes from, so a page its viewer has left posts nothing.

See RetiredComposer. Tokens are random and name no one: a retirement counts only for the person
who recorded it, so nobody can retire anyone else's composer.
"""

import re
import secrets
from datetime import timedelta

from sqlalchemy import delete, exists, select

from portal.extensions import db
from portal.models import RetiredComposer, User, utcnow
from portal.services.feed_activity import dialect_insert

_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,43}")
# A page left for another feed is gone within seconds; a day covers a stopped page left open.
KEPT = timedelta(days=1)


def new_token() -> str:
    return secrets.token_urlsafe(16)


def is_token(value: str | None) -> bool:
    return bool(value) and _TOKEN.fullmatch(value) is not None


def retire(user: User, token: str) -> None:
    """The person left the page of this composer. Commits."""
    now = utcnow()
    db.session.execute(
        dialect_insert(RetiredComposer)
        .values(user_id=user.id, token=token, business_id=user.business_id, retired_at=now)
        .on_conflict_do_nothing()
    )
    db.session.execute(delete(RetiredComposer).where(RetiredComposer.retired_at < now - KEPT))
    db.session.commit()


def is_retired(user: User, token: str | None) -> bool:
    if not is_token(token):
        return False
    return bool(db.session.scalar(select(exists().where(
        RetiredComposer.user_id == user.id, RetiredComposer.token == token
    ))))
