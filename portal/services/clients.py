from datetime import date, datetime

from sqlalchemy import delete

from portal.extensions import db
from portal.models import (
    AttachmentKind,
    Business,
    Client,
    Pet,
    PreferredSitter,
    ScheduledService,
    User,
    utcnow,
)
from portal.services import audit, schedule, send_later
from portal.services.stored_files import replacing
from portal.services.uploads import PreparedFile, UploadError


def create_client(
    business: Business,
    actor: User | None,
    *,
    name: str,
    email: str | None = None,
    phone: str | None = None,
    address: str | None = None,
    notes: str | None = None,
    pets: list[tuple[str, str]] = (),
    **details: str | None,
) -> Client:
    """`details`: more of the record's fields (CLIENT_FIELDS), e.g. first_name, alt_phone,
    entry_instructions."""
    unknown = set(details) - set(CLIENT_FIELDS)
    if unknown:
        raise ValueError(f"not a client field: {', '.join(sorted(unknown))}")
    client = Client(
        business_id=business.id,
        name=name.strip(),
        email=email or None,
        phone=phone or None,
        address=address or None,
        notes=notes or None,
        **{field: _clean(value) for field, value in details.items()},
    )
    client.pets = [
        Pet(business_id=business.id, name=pet_name, species=species) for pet_name, species in pets
    ]
    db.session.add(client)
    db.session.flush()
    audit.record(business.id, actor, "client.created", "client", client.id)
    db.session.commit()
    return client


def add_pet(actor: User, client: Client, *, name: str, species: str, notes: str | None) -> Pet:
    pet = Pet(
        business_id=client.business_id, client_id=client.id, name=name.strip(),
        species=species.strip() or "Dog", notes=notes or None,
    )
    db.session.add(pet)
    db.session.flush()
    audit.record(client.business_id, actor, "pet.created", "pet", pet.id, client_id=client.id)
    db.session.commit()
    return pet


def schedule_service(
    actor: User | None, client: Client, staff: User | None, *, title: str,
    starts_at: datetime, ends_at: datetime,
) -> ScheduledService:
    """One visit at given moments; the schedule's own rules are in services.schedule."""
    return schedule.schedule_service(actor, client, staff, title=title, starts_at=starts_at,
                                     ends_at=ends_at)


def add_preferred_sitter(actor: User | None, client: Client, staff: User) -> None:
    exists = db.session.scalar(
        db.select(PreferredSitter.id).where(
            PreferredSitter.client_id == client.id, PreferredSitter.staff_id == staff.id
        )
    )
    if exists:
        return
    db.session.add(
        PreferredSitter(business_id=client.business_id, client_id=client.id, staff_id=staff.id)
    )
    audit.record(
        client.business_id, actor, "preferred_sitter.added", "client", client.id,
        staff_id=staff.id,
    )
    db.session.commit()


def remove_preferred_sitter(actor: User, client: Client, staff: User) -> None:
    db.session.execute(
        delete(PreferredSitter).where(
            PreferredSitter.client_id == client.id, PreferredSitter.staff_id == staff.id
        )
    )
    audit.record(
        client.business_id, actor, "preferred_sitter.removed", "client", client.id,
        staff_id=staff.id,
    )
    db.session.commit()


# --- editing a household and its pets ---------------------------------------------------------

# What the admin team edits of a client, and what the household edits of itself (never the
# business's own notes, nor the household's name as the business lists it).
CLIENT_FIELDS = (
    "name", "first_name", "last_name", "email", "phone", "alt_phone", "address",
    "entry_instructions", "gate_code", "emergency_contact_name", "emergency_contact_phone",
    "vet_name", "vet_phone", "notes",
)
HOUSEHOLD_FIELDS = tuple(field for field in CLIENT_FIELDS if field not in ("name", "notes"))
PET_FIELDS = ("name", "species", "breed", "birthday", "notes", "feeding_notes",
              "medication_notes")
# A pet's care notes: what the household may edit of its pets.
CARE_FIELDS = ("notes", "feeding_notes", "medication_notes")
# Recorded as changed, never with their values.
SECRET_FIELDS = frozenset({"gate_code"})
REQUIRED_FIELDS = frozenset({"name", "species"})


def _clean(value):
    if isinstance(value, str):
        value = value.replace("\r\n", "\n").strip()
        return value or None
    return value


