"""Every access rule of the portal: nothing else reads roles to decide who may see or do what.

Routes, templates, partials, downloads, counts, searches and notifications all ask here. A rule
answers True/False; `require` turns a refusal into a 404 so that a hidden thing gives no hint it
exists. Roles read elsewhere decide no access: a role's label, the role a new login gets, whether
the client wrote last, who is listed as staff.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from flask import abort, g
from sqlalchemy import (
    ColumnElement,
    and_,
    bindparam,
    exists,
    false,
    literal,
    or_,
    select,
    true,
    union,
)
from sqlalchemy.orm import aliased
from sqlalchemy.sql.operators import ColumnOperators

from portal.extensions import db
from portal.models import (
    VIA_AUTOMATIC,
    Business,
    Client,
    DeliveryStatus,
    Feed,
    Message,
    MessageApproval,
    PreferredSitter,
    Role,
    ScheduledMessage,
    ScheduledService,
    ServiceStatus,
    User,
    utcnow,
)
from portal.models.types import UTCDateTime
from portal.text import and_list


def require(allowed: bool) -> None:
    if not allowed:
        abort(404)


# --- roles ------------------------------------------------------------------------------

def is_admin(user: User) -> bool:
    return user.is_authenticated and user.role == Role.ADMIN


def is_admin_team(user: User) -> bool:
    return user.is_authenticated and user.role in (Role.ADMIN, Role.OFFICE_MANAGER)


def is_staff(user: User) -> bool:
    return user.is_authenticated and user.role == Role.STAFF


def is_client(user: User) -> bool:
    return user.is_authenticated and user.role == Role.CLIENT


def can_manage_clients(user: User) -> bool:
    """Client and staff records, logins, schedules, preferred sitters."""
    return is_admin_team(user)


def can_view_week_schedule(user: User) -> bool:
    """The week's schedule of every staff member, with unassigned visits: the admin team."""
    return is_admin_team(user)


def can_import_records(user: User) -> bool:
    """Clients, pets and services from CSV files: the admin team, who add and edit the same
    records one by one. Each import shows a preview first and is one audit event."""
    return is_admin_team(user)


def can_view_my_clients(user: User) -> bool:
    """My Clients: a staff member's own list of the clients they work with."""
    return is_staff(user)


def can_manage_account(user: User, account: User) -> bool:
    """Resending someone's invitation, deactivating or reactivating their login: the admin team
    for client and staff logins, admins alone for the admin team's, nobody for their own."""
    if not can_manage_clients(user) or account.business_id != user.business_id:
        return False
    if account.id == user.id:
        return False
    if account.role in (Role.ADMIN, Role.OFFICE_MANAGER):
        return is_admin(user)
    return True


def sees_reachability(user: User, person: User) -> bool:
    """That a person's emails bounce, or their phone replied STOP: the person themselves, and
    the admin team, who see their login on the Staff list or the client's page."""
    if not user.is_authenticated or person.business_id != user.business_id:
        return False
    return person.id == user.id or can_manage_clients(user)


def can_manage_settings(user: User) -> bool:
    return is_admin(user)


def can_view_audit_log(user: User) -> bool:
    """Who did what in the business: deletions, settings, permissions, logins. Admins only."""
    return is_admin(user)


def can_manage_notifications(user: User) -> bool:
    """Business notification defaults and failed deliveries: the admin team."""
    return is_admin_team(user)


def can_access_private_messages(user: User) -> bool:
    """Admins always; office managers only when an admin granted it on the Permissions page."""
    if not user.is_authenticated:
        return False
    return user.role == Role.ADMIN or (
        user.role == Role.OFFICE_MANAGER and user.private_messages_access
    )


def can_be_granted_private_access(account: User, business_id: int) -> bool:
    """Who the Permissions page grants private messages to: the business's office managers
    (admins have them always, staff and clients never)."""
    return account.role == Role.OFFICE_MANAGER and account.business_id == business_id


def private_access_grantees(business_id: int) -> list[User]:
    """The people can_be_granted_private_access allows, by name: the Permissions page's list."""
    return list(db.session.scalars(
        select(User)
        .where(User.business_id == business_id, User.role == Role.OFFICE_MANAGER)
        .order_by(User.name)
    ))


# --- unmatched replies ---------------------------------------------------------------------

