"""A staff member's own visits: the Today page (today and the week ahead, by day in the
business's zone) and the iCalendar feed of their schedule. One statement for the visits with
their clients, feed access, unread counts and whether the household's details are open to the
viewer, one for the pets: the same two queries whatever the number of visits.

A visit whose client is not open to the staff member yet (beyond the staff access window, see
policy.visit_details_clause) carries its time, title and client name only, and when its
details open.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import quote_plus

from sqlalchemy import case, literal, select

from portal import policy, unread
from portal.clock import exact_time, zone
from portal.extensions import db
from portal.models import Client, Feed, Pet, ScheduledService, ServiceStatus, User, utcnow
from portal.services.visit_reports import EARLY_START
from portal.urls import url_pattern

DAYS_AHEAD = 7  # Today lists today and the next seven days
CALENDAR_PAST = timedelta(days=30)
CALENDAR_AHEAD = timedelta(days=180)


@dataclass(frozen=True, slots=True)
class Visit:
    id: int
    title: str
    starts_at: datetime
    ends_at: datetime
    status: ServiceStatus
    updated_at: datetime | None
    revision: int
    client_id: int
    client_name: str
    address: str | None
    entry_instructions: str | None
    gate_code: str | None
    pets: str  # "Biscuit (Dog), Luna (Cat)"
    unread: int
    # The client's Conversation feed, or None when the policy does not open it to the viewer.
    feed_url: str | None
    # Whether the household's details above are open to the viewer (else they are empty),
    # and if not, when they open: "Tue, Mar 4, 2025 at 9:00 AM CST", or None.
    details: bool = True
    details_open: str | None = None
    # Start visit and End visit (None until pressed), and whether it can be worked now (it
    # is under way, done, or about to begin: services.visit_reports.EARLY_START).
    started_at: datetime | None = None
    ended_at: datetime | None = None
    due: bool = False

    @property
    def maps_url(self) -> str | None:
        if not self.address:
            return None
        return f"https://www.google.com/maps/search/?api=1&query={quote_plus(self.address)}"


@dataclass(frozen=True, slots=True)
class DayVisit:
    """A visit as one day of the list shows it: a stay across days shows on each of them."""

    visit: Visit
    part: str | None  # "Day 2 of 3" for a visit across days, None for one within the day


@dataclass(frozen=True, slots=True)
class Day:
    day: date
    label: str  # "Today", "Tomorrow", "Wednesday, Dec 9"
    visits: list[DayVisit]


def _visits(viewer: User, now: datetime, starts_before: datetime, ends_after: datetime, *,
            include_cancelled: bool = False, with_feeds: bool = True) -> list[Visit]:
    business = viewer.business
    details = policy.visit_details_clause(viewer.id, policy.staff_access_window(business, now))
    has_feed = policy.visible_feeds_clause(viewer, Client.business_id, Client.id,
                                           Feed.CONVERSATION)
    columns = [
        ScheduledService.id, ScheduledService.title, ScheduledService.starts_at,
        ScheduledService.ends_at, ScheduledService.status, ScheduledService.updated_at,
        ScheduledService.revision, ScheduledService.client_id, ScheduledService.started_at,
        ScheduledService.ended_at,
        Client.name.label("client_name"), Client.address, Client.entry_instructions,
        Client.gate_code, details.label("details"),
    ]
    if with_feeds:
        count = unread.count_column(viewer, ScheduledService.client_id, Feed.CONVERSATION,
                                    correlate=(ScheduledService,))
        columns += [has_feed.label("has_feed"),
                    case((has_feed, count), else_=literal(0)).label("unread")]
    statement = (
        select(*columns)
        .join(Client, Client.id == ScheduledService.client_id)
        .where(
            Client.business_id == viewer.business_id,
            policy.own_visits_clause(viewer.id, include_cancelled=include_cancelled),
            ScheduledService.starts_at < starts_before,
            ScheduledService.ends_at > ends_after,
        )
        .order_by(ScheduledService.starts_at, ScheduledService.id)
    )
    rows = db.session.execute(statement).all()
    pets = _pets({row.client_id for row in rows if row.details}) if with_feeds else {}
    feed_url = url_pattern("feeds.show", client_id=0, feed_name=Feed.CONVERSATION.value)
    visits = []
    for row in rows:
        if row.details:
            visits.append(Visit(
                row.id, row.title, row.starts_at, row.ends_at, row.status, row.updated_at,
                row.revision, row.client_id,
                row.client_name, row.address, row.entry_instructions, row.gate_code,
                pets.get(row.client_id, ""),
                row.unread if with_feeds else 0,
                feed_url(row.client_id) if with_feeds and row.has_feed else None,
                started_at=row.started_at, ended_at=row.ended_at,
                due=row.starts_at - EARLY_START <= now,
            ))
            continue
        opens = policy.visit_details_open(business, row.starts_at, now)
        visits.append(Visit(
            row.id, row.title, row.starts_at, row.ends_at, row.status, row.updated_at,
            row.revision, row.client_id, row.client_name, None, None, None, "", 0, None,
            details=False,
            details_open=exact_time(opens, business.time_zone) if opens else None,
        ))
    return visits


def _pets(client_ids: set[int]) -> dict[int, str]:
    if not client_ids:
        return {}
    found: dict[int, list[str]] = {}
    rows = db.session.execute(
        select(Pet.client_id, Pet.name, Pet.species)
        .where(Pet.client_id.in_(client_ids), Pet.archived_at.is_(None))
        .order_by(Pet.client_id, Pet.name)
    )
    for row in rows:
        found.setdefault(row.client_id, []).append(f"{row.name} ({row.species})")
    return {client_id: ", ".join(names) for client_id, names in found.items()}


def _midnight(day: date, tz) -> datetime:
    return datetime.combine(day, time(0), tz).astimezone(UTC)


def _last_day(ends_at: datetime, tz) -> date:
    """The last day a visit covers: one that ends at midnight ends the day before."""
    local = ends_at.astimezone(tz)
    return (local - timedelta(microseconds=1)).date() if local.time() == time(0) else local.date()


def _day_label(day: date, today: date) -> str:
    if day == today:
        return "Today"
    if day == today + timedelta(days=1):
        return "Tomorrow"
    return f"{day:%A}, {day:%b} {day.day}"


def today(viewer: User, now: datetime | None = None) -> list[Day]:
    """Today and the next DAYS_AHEAD days in the business's zone, each with the viewer's
    visits that cover part of it (earliest first); a stay across days is on each of them."""
    tz = zone(viewer.business.time_zone)
    now = now or utcnow()
    first = now.astimezone(tz).date()
    days = [first + timedelta(days=offset) for offset in range(DAYS_AHEAD + 1)]
    visits = _visits(viewer, now, _midnight(days[-1] + timedelta(days=1), tz), _midnight(first, tz))
    listed = []
    for day in days:
        start, end = _midnight(day, tz), _midnight(day + timedelta(days=1), tz)
        shown = []
        for visit in visits:
            if visit.starts_at < end and visit.ends_at > start:
                first_day = visit.starts_at.astimezone(tz).date()
                length = (_last_day(visit.ends_at, tz) - first_day).days + 1
                part = f"Day {(day - first_day).days + 1} of {length}" if length > 1 else None
                shown.append(DayVisit(visit, part))
        listed.append(Day(day, _day_label(day, first), shown))
    return listed


def calendar_visits(staff: User, now: datetime | None = None) -> list[Visit]:
    """The staff member's visits from CALENDAR_PAST ago to CALENDAR_AHEAD, cancelled ones
    included (a calendar that copied them must learn they are off)."""
    now = now or utcnow()
    return _visits(staff, now, now + CALENDAR_AHEAD, now - CALENDAR_PAST,
                   include_cancelled=True, with_feeds=False)


def next_visit_columns(staff_id, now, client_id=None) -> tuple:
    """SQL: the start and end of a staff member's next visit (or the one under way), with
    one client if given, as two columns of a list's one statement; staff_id and client_id
    may be columns of the enclosing query."""
    clauses = [policy.own_visits_clause(staff_id), ScheduledService.ends_at >= now]
    if client_id is not None:
        clauses.append(ScheduledService.client_id == client_id)
    next_visit = (
        select(ScheduledService.id)
        .where(*clauses)
        .order_by(ScheduledService.starts_at, ScheduledService.id)
        .limit(1)
        .correlate_except(ScheduledService)
        .scalar_subquery()
    )
    return tuple(
        select(column).where(ScheduledService.id == next_visit).scalar_subquery().label(name)
        for column, name in ((ScheduledService.starts_at, "next_starts_at"),
                             (ScheduledService.ends_at, "next_ends_at"))
    )
