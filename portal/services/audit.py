from sqlalchemy import select

from portal.extensions import db
from portal.models import AuditEvent, User


def record(
    business_id: int, actor: User | None, action: str, object_type: str, object_id: int | None,
    **details,
) -> AuditEvent:
    """Adds an audit event to the caller's transaction (committed with the change it records)."""
    event = AuditEvent(
        business_id=business_id,
        actor_id=actor.id if actor else None,
        action=action,
        object_type=object_type,
        object_id=object_id,
        details=details,
    )
    db.session.add(event)
    return event


def record_login_locked_out(email: str, minutes: int) -> None:
    """Too many failed logins locked this account for a while. Unknown emails are locked the
    same way (nothing may tell them apart) but belong to no business, so nothing is recorded."""
    user = db.session.scalar(select(User).where(User.email == email))
    if user is not None:
        record(user.business_id, None, "login.locked_out", "user", user.id, minutes=minutes)
        db.session.commit()