def can_review_unmatched_replies(user: User) -> bool:
    """Settings > Unmatched replies: emails and texts that came back and could not be posted
    where they were meant to go, for the admin team to file or discard."""
    return is_admin_team(user)


def can_see_unmatched_reply(user: User, business_id: int | None, feed: Feed | None,
                            unreadable: bool) -> bool:
    """One queued reply: the business's admin team's; a reply to a private message only for
    those who may read private messages (to the others it does not exist). So is a reply the
    portal could not read and whose feed is therefore unknown: unknown means Private."""
    if not can_review_unmatched_replies(user) or business_id != user.business_id:
        return False
    return not _unmatched_reply_is_private(feed, unreadable) or can_access_private_messages(user)


def unmatched_replies_clause(user: User, business_id, feed, unreadable) -> ColumnElement[bool]:
    """SQL twin of can_see_unmatched_reply, for the list and its count."""
    if not can_review_unmatched_replies(user):
        return false()
    clause = business_id == user.business_id
    if can_access_private_messages(user):
        return clause
    return and_(clause, or_(and_(feed.is_not(None), feed != Feed.PRIVATE),
                            and_(feed.is_(None), unreadable.is_(False))))


def can_file_unmatched_reply_into(reply_feed: Feed | None, unreadable: bool,
                                  feed: Feed) -> bool:
    """A reply to a private message (or one whose feed is unknown) goes into Private only,
    never Conversation. Posting in the chosen client's feed is can_post's."""
    return feed == Feed.PRIVATE or not _unmatched_reply_is_private(reply_feed, unreadable)


def feeds_to_file_unmatched_reply_into(user: User, reply_feed: Feed | None,
                                       unreadable: bool) -> list[Feed]:
    """The feeds File into offers for a queued reply (for a private one, none at all while
    Private Messaging is off)."""
    return [feed for feed in feeds_in_lists(user)
            if can_file_unmatched_reply_into(reply_feed, unreadable, feed)]


def _unmatched_reply_is_private(feed: Feed | None, unreadable: bool) -> bool:
    return feed == Feed.PRIVATE or (feed is None and unreadable)


# --- staff access to a client -------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class StaffWindow:
    """The visits that give a staff member access now: those that end at or after `start` and
    begin at or before `end`. A visit opens the client's Conversation feed to its staff member
    staff_access_days before it begins and closes it staff_access_days after it ends, so a stay
    that began ten days ago and ends tomorrow gives access, and a weekly walk gives access for
    the visits near now, never for the series as a whole."""

    start: datetime
    end: datetime


def staff_access_window(business: Business, now: datetime | None = None) -> StaffWindow:
    """For a statement built once per kind of viewer (_BusinessShape), the bound parameters
    that viewer_parameters fills."""
    if isinstance(business, _BusinessShape):
        return StaffWindow(_STAFF_WINDOW_START, _STAFF_WINDOW_END)
    now = now or utcnow()
    days = timedelta(days=business.staff_access_days)
    return StaffWindow(now - days, now + days)


def _visits_in_window(window: StaffWindow, visits=ScheduledService) -> list[ColumnElement[bool]]:
    """The one SQL rule for a visit that gives its staff member access (see StaffWindow);
    `visits` may be an alias of ScheduledService."""
    return [
        visits.status != ServiceStatus.CANCELLED,
        visits.ends_at >= window.start,
        visits.starts_at <= window.end,
    ]


def staff_access_clause(staff_id, client_id, window: StaffWindow) -> ColumnElement[bool]:
    """SQL: this staff member is the client's preferred sitter, or has a visit with them inside
    the window; never for an archived client.

    Lists use the same rule read from one side: staff_clients (a staff member's clients) and
    the roster (a client's staff); tests/test_policy.py holds them to agree.

    Arguments may be values or columns, so one rule serves single checks and lists alike;
    the visits and clients it reads are aliases, so the columns may be those of a list of
    visits or clients (visit_details_clause).
    """
    preferred = exists().where(
        PreferredSitter.client_id == client_id, PreferredSitter.staff_id == staff_id
    )
    visit = aliased(ScheduledService)
    scheduled = exists().where(
        visit.client_id == client_id,
        visit.staff_id == staff_id,
        *_visits_in_window(window, visit),
    )
    client = aliased(Client)
    archived = exists().where(client.id == client_id, client.archived_at.is_not(None))
    return and_(or_(preferred, scheduled), ~archived)


