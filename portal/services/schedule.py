"""The schedule: visits entered in the business's time zone, one-off or recurring, assigned to a
staff member or unassigned, edited, reassigned and cancelled one visit, this and following, or
all at once.

A recurring service is a ServiceSeries holding its RFC 5545 rule (dateutil's rrule), and one
ScheduledService row per visit: access, lists and edits read rows, never the rule. Each visit
keeps its wall-clock time in the business's zone, so a 9:00 walk stays at 9:00 across the
change to and from daylight saving time.
"""

import enum
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise

from dateutil.relativedelta import relativedelta
from dateutil.rrule import DAILY, MONTHLY, WEEKLY, YEARLY, rrule, weekday
from sqlalchemy import select

from portal import policy
from portal.clock import EN_DASH, NonexistentLocalTime, to_utc, zone
from portal.extensions import db
from portal.models import (
    Business,
    Client,
    ScheduledService,
    ServiceSeries,
    ServiceStatus,
    User,
    utcnow,
)
from portal.services import audit

MAX_SPAN = relativedelta(years=2)  # the longest a recurrence may run
MAX_VISITS = 800  # two years of daily visits, with room to spare
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_RRULE_DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


class ScheduleError(ValueError):
    """Input the schedule refuses; `field` names the form field it is about, if any."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class Overlap(Exception):
    """The staff member already has visits at these times; nothing was saved. Asked again with
    allow_overlap=True, the visits are saved anyway."""

    def __init__(self, clashes: list[ScheduledService]):
        super().__init__(f"{len(clashes)} overlapping visit(s)")
        self.clashes = clashes


class Frequency(enum.StrEnum):
    NONE = "none"
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"
    YEARLY = "yearly"


class Scope(enum.StrEnum):
    ONE = "one"
    FOLLOWING = "following"
    ALL = "all"


_FREQ = {Frequency.DAILY: DAILY, Frequency.WEEKLY: WEEKLY, Frequency.MONTHLY: MONTHLY,
         Frequency.YEARLY: YEARLY}


@dataclass(frozen=True)
class Repeat:
    frequency: Frequency = Frequency.NONE
    interval: int = 1
    weekdays: tuple[int, ...] = ()  # 0 = Monday, for weekly
    until: date | None = None
    count: int | None = None


@dataclass(frozen=True)
class LocalSpan:
    """A visit as entered: start and end as dates and wall-clock times in the business zone."""

    start_day: date
    start_time: time
    end_day: date
    end_time: time

    @property
    def start(self) -> datetime:
        return datetime.combine(self.start_day, self.start_time)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.end_day, self.end_time)


@dataclass
class Plan:
    """The visits a schedule form makes, worked out and checked before anything is written."""

    spans: list[tuple[datetime, datetime]]  # UTC
    rule: str | None = None
    warnings: list[str] = field(default_factory=list)


# --- working out the visits -----------------------------------------------------------------

def _utc(moment: datetime, time_zone: str, what: str) -> datetime:
    try:
        return to_utc(moment.date(), moment.time(), time_zone)
    except NonexistentLocalTime as error:
        raise ScheduleError(f"The visit {what} {error}", "starts" if what == "starts at" else
                            "ends") from None


def rule_for(repeat: Repeat, first: datetime) -> rrule | None:
    """The dateutil rule for a repeat, read from the first visit's local start (naive)."""
    if repeat.frequency == Frequency.NONE:
        return None
    if not repeat.until and not repeat.count:
        raise ScheduleError("Choose when the repeats end: on a date or after a number of visits.",
                            "until")
    if repeat.until and repeat.count:
        raise ScheduleError("Choose either an end date or a number of visits, not both.", "until")
    if repeat.interval < 1 or repeat.interval > 52:
        raise ScheduleError("Repeat every 1 to 52 periods.", "interval")
    if repeat.count is not None and not 1 <= repeat.count <= MAX_VISITS:
        raise ScheduleError(f"The number of visits must be between 1 and {MAX_VISITS}.", "count")
    if repeat.frequency == Frequency.YEARLY and (first.month, first.day) == (2, 29):
        raise ScheduleError("A yearly visit on February 29 would only happen in leap years. "
                            "Choose February 28 or March 1.", "date")
    if repeat.frequency == Frequency.MONTHLY and first.day > 28:
        raise ScheduleError(f"A monthly visit on day {first.day} would skip the months that are "
                            "shorter. Choose a day from 1 to 28.", "date")
    if repeat.until is not None and repeat.until < first.date():
        raise ScheduleError("The repeats must end on or after the first visit.", "until")
    options = {"dtstart": first, "interval": repeat.interval}
    if repeat.frequency == Frequency.WEEKLY:
        days = sorted(set(repeat.weekdays)) or [first.weekday()]
        options["byweekday"] = [weekday(day) for day in days]
    if repeat.until is not None:
        options["until"] = datetime.combine(repeat.until, time.max).replace(microsecond=0)
    else:
        options["count"] = repeat.count
    return rrule(_FREQ[repeat.frequency], **options)


