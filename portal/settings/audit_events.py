"""The audit log page: the business's events as sentences, newest first, paged by keyset on id.

A page costs the same few queries whatever it shows: the events, then the people, clients and
pets they name, one query each. Sentences read only the details they need, so nothing else an
event holds is shown; no event holds message text. An action this page does not know yet shows
its name and whom it was about, never its details.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from string import Formatter

from flask import url_for
from markupsafe import Markup
from sqlalchemy import and_, or_, select

from portal import policy
from portal.extensions import db
from portal.models import AuditEvent, Client, Feed, Pet, Role, User
from portal.text import exact_time, zone
from portal.urls import id_arg

# The kinds of event the filter offers: value -> (label, actions).
KINDS = {
    "messages": ("Deleted and unsent messages", ("message.deleted", "message.unsent")),
    "settings": ("Settings and permissions", ("settings.changed", "permission.changed")),
    "accounts": ("Logins and passwords", (
        "user.created", "user.invited", "user.invitation_resent", "user.invitation_accepted",
        "user.deactivated", "user.reactivated", "user.password_reset", "user.password_changed",
        "login.locked_out",
    )),
    "clients": ("Clients and services", (
        "client.created", "pet.created", "service.scheduled", "service.cancelled",
        "preferred_sitter.added", "preferred_sitter.removed",
    )),
}

# Where each kind of setting is changed, and who may go there.
PORTAL_SETTINGS = ("settings.portal_settings", policy.can_manage_settings)
NOTIFICATION_DEFAULTS = ("preferences.business_defaults", policy.can_manage_notifications)
# Settings by the name the service records -> (label, their page).
SETTINGS = {
    "private_messaging_enabled": ("Private Messaging", PORTAL_SETTINGS),
    "client_read_receipts": ("Read Receipts for Clients", PORTAL_SETTINGS),
    "staff_access_days": ("Staff access to past clients (days)", PORTAL_SETTINGS),
    "notify_email_default": ("Email by default", NOTIFICATION_DEFAULTS),
    "notify_sms_default": ("Text messages by default", NOTIFICATION_DEFAULTS),
    "notify_push_default": ("App notifications by default", NOTIFICATION_DEFAULTS),
    "private_email_includes_text": ("Message text in emails about private messages",
                                    NOTIFICATION_DEFAULTS),
}


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
    sentence: Markup
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
    query = select(AuditEvent).where(*filters.where(viewer))
    if before is not None:
        query = query.where(AuditEvent.id < before)
    events = list(db.session.scalars(query.order_by(AuditEvent.id.desc()).limit(limit + 1)))
    more = len(events) > limit
    events = events[:limit]
    names = Names.load(viewer, events)
    entries = [
        Entry(
            event.id, describe(event, names, viewer), event.created_at.isoformat(),
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


# --- sentences --------------------------------------------------------------------------------

def _name(text: str, url: str | None = None) -> Markup:
    """A name as written by a person: isolated, so its direction cannot reorder the sentence."""
    if url:
        return Markup('<a href="{}"><bdi>{}</bdi></a>').format(url, text)
    return Markup("<bdi>{}</bdi>").format(text)


def _link(url: str, text: str) -> Markup:
    return Markup('<a href="{}">{}</a>').format(url, text)


def _say(template: str, **parts) -> Markup:
    """The sentence with its parts escaped (names come as Markup from _name)."""
    return Markup(template).format(**parts)


class Sentence:
    """What one event says, with links to what the viewer may open."""

    def __init__(self, event: AuditEvent, names: Names, viewer: User):
        self.event, self.names, self.viewer = event, names, viewer
        self.details = event.details or {}

    @property
    def actor(self) -> Markup:
        if self.event.actor_id is None:
            return Markup("The portal")
        return self.user(self.event.actor_id)

    def subject(self) -> Markup:
        """The login the event is about (object_type "user")."""
        return self.user(self.event.object_id)

    def about_client(self) -> Markup:
        """The client the event is about: named in the details, or the object itself."""
        client_id = self.details.get("client_id")
        if client_id is None and self.event.object_type == "client":
            client_id = self.event.object_id
        return self.client(client_id)

    def staff(self) -> Markup:
        return self.user(self.details.get("staff_id"))

    def user(self, user_id) -> Markup:
        user = self.names.users.get(user_id)
        if user is None:
            return Markup("someone no longer in the portal")
        url = None
        if user.client_id:
            household = self.names.clients.get(user.client_id)
            if household and policy.can_view_client(self.viewer, household):
                url = url_for("clients.profile", client_id=household.id)
        elif policy.can_manage_clients(self.viewer):
            url = url_for("staff.index")
        return _name(user.name, url)

    def client(self, client_id) -> Markup:
        client = self.names.clients.get(client_id)
        if client is None:
            return Markup("a client no longer in the portal")
        url = None
        if policy.can_view_client(self.viewer, client):
            url = url_for("clients.profile", client_id=client.id)
        return _name(client.name, url)

    def feed(self) -> Markup:
        """The deleted message's feed, linked to where its tombstone stands."""
        client = self.names.clients.get(self.details.get("client_id"))
        try:
            feed = Feed(self.details.get("feed"))
        except ValueError:
            return Markup("feed")
        label = f"{feed.label} feed"
        if client is None or not policy.can_view_feed(self.viewer, client, feed):
            return Markup("{}").format(label)
        url = url_for("feeds.show", client_id=client.id, feed_name=feed.value)
        return Markup('<a href="{}#message-{}">{}</a>').format(url, self.event.object_id, label)