def visit_details_clause(staff_id, window: StaffWindow) -> ColumnElement[bool]:
    """SQL, a column of a list of a staff member's visits (Today, the calendar feed): the
    household's details (address, entry instructions, gate code, pets, the feed link) are
    shown with the visit only while the client's page is open to the staff member, by the
    same rule (staff_access_clause). A visit beyond the window shows its time, title and
    client name, and when its details open (visit_details_open)."""
    return staff_access_clause(staff_id, ScheduledService.client_id, window)


def visit_details_open(business: Business, starts_at: datetime, now: datetime) -> datetime | None:
    """When a visit's own window opens its household's details to its staff member
    (staff_access_days before it starts), if that is still to come."""
    opens = starts_at - timedelta(days=business.staff_access_days)
    return opens if opens > now else None


def staff_clients(staff_id: int, window: StaffWindow):
    """SQL: the ids of the clients a staff member may see, by the same rule as
    staff_access_clause. For lists: read once from the staff member's own rows, where testing
    every client of the business would read them all."""
    served = union(
        select(PreferredSitter.client_id).where(PreferredSitter.staff_id == staff_id),
        select(ScheduledService.client_id).where(
            ScheduledService.staff_id == staff_id, *_visits_in_window(window)
        ),
    ).subquery("served")
    # Archived ones left out by the index of the few archived, not by reading every client.
    return select(served.c.client_id).where(_not_archived(served.c.client_id))


def _as_sql(value) -> ColumnOperators:
    """A column or bound parameter as it is; a plain value as a literal."""
    return value if isinstance(value, ColumnOperators) else literal(value)


def _staff_has_access(staff: User, client: Client) -> bool:
    cache = g.setdefault("staff_access", {})
    key = (staff.id, client.id)
    if key not in cache:
        clause = staff_access_clause(staff.id, client.id, staff_access_window(staff.business))
        cache[key] = bool(db.session.scalar(select(clause)))
    return cache[key]


def can_view_today(user: User) -> bool:
    """Today: a staff member's own visits, today and the week ahead."""
    return is_staff(user)


def can_subscribe_to_calendar(user: User) -> bool:
    """A staff member's own schedule as an iCalendar feed at a secret URL: an active staff
    login only, so a deactivated login's link answers 404 at once."""
    return is_staff(user) and user.active


def own_visits_clause(staff_id, *, include_cancelled: bool = False) -> ColumnElement[bool]:
    """SQL: a staff member's own visits as their Today list and calendar show them. Never an
    archived client's (its staff lost access to it); cancelled ones only where a calendar that
    copied them must learn they are off."""
    clauses = [ScheduledService.staff_id == staff_id, live_visits_clause()]
    if not include_cancelled:
        clauses.append(ScheduledService.status != ServiceStatus.CANCELLED)
    return and_(*clauses)


def household_visits_clause(client_id) -> ColumnElement[bool]:
    """SQL: the visits a household sees coming on its portal page: its own, not cancelled,
    none while the client is archived."""
    return and_(ScheduledService.client_id == client_id, live_visits_clause(),
                ScheduledService.status != ServiceStatus.CANCELLED)


def live_visits_clause() -> ColumnElement[bool]:
    """SQL: visits of clients not archived. Archiving a client keeps its visits (restoring it
    brings them all back) but takes them out of every schedule: the week schedule, a staff
    member's Today and calendar, the household's upcoming visits, and the overlap check of a
    new visit. One look-up by primary key per visit."""
    return _not_archived(ScheduledService.client_id)


def clients_visible_to(user: User, *, archived: bool = False):
    """A select of the clients this user may open, for lists and searches. Lists leave
    archived clients out; `archived=True` lists only those (the admin team's Archived
    clients, where they are found again and unarchived)."""
    query = select(Client).where(
        Client.business_id == user.business_id,
        Client.archived_at.is_not(None) if archived else Client.archived_at.is_(None),
    )
    if is_admin_team(user):
        return query
    if is_staff(user):
        window = staff_access_window(user.business)
        return query.where(Client.id.in_(staff_clients(user.id, window)))
    if is_client(user):
        return query.where(Client.id == user.client_id)
    return query.where(False)


@dataclass(frozen=True, slots=True)
class StaffMember:
    id: int
    name: str
    has_access: bool
    is_preferred: bool


