"""Times as people read them: in their own time zone, exact or relative to now."""

from datetime import UTC, date, datetime, time
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


@lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


class NonexistentLocalTime(ValueError):
    """A wall-clock time the zone skips: the hour lost when clocks spring forward."""


def to_utc(day: date, at: time, time_zone: str) -> datetime:
    """A wall-clock time in a zone, as UTC. Refuses a time that does not exist there; of a time
    that happens twice (clocks falling back) it takes the first."""
    tz = zone(time_zone)
    local = datetime.combine(day, at, tz)
    moment = local.astimezone(UTC)
    if moment.astimezone(tz).replace(tzinfo=None) != local.replace(tzinfo=None):
        raise NonexistentLocalTime(
            f"{at.strftime('%-I:%M %p')} does not exist on {day.strftime('%b %-d, %Y')} in "
            f"{time_zone}: the clocks skip that hour. Choose a time outside it."
        )
    return moment


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
           "Dec")


class ViewerClock:
    """Times as one viewer reads them. The zone and today's date there are worked out once,
    then each time costs one conversion: pages show hundreds (strftime is slower, and the
    same in English)."""

    def __init__(self, time_zone: str, now: datetime):
        self.zone = zone(time_zone)
        self.now = now
        self.today = now.astimezone(self.zone).date()

    def exact(self, moment: datetime) -> str:
        return _exact(moment.astimezone(self.zone))

    def relative(self, moment: datetime) -> str:
        local = moment.astimezone(self.zone)
        return self._relative(moment, local, _clock(local))

    def exact_and_relative(self, moment: datetime) -> tuple[str, str]:
        local = moment.astimezone(self.zone)
        clock = _clock(local)
        return _exact(local, clock), self._relative(moment, local, clock)

    def short(self, moment: datetime) -> str:
        """"9:14 AM" today, "Tue 9:14 AM" this week, "Mar 4" before: when something was seen."""
        local = moment.astimezone(self.zone)
        days = (self.today - local.date()).days
        if days == 0:
            return _clock(local)
        if days < 7:
            return f"{_DAYS[local.weekday()]} {_clock(local)}"
        return f"{_MONTHS[local.month]} {local.day}"

    def _relative(self, moment: datetime, local: datetime, clock: str) -> str:
        seconds = (self.now - moment).total_seconds()
        if seconds < 60:
            return "just now"
        if seconds < 3600:
            return f"{int(seconds // 60)} min ago"
        days = (self.today - local.date()).days
        if days == 0:
            return f"today {clock}"
        if days == 1:
            return f"yesterday {clock}"
        if days < 7:
            return f"{_DAYS[local.weekday()]} {clock}"
        if local.year == self.today.year:
            return f"{_MONTHS[local.month]} {local.day}"
        return f"{_MONTHS[local.month]} {local.day}, {local.year}"


def _clock(local: datetime) -> str:
    return f"{local.hour % 12 or 12}:{local.minute:02} {'AM' if local.hour < 12 else 'PM'}"


def wall_clock(moment: datetime, time_zone: str) -> str:
    """"8:00 AM": the time of day in the given zone."""
    return _clock(moment.astimezone(zone(time_zone)))


def _exact(local: datetime, clock: str | None = None) -> str:
    return (f"{_DAYS[local.weekday()]}, {_MONTHS[local.month]} {local.day}, {local.year} "
            f"at {clock or _clock(local)} {local.tzname()}")


def exact_time(moment: datetime, time_zone: str) -> str:
    """"Tue, Mar 4, 2025 at 5:06 PM CST" in the given zone."""
    return _exact(moment.astimezone(zone(time_zone)))


def day_and_time(moment: datetime, time_zone: str, now: datetime | None = None) -> str:
    """"Mon, Dec 14, 8:00 AM CST" in the given zone: when something is to happen; with the
    year when that is not this year there ("Mon, Jan 4, 2027, 8:00 AM CST")."""
    tz = zone(time_zone)
    local = moment.astimezone(tz)
    this_year = (now or datetime.now(UTC)).astimezone(tz).year
    year = f", {local.year}" if local.year != this_year else ""
    return (f"{_DAYS[local.weekday()]}, {_MONTHS[local.month]} {local.day}{year}, "
            f"{_clock(local)} {local.tzname()}")


def zone_label(time_zone: str) -> str:
    """A zone as people name it: "Chicago time" for America/Chicago, "UTC" for UTC."""
    place = time_zone.rsplit("/", 1)[-1].replace("_", " ")
    return place if place == "UTC" else f"{place} time"


def elapsed(moment: datetime, now: datetime) -> str:
    """How long since, as a length of time: "12 min", "5 h", "3 days"."""
    minutes = int((now - moment).total_seconds() // 60)
    if minutes < 1:
        return "under a minute"
    if minutes < 60:
        return f"{minutes} min"
    hours = minutes // 60
    if hours < 48:
        return f"{hours} h"
    return f"{hours // 24} days"


EN_DASH = "\u2013"  # between the two ends of a time span


def _span_in(starts_at: datetime, ends_at: datetime, tz: ZoneInfo, with_date: bool) -> str:
    start, end = starts_at.astimezone(tz), ends_at.astimezone(tz)
    day = f"{_DAYS[start.weekday()]}, {_MONTHS[start.month]} {start.day}, " if with_date else ""
    if start.date() == end.date():
        return f"{day}{_clock(start)}{EN_DASH}{_clock(end)} {end.tzname()}"
    end_day = f"{_DAYS[end.weekday()]}, {_MONTHS[end.month]} {end.day}, "
    return (f"{day}{_clock(start)} {start.tzname()} {EN_DASH} "
            f"{end_day}{_clock(end)} {end.tzname()}")


def visit_span(starts_at: datetime, ends_at: datetime, business_zone: str,
               viewer_zone: str) -> str:
    """When a visit happens, in the business's zone (where the pets are): "Tue, Mar 4,
    9:00 AM to 9:30 AM CST" (with an en dash), or across days for a stay. A viewer whose own
    zone reads the clock differently then also sees it their way, "(10:00 AM to 10:30 AM EST
    your time)"."""
    business, viewer = zone(business_zone), zone(viewer_zone)
    span = _span_in(starts_at, ends_at, business, with_date=True)
    if starts_at.astimezone(business).utcoffset() == starts_at.astimezone(viewer).utcoffset():
        return span
    same_day = starts_at.astimezone(business).date() == starts_at.astimezone(viewer).date()
    return f"{span} ({_span_in(starts_at, ends_at, viewer, with_date=not same_day)} your time)"


def viewer_visit_span(starts_at: datetime, ends_at: datetime) -> str:
    """visit_span for the current user, for templates."""
    from flask_login import current_user

    return visit_span(starts_at, ends_at, current_user.business.time_zone,
                      current_user.time_zone)


def viewer_datetime(moment: datetime) -> str:
    """A date and time in the current user's zone, for templates."""
    from flask_login import current_user

    return moment.astimezone(zone(current_user.time_zone)).strftime("%a, %b %-d, %-I:%M %p")


def business_day_and_time(moment: datetime) -> str:
    """day_and_time in the current user's business's zone, for templates: when the business
    set something to happen."""
    from flask_login import current_user

    return day_and_time(moment, current_user.business.time_zone)


def viewer_time(moment: datetime) -> str:
    from flask_login import current_user

    return moment.astimezone(zone(current_user.time_zone)).strftime("%-I:%M %p")