def rule_text(rule: rrule) -> str:
    """The RRULE line of a rule, without its DTSTART (the first visit holds that)."""
    lines = [line for line in str(rule).splitlines() if line.startswith("RRULE:")]
    return lines[0].removeprefix("RRULE:")


def _refuse_self_overlap(spans: list[tuple[datetime, datetime]], time_zone: str) -> None:
    """A series whose visits run into one another (a two-day stay repeated daily) is refused
    whoever does it: the overlap check reads only the rows already saved, never these."""
    ordered = sorted(spans)
    for (start, end), (next_start, _) in pairwise(ordered):
        if next_start < end:
            tz = zone(time_zone)
            moment = "%a, %b %-d, %-I:%M %p"
            raise ScheduleError(
                f"Each visit would overlap the next: the visit of "
                f"{start.astimezone(tz).strftime(moment)} {EN_DASH} "
                f"{end.astimezone(tz).strftime(moment)} runs past the start of the next, "
                f"{next_start.astimezone(tz).strftime(moment)}. Shorten the visits or repeat "
                f"them less often.", "ends")


def plan(business: Business, span: LocalSpan, repeat: Repeat, now: datetime | None = None) -> Plan:
    """Checks a visit (and its repeats) as entered and works out each one in UTC. Raises
    ScheduleError with a message for the form; nothing is written."""
    now = now or utcnow()
    time_zone = business.time_zone
    length = span.end - span.start
    if length <= timedelta(0):
        raise ScheduleError("The visit must end after it starts.", "ends")
    if length > timedelta(days=60):
        raise ScheduleError("A visit may last at most 60 days; for longer, repeat it.", "end_date")
    today = now.astimezone(zone(time_zone)).date()
    if span.start_day < today:
        raise ScheduleError("The visit would start on a day that has passed. Visits of today or "
                            "later can be scheduled.", "date")
    rule = rule_for(repeat, span.start)
    if rule is None:
        return Plan([(_utc(span.start, time_zone, "starts at"),
                      _utc(span.end, time_zone, "ends at"))])
    starts = list(rule.xafter(span.start - timedelta(seconds=1), count=MAX_VISITS + 1, inc=True))
    if not starts:
        raise ScheduleError("No visit falls on the chosen days before the repeats end.", "weekdays")
    if starts[-1] > span.start + MAX_SPAN or len(starts) > MAX_VISITS:
        raise ScheduleError("A recurrence may run for at most two years. Choose an earlier end "
                            "date or fewer visits.", "until" if repeat.until else "count")
    spans = []
    for start in starts:
        try:
            spans.append((to_utc(start.date(), start.time(), time_zone),
                          to_utc((start + length).date(), (start + length).time(), time_zone)))
        except NonexistentLocalTime as error:
            raise ScheduleError(
                f"The visit on {start.strftime('%a, %b %-d, %Y')} cannot happen: {error}",
                "starts",
            ) from None
    _refuse_self_overlap(spans, time_zone)
    return Plan(spans, rule_text(rule))