def _client_staff(client_id, preferred_only: bool = False):
    """SQL: the ids of the staff who see a client's Conversation feed (the rule of
    staff_access_clause, read from the client's side), or only its preferred sitters."""
    preferred = select(PreferredSitter.staff_id).where(PreferredSitter.client_id == client_id)
    if preferred_only:
        return preferred
    return union(preferred, select(ScheduledService.staff_id).where(
        ScheduledService.client_id == client_id,
        *_visits_in_window(StaffWindow(_STAFF_WINDOW_START, _STAFF_WINDOW_END)),
    ))


def _roster_statement():
    """Read from the client's own services and sitters once, not tested per staff member."""
    client_id = bindparam("client_id")
    return (
        select(
            User.id, User.name,
            User.id.in_(_client_staff(client_id)).label("has_access"),
            User.id.in_(_client_staff(client_id, preferred_only=True)).label("is_preferred"),
        )
        # The role written into the statement: PostgreSQL's one plan for it then knows staff
        # are a few of the business's people, and reads them by index, not every user.
        .where(User.business_id == bindparam("business_id"), User.active,
               User.role == literal(Role.STAFF, User.role.type, literal_execute=True))
        .order_by(User.name)
    )


def staff_roster(client: Client, business: Business) -> list[StaffMember]:
    """Every active staff member, with whether they see the client's Conversation feed and are
    its preferred sitter: one query serves the audience line, the sitter list and the forms."""
    return roster_of(db.session.execute(_ROSTER, roster_parameters(client, business)))


def roster_subquery():
    """staff_roster's statement, for a query that reads it with other things (the feed page's
    counts): its rows come unordered, order them by `name`."""
    return _ROSTER.order_by(None).subquery("roster")


def roster_parameters(client: Client, business: Business) -> dict:
    return {"client_id": client.id, "business_id": client.business_id,
            **_window_parameters(business)}


def roster_of(rows) -> list[StaffMember]:
    """The StaffMembers of roster rows; a row without an id (an outer join found nobody) is
    no one."""
    return [StaffMember(row.id, row.name, bool(row.has_access), bool(row.is_preferred))
            for row in rows if row.id is not None]


def staff_with_feed_access(client: Client, business: Business) -> list[User]:
    """The active staff members who can currently see the client's Conversation feed."""
    window = staff_access_window(business)
    return list(db.session.scalars(
        select(User)
        .where(User.business_id == client.business_id, User.role == Role.STAFF, User.active,
               staff_access_clause(User.id, client.id, window))
        .order_by(User.name)
    ))


# --- clients and feeds ----------------------------------------------------------------------

def can_view_client(user: User, client: Client) -> bool:
    if not user.is_authenticated or user.business_id != client.business_id:
        return False
    if is_admin_team(user):
        return True
    if is_client(user):
        return user.client_id == client.id
    if is_staff(user):
        return not is_read_only(client) and _staff_has_access(user, client)
    return False


def can_view_feed(user: User, client: Client, feed: Feed) -> bool:
    if not can_view_client(user, client):
        return False
    if feed == Feed.CONVERSATION:
        return True
    # Private: the admin team's and the client's alone, and only while the business has it on.
    if not user.business.private_messaging_enabled:
        return False
    return is_client(user) or can_access_private_messages(user)


def sees_client_profile(user: User) -> bool:
    """A client's page as the business's people see it, beside the feed: scheduled services,
    preferred sitters and, for the admin team, staff and logins. The client's own logins get
    their portal page instead."""
    return is_admin_team(user) or is_staff(user)


def sees_client_notes(user: User) -> bool:
    """The business's notes on a household are its own: never shown to the household."""
    return is_admin_team(user) or is_staff(user)


def can_view_client_history(user: User, client: Client) -> bool:
    """A client's History: the changes to its record, pets and visits, with before and after,
    whoever made them (the household's own edits too). The admin team, who keep these records;
    the rest of the audit log (settings, permissions, logins) stays with admins."""
    return is_admin_team(user) and user.business_id == client.business_id


def can_edit_client(user: User, client: Client) -> bool:
    """A household's record and its pets (names, contacts, entry, notes, photos, archiving):
    the admin team."""
    return can_manage_clients(user) and user.business_id == client.business_id


def can_archive_client(user: User, client: Client) -> bool:
    return can_edit_client(user, client)


