"""A staff member's secret calendar link: the token in the URL of their schedule feed."""

import secrets

from portal.extensions import db
from portal.models import User
from portal.services import audit


def new_calendar_link(user: User) -> str:
    """Gives the person a new calendar token, which ends the old link at once; audited as the
    link made or reset (never the token itself). Returns the token."""
    reset = user.calendar_token is not None
    user.calendar_token = secrets.token_urlsafe(32)
    action = "calendar_link.reset" if reset else "calendar_link.created"
    audit.record(user.business_id, user, action, "user", user.id)
    db.session.commit()
    return user.calendar_token