def _audit_value(value):
    return value.isoformat() if isinstance(value, date) else value


def recorded_change(field: str, before, after):
    """One field's change as the audit keeps it: [before, after], or "changed" for a secret
    field (its values never recorded)."""
    return "changed" if field in SECRET_FIELDS else [_audit_value(before), _audit_value(after)]


def _apply(record, values: dict, allowed: tuple[str, ...]) -> dict:
    """Sets the allowed fields that changed; returns {field: [before, after]} for the audit
    (a secret field as "changed", without its values)."""
    unknown = set(values) - set(allowed)
    if unknown:
        raise ValueError(f"not editable here: {', '.join(sorted(unknown))}")
    changes = {}
    for field, value in values.items():
        value = _clean(value)
        if value is None and field in REQUIRED_FIELDS:
            raise ValueError(f"{field} is required")
        before = getattr(record, field)
        if before == value:
            continue
        setattr(record, field, value)
        changes[field] = recorded_change(field, before, value)
    return changes


def update_client(actor: User, client: Client, values: dict) -> dict:
    """The admin team's edit of a client's record. Returns the changes (none: nothing
    written)."""
    return _update_client(actor, client, values, CLIENT_FIELDS)


def update_household(actor: User, client: Client, values: dict) -> dict:
    """A household's edit of its own contact details from the portal."""
    return _update_client(actor, client, values, HOUSEHOLD_FIELDS)


def _update_client(actor: User, client: Client, values: dict, allowed: tuple[str, ...]) -> dict:
    changes = _apply(client, values, allowed)
    if changes:
        audit.record(client.business_id, actor, "client.updated", "client", client.id,
                     changes=changes)
        db.session.commit()
    return changes


def update_pet(
    actor: User, pet: Pet, values: dict, *, photo: PreparedFile | None = None,
    remove_photo: bool = False, allowed: tuple[str, ...] = PET_FIELDS,
) -> dict:
    """A pet's record, and its photo: a new one replaces the old (whose file is deleted once
    the change is committed); remove_photo takes it away. A failed save leaves no new file.
    The photo is stored as its re-encoded thumbnail (uploads.prepare): small, WebP, no
    metadata."""
    if photo is not None and (photo.kind != AttachmentKind.IMAGE or not photo.thumbnail):
        raise UploadError("Choose a photo (JPEG, PNG, WebP, GIF or HEIC).")
    with replacing(pet.photo_key) as swap:
        changes = _apply(pet, values, allowed)
        if photo is not None:
            pet.photo_key = swap.save(photo.thumbnail)
            changes["photo"] = "replaced" if swap.old_key else "added"
        elif remove_photo and swap.old_key:
            swap.remove()
            pet.photo_key = None
            changes["photo"] = "removed"
        if changes:
            audit.record(pet.business_id, actor, "pet.updated", "pet", pet.id,
                         client_id=pet.client_id, changes=changes)
            db.session.commit()
    return changes


def update_pet_care(actor: User, pet: Pet, values: dict) -> dict:
    """A household's edit of its pet's care notes."""
    return update_pet(actor, pet, values, allowed=CARE_FIELDS)


def archive_pet(actor: User, pet: Pet) -> None:
    _set_archived(actor, pet, "pet", archived=True, client_id=pet.client_id)


def restore_pet(actor: User, pet: Pet) -> None:
    _set_archived(actor, pet, "pet", archived=False, client_id=pet.client_id)


def archive_client(actor: User, client: Client) -> None:
    """Its feeds become read-only, nobody is told of anything in them, lists leave it out
    and staff lose access (portal.policy reads archived_at). Messages awaiting approval for
    the client are not sent (their authors are told)."""
    if client.archived_at is not None:
        return
    files = send_later.settle_held_of_archived(client)
    _set_archived(actor, client, "client", archived=True)
    send_later.forget_bytes(files)


def unarchive_client(actor: User, client: Client) -> None:
    _set_archived(actor, client, "client", archived=False)


def _set_archived(actor: User, record, kind: str, *, archived: bool, **details) -> None:
    if (record.archived_at is not None) == archived:
        return  # already so: a repeated post records nothing
    record.archived_at = utcnow() if archived else None
    action = f"{kind}.archived" if archived else (
        "pet.restored" if kind == "pet" else "client.unarchived")
    audit.record(record.business_id, actor, action, kind, record.id, **details)
    db.session.commit()