def can_edit_household(user: User, client: Client) -> bool:
    """The household's own contact details and its pets' care notes, from the client portal:
    the household's logins alone, and not once it is archived (read-only)."""
    return (is_client(user) and user.business_id == client.business_id
            and user.client_id == client.id and not is_read_only(client))


def can_view_pet_photo(user: User, client: Client) -> bool:
    """Whoever may see the client sees its pets' photos."""
    return can_view_client(user, client)


def sees_only_own_services(user: User) -> bool:
    """On a client's page, staff see the services they do themselves, not their colleagues'."""
    return is_staff(user)


def visible_feeds(user: User, client: Client) -> list[Feed]:
    return [feed for feed in Feed if can_view_feed(user, client, feed)]


def feeds_in_lists(user: User) -> list[Feed]:
    """The feeds a person may see of some client: what lists, filters and counts offer them."""
    if not (is_admin_team(user) or is_staff(user) or is_client(user)):
        return []
    if user.business.private_messaging_enabled and (
        is_client(user) or can_access_private_messages(user)
    ):
        return list(Feed)
    return [Feed.CONVERSATION]


def visible_feeds_clause(user: User, business_id, client_id, feed) -> ColumnElement[bool]:
    """SQL twin of can_view_feed for rows naming a client's feed (summaries, messages, markers):
    lists, searches and unread counts ask it, so a feed a person may not open never counts.
    Archived clients are left out of every list and count (their pages stay open read-only)."""
    feeds = feeds_in_lists(user)
    if not feeds:
        return false()
    in_feeds = feed == feeds[0] if len(feeds) == 1 else true()
    clause = and_(business_id == user.business_id, in_feeds)
    if is_staff(user):  # staff_clients leaves archived clients out already
        window = staff_access_window(user.business)
        return and_(clause, _as_sql(client_id).in_(staff_clients(user.id, window)))
    if is_client(user):
        return and_(clause, client_id == user.client_id, _not_archived(client_id))
    return and_(clause, _not_archived(client_id))


def _not_archived(client_id) -> ColumnElement[bool]:
    """SQL: the client is not archived. Lists, searches and counts leave archived clients
    out (their pages stay open, read-only, to those who may see them): one look-up by
    primary key per row listed."""
    archived = aliased(Client)  # the list itself may read clients: no correlation with it
    return ~exists().where(archived.id == client_id, archived.archived_at.is_not(None))


def can_use_message_center(user: User) -> bool:
    """Every client feed the person may see, in one list by recent activity: the admin team,
    and staff for the Conversation feeds of their clients. Clients have their own portal."""
    return is_admin_team(user) or is_staff(user)


def is_read_only(client: Client) -> bool:
    """An archived client's feeds keep their history but take no new messages or deletions."""
    return client.archived_at is not None


def can_post(user: User, client: Client, feed: Feed) -> bool:
    return not is_read_only(client) and can_view_feed(user, client, feed)


# --- scheduled messages ("Send later") -----------------------------------------------------

def can_schedule(user: User, client: Client, feed: Feed) -> bool:
    """The business's side schedules messages; a client writes when they write."""
    return not is_client(user) and can_post(user, client, feed)


def can_manage_scheduled(user: User, client: Client, scheduled: ScheduledMessage) -> bool:
    """A scheduled (or held) message is seen, changed, sent at once or cancelled by its author
    and the admin team, while they may post to its feed: nobody else knows it exists."""
    return (not is_client(user) and can_post(user, client, scheduled.feed)
            and (scheduled.author_id == user.id or is_admin_team(user)))


def can_send_scheduled_now(user: User, client: Client, scheduled: ScheduledMessage) -> bool:
    """Send now: not for a message awaiting approval (approving it sends it)."""
    return not scheduled.held and can_manage_scheduled(user, client, scheduled)


def scheduled_messages_clause(user: User) -> ColumnElement[bool]:
    """Which scheduled messages of a feed the person sees listed (the feed itself already
    theirs to post to): the admin team all of them, anyone else their own."""
    if is_admin_team(user):
        return true()
    return ScheduledMessage.author_id == user.id


# --- staff message approval -------------------------------------------------------------------

def needs_approval(user: User) -> bool:
    """Whether the person's messages wait for the admin team's approval before a client sees
    them: staff only, by their own rule, else by the business's setting."""
    if not is_staff(user):
        return False
    if user.message_approval is not None:
        return user.message_approval == MessageApproval.ALWAYS
    return user.business.staff_messages_need_approval