def clashes(business_id: int, staff_id: int | None, spans: list[tuple[datetime, datetime]],
            ignore: set[int] = frozenset()) -> list[ScheduledService]:
    """The staff member's other visits that overlap any of these spans, in one query."""
    if staff_id is None or not spans:
        return []
    first = min(start for start, _ in spans)
    last = max(end for _, end in spans)
    rows = db.session.scalars(
        select(ScheduledService)
        .where(
            ScheduledService.business_id == business_id,
            ScheduledService.staff_id == staff_id,
            ScheduledService.status != ServiceStatus.CANCELLED,
            policy.live_visits_clause(),
            ScheduledService.starts_at < last, ScheduledService.ends_at > first,
        )
        .order_by(ScheduledService.starts_at)
    )
    found = []
    for row in rows:
        if row.id in ignore:
            continue
        if any(row.starts_at < end and row.ends_at > start for start, end in spans):
            found.append(row)
    return found


# --- writes ---------------------------------------------------------------------------------

def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def schedule(
    actor: User | None, client: Client, staff: User | None, *, title: str, span: LocalSpan,
    repeat: Repeat = Repeat(), allow_overlap: bool = False, now: datetime | None = None,
) -> list[ScheduledService]:
    """Schedules a visit, or a series of visits, for the client. Raises ScheduleError for input
    it refuses and Overlap when the staff member is busy then and allow_overlap is False;
    in both cases nothing is saved."""
    business = db.session.get(Business, client.business_id)
    made = plan(business, span, repeat, now)
    if not allow_overlap:
        busy = clashes(client.business_id, staff.id if staff else None, made.spans)
        if busy:
            raise Overlap(busy)
    series = None
    if made.rule is not None:
        series = ServiceSeries(business_id=client.business_id, client_id=client.id,
                               rule=made.rule, time_zone=business.time_zone)
        db.session.add(series)
        db.session.flush()
    title = title.strip() or "Visit"
    visits = [
        ScheduledService(
            business_id=client.business_id, client_id=client.id,
            staff_id=staff.id if staff else None, series_id=series.id if series else None,
            title=title, starts_at=starts_at, ends_at=ends_at,
        )
        for starts_at, ends_at in made.spans
    ]
    db.session.add_all(visits)
    db.session.flush()
    details = {"client_id": client.id, "staff_id": staff.id if staff else None,
               "title": title, "starts_at": _iso(visits[0].starts_at),
               "ends_at": _iso(visits[0].ends_at)}
    if series is not None:
        details.update(series_id=series.id, rule=series.rule, visits=len(visits))
    audit.record(client.business_id, actor, "service.scheduled", "scheduled_service",
                 visits[0].id, **details)
    db.session.commit()
    return visits


def schedule_service(
    actor: User | None, client: Client, staff: User | None, *, title: str,
    starts_at: datetime, ends_at: datetime,
) -> ScheduledService:
    """One visit at given moments (aware datetimes), without the form's checks: for the demo,
    tests and benchmarks, which place visits in the past too."""
    service = ScheduledService(
        business_id=client.business_id, client_id=client.id,
        staff_id=staff.id if staff else None, title=title.strip() or "Visit",
        starts_at=starts_at, ends_at=ends_at,
    )
    db.session.add(service)
    db.session.flush()
    audit.record(
        client.business_id, actor, "service.scheduled", "scheduled_service", service.id,
        client_id=client.id, staff_id=staff.id if staff else None, title=service.title,
        starts_at=_iso(starts_at), ends_at=_iso(ends_at),
    )
    db.session.commit()
    return service


