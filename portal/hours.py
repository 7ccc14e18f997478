"""Business hours: when the business answers, in its own time zone (where the pets are).

The week's opening hours and the days it is closed (holidays) are kept on the business
(Business.weekly_hours, Business.closed_days); nothing set means always open. Everything here is
worked out from the business's row alone: no query.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from portal.clock import NonexistentLocalTime, to_utc, wall_clock, zone

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
# How far ahead the next opening is looked for: a year of closed days is the most there can be.
LOOK_AHEAD_DAYS = 400


def parse_time(value: str) -> time:
    return datetime.strptime(value, "%H:%M").time()


@dataclass(frozen=True)
class Hours:
    # Weekday (Monday 0) -> when the business opens and closes that day; a day absent is closed.
    weekly: dict[int, tuple[time, time]]
    # Days closed whatever the week says, with what they are ("Christmas Day").
    closed_days: dict[date, str]
    time_zone: str

    @classmethod
    def of(cls, business) -> "Hours":
        weekly = {
            int(day): (parse_time(opens), parse_time(closes))
            for day, (opens, closes) in (business.weekly_hours or {}).items()
        }
        closed = {date.fromisoformat(entry["day"]): entry.get("label") or ""
                  for entry in business.closed_days or ()}
        return cls(weekly, closed, business.time_zone)

    @property
    def is_set(self) -> bool:
        return bool(self.weekly)

    def opening_of(self, day: date) -> tuple[datetime, datetime] | None:
        """When the business opens and closes on this day of its calendar, or None: closed."""
        if day in self.closed_days or day.weekday() not in self.weekly:
            return None
        opens, closes = self.weekly[day.weekday()]
        return self._moment(day, opens), self._moment(day, closes)

    def is_open(self, at: datetime) -> bool:
        if not self.is_set:
            return True
        span = self.opening_of(at.astimezone(zone(self.time_zone)).date())
        return span is not None and span[0] <= at < span[1]

    def next_opening(self, at: datetime) -> datetime | None:
        """When the business next opens after `at` (None: never, within a year and more)."""
        today = at.astimezone(zone(self.time_zone)).date()
        for offset in range(LOOK_AHEAD_DAYS):
            span = self.opening_of(today + timedelta(days=offset))
            if span is not None and span[0] > at:
                return span[0]
        return None

    def _moment(self, day: date, at: time) -> datetime:
        return _wall_clock_moment(day, at, self.time_zone)


def _wall_clock_moment(day: date, at: time, time_zone: str) -> datetime:
    """A time of day on a day in a zone, as UTC. A time in the hour the clocks skip comes when
    that hour ends."""
    try:
        return to_utc(day, at, time_zone)
    except NonexistentLocalTime:
        later = (datetime.combine(day, at) + timedelta(hours=1)).time()
        return to_utc(day, later, time_zone)


def opening_words(opening: datetime, now: datetime, time_zone: str, short: bool = False) -> str:
    """When the business opens, as said to someone now: "8:00 AM", "tomorrow 8:00 AM",
    "Monday 8:00 AM", or "Mon, Dec 28, 8:00 AM" beyond a week. `short`, for a button: "Mon
    8:00 AM" from tomorrow on."""
    tz = zone(time_zone)
    local, today = opening.astimezone(tz), now.astimezone(tz).date()
    clock = wall_clock(opening, time_zone)
    day = WEEKDAYS[local.weekday()]
    days = (local.date() - today).days
    if days == 0:
        return clock
    if days == 1 and not short:
        return f"tomorrow {clock}"
    if days < 7:
        return f"{day[:3] if short else day} {clock}"
    return f"{day[:3]}, {local.strftime('%b')} {local.day}, {clock}"


def closed_notice(business, now: datetime | None = None) -> str | None:
    """The away notice while the business is closed ("We're closed until Monday 8:00 AM.
    Urgent? Call …"); None while it is open, or keeps no hours."""
    now = now or datetime.now(UTC)
    hours = Hours.of(business)
    if hours.is_open(now):
        return None
    opening = hours.next_opening(now)
    said = (f"We're closed until {opening_words(opening, now, business.time_zone)}."
            if opening else "We're closed.")
    extra = (business.away_message or "").strip()
    return f"{said} {extra}" if extra else said


def opening_label(business, now: datetime | None = None) -> str | None:
    """While the business is closed, when it opens, short ("Mon 8:00 AM"): the composer's
    Send at opening. None while it is open, or keeps no hours."""
    now = now or datetime.now(UTC)
    hours = Hours.of(business)
    if hours.is_open(now):
        return None
    opening = hours.next_opening(now)
    if opening is None:
        return None
    return opening_words(opening, now, business.time_zone, short=True)


def quiet_end(quiet_from: str | None, quiet_until: str | None, time_zone: str,
              at: datetime) -> datetime | None:
    """When a person's quiet hours that `at` falls in end; None when it falls in none (or they
    keep none). Quiet hours may run past midnight (22:00 to 07:00), in the person's zone."""
    if not (quiet_from and quiet_until) or quiet_from == quiet_until:
        return None
    starts, ends = parse_time(quiet_from), parse_time(quiet_until)
    today = at.astimezone(zone(time_zone)).date()
    for day in (today - timedelta(days=1), today):
        start = _wall_clock_moment(day, starts, time_zone)
        end_day = day + timedelta(days=1) if ends <= starts else day
        end = _wall_clock_moment(end_day, ends, time_zone)
        if start <= at < end:
            return end
    return None