def can_set_message_approval(user: User, account: User) -> bool:
    """A staff member's own rule is set by the admin team, on their login's page."""
    return is_staff(account) and can_manage_account(user, account)


def can_review_held(user: User, client: Client, scheduled: ScheduledMessage) -> bool:
    """Approve, edit and approve, or reject a message awaiting approval: the admin team, while
    they may post to its feed (one no longer held is answered as such: two of them may press
    Approve at once)."""
    return is_admin_team(user) and can_manage_scheduled(user, client, scheduled)


def sees_held_messages(user: User) -> bool:
    """The Message Center's "Awaiting approval" and its count in the navigation."""
    return is_admin_team(user)


def held_messages_clause(user: User) -> ColumnElement[bool]:
    """The held messages of the person's business they may review: those of feeds they see
    (nothing at all for anyone but the admin team)."""
    if not sees_held_messages(user):
        return false()
    return and_(
        ScheduledMessage.business_id == user.business_id, ScheduledMessage.held.is_(True),
        ScheduledMessage.status == DeliveryStatus.PENDING,
        visible_feeds_clause(user, ScheduledMessage.business_id, ScheduledMessage.client_id,
                             ScheduledMessage.feed),
    )


def scheduled_send_refusal(author: User, client: Client, feed: Feed) -> str | None:
    """Asked when a scheduled message's time comes: why it may not be posted then, if it may
    not. Access is what it is at that time, not when the message was written."""
    if not author.active:
        return "its author's login was deactivated"
    if is_read_only(client):
        return "the client is archived"
    if feed == Feed.PRIVATE and not author.business.private_messaging_enabled:
        return "Private Messaging was turned off"
    if not can_post(author, client, feed):
        return "its author's access to this client's feed had ended"
    return None


# --- visits and their reports -------------------------------------------------------------------

def can_work_visit(user: User, client: Client, service: ScheduledService) -> bool:
    """Start, end and report on a visit: the admin team, and the staff member it is assigned
    to while this visit itself opens the client to them (StaffWindow: not while another
    visit, or being the preferred sitter, does)."""
    if service.business_id != user.business_id or service.client_id != client.id:
        return False
    if not can_post(user, client, Feed.CONVERSATION):
        return False
    if is_admin_team(user):
        return True
    window = staff_access_window(user.business)
    return (is_staff(user) and service.staff_id == user.id
            and service.ends_at >= window.start and service.starts_at <= window.end)


def can_edit_report_note(user: User, client: Client) -> bool:
    """A report's note is changed by the admin team (audited), in a feed they may write to."""
    return is_admin_team(user) and can_post(user, client, Feed.CONVERSATION)


def report_thread_open(user: User, client: Client, report_author_id: int,
                       service: ScheduledService) -> bool:
    """A visit report's thread (the report and the answers to it) for the staff member who
    wrote it, whatever else opens or closes the client's feed to them: for as long as the
    business's staff window lasts from the visit's end (the visit not cancelled since, the
    client not archived). They are told of its answers, and read it, there alone."""
    return (is_staff(user) and user.active and user.id == report_author_id
            and service.business_id == user.business_id and service.client_id == client.id
            and not is_read_only(client) and service.status != ServiceStatus.CANCELLED
            and utcnow() <= service.ends_at + timedelta(days=user.business.staff_access_days))


def can_view_report_thread(user: User, client: Client, report_author_id: int,
                           service: ScheduledService) -> bool:
    """Everyone who sees the Conversation sees a report's thread; its author while it is
    open to them (report_thread_open)."""
    return (can_view_feed(user, client, Feed.CONVERSATION)
            or report_thread_open(user, client, report_author_id, service))


def can_view_past_visits(user: User, client: Client) -> bool:
    """A household's past visits and their reports: the household itself, and the admin
    team (staff see the reports in the feed while they serve the client)."""
    if client.business_id != user.business_id:
        return False
    if is_client(user):
        return user.client_id == client.id
    return is_admin_team(user)


def sees_visit_location(user: User) -> bool:
    """Where a phone was at Start visit, when the business records it: the admin team."""
    return is_admin_team(user)


# --- saved replies ---------------------------------------------------------------------------

def can_manage_saved_replies(user: User) -> bool:
    """The admin team keeps the business's saved replies (Settings)."""
    return is_admin_team(user)


