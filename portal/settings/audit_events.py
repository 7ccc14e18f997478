"""The audit log page: the business's events as sentences, newest first, paged by keyset on id.

This module loads the events and the facts their sentences need (who, about whom, links, values
before and after); templates/settings/_audit_sentences.html words them. A page costs the same
few queries whatever it shows: the events, then the people, clients and pets they name, one
query each. Sentences read only the details they need, so nothing else an event holds is shown;
no event holds message text. An action the sentences do not know yet shows its name and whom it
was about, never its details.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from flask import url_for
from sqlalchemy import and_, or_, select

from portal import policy
from portal.clock import exact_time, zone
from portal.extensions import db
from portal.models import AuditEvent, Client, Feed, Pet, Role, ScheduledService, User
from portal.services.schedule import describe_rule
from portal.urls import id_arg

# The kinds of event the filter offers: value -> (label, actions).
KINDS = {
    "messages": ("Deleted and unsent messages", ("message.deleted", "message.unsent")),
    "settings": ("Settings and permissions", ("settings.changed", "permission.changed")),
    "accounts": ("Logins and passwords", (
        "user.created", "user.invited", "user.invitation_resent", "user.invitation_accepted",
        "user.deactivated", "user.reactivated", "user.password_reset", "user.password_changed",
        "user.emails_resumed",
        "user.phone_added", "user.phone_changed", "user.phone_confirmed", "user.phone_removed",
        "login.locked_out", "user.time_zone_changed", "user.message_approval_changed",
        "calendar_link.created", "calendar_link.reset",
    )),
    "saved_replies": ("Saved replies", ("saved_reply.created", "saved_reply.changed",
                                        "saved_reply.deleted")),
    "visits": ("Visits and their reports", (
        "visit.started", "visit.ended", "visit_report.changed", "visit_report.note_changed",
    )),
    "scheduled": ("Scheduled messages and approvals", (
        "message.scheduled", "message.schedule_changed", "message.schedule_cancelled",
        "message.sent_early", "message.held", "message.approved", "message.rejected",
    )),
    "replies": ("Unmatched replies filed or discarded", ("reply.filed", "reply.discarded")),
    "clients": ("Clients and services", (
        "client.created", "pet.created", "service.scheduled", "service.cancelled",
        "service.changed", "service.reassigned",
        "preferred_sitter.added", "preferred_sitter.removed",
        "client.updated", "client.archived", "client.unarchived",
        "pet.updated", "pet.archived", "pet.restored",
        "records.imported",
    )),
}

# Where each kind of setting is changed, and who may go there.
PORTAL_SETTINGS = ("settings.portal_settings", policy.can_manage_settings)
NOTIFICATION_DEFAULTS = ("preferences.business_defaults", policy.can_manage_notifications)
BUSINESS_PROFILE = ("settings.business_profile", policy.can_manage_settings)
# Settings whose values are too long for a sentence: said to have changed, not how.
SAID_CHANGED_ONLY = {"weekly_hours", "closed_days", "visit_checklist"}
# Settings by the name the service records -> (label, their page).
SETTINGS = {
    "name": ("Business name", BUSINESS_PROFILE),
    "logo": ("Logo", BUSINESS_PROFILE),
    "private_messaging_enabled": ("Private Messaging", PORTAL_SETTINGS),
    "client_read_receipts": ("Read Receipts for Clients", PORTAL_SETTINGS),
    "staff_access_days": ("Staff access around visits (days)", PORTAL_SETTINGS),
    "staff_messages_need_approval": ("Staff messages need approval", PORTAL_SETTINGS),
    "visit_checklist": ("Visit report checklist", PORTAL_SETTINGS),
    "record_visit_location": ("Record location at check-in", PORTAL_SETTINGS),
    "time_zone": ("Business time zone", PORTAL_SETTINGS),
    "weekly_hours": ("Business hours", PORTAL_SETTINGS),
    "closed_days": ("Closed days", PORTAL_SETTINGS),
    "away_message": ("Away message", PORTAL_SETTINGS),
    "auto_reply": ("Automatic reply", PORTAL_SETTINGS),
    "notify_email_default": ("Email by default", NOTIFICATION_DEFAULTS),
    "notify_sms_default": ("Text messages by default", NOTIFICATION_DEFAULTS),
    "notify_push_default": ("App notifications by default", NOTIFICATION_DEFAULTS),
    "private_email_includes_text": ("Message text in emails about private messages",
                                    NOTIFICATION_DEFAULTS),
}

# Fields an edit records as changes={"field": [before, after]}, by their label in sentences.
# A field not listed reads as its name ("gate_code" -> "Gate code").
FIELD_LABELS = {
    "name": "Name",
    "first_name": "First name",
    "last_name": "Last name",
    "email": "Email",
    "phone": "Phone",
    "alt_phone": "Other phone",
    "address": "Address",
    "entry_instructions": "Entry instructions",
    "gate_code": "Gate or door code",
    "emergency_contact_name": "Emergency contact",
    "emergency_contact_phone": "Emergency contact's phone",
    "vet_name": "Vet",
    "vet_phone": "Vet's phone",
    "notes": "Notes",
    "species": "Species",
    "breed": "Breed",
    "birthday": "Birthday",
    "feeding_notes": "Feeding notes",
    "medication_notes": "Medication notes",
    "photo": "Photo",
    "time_zone": "Time zone",
}
# Values before and after are cut to this many characters in a sentence.
CHANGE_VALUE_LENGTH = 60


# --- filters ----------------------------------------------------------------------------------

def _date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class Filters:
    kind: str = ""  # a key of KINDS, or "" for every event
    person_id: int | None = None  # who acted, or whose login it was about
    start: date | None = None  # days in the viewer's time zone, both included
    end: date | None = None

    @classmethod
    def from_args(cls, args) -> "Filters":
        kind = args.get("kind", "")
        return cls(
            kind=kind if kind in KINDS else "",
            person_id=id_arg("person", args=args),
            start=_date(args.get("from")),
            end=_date(args.get("to")),
        )

    def url_values(self) -> dict:
        """The query string that keeps these filters, for More and links back."""
        values = {
            "kind": self.kind, "person": self.person_id,
            "from": self.start and self.start.isoformat(), "to": self.end and self.end.isoformat(),
        }
        return {name: value for name, value in values.items() if value}

    @property
    def any(self) -> bool:
        return bool(self.url_values())

    def where(self, viewer: User) -> list:
        clauses = [AuditEvent.business_id == viewer.business_id]
        if self.kind:
            clauses.append(AuditEvent.action.in_(KINDS[self.kind][1]))
        if self.person_id is not None:
            clauses.append(or_(
                AuditEvent.actor_id == self.person_id,
                and_(AuditEvent.object_type == "user", AuditEvent.object_id == self.person_id),
            ))
        if self.start:
            clauses.append(AuditEvent.created_at >= _midnight(self.start, viewer))
        if self.end:
            clauses.append(AuditEvent.created_at < _midnight(self.end + timedelta(days=1), viewer))
        return clauses


def _midnight(day: date, viewer: User) -> datetime:
    return datetime.combine(day, time.min, zone(viewer.time_zone)).astimezone(UTC)


# --- loading ----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Entry:
    id: int
    facts: "EventFacts"
    iso_time: str
    exact_time: str


@dataclass(frozen=True, slots=True)
class AuditPage:
    entries: list[Entry]
    next_before: int | None  # the keyset for More: the last id shown, or None at the end


def people(viewer: User) -> list[User]:
    """Everyone of the business, for the person filter: the team first, then client logins."""
    return list(db.session.scalars(
        select(User)
        .where(User.business_id == viewer.business_id)
        .order_by(User.role == Role.CLIENT, User.name, User.id)
    ))


def load(viewer: User, filters: Filters, *, before: int | None, limit: int) -> AuditPage:
    return _load(viewer, filters.where(viewer), before=before, limit=limit)


# What a client's History shows: the household's record and logins' self-edits, its pets, its
# visits and preferred sitters, whoever made the change. (An import is one event for the
# business, so it is in the audit log, not here; the clients it made have their own events.)
CLIENT_HISTORY_ACTIONS = tuple(action for action in KINDS["clients"][1]
                               if action != "records.imported")


def load_client_history(viewer: User, client: Client, *, before: int | None,
                        limit: int) -> AuditPage:
    """A client's change events, newest first: the same sentences as the audit log, found by
    the (business, object) index, whatever the events hold besides."""
    pets = select(Pet.id).where(Pet.client_id == client.id)
    visits = select(ScheduledService.id).where(ScheduledService.client_id == client.id)
    clauses = [
        AuditEvent.business_id == viewer.business_id,
        AuditEvent.action.in_(CLIENT_HISTORY_ACTIONS),
        or_(
            and_(AuditEvent.object_type == "client", AuditEvent.object_id == client.id),
            and_(AuditEvent.object_type == "pet", AuditEvent.object_id.in_(pets)),
            and_(AuditEvent.object_type == "scheduled_service",
                 AuditEvent.object_id.in_(visits)),
        ),
    ]
    return _load(viewer, clauses, before=before, limit=limit)


def _load(viewer: User, clauses: list, *, before: int | None, limit: int) -> AuditPage:
    query = select(AuditEvent).where(*clauses)
    if before is not None:
        query = query.where(AuditEvent.id < before)
    events = list(db.session.scalars(query.order_by(AuditEvent.id.desc()).limit(limit + 1)))
    more = len(events) > limit
    events = events[:limit]
    names = Names.load(viewer, events)
    entries = [
        Entry(
            event.id, EventFacts(event, names, viewer), event.created_at.isoformat(),
            exact_time(event.created_at, viewer.time_zone),
        )
        for event in events
    ]
    return AuditPage(entries, events[-1].id if more else None)


@dataclass
class Names:
    """The people, clients and pets a page of events names, each loaded in one query."""

    users: dict[int, User]
    clients: dict[int, Client]
    pets: dict[int, Pet]

    @classmethod
    def load(cls, viewer: User, events: list[AuditEvent]) -> "Names":
        ids = {"user": set(), "client": set(), "pet": set()}
        for event in events:
            details = event.details or {}
            ids["user"].update([event.actor_id, *_ids(details, "author_id", "staff_id")])
            ids["client"].update(_ids(details, "client_id"))
            if event.object_type in ids:
                ids[event.object_type].add(event.object_id)
        business = viewer.business_id
        users = _by_id(User, ids["user"], business)
        pets = _by_id(Pet, ids["pet"], business)
        # A client login's household, and a pet's, are named too.
        ids["client"].update(pet.client_id for pet in pets.values())
        ids["client"].update(user.client_id for user in users.values() if user.client_id)
        return cls(users, _by_id(Client, ids["client"], business), pets)


def _ids(details: dict, *keys: str) -> list[int]:
    return [details[key] for key in keys if type(details.get(key)) is int]


def _by_id(model, ids: set, business_id: int) -> dict:
    """Asked even when no event names one: a page always costs the same queries."""
    ids = {value for value in ids if type(value) is int}
    rows = db.session.scalars(
        select(model).where(model.id.in_(ids), model.business_id == business_id)
    )
    return {row.id: row for row in rows}


# --- what a sentence says ------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Named:
    """A name or label, and where the viewer may open it (None: nowhere they may go)."""

    name: str
    url: str | None = None


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field of an edit: its label and, when recorded, the values before and after
    (a secret such as a gate code is recorded as changed, without them; a photo as
    "added", "replaced" or "removed")."""

    label: str
    recorded: bool
    old: str | None = None
    new: str | None = None
    how: str = "changed"


