from datetime import datetime

from sqlalchemy import delete

from portal.extensions import db
from portal.models import (
    Business,
    Client,
    Pet,
    PreferredSitter,
    ScheduledService,
    User,
)
from portal.services import audit, schedule


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
) -> Client:
    client = Client(
        business_id=business.id,
        name=name.strip(),
        email=email or None,
        phone=phone or None,
        address=address or None,
        notes=notes or None,
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