def can_use_saved_replies(user: User, client: Client, feed: Feed) -> bool:
    """Any business-side composer inserts them; a client writes their own words."""
    return not is_client(user) and can_post(user, client, feed)


def can_delete_message(user: User, message: Message, client: Client) -> bool:
    return can_delete(user, client, message.feed, message.author_id, message.is_deleted)


def can_delete(user: User, client: Client, feed: Feed, author_id: int, deleted: bool) -> bool:
    """Authors delete their own; admins anything they see; office managers Conversation ones."""
    if deleted or is_read_only(client) or not can_view_feed(user, client, feed):
        return False
    if author_id == user.id or is_admin(user):
        return True
    return user.role == Role.OFFICE_MANAGER and feed == Feed.CONVERSATION


def can_unsend_message(user: User, message: Message, client: Client) -> bool:
    """An automatic reply is the business's: nobody's to take back (it may be deleted)."""
    return message.via != VIA_AUTOMATIC and can_unsend(
        user, client, message.feed, message.author_id, message.is_deleted)


def can_unsend(user: User, client: Client, feed: Feed, author_id: int, deleted: bool) -> bool:
    """Taking a message back in its undo window (see services.messages): its author alone."""
    return (not deleted and not is_read_only(client) and author_id == user.id
            and can_view_feed(user, client, feed))


def sees_delivery(user: User, client: Client, feed: Feed, author_id: int) -> bool:
    """The line under a message saying where it went: for the admin team, and for its author."""
    return (is_admin_team(user) or author_id == user.id) and can_view_feed(user, client, feed)


def can_see_delivery(user: User, message: Message, client: Client) -> bool:
    return not message.is_deleted and sees_delivery(user, client, message.feed, message.author_id)


def sees_delivery_details(user: User) -> bool:
    """Who was told by which channel: the business's people. A client writing to the business
    hears only that it was told, and when it was seen if the business shows them that."""
    return not is_client(user)


def sees_read_receipts(user: User) -> bool:
    """"Seen by …": the business's people always; clients only when the business turns read
    receipts for clients on (Portal Settings)."""
    return not is_client(user) or user.business.client_read_receipts


def shows_reader(viewer: User, reader_role: Role) -> bool:
    """Whose reading a viewer hears of in "Seen": anyone's for the business's people; for a
    client, only the business's (not the household's other logins)."""
    return not is_client(viewer) or reader_role != Role.CLIENT


def can_retry_delivery(user: User, message: Message, client: Client) -> bool:
    """Retry beside a failed notification: the admin team, who see the failed deliveries."""
    return can_manage_notifications(user) and can_see_delivery(user, message, client)


def sees_deletion_details(user: User) -> bool:
    """Tombstones name who deleted a message and when, for the admin team only."""
    return is_admin_team(user)


def feed_audience(
    viewer: User, client: Client, feed: Feed, roster: list[StaffMember] | None = None
) -> str:
    """One line beside Send telling the writer who will read the message."""
    if not audience_names_staff(feed):
        if is_client(viewer):
            return (f"Visible to you and the {viewer.business.name} admin team. "
                    "Staff never see private messages.")
        return "Visible to the client and the admin team. Staff never see private messages."
    if roster is None:
        roster = staff_roster(client, viewer.business)
    staff = [
        "you" if member.id == viewer.id else member.name
        for member in roster
        if member.has_access
    ]
    if is_client(viewer):
        return "Visible to " + and_list([f"the {viewer.business.name} office", *staff]) + "."
    if not staff:
        return "Visible to the client and the admin team. No staff member has access right now."
    return f"Visible to the client, the admin team and staff: {and_list(staff)}."


def audience_names_staff(feed: Feed) -> bool:
    """Whether feed_audience reads the roster: staff never see private messages."""
    return feed != Feed.PRIVATE


def delivery_line(feed: Feed) -> str:
    """How the people who see a new message hear of it (see notification_audience)."""
    if feed == Feed.PRIVATE:
        return "They hear of it by email or app notification, never by text message."
    return "They hear of it by email, text message or app notification, as each of them chose."


# --- notifications ---------------------------------------------------------------------------

def notification_audience(author: User, client: Client, feed: Feed) -> list[User]:
    """Who is told of a new message: never its author, never staff about a private message.

    Conversation: the client (from the business side), the staff who see the feed, and the
    admin team when the client wrote. Private: the client (from the admin team), or the admins
    and granted office managers (from the client).
    """
    return [row.User for row in post_audience(author, client, feed, (User,)).told]