def _shown(value) -> str | None:
    if value is None or value == "":
        return None
    text = " ".join(str(value).split())
    if len(text) > CHANGE_VALUE_LENGTH:
        text = text[:CHANGE_VALUE_LENGTH].rstrip() + "…"
    return text


@dataclass(frozen=True, slots=True)
class SettingChange:
    setting: Named
    recorded: bool  # whether the event holds the values before and after
    old: object = None
    new: object = None


@dataclass(frozen=True, slots=True)
class ImportCounts:
    kind: str
    file_name: str
    new: int
    updated: int
    unchanged: int


class EventFacts:
    """One event as its sentence needs it: who acted, whom and what it was about, with links
    only where the viewer may go, and the values it recorded. The wording is in
    templates/settings/_audit_sentences.html; each fact is worked out when the sentence asks
    for it, so a sentence reads only the details it names. A person or client who is no
    longer in the portal is None."""

    def __init__(self, event: AuditEvent, names: Names, viewer: User):
        self.event, self.names, self.viewer = event, names, viewer
        self.details = event.details or {}

    @property
    def action(self) -> str:
        return self.event.action

    @property
    def object_type(self) -> str:
        return self.event.object_type

    @property
    def object_id(self) -> int | None:
        return self.event.object_id

    @property
    def by_portal(self) -> bool:
        """Done by the portal itself or from the command line: nobody logged in."""
        return self.event.actor_id is None

    @property
    def by_themselves(self) -> bool:
        """Done by the person the event is about, to their own login."""
        return not self.by_portal and self.event.actor_id == self.event.object_id

    @property
    def actor(self) -> Named | None:
        return self._user(self.event.actor_id)

    @property
    def user(self) -> Named | None:
        """The login the event is about (object_type "user")."""
        return self._user(self.event.object_id)

    @property
    def client(self) -> Named | None:
        """The client the event is about: named in the details, or the object itself."""
        client_id = self.details.get("client_id")
        if client_id is None and self.event.object_type == "client":
            client_id = self.event.object_id
        return self._client(client_id)

    @property
    def staff(self) -> Named | None:
        return self._user(self.details.get("staff_id"))

    @property
    def pet(self) -> Named | None:
        pet = self.names.pets.get(self.event.object_id)
        return Named(pet.name) if pet else None

    @property
    def written_by_another(self) -> bool:
        """A removed message whose author is not who removed it."""
        return self.details.get("author_id") not in (None, self.event.actor_id)

    @property
    def author(self) -> Named | None:
        return self._user(self.details.get("author_id"))

    @property
    def attachments(self) -> int:
        """How many files went with the removed message."""
        return self.details.get("attachments") or 0

    @property
    def feed(self) -> Named | None:
        """The event's feed: a removed message's is linked to where its tombstone stands, a
        filed reply's to the feed. None when the event names no feed."""
        try:
            feed = Feed(self.details.get("feed"))
        except ValueError:
            return None
        client = self.names.clients.get(self.details.get("client_id"))
        if client is None or not policy.can_view_feed(self.viewer, client, feed):
            return Named(feed.label)
        url = url_for("feeds.show", client_id=client.id, feed_name=feed.value)
        if self.event.object_type != "message":
            return Named(feed.label, url)
        return Named(feed.label, f"{url}#message-{self.event.object_id}")

    @property
    def setting_changes(self) -> list[SettingChange]:
        changes = []
        for key, change in self.details.items():
            label, page = SETTINGS.get(key, (key.replace("_", " ").capitalize(), None))
            url = url_for(page[0]) if page and page[1](self.viewer) else None
            if isinstance(change, dict) and key not in SAID_CHANGED_ONLY:
                changes.append(SettingChange(Named(label, url), True, change.get("old"),
                                             change.get("new")))
            else:
                changes.append(SettingChange(Named(label, url), False))
        return changes

    @property
    def field_changes(self) -> list[FieldChange]:
        """An edit's changes={"field": [before, after], ...}, in the order recorded, for
        any record (clients, pets, visits, settings of other pages)."""
        changes = self.details.get("changes")
        if not isinstance(changes, dict):
            return []
        found = []
        for key, change in changes.items():
            label = FIELD_LABELS.get(key, str(key).replace("_", " ").capitalize())
            if isinstance(change, list | tuple) and len(change) == 2:
                found.append(FieldChange(label, True, _shown(change[0]), _shown(change[1])))
            elif change in ("added", "replaced", "removed"):
                found.append(FieldChange(label, False, how=change))
            else:
                found.append(FieldChange(label, False))
        return found

    @property
    def granted(self) -> bool:
        """A permission given, rather than taken away."""
        return bool(self.details.get("new"))

    @property
    def permissions_url(self) -> str | None:
        return url_for("settings.permissions") if policy.can_manage_settings(self.viewer) else None

    @property
    def role(self) -> Role | None:
        """The new login's role; None when the event did not record it."""
        try:
            return Role(self.details.get("role"))
        except ValueError:
            return None

    @property
    def minutes(self) -> int | None:
        """How long a login stays locked."""
        minutes = self.details.get("minutes")
        return minutes if isinstance(minutes, int) else None

    @property
    def phone_before(self) -> str | None:
        """A phone number event's number before, as recorded (its last digits only)."""
        return self._phone(0)

    @property
    def phone_after(self) -> str | None:
        return self._phone(1)

    def _phone(self, index: int) -> str | None:
        change = (self.details.get("changes") or {}).get("phone")
        if isinstance(change, list) and len(change) == 2 and isinstance(change[index], str):
            return change[index][:12]
        return None

    @property
    def sender(self) -> str:
        """Who sent a filed or discarded reply: their address or number, as they wrote it."""
        return str(self.details.get("sender") or "an unknown sender")

    @property
    def reply_channel(self) -> str:
        return "by text" if self.details.get("channel") == "sms" else "by email"

    # --- the schedule ---

    @property
    def service_title(self) -> str:
        return str(self.details.get("title") or "a service")

    def _moment(self, value) -> str | None:
        try:
            moment = datetime.fromisoformat(value)
        except (TypeError, ValueError):
            return None
        return exact_time(moment, self.viewer.time_zone)

    @property
    def approval_rule(self) -> str:
        """A staff member's own rule for approval, as the staff page words it."""
        return {"always": "always need approval", "never": "never need approval"}.get(
            self.details.get("new"), "follow the business's setting")

    @property
    def send_at(self) -> str | None:
        """When a scheduled message was set to go, in the viewer's zone."""
        return self._moment(self.details.get("send_at"))

    @property
    def service_starts(self) -> str | None:
        """When the (first) visit starts, in the viewer's zone."""
        return self._moment(self.details.get("starts_at"))

    @property
    def service_visits(self) -> int:
        """How many visits the event reached: more than one for a series."""
        visits = self.details.get("visits")
        return visits if isinstance(visits, int) and visits > 0 else 1

    @property
    def service_scope(self) -> str | None:
        return {"one": "this visit only", "following": "this and the following visits",
                "all": "all visits still to come"}.get(self.details.get("scope"))

    @property
    def service_rule(self) -> str | None:
        rule = self.details.get("rule")
        return describe_rule(rule) if isinstance(rule, str) else None

    @property
    def service_changes(self) -> list[tuple[str, str, str]]:
        """Each changed field of a visit as (label, before, after)."""
        changes = self.details.get("changes")
        if not isinstance(changes, dict):
            return []
        shown = []
        for key, label in (("title", "title"), ("staff", "staff member"),
                           ("starts_at", "start"), ("ends_at", "end"), ("status", "status")):
            change = changes.get(key)
            if not (isinstance(change, list) and len(change) == 2):
                continue
            if key in ("starts_at", "ends_at"):
                before, after = (self._moment(value) or "?" for value in change)
            elif key == "staff":
                before, after = (value or "unassigned" for value in change)
            else:
                before, after = (str(value) for value in change)
            shown.append((label, before, after))
        return shown

    @property
    def import_counts(self) -> "ImportCounts":
        """A CSV import: what it held, its file's name and how many rows did what."""
        details = self.details

        def count(key: str) -> int:
            value = details.get(key)
            return value if type(value) is int else 0

        kind = details.get("kind")
        return ImportCounts(
            kind if kind in ("clients", "pets", "services") else "records",
            str(details.get("file_name") or "a file")[:255],
            count("new"), count("updated"), count("unchanged"),
        )

    def _user(self, user_id) -> Named | None:
        user = self.names.users.get(user_id)
        if user is None:
            return None
        url = None
        if user.client_id:
            household = self.names.clients.get(user.client_id)
            if household and policy.can_view_client(self.viewer, household):
                url = url_for("clients.profile", client_id=household.id)
        elif policy.can_manage_clients(self.viewer):
            url = url_for("staff.index")
        return Named(user.name, url)

    def _client(self, client_id) -> Named | None:
        client = self.names.clients.get(client_id)
        if client is None:
            return None
        url = None
        if policy.can_view_client(self.viewer, client):
            url = url_for("clients.profile", client_id=client.id)
        return Named(client.name, url)
