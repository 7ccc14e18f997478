import enum
import secrets
from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import Enum, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models.businesses import Business
from portal.models.types import UTCDateTime, utcnow


class Role(enum.StrEnum):
    ADMIN = "admin"
    OFFICE_MANAGER = "office_manager"
    STAFF = "staff"
    CLIENT = "client"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ").title()


class MessageApproval(enum.StrEnum):
    """A staff member's own rule for approval, over the business's setting."""

    ALWAYS = "always"
    NEVER = "never"


def enum_column(enum_class: type[enum.Enum], length: int = 20) -> Enum:
    return Enum(
        enum_class,
        native_enum=False,
        create_constraint=True,
        length=length,
        values_callable=lambda members: [member.value for member in members],
    )


class User(UserMixin, db.Model):
    __tablename__ = "users"
    # Staff lists and notification audiences: one role of a business, by name.
    __table_args__ = (Index("ix_users_business_role_name", "business_id", "role", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id"), index=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[Role] = mapped_column(enum_column(Role))
    # Empty until an invited person chooses their own password (see services/accounts.py);
    # no password matches it.
    password_hash: Mapped[str] = mapped_column(String(255), default="")
    # The latest invitation: a new one replaces the links of the earlier ones.
    invited_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    active: Mapped[bool] = mapped_column(default=True)
    phone: Mapped[str | None] = mapped_column(String(40))
    # When the person proved the phone is theirs with a code texted to it: texts go to the
    # number, and a text from it is theirs, only once it is set. A number entered by someone
    # else (an invitation) waits unconfirmed; changing the number clears it
    # (services/reachability.py).
    phone_confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    time_zone: Mapped[str] = mapped_column(String(64), default="America/Chicago")
    # Client logins belong to one household.
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id"), index=True)
    # Office managers only: granted by an admin on the Permissions page.
    private_messages_access: Mapped[bool] = mapped_column(default=False)
    # Per channel: None follows the business default.
    notify_email: Mapped[bool | None]
    notify_sms: Mapped[bool | None]
    notify_push: Mapped[bool | None]
    # A mail server answered that the address does not exist (a hard bounce): no more emails
    # go to it until it is changed. The reason is the server's own words.
    email_bounced_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    email_bounce_reason: Mapped[str | None] = mapped_column(String(300))
    # Quiet hours, "22:00" to "07:00" in the person's own zone: notifications of messages that
    # arrive then wait, and go as one summary when they end (portal/hours.py).
    quiet_from: Mapped[str | None] = mapped_column(String(5))
    quiet_until: Mapped[str | None] = mapped_column(String(5))
    # Staff only: whether their messages wait for approval; None follows the business.
    message_approval: Mapped[MessageApproval | None] = mapped_column(
        enum_column(MessageApproval))
    # The person texted STOP (or a variant): no texts until they text START.
    sms_opted_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The secret in the address of the person's schedule as an iCalendar feed (staff); a new
    # one (Reset) makes the old address answer 404.
    calendar_token: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    # Loaded with the session's user (see load_session_user); other users share that one
    # business, found in the session without a query. Not joined by default: joined into
    # every user row a query loads, it also sent SQLite into scanning all users.
    business: Mapped[Business] = relationship()

    # Flask-Login asks for the session key (see LoginSession), set by the user loader.
    session_key = None

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def first_name(self) -> str:
        """What a small screen shows of the name: its first word."""
        return self.name.split(maxsplit=1)[0] if self.name.strip() else self.name

    @property
    def is_invited(self) -> bool:
        """Invited and has not set a password yet."""
        return not self.password_hash

    def get_id(self) -> str | None:
        return self.session_key

    def __repr__(self) -> str:
        return f"<User {self.id} {self.role.value} {self.email}>"


def new_session_key() -> str:
    return secrets.token_urlsafe(32)


class LoginSession(db.Model):
    """One row per signed-in browser. Deleting it ends that session, whatever the cookie says."""

    __tablename__ = "login_sessions"

    key: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_session_key)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