def _message_deleted(s: Sentence, verb: str = "deleted") -> Markup:
    author = s.details.get("author_id")
    by = "" if author in (None, s.event.actor_id) else _say(" by {author}", author=s.user(author))
    files = s.details.get("attachments") or 0
    with_files = f" and its {files} attachment{'s' if files != 1 else ''}" if files else ""
    return _say(
        "{actor} {verb} a message{by}{files} in {client}'s {feed}",
        actor=s.actor, verb=verb, by=by, files=with_files, client=s.about_client(),
        feed=s.feed(),
    )


def _message_unsent(s: Sentence) -> Markup:
    """Taken back by its author before anyone was notified."""
    return _message_deleted(s, "unsent")


def _setting_value(value) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)[:40]


def _settings_changed(s: Sentence) -> Markup:
    changes = []
    for key, change in s.details.items():
        label, page = SETTINGS.get(key, (key.replace("_", " ").capitalize(), None))
        if page and page[1](s.viewer):
            label = _link(url_for(page[0]), label)
        if isinstance(change, dict):
            changes.append(_say(
                "{label} from {old} to {new}", label=label,
                old=_setting_value(change.get("old")), new=_setting_value(change.get("new")),
            ))
        else:
            changes.append(label)
    return _say("{actor} changed settings: {changes}", actor=s.actor,
                changes=Markup("; ").join(changes))


def _permission_changed(s: Sentence) -> Markup:
    permission = "access to private messages"
    if policy.can_manage_settings(s.viewer):
        permission = _link(url_for("settings.permissions"), permission)
    template = ("{actor} gave {user} {permission}" if s.details.get("new")
                else "{actor} took away {user}'s {permission}")
    return _say(template, actor=s.actor, user=s.subject(), permission=permission)


def _with_role(template: str):
    """A sentence about a new login, naming its role."""

    def describe(s: Sentence) -> Markup:
        try:
            role = Role(s.details.get("role")).label.lower()
        except ValueError:  # not recorded: the sentence goes without it
            return _say(template.replace(" ({role})", ""), actor=s.actor, user=s.subject())
        return _say(template, actor=s.actor, user=s.subject(), role=role)

    return describe


def _about_themselves(self_template: str, other_template: str, nobody_template: str):
    """A sentence that reads differently when people did it to their own login."""

    def describe(s: Sentence) -> Markup:
        if s.event.actor_id is None:
            template = nobody_template
        elif s.event.actor_id == s.event.object_id:
            template = self_template
        else:
            template = other_template
        return _say(template, actor=s.actor, user=s.subject())

    return describe


def _locked_out(s: Sentence) -> Markup:
    minutes = s.details.get("minutes")
    wait = f" for {minutes} minutes" if isinstance(minutes, int) else ""
    return _say("{user}'s login was locked{wait} after too many failed attempts",
                user=s.subject(), wait=wait)


PARTS: dict[str, Callable[[Sentence], Markup]] = {
    "actor": lambda s: s.actor,
    "user": Sentence.subject,
    "client": Sentence.about_client,
    "staff": Sentence.staff,
}


def _simple(template: str):
    """A sentence of the usual parts; only those the template names are looked up."""
    fields = [name for _, name, _, _ in Formatter().parse(template) if name]

    def describe(s: Sentence) -> Markup:
        return _say(template, **{name: PARTS[name](s) for name in fields})

    return describe


def _pet_created(s: Sentence) -> Markup:
    pet = s.names.pets.get(s.event.object_id)
    name = _name(pet.name) if pet else Markup("a pet")
    return _say("{actor} added {pet} to {client}", actor=s.actor, pet=name,
                client=s.about_client())


def _unknown(s: Sentence) -> Markup:
    """An action this page does not know: its name, and whom or what it was about."""
    what = s.event.action.replace(".", " ").replace("_", " ")
    if s.event.object_type == "user":
        about = s.subject()
    elif s.event.object_type == "client":
        about = s.about_client()
    else:
        about = f"{s.event.object_type.replace('_', ' ')} #{s.event.object_id}"
    return _say("{actor} — {what} ({about})", actor=s.actor, what=what, about=about)


DESCRIBE: dict[str, Callable[[Sentence], Markup]] = {
    "message.deleted": _message_deleted,
    "message.unsent": _message_unsent,
    "settings.changed": _settings_changed,
    "permission.changed": _permission_changed,
    "user.created": _with_role("{actor} created a login for {user} ({role})"),
    "user.invited": _with_role("{actor} invited {user} ({role}) to the portal"),
    "user.invitation_resent": _simple("{actor} sent {user} a new invitation"),
    "user.invitation_accepted": _simple("{user} accepted the invitation and chose a password"),
    "user.deactivated": _simple("{actor} deactivated {user}'s login"),
    "user.reactivated": _simple("{actor} reactivated {user}'s login"),
    "user.password_reset": _about_themselves(
        "{user} reset their password", "{actor} reset {user}'s password",
        "{user}'s password was reset",
    ),
    "user.password_changed": _about_themselves(
        "{user} changed their password", "{actor} changed {user}'s password",
        "{user}'s password was changed",
    ),
    "login.locked_out": _locked_out,
    "client.created": _simple("{actor} added the client {client}"),
    "pet.created": _pet_created,
    "service.scheduled": _simple("{actor} scheduled a service for {client} with {staff}"),
    "service.cancelled": _simple("{actor} cancelled a service for {client} with {staff}"),
    "preferred_sitter.added": _simple("{actor} made {staff} a preferred sitter of {client}"),
    "preferred_sitter.removed": _simple(
        "{actor} removed {staff} as a preferred sitter of {client}"
    ),
}


def describe(event: AuditEvent, names: Names, viewer: User) -> Markup:
    return DESCRIBE.get(event.action, _unknown)(Sentence(event, names, viewer))
