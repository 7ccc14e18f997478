"""Saved replies: answers the admin team keeps, inserted into any business-side composer with
their placeholders filled in for the client, and their files copied into the message sent."""

import re
from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from portal import policy
from portal.clock import day_and_time
from portal.extensions import db
from portal.models import (
    Client,
    Pet,
    SavedReply,
    SavedReplyFile,
    ScheduledService,
    ServiceStatus,
    User,
    utcnow,
)
from portal.services import audit
from portal.services.messages import read_back, stored_row
from portal.services.uploads import PreparedFile
from portal.storage import forget
from portal.text import and_list

# The placeholders a saved reply may hold, and what each becomes.
PLACEHOLDERS = {
    "first_name": "the client's first name",
    "pet_names": "the names of the client's pets",
    "next_visit_date": "the date and time of the client's next visit",
    "next_visit_sitter": "who comes on that visit",
}
# Anything in braces on one line is meant as one: "{first name}" is refused, not sent as is.
_PLACEHOLDER = re.compile(r"\{([^{}\n]{1,40})\}")
NO_VISIT, NO_SITTER = "(to be scheduled)", "(to be confirmed)"


class SavedReplyError(ValueError):
    """Why a saved reply cannot be kept as written: in words for the person who wrote it, and
    the field (text, files) it is about."""

    def __init__(self, message: str, field: str = "text"):
        super().__init__(message)
        self.field = field


def unknown_placeholders(text: str) -> list[str]:
    return sorted({name for name in _PLACEHOLDER.findall(text) if name not in PLACEHOLDERS})


def check_text(text: str) -> None:
    if unknown := unknown_placeholders(text):
        named = and_list(f"{{{name}}}" for name in unknown)
        known = and_list(f"{{{name}}}" for name in PLACEHOLDERS)
        raise SavedReplyError(f"The portal does not know {named}. Placeholders: {known}.")


# --- keeping them --------------------------------------------------------------------------------

def of_business(business_id: int) -> list[SavedReply]:
    """The business's saved replies by title, with their files (two queries, however many)."""
    return list(db.session.scalars(
        select(SavedReply).where(SavedReply.business_id == business_id)
        .options(selectinload(SavedReply.files))
        .order_by(SavedReply.title, SavedReply.id)
    ))


def save(actor: User, reply: SavedReply | None, title: str, text: str,
         files: list[PreparedFile], removed: set[int]) -> SavedReply:
    """Creates or changes a saved reply: its title, its text (placeholders checked), new files
    and files taken off. Bytes of new files are stored first and removed again when anything
    fails; bytes of files taken off go once the change is committed."""
    check_text(text)
    kept = len([file for file in reply.files if file.id not in removed]) if reply else 0
    most = current_app.config["UPLOAD_MAX_FILES"]
    if kept + len(files) > most:
        raise SavedReplyError(f"A saved reply can carry at most {most} files, as a message can.",
                              "files")
    written: list[str] = []
    try:
        created = reply is None
        if created:
            reply = SavedReply(business_id=actor.business_id, title=title, text=text)
            db.session.add(reply)
        reply.title, reply.text, reply.updated_at = title, text, utcnow()
        gone = [file for file in reply.files if file.id in removed]
        for file in gone:
            reply.files.remove(file)
        position = max((file.position for file in reply.files), default=-1) + 1
        for offset, prepared in enumerate(files):
            reply.files.append(stored_row(SavedReplyFile, prepared, written,
                                          business_id=actor.business_id,
                                          position=position + offset))
        db.session.flush()
        audit.record(actor.business_id, actor, "saved_reply.created" if created else
                     "saved_reply.changed", "saved_reply", reply.id, title=title,
                     files_added=len(files), files_removed=len(gone))
        db.session.commit()
    except BaseException:
        db.session.rollback()
        for key in written:
            forget(key)
        raise
    for file in gone:
        _forget(file)
    return reply


def delete(actor: User, reply: SavedReply) -> None:
    files = list(reply.files)
    audit.record(actor.business_id, actor, "saved_reply.deleted", "saved_reply", reply.id,
                 title=reply.title)
    db.session.delete(reply)
    db.session.commit()
    for file in files:
        _forget(file)


def _forget(file: SavedReplyFile) -> None:
    for key in (file.storage_key, file.thumbnail_key):
        if key:
            forget(key)


# --- using them ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class NextVisit:
    starts_at: datetime
    staff_name: str | None


def filled(reply: SavedReply, client: Client, viewer: User) -> str:
    """The reply's text with its placeholders filled in for this client, as the viewer may
    know them (a sitter sees only their own visits)."""
    values = placeholder_values(client, viewer)
    return _PLACEHOLDER.sub(lambda found: values.get(found.group(1), found.group(0)), reply.text)


def placeholder_values(client: Client, viewer: User) -> dict[str, str]:
    pets = db.session.scalars(
        select(Pet.name).where(Pet.client_id == client.id, Pet.archived_at.is_(None))
        .order_by(Pet.name)
    ).all()
    visit = next_visit(client, viewer)
    time_zone = viewer.business.time_zone
    return {
        "first_name": (client.first_name or "").strip() or "there",
        "pet_names": and_list(pets) or "your pets",
        "next_visit_date": day_and_time(visit.starts_at, time_zone) if visit else NO_VISIT,
        # Clients know their sitters by first name (as their portal shows them).
        "next_visit_sitter": _first_word(visit.staff_name) if visit and visit.staff_name
        else NO_SITTER,
    }


def _first_word(name: str) -> str:
    return name.split(maxsplit=1)[0] if name.strip() else name


def next_visit(client: Client, viewer: User) -> NextVisit | None:
    query = (
        select(ScheduledService.starts_at, User.name)
        .outerjoin(User, User.id == ScheduledService.staff_id)
        .where(ScheduledService.client_id == client.id, ScheduledService.ends_at > utcnow(),
               ScheduledService.status.not_in([ServiceStatus.CANCELLED,
                                               ServiceStatus.COMPLETED]))
        .order_by(ScheduledService.starts_at, ScheduledService.id).limit(1)
    )
    if policy.sees_only_own_services(viewer):
        query = query.where(ScheduledService.staff_id == viewer.id)
    row = db.session.execute(query).first()
    return NextVisit(row.starts_at, row.name) if row else None


def files_to_send(reply: SavedReply) -> list[PreparedFile]:
    """Its files, read back as prepared files: the message stores copies of its own."""
    return read_back(reply.files)