@dataclass(frozen=True, slots=True)
class PostAudience:
    # Who is told of the new message (notification_audience): rows of id, name, role and
    # the columns asked for, by id.
    told: list
    # The staff who see the feed, by name: the composer's audience line (feed_audience).
    staff: list[StaffMember]


def post_audience(author: User, client: Client, feed: Feed, columns: tuple) -> PostAudience:
    """Everyone a new message reaches, in one query prepared once per case: who is told of
    it, and the staff who see it. `columns` (the same tuple on every call of a caller) are
    read of each person told."""
    rows = db.session.execute(_audience_statement(author.role == Role.CLIENT, feed, columns), {
        "business_id": client.business_id, "client_id": client.id,
        **_window_parameters(author.business),
    }).all()
    staff = [StaffMember(row.id, row.name, True, False) for row in rows if row.role == Role.STAFF]
    told = [] if client.archived_at is not None else sorted(
        (row for row in rows if row.id != author.id), key=lambda row: row.id
    )
    return PostAudience(told, staff)


def automatic_reply_audience(found: PostAudience) -> PostAudience:
    """Who is told of an automatic reply ("We're closed until …"): the household alone. It
    answers them; nobody at the business needs word that the business is closed."""
    return PostAudience([row for row in found.told if row.role == Role.CLIENT], found.staff)


@lru_cache(maxsize=16)
def _audience_statement(from_client: bool, feed: Feed, columns: tuple):
    """The author is not left out here: staff who see the feed are all named on its line."""
    client_id, business_id = bindparam("client_id"), bindparam("business_id")
    team = select(User.id).where(User.business_id == business_id)
    groups = []
    if not from_client:
        groups.append(select(User.id).where(User.client_id == client_id))
    if feed == Feed.CONVERSATION:
        groups.append(team.where(User.role == Role.STAFF, User.id.in_(_client_staff(client_id))))
        if from_client:
            groups.append(team.where(User.role.in_([Role.ADMIN, Role.OFFICE_MANAGER])))
    elif from_client:
        groups.append(team.where(
            (User.role == Role.ADMIN)
            | ((User.role == Role.OFFICE_MANAGER) & User.private_messages_access)
        ))
    return (
        select(User.id, User.name, User.role, *columns)
        .where(
            User.id.in_(union(*groups)) if len(groups) > 1 else User.id.in_(groups[0]),
            User.business_id == business_id, User.active,
        )
        .order_by(User.name, User.id)
    )


def may_be_notified(user: User, client: Client, feed: Feed) -> bool:
    """Asked again at send time: someone who lost access since is not told, nor anyone about
    an archived client."""
    return user.active and client.archived_at is None and can_view_feed(user, client, feed)


# --- prepared statements ----------------------------------------------------------------------
# Counts and lists run on every page. Their statements are built once per kind of viewer (role,
# grant, business setting) from the rules above, with the person's own values left as bound
# parameters, and then only executed: building them costs more than running them.

_STAFF_WINDOW_START = bindparam("staff_window_start", type_=UTCDateTime())
_STAFF_WINDOW_END = bindparam("staff_window_end", type_=UTCDateTime())


def _window_parameters(business: Business) -> dict:
    window = staff_access_window(business)
    return {"staff_window_start": window.start, "staff_window_end": window.end}


@dataclass(frozen=True, slots=True)
class _BusinessShape:
    private_messaging_enabled: bool


@dataclass(frozen=True, slots=True)
class ViewerShape:
    """What the rules read of a viewer that changes a statement's shape; the rest (who they
    are) is bound at execution, from viewer_parameters."""

    role: Role
    private_messages_access: bool
    business: _BusinessShape

    is_authenticated = True
    id = bindparam("viewer_id")
    business_id = bindparam("viewer_business_id")
    client_id = bindparam("viewer_client_id")


def viewer_shape(user: User) -> ViewerShape:
    return ViewerShape(
        user.role, user.private_messages_access,
        _BusinessShape(user.business.private_messaging_enabled),
    )


def viewer_parameters(user: User) -> dict:
    return {
        "viewer_id": user.id,
        "viewer_business_id": user.business_id,
        "viewer_client_id": user.client_id,
        **_window_parameters(user.business),
    }


_ROSTER = _roster_statement()
