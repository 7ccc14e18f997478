from datetime import UTC, date, datetime, time

import pytest

from portal import clock

D = clock.EN_DASH
START = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)


def test_visit_span_in_the_business_zone_alone_when_the_viewer_reads_the_same_clock():
    ends = datetime(2026, 3, 4, 15, 30, tzinfo=UTC)
    assert clock.visit_span(START, ends, "America/Chicago", "America/Chicago") == (
        f"Wed, Mar 4, 9:00 AM{D}9:30 AM CST")


def test_visit_span_adds_the_viewers_own_time_when_their_zone_differs():
    ends = datetime(2026, 3, 4, 15, 30, tzinfo=UTC)
    assert clock.visit_span(START, ends, "America/Chicago", "America/New_York") == (
        f"Wed, Mar 4, 9:00 AM{D}9:30 AM CST (10:00 AM{D}10:30 AM EST your time)")


def test_visit_span_of_a_stay_names_both_days_and_the_viewers_date_when_it_differs():
    ends = datetime(2026, 3, 7, 16, 0, tzinfo=UTC)
    assert clock.visit_span(START, ends, "America/Chicago", "America/Chicago") == (
        f"Wed, Mar 4, 9:00 AM CST {D} Sat, Mar 7, 10:00 AM CST")
    late = datetime(2026, 3, 5, 5, 0, tzinfo=UTC)
    assert clock.visit_span(late, late.replace(minute=30), "America/Chicago",
                            "Europe/Berlin") == (
        f"Wed, Mar 4, 11:00 PM{D}11:30 PM CST (Thu, Mar 5, 6:00 AM{D}6:30 AM CET your time)")


def test_to_utc_refuses_the_hour_skipped_when_clocks_spring_forward():
    with pytest.raises(clock.NonexistentLocalTime, match="does not exist on Mar 8, 2026"):
        clock.to_utc(date(2026, 3, 8), time(2, 30), "America/Chicago")
    assert clock.to_utc(date(2026, 3, 8), time(3, 30), "America/Chicago") == (
        datetime(2026, 3, 8, 8, 30, tzinfo=UTC))


def test_to_utc_takes_the_first_of_an_hour_that_happens_twice():
    assert clock.to_utc(date(2026, 11, 1), time(1, 30), "America/Chicago") == (
        datetime(2026, 11, 1, 6, 30, tzinfo=UTC))


def test_day_and_time_names_the_year_only_when_it_is_not_this_one():
    now = datetime(2026, 12, 7, 12, tzinfo=UTC)
    this_year = datetime(2026, 12, 14, 14, tzinfo=UTC)
    next_year = datetime(2027, 1, 4, 14, tzinfo=UTC)
    assert clock.day_and_time(this_year, "America/Chicago", now) == "Mon, Dec 14, 8:00 AM CST"
    assert clock.day_and_time(next_year, "America/Chicago", now) == \
        "Mon, Jan 4, 2027, 8:00 AM CST"


def test_zone_label_names_the_place():
    assert clock.zone_label("America/Chicago") == "Chicago time"
    assert clock.zone_label("America/Argentina/Buenos_Aires") == "Buenos Aires time"
    assert clock.zone_label("UTC") == "UTC"
