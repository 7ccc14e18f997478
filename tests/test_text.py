"""Times as a viewer reads them, in their own time zone."""

from datetime import UTC, datetime, timedelta

import pytest

from portal.clock import ViewerClock, exact_time

# Thursday 26 November 2026, 3:30 PM in Chicago (CST, UTC-6).
NOW = datetime(2026, 11, 26, 21, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("ago", "relative"),
    [
        (timedelta(seconds=20), "just now"),
        (timedelta(minutes=12), "12 min ago"),
        (timedelta(hours=6), "today 9:30 AM"),
        (timedelta(hours=16), "yesterday 11:30 PM"),
        (timedelta(days=3), "Mon 3:30 PM"),
        (timedelta(days=20), "Nov 6"),
        (timedelta(days=400), "Oct 22, 2025"),
    ],
)
def test_relative_times_read_naturally(ago, relative):
    clock = ViewerClock("America/Chicago", NOW)
    assert clock.relative(NOW - ago) == relative
    assert clock.exact_and_relative(NOW - ago)[1] == relative


def test_exact_time_names_the_day_and_zone():
    clock = ViewerClock("America/Chicago", NOW)
    moment = datetime(2026, 11, 26, 0, 5, tzinfo=UTC)  # 6:05 PM the day before, in Chicago
    assert clock.exact(moment) == "Wed, Nov 25, 2026 at 6:05 PM CST"
    assert clock.exact_and_relative(moment) == (clock.exact(moment), "yesterday 6:05 PM")
    assert exact_time(moment, "Asia/Tokyo") == "Thu, Nov 26, 2026 at 9:05 AM JST"
    # Noon and midnight on a 12-hour clock.
    assert clock.exact(datetime(2026, 7, 1, 17, 0, tzinfo=UTC)) == (
        "Wed, Jul 1, 2026 at 12:00 PM CDT")
    assert clock.relative(datetime(2026, 11, 26, 6, 0, tzinfo=UTC)) == "today 12:00 AM"