def in_scope(visit: ScheduledService, scope: Scope, now: datetime) -> list[ScheduledService]:
    """The visits a change reaches: this one; or of its series, this and the following ones
    not yet started; or all of the series not yet started. Cancelled visits stay as they are."""
    if visit.series_id is None or scope == Scope.ONE:
        return [visit]
    query = select(ScheduledService).where(
        ScheduledService.series_id == visit.series_id,
        ScheduledService.status == ServiceStatus.SCHEDULED,
        ScheduledService.starts_at > now,
    )
    if scope == Scope.FOLLOWING:
        query = query.where(ScheduledService.starts_at >= visit.starts_at)
    visits = list(db.session.scalars(query.order_by(ScheduledService.starts_at)))
    if not visits:
        raise ScheduleError("None of these visits is still to come.", "scope")
    return visits


def _scope_details(visit: ScheduledService, scope: Scope, visits: list) -> dict:
    details = {"client_id": visit.client_id, "staff_id": visit.staff_id, "title": visit.title,
               "starts_at": _iso(visit.starts_at)}
    if visit.series_id is not None:
        details.update(series_id=visit.series_id, scope=scope.value, visits=len(visits))
    return details


def cancel(actor: User, visit: ScheduledService, scope: Scope = Scope.ONE,
           now: datetime | None = None) -> list[ScheduledService]:
    """Cancels a visit, or with it the following ones or all still to come of its series. A
    visit that has started cannot be cancelled."""
    now = now or utcnow()
    if visit.status == ServiceStatus.CANCELLED:
        raise ScheduleError("This visit is already cancelled.")
    if scope == Scope.ONE or visit.series_id is None:
        if visit.starts_at <= now:
            raise ScheduleError("This visit has already started; past visits cannot be "
                                "cancelled.")
    elif scope == Scope.FOLLOWING and visit.starts_at <= now:
        raise ScheduleError("This visit has already started; choose a later visit to cancel "
                            "from.")
    visits = in_scope(visit, scope, now)
    details = _scope_details(visit, scope, visits)
    for each in visits:
        each.status = ServiceStatus.CANCELLED
    details["changes"] = {"status": [ServiceStatus.SCHEDULED.value,
                                     ServiceStatus.CANCELLED.value]}
    audit.record(visit.business_id, actor, "service.cancelled", "scheduled_service", visit.id,
                 **details)
    db.session.commit()
    return visits


def _name(user: User | None) -> str | None:
    return user.name if user else None


