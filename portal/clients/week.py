"""The admin team's week schedule (read only): every visit of a week, Monday to Sunday in the
business's time zone, by staff member, with a row for unassigned visits. Two queries whatever
the week holds: the visits (with their clients' names), then the staff."""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import or_, select

from portal import policy
from portal.clock import EN_DASH, zone
from portal.extensions import db
from portal.models import Business, Client, Role, ScheduledService, ServiceStatus, User, utcnow


@dataclass(frozen=True, slots=True)
class WeekVisit:
    id: int
    client_id: int
    client_name: str
    title: str
    when: str  # this day's part of it: "9:00 AM to 9:30 AM", "from 6:00 PM", "until 9:00 AM"
    cancelled: bool


@dataclass
class Row:
    staff_id: int | None
    name: str
    days: list[list[WeekVisit]] = field(default_factory=lambda: [[] for _ in range(7)])

    @property
    def empty(self) -> bool:
        return not any(self.days)


@dataclass
class WeekTable:
    monday: date
    days: list[date]
    today: date
    rows: list[Row]

    @property
    def previous(self) -> date:
        return self.monday - timedelta(days=7)

    @property
    def next(self) -> date:
        return self.monday + timedelta(days=7)

    def day_visits(self, index: int) -> list[tuple[Row, WeekVisit]]:
        """One day, every row's visits: the narrow layout lists days, not a table."""
        return [(row, visit) for row in self.rows for visit in row.days[index]]


FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(2999, 12, 31)  # the weeks a link may ask for


def week_of(value: str | None, time_zone: str, now: datetime | None = None) -> date:
    """The Monday of the week holding `value` (YYYY-MM-DD), or of this week. A day before
    1900 or after 2999 is taken as the nearest of those (date's own range ends at year 1 and
    9999, where the previous or next week cannot be counted)."""
    try:
        day = date.fromisoformat(value) if value else None
    except ValueError:
        day = None
    if day is None:
        day = (now or utcnow()).astimezone(zone(time_zone)).date()
    day = min(max(day, FIRST_DAY), LAST_DAY)
    return day - timedelta(days=day.weekday())


def _midnight(day: date, tz) -> datetime:
    return datetime.combine(day, time.min, tz).astimezone(UTC)


def _clock(moment: datetime) -> str:
    return f"{moment.hour % 12 or 12}:{moment.minute:02} {'AM' if moment.hour < 12 else 'PM'}"


def _when(start: datetime, end: datetime, day: date) -> str:
    starts_today, ends_today = start.date() == day, end.date() == day or (
        end.date() == day + timedelta(days=1) and end.time() == time.min)
    if starts_today and ends_today:
        return f"{_clock(start)} {EN_DASH} {_clock(end)}"
    if starts_today:
        return f"from {_clock(start)}"
    if ends_today:
        return f"until {_clock(end)}"
    return "all day"


def load(business: Business, monday: date, *, show_cancelled: bool = False,
         now: datetime | None = None) -> WeekTable:
    tz = zone(business.time_zone)
    days = [monday + timedelta(days=index) for index in range(7)]
    bounds = [_midnight(day, tz) for day in [*days, monday + timedelta(days=7)]]
    query = (
        select(ScheduledService.id, ScheduledService.client_id, Client.name,
               ScheduledService.title, ScheduledService.staff_id, ScheduledService.starts_at,
               ScheduledService.ends_at, ScheduledService.status)
        .join(Client, Client.id == ScheduledService.client_id)
        .where(ScheduledService.business_id == business.id, policy.live_visits_clause(),
               ScheduledService.starts_at < bounds[-1], ScheduledService.ends_at > bounds[0])
        .order_by(ScheduledService.starts_at, ScheduledService.id)
    )
    if not show_cancelled:
        query = query.where(ScheduledService.status != ServiceStatus.CANCELLED)
    visits = db.session.execute(query).all()
    staff_ids = {visit.staff_id for visit in visits if visit.staff_id is not None}
    staff = db.session.execute(
        select(User.id, User.name)
        .where(User.business_id == business.id, User.role == Role.STAFF,
               or_(User.active, User.id.in_(staff_ids)))
        .order_by(User.name, User.id)
    ).all()
    rows = {member.id: Row(member.id, member.name) for member in staff}
    unassigned = Row(None, "Unassigned")
    for visit in visits:
        row = rows.get(visit.staff_id, unassigned)
        start, end = visit.starts_at.astimezone(tz), visit.ends_at.astimezone(tz)
        for index, day in enumerate(days):
            if visit.starts_at < bounds[index + 1] and visit.ends_at > bounds[index]:
                row.days[index].append(WeekVisit(
                    visit.id, visit.client_id, visit.name, visit.title,
                    _when(start, end, day), visit.status == ServiceStatus.CANCELLED,
                ))
    today = (now or utcnow()).astimezone(tz).date()
    return WeekTable(monday, days, today, [*rows.values(), unassigned])
