"""Signed links in account emails: set a password after an invitation, or after a reset request.

A link carries the user id and a fingerprint of what it may change (the password hash, the
latest invitation's time, the email address). Using it sets a password, which changes the
fingerprint: the link works once. A new invitation makes the earlier ones stop working too.
Each purpose has its own salt, so an invitation link is no reset link, and its own lifetime.
"""

import enum
import hashlib
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from portal.extensions import db
from portal.models import User


class Purpose(enum.StrEnum):
    INVITATION = "invitation"
    PASSWORD_RESET = "password-reset"

    @property
    def lifetime(self) -> timedelta:
        return LIFETIMES[self]


LIFETIMES = {Purpose.INVITATION: timedelta(days=7), Purpose.PASSWORD_RESET: timedelta(hours=1)}


class Problem(enum.StrEnum):
    INVALID = "invalid"  # not a link we made (mistyped, cut short)
    EXPIRED = "expired"
    USED = "used"  # used already, replaced by a newer one, or its login is switched off


@dataclass(frozen=True)
class Check:
    user: User | None
    problem: Problem | None = None


def _serializer(purpose: Purpose) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=f"portal.{purpose}")


def fingerprint(user: User) -> str:
    """Changes whenever the user's links must stop working. A digest: the token is readable."""
    invited = user.invited_at.timestamp() if user.invited_at else ""
    material = f"{user.password_hash}|{invited}|{user.email}"
    return hashlib.sha256(material.encode()).hexdigest()[:32]


def make(user: User, purpose: Purpose) -> str:
    return _serializer(purpose).dumps({"user": user.id, "state": fingerprint(user)})


def check(token: str, purpose: Purpose) -> Check:
    """The user a link lets set a password, or why it does not. An expired link still names its
    user (its signature is good), so the page can say whom to ask for a new one."""
    serializer = _serializer(purpose)
    try:
        data = serializer.loads(token, max_age=int(purpose.lifetime.total_seconds()))
    except SignatureExpired as expired:
        data = serializer.load_payload(expired.payload)
        return Check(_user(data), Problem.EXPIRED)
    except BadSignature:
        return Check(None, Problem.INVALID)
    user = _user(data)
    if user is None or not user.active or fingerprint(user) != data.get("state"):
        return Check(user, Problem.USED)
    return Check(user)


def _user(data) -> User | None:
    user_id = data.get("user") if isinstance(data, dict) else None
    return db.session.get(User, user_id) if isinstance(user_id, int) else None
