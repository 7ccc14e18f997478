import unicodedata

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from portal import policy
from portal.extensions import db
from portal.models import AttachmentKind, Business, User
from portal.services import audit
from portal.services.stored_files import replacing
from portal.services.uploads import PreparedFile, UploadError

BUSINESS_NAME_MAX = 200


NAME_TAKEN = "Another business on this portal already uses that name."


class NameTaken(ValueError):
    """Another business on this portal goes by the name."""


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


def update_quiet_hours(user: User, quiet_from: str | None, quiet_until: str | None) -> None:
    """The person's own quiet hours ("22:00", "07:00" in their zone), or none. What is held
    for the hours already set keeps its time."""
    user.quiet_from, user.quiet_until = quiet_from, quiet_until
    db.session.commit()


def update_notification_choices(user: User, choices: dict) -> None:
    """choices: Channel -> True, False or None (follow the business default)."""
    for channel, value in choices.items():
        setattr(user, f"notify_{channel.value}", value)
    db.session.commit()


def update_business_profile(
    actor: User, business: Business, *, name: str, logo: PreparedFile | None = None,
    remove_logo: bool = False,
) -> dict:
    """The business's name and logo, audited. A new logo replaces the old, whose file is deleted
    once the change is committed; remove_logo takes it away; a failed save leaves no new file.
    The logo is stored as its re-encoded thumbnail (uploads.prepare): at most 480 px, WebP, no
    metadata, transparency kept."""
    if logo is not None and (logo.kind != AttachmentKind.IMAGE or not logo.thumbnail):
        raise UploadError("Choose an image for the logo (JPEG, PNG, WebP, GIF or HEIC).")
    name = business_name(name)
    if not name or len(name) > BUSINESS_NAME_MAX:
        raise ValueError(f"The business's name is 1 to {BUSINESS_NAME_MAX} characters.")
    # (SQLite's lower() folds only ASCII letters: there, names differing in the case of other
    # letters pass this check; PostgreSQL folds them all.)
    if db.session.scalar(select(Business.id).where(func.lower(Business.name) == name.lower(),
                                                   Business.id != business.id)):
        raise NameTaken(NAME_TAKEN)
    try:
        return _save_profile(actor, business, name, logo, remove_logo)
    except IntegrityError:  # another admin took the name since the check
        raise NameTaken(NAME_TAKEN) from None


def business_name(text: str) -> str:
    """A name as typed, tidied: single spaces, no control or direction characters (which would
    make one name look like another's)."""
    shown = "".join(char for char in text if unicodedata.category(char) not in ("Cc", "Cf"))
    return " ".join(shown.split())


def _save_profile(actor: User, business: Business, name: str, logo: PreparedFile | None,
                  remove_logo: bool) -> dict:
    changes = {}
    with replacing(business.logo_key) as swap:
        if name != business.name:
            changes["name"] = {"old": business.name, "new": name}
            business.name = name
        if logo is not None:
            business.logo_key = swap.save(logo.thumbnail)
            changes["logo"] = {"old": "a logo" if swap.old_key else "none", "new": "a new logo"}
        elif remove_logo and swap.old_key:
            swap.remove()
            business.logo_key = None
            changes["logo"] = {"old": "a logo", "new": "none"}
        if changes:
            audit.record(business.id, actor, "settings.changed", "business", business.id,
                         **changes)
            db.session.commit()
    return changes
