import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models.types import UTCDateTime, utcnow
from portal.models.users import User, enum_column


class Client(db.Model):
    """A household: the people and pets a business cares for."""

    __tablename__ = "clients"
    __table_args__ = (Index("ix_clients_business_name", "business_id", "name", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id"))
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(40))
    address: Mapped[str | None] = mapped_column(String(500))
    notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    pets: Mapped[list["Pet"]] = relationship(
        back_populates="client", order_by="Pet.name", cascade="all, delete-orphan"
    )
    # The household's portal logins, for the client's page (loaded with it, see feeds.routes).
    logins: Mapped[list[User]] = relationship(
        primaryjoin="User.client_id == Client.id", order_by="User.name", viewonly=True
    )

    def __repr__(self) -> str:
        return f"<Client {self.id} {self.name!r}>"


class Pet(db.Model):
    __tablename__ = "pets"

    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id"), index=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    species: Mapped[str] = mapped_column(String(50), default="Dog")
    notes: Mapped[str | None] = mapped_column(Text)

    client: Mapped[Client] = relationship(back_populates="pets")


class ServiceStatus(enum.StrEnum):
    SCHEDULED = "scheduled"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class ScheduledService(db.Model):
    """A visit or walk: who goes to which client, when."""

    __tablename__ = "scheduled_services"
    __table_args__ = (
        Index("ix_scheduled_services_staff_client", "staff_id", "client_id", "ends_at"),
        Index("ix_scheduled_services_client_starts", "client_id", "starts_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id"), index=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"))
    staff_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    title: Mapped[str] = mapped_column(String(100), default="Dog walk")
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[ServiceStatus] = mapped_column(
        enum_column(ServiceStatus), default=ServiceStatus.SCHEDULED
    )

    staff: Mapped[User] = relationship()


class PreferredSitter(db.Model):
    __tablename__ = "preferred_sitters"
    __table_args__ = (UniqueConstraint("client_id", "staff_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id"), index=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"))
    staff_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)

    staff: Mapped[User] = relationship()
