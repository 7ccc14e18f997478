"""Days for schedule tests, counted from today in the business's zone (America/Chicago): the
schedule refuses days that have passed, so a test never names a fixed date."""

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from portal.models import utcnow

CHICAGO = ZoneInfo("America/Chicago")


def local_today() -> date:
    return utcnow().astimezone(CHICAGO).date()


def next_weekday(weekday: int, at_least: int = 1) -> date:
    """The first day falling on `weekday` (0 is Monday) at least `at_least` days from today."""
    day = local_today() + timedelta(days=at_least)
    return day + timedelta(days=(weekday - day.weekday()) % 7)


def next_monday(at_least: int = 1) -> date:
    return next_weekday(0, at_least)


def is_spring_forward(day: date, tz: ZoneInfo = CHICAGO) -> bool:
    """The clocks skip an hour that night: the day ends further from UTC than it began."""
    return (datetime.combine(day, time(23), tz).utcoffset()
            > datetime.combine(day, time(0), tz).utcoffset())


def next_spring_forward(at_least: int = 15) -> date:
    """The next Sunday the clocks spring forward in Chicago, at least `at_least` days away (so
    that a series may start two weeks before it)."""
    day = local_today() + timedelta(days=at_least)
    while not is_spring_forward(day):
        day += timedelta(days=1)
    return day


def next_february_29() -> date:
    year = local_today().year
    while True:
        year += 1
        if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0):
            return date(year, 2, 29)


def next_january_31() -> date:
    return date(local_today().year + 1, 1, 31)


def is_winter(day: date, tz: ZoneInfo = CHICAGO) -> bool:
    return not datetime.combine(day, time(12), tz).dst()


def next_winter_weekday(weekday: int, at_least: int = 1) -> date:
    """A day on `weekday` in standard time (the test reads CST, not CDT)."""
    day = next_weekday(weekday, at_least)
    while not is_winter(day):
        day += timedelta(days=7)
    return day


def short(day: date) -> str:
    """As the pages write a day: "Wed, Jan 6"."""
    return f"{day:%a, %b} {day.day}"
