from portal import policy
from portal.extensions import db
from portal.models import Business, User
from portal.services import audit


def update_business_settings(actor: User, business: Business, **values) -> None:
    """Sets the business's settings and audits each change as old -> new."""
    changes = {}
    for name, new in values.items():
        old = getattr(business, name)
        if old != new:
            setattr(business, name, new)
            changes[name] = {"old": old, "new": new}
    if changes:
        audit.record(business.id, actor, "settings.changed", "business", business.id, **changes)
    db.session.commit()


def set_private_messages_access(actor: User, office_managers: list[User], granted: set[int]):
    """Saves the Permissions page: who of the office managers may reach private messages."""
    for manager in office_managers:
        if not policy.can_be_granted_private_access(manager, actor.business_id):
            raise ValueError("Only office managers of the same business get this permission.")
        new = manager.id in granted
        if manager.private_messages_access != new:
            manager.private_messages_access = new
            audit.record(
                actor.business_id, actor, "permission.changed", "user", manager.id,
                permission="private_messages", old=not new, new=new,
            )
    db.session.commit()


def update_own_time_zone(user: User, time_zone: str) -> bool:
    """The person's own time zone, audited as before and after. False when unchanged."""
    if user.time_zone == time_zone:
        return False
    audit.record(user.business_id, user, "user.time_zone_changed", "user", user.id,
                 changes={"time_zone": [user.time_zone, time_zone]})
    user.time_zone = time_zone
    db.session.commit()
    return True


def update_notification_choices(user: User, choices: dict) -> None:
    """choices: Channel -> True, False or None (follow the business default)."""
    for channel, value in choices.items():
        setattr(user, f"notify_{channel.value}", value)
    db.session.commit()
