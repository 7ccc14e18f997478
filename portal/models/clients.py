from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models.types import UTCDateTime, utcnow
from portal.models.users import User


class Client(db.Model):
    """A household: the people and pets a business cares for."""

    __tablename__ = "clients"
    __table_args__ = (
        Index("ix_clients_business_name", "business_id", "name", "id"),
        # The few archived clients: lists and counts leave them out by an anti-join, which
        # otherwise reads every client (PostgreSQL's plan for it: half of the Message Center's).
        Index("ix_clients_archived", "id", postgresql_where=text("archived_at IS NOT NULL"),
              sqlite_where=text("archived_at IS NOT NULL")),
        # A business's own id for the household (from its old system): CSV imports match on it.
        UniqueConstraint("business_id", "external_id", name="uq_clients_business_external_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id"))
    # The household's name as lists show it ("Rivera household", "Sam Rivera").
    name: Mapped[str] = mapped_column(String(200))
    # The main contact's own names, for greetings.
    first_name: Mapped[str | None] = mapped_column(String(100))
    last_name: Mapped[str | None] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(40))
    alt_phone: Mapped[str | None] = mapped_column(String(40))
    address: Mapped[str | None] = mapped_column(String(500))
    entry_instructions: Mapped[str | None] = mapped_column(Text)
    gate_code: Mapped[str | None] = mapped_column(String(100))
    emergency_contact_name: Mapped[str | None] = mapped_column(String(200))
    emergency_contact_phone: Mapped[str | None] = mapped_column(String(40))
    vet_name: Mapped[str | None] = mapped_column(String(200))
    vet_phone: Mapped[str | None] = mapped_column(String(40))
    # The business's own notes: never shown to the household (policy.sees_client_notes).
    notes: Mapped[str | None] = mapped_column(Text)
    external_id: Mapped[str | None] = mapped_column(String(100))
    # Archived: feeds read-only, nobody notified, left out of lists, staff lose access.
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    pets: Mapped[list["Pet"]] = relationship(
        back_populates="client", order_by="Pet.name", cascade="all, delete-orphan"
    )
    # The household's portal logins, for the client's page (loaded with it, see feeds.routes).
    logins: Mapped[list[User]] = relationship(
        primaryjoin="User.client_id == Client.id", order_by="User.name", viewonly=True
    )

    @property
    def current_pets(self) -> list["Pet"]:
        """The pets lists show; archived ones are listed apart (archived_pets)."""
        return [pet for pet in self.pets if pet.archived_at is None]

    @property
    def archived_pets(self) -> list["Pet"]:
        return [pet for pet in self.pets if pet.archived_at is not None]

    def __repr__(self) -> str:
        return f"<Client {self.id} {self.name!r}>"


class Pet(db.Model):
    __tablename__ = "pets"

    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id"), index=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    species: Mapped[str] = mapped_column(String(50), default="Dog")
    breed: Mapped[str | None] = mapped_column(String(100))
    birthday: Mapped[date | None] = mapped_column(Date)
    # Care notes: what a sitter needs (temperament, habits); the household may edit them.
    notes: Mapped[str | None] = mapped_column(Text)
    feeding_notes: Mapped[str | None] = mapped_column(Text)
    medication_notes: Mapped[str | None] = mapped_column(Text)
    # The stored photo (a storage key, processed through the image path like attachments).
    photo_key: Mapped[str | None] = mapped_column(String(255))
    # Archived pets (passed away, rehomed) leave the household's lists but keep their history.
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    client: Mapped[Client] = relationship(back_populates="pets")


class PreferredSitter(db.Model):
    __tablename__ = "preferred_sitters"
    __table_args__ = (UniqueConstraint("client_id", "staff_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id"), index=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"))
    staff_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)

    staff: Mapped[User] = relationship()