def update(
    actor: User, visit: ScheduledService, scope: Scope, *, staff: User | None,
    title: str | None = None, span: LocalSpan | None = None, allow_overlap: bool = False,
    now: datetime | None = None,
) -> list[ScheduledService]:
    """Edits a visit's title, times and staff member (None: unassigned), or the same change
    for this and the following visits, or all still to come, of its series. A new time moves
    each visit by the same wall-clock change on its own date. Raises ScheduleError or Overlap;
    nothing is saved then."""
    now = now or utcnow()
    if visit.status == ServiceStatus.CANCELLED:
        raise ScheduleError("This visit is cancelled; schedule a new one instead.")
    if visit.ends_at <= now and scope == Scope.ONE:
        raise ScheduleError("This visit is over; past visits cannot be changed.")
    business = db.session.get(Business, visit.business_id)
    time_zone = business.time_zone
    visits = in_scope(visit, scope, now)
    tz = zone(time_zone)
    old_start = visit.starts_at.astimezone(tz).replace(tzinfo=None)
    old_end = visit.ends_at.astimezone(tz).replace(tzinfo=None)
    shift, length = timedelta(0), old_end - old_start
    if span is not None:
        if span.end <= span.start:
            raise ScheduleError("The visit must end after it starts.", "ends")
        if span.end - span.start > timedelta(days=60):
            raise ScheduleError("A visit may last at most 60 days.", "end_date")
        shift, length = span.start - old_start, span.end - span.start
        if span.start_day < now.astimezone(tz).date() and shift:
            raise ScheduleError("The visit would start on a day that has passed.", "date")
    moves = span is not None and (shift, length) != (timedelta(0), old_end - old_start)
    new_spans = {}
    for each in visits:
        if not moves:  # a reassignment, or a new title: each visit keeps its own times
            new_spans[each.id] = (each.starts_at, each.ends_at)
            continue
        start = each.starts_at.astimezone(tz).replace(tzinfo=None) + shift
        end = start + length
        try:
            new_spans[each.id] = (to_utc(start.date(), start.time(), time_zone),
                                  to_utc(end.date(), end.time(), time_zone))
        except NonexistentLocalTime as error:
            raise ScheduleError(
                f"The visit on {start.strftime('%a, %b %-d, %Y')} cannot move there: {error}",
                "starts",
            ) from None
    if moves:
        _refuse_self_overlap(list(new_spans.values()), time_zone)
    staff_id = staff.id if staff else None
    if not allow_overlap:
        busy = clashes(visit.business_id, staff_id, list(new_spans.values()),
                       ignore={each.id for each in visits})
        if busy:
            raise Overlap(busy)
    changes = {}
    first = visits[0]  # what the change does, read from the first visit it reaches
    new_title = (title or "").strip() or first.title
    if new_title != first.title:
        changes["title"] = [first.title, new_title]
    if staff_id != first.staff_id:
        changes["staff"] = [_name(first.staff), _name(staff)]
        changes["staff_id"] = [first.staff_id, staff_id]
    starts_at, ends_at = new_spans[first.id]
    if starts_at != first.starts_at:
        changes["starts_at"] = [_iso(first.starts_at), _iso(starts_at)]
    if ends_at != first.ends_at:
        changes["ends_at"] = [_iso(first.ends_at), _iso(ends_at)]
    if not changes:
        return visits
    details = _scope_details(visit, scope, visits)
    for each in visits:
        each.title = new_title
        each.staff_id = staff_id
        each.starts_at, each.ends_at = new_spans[each.id]
    details["staff_id"] = staff_id
    details["changes"] = changes
    action = "service.reassigned" if set(changes) <= {"staff", "staff_id"} else "service.changed"
    audit.record(visit.business_id, actor, action, "scheduled_service", visit.id, **details)
    db.session.commit()
    return visits


# --- describing ------------------------------------------------------------------------------

def describe_rule(rule: str | None) -> str | None:
    """"Repeats weekly on Mon, Wed" for a series' RRULE text; None for a one-off visit."""
    if not rule:
        return None
    parts = dict(part.split("=", 1) for part in rule.split(";") if "=" in part)
    freq = parts.get("FREQ", "")
    units = {"DAILY": ("daily", "days"), "WEEKLY": ("weekly", "weeks"),
             "MONTHLY": ("monthly", "months"), "YEARLY": ("yearly", "years")}
    if freq not in units:
        return "Repeats"
    interval = int(parts.get("INTERVAL", "1") or 1)
    text = "Repeats " + (units[freq][0] if interval == 1 else f"every {interval} {units[freq][1]}")
    if freq == "WEEKLY" and parts.get("BYDAY"):
        days = [_RRULE_DAYS.index(day) for day in parts["BYDAY"].split(",") if day in _RRULE_DAYS]
        text += " on " + ", ".join(WEEKDAYS[day] for day in sorted(days))
    if parts.get("UNTIL"):
        until = datetime.strptime(parts["UNTIL"][:8], "%Y%m%d")
        text += f" until {until.strftime('%b %-d, %Y')}"
    elif parts.get("COUNT"):
        text += f", {parts['COUNT']} visits"
    return text


def clash_line(visit: ScheduledService, time_zone: str) -> str:
    """One overlapping visit, as the warning lists it."""
    tz = zone(time_zone)
    start, end = visit.starts_at.astimezone(tz), visit.ends_at.astimezone(tz)
    end_format = "%-I:%M %p" if end.date() == start.date() else "%a, %b %-d, %-I:%M %p"
    return (f"{visit.title}: {start.strftime('%a, %b %-d, %-I:%M %p')} {EN_DASH} "
            f"{end.strftime(end_format)}")
