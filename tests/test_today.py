"""Seeing the schedule: a staff member's Today page, the next visit on My Clients cards, the
household's upcoming visits on its portal page, and the calendar link's making and reset."""

import re
from datetime import date, time, timedelta

from sqlalchemy import select

from portal.clock import exact_time, to_utc, zone
from portal.extensions import db
from portal.models import (
    AuditEvent,
    Client,
    Role,
    ScheduledService,
    ServiceStatus,
    User,
    utcnow,
)
from portal.staff import visits

from .helpers import count_queries, insert_visit, update_row

TODAY = "/today"
ZONE = "America/Chicago"  # the business's zone (the default)


def local_today() -> date:
    return utcnow().astimezone(zone(ZONE)).date()


def add_visit(app, client, staff, day_offset: int, at: time, *, minutes: int = 30,
              title: str = "Dog walk", status=ServiceStatus.SCHEDULED) -> ScheduledService:
    """A visit starting at a wall-clock time in the business's zone, day_offset days from the
    business's today; minutes long (a stay lasts days)."""
    starts_at = to_utc(local_today() + timedelta(days=day_offset), at, ZONE)
    return insert_visit(app, client, staff, starts_at=starts_at,
                        ends_at=starts_at + timedelta(minutes=minutes), title=title, status=status)


def day_sections(page: str) -> dict[str, str]:
    """The Today page's day sections by heading id (the ISO date)."""
    return dict(re.findall(r'<section class="card visit-day" aria-labelledby="day-([0-9-]+)">'
                           r'(.*?)</section>', page, re.S))


def iso(offset: int) -> str:
    return (local_today() + timedelta(days=offset)).isoformat()


# --- Today ----------------------------------------------------------------------------------------

def test_today_shows_walk_with_entry_instructions_gate_code_pets_and_map(
    app, logged_in, make_user, household
):
    staff = make_user(Role.STAFF, name="Sam Sitter")
    update_row(app, Client, household.id, address="12 Elm St, Springfield",
               entry_instructions="Key under the blue pot", gate_code="4321")
    add_visit(app, household, staff, 0, time(23, 0), title="Evening walk")
    page = logged_in(staff).get(TODAY).get_data(as_text=True)
    today = day_sections(page)[iso(0)]
    assert "Evening walk" in today and "The Rivera Household" in today
    assert "Rex (Dog)" in today
    assert "Key under the blue pot" in today and "4321" in today
    assert "https://www.google.com/maps/search/?api=1&amp;query=12+Elm+St%2C+Springfield" in today
    # Times by visit_span, in the business's zone.
    assert "11:00 PM\u201311:30 PM CST" in today or "11:00 PM\u201311:30 PM CDT" in today


def test_today_groups_late_visit_by_business_day_not_utc_day(app, logged_in, make_user,
                                                            household):
    # 23:00 in Chicago is the next day in UTC: it is still tonight's visit.
    staff = make_user(Role.STAFF)
    add_visit(app, household, staff, 1, time(23, 0), title="Late walk")
    sections = day_sections(logged_in(staff).get(TODAY).get_data(as_text=True))
    assert "Late walk" in sections[iso(1)]
    assert "Late walk" not in sections.get(iso(2), "")


def test_today_shows_overnight_stay_on_each_day_it_covers(app, logged_in, make_user,
                                                         household):
    staff = make_user(Role.STAFF)
    # From tomorrow 18:00 to the day after next 10:00: three days.
    add_visit(app, household, staff, 1, time(18, 0), minutes=40 * 60, title="Overnight stay")
    sections = day_sections(logged_in(staff).get(TODAY).get_data(as_text=True))
    for offset, part in ((1, "Day 1 of 3"), (2, "Day 2 of 3"), (3, "Day 3 of 3")):
        assert "Overnight stay" in sections[iso(offset)] and part in sections[iso(offset)]
    assert iso(4) not in sections  # no visits: no section


def test_today_shows_stay_that_began_before_today(app, logged_in, make_user, household):
    staff = make_user(Role.STAFF)
    add_visit(app, household, staff, -2, time(18, 0), minutes=3 * 24 * 60, title="House sit")
    sections = day_sections(logged_in(staff).get(TODAY).get_data(as_text=True))
    assert "House sit" in sections[iso(0)] and "Day 3 of 4" in sections[iso(0)]


def test_today_leaves_out_cancelled_other_staff_archived_and_far_visits(
    app, logged_in, make_user, make_client, household
):
    staff, colleague = make_user(Role.STAFF), make_user(Role.STAFF)
    archived = make_client(name="Archived Household")
    add_visit(app, household, staff, 1, time(9, 0), title="Kept walk")
    add_visit(app, household, staff, 1, time(10, 0), title="Cancelled walk",
              status=ServiceStatus.CANCELLED)
    add_visit(app, household, colleague, 1, time(11, 0), title="Colleague walk")
    add_visit(app, household, None, 1, time(12, 0), title="Unassigned walk")
    add_visit(app, archived, staff, 1, time(13, 0), title="Archived walk")
    add_visit(app, household, staff, 8, time(9, 0), title="Far walk")
    update_row(app, Client, archived.id, archived_at=utcnow())
    page = logged_in(staff).get(TODAY).get_data(as_text=True)
    assert "Kept walk" in page
    for absent in ("Cancelled walk", "Colleague walk", "Unassigned walk", "Archived walk",
                   "Archived Household", "Far walk"):
        assert absent not in page, absent


def test_today_links_client_feed_with_its_unread_count(app, logged_in, make_user, make_message,
                                                      household, household_login):
    staff = make_user(Role.STAFF)
    add_visit(app, household, staff, 0, time(23, 0))
    make_message(household, household_login, "Please walk Rex twice")
    make_message(household, household_login, "And feed him")
    browser = logged_in(staff)
    page = browser.get(TODAY).get_data(as_text=True)
    link = re.search(rf'<a href="/clients/{household.id}/feeds/conversation">(.*?)</a>', page,
                     re.S)
    assert link and "The Rivera Household" in link.group(1)
    assert re.search(r'unread-badge"><span class="visually-hidden">, </span>2<', link.group(1))
    assert "Please walk Rex" not in page  # no message text on the list
    # Read: no badge any more.
    browser.get(f"/clients/{household.id}/feeds/conversation")
    assert "unread-badge" not in browser.get(TODAY).get_data(as_text=True).split("<main")[1]


def test_today_shows_no_feed_link_beyond_the_access_window(app, logged_in, make_user,
                                                          household, business):
    # A visit six days ahead with a two-day access window: listed, but the feed is not open
    # yet, so neither link nor count.
    update_row(app, type(business), business.id, staff_access_days=2)
    staff = make_user(Role.STAFF)
    add_visit(app, household, staff, 6, time(9, 0), title="Later walk")
    page = logged_in(staff).get(TODAY).get_data(as_text=True)
    assert "Later walk" in page and "The Rivera Household" in page
    assert f"/clients/{household.id}/feeds/conversation" not in page


def test_today_hides_household_details_of_a_visit_beyond_the_access_window(
    app, logged_in, make_user, household, other_household, business
):
    # A one-day window and a visit in five days: the client's page is closed to the staff
    # member, so Today shows the visit's time, title and client, never its address, entry
    # instructions, gate code or pets, and says when they open.
    update_row(app, type(business), business.id, staff_access_days=1)
    staff = make_user(Role.STAFF)
    update_row(app, Client, household.id, address="12 Elm St", entry_instructions="Key under pot",
               gate_code="4321")
    update_row(app, Client, other_household.id, address="7 Oak Ave",
               entry_instructions="Side door", gate_code="8765")
    later = add_visit(app, household, staff, 5, time(9, 0), title="Later walk")
    add_visit(app, other_household, staff, 0, time(23, 0), title="Tonight's walk")
    browser = logged_in(staff)
    assert browser.get(f"/clients/{household.id}").status_code == 404
    page = browser.get(TODAY).get_data(as_text=True)
    closed = day_sections(page)[iso(5)]
    assert "Later walk" in closed and "The Rivera Household" in closed
    for detail in ("4321", "Key under pot", "12 Elm St", f"/clients/{household.id}/"):
        assert detail not in page
    assert "Rex (Dog)" not in closed and "maps/search" not in closed
    opens = exact_time(later.starts_at - timedelta(days=1), ZONE)
    assert f"Details open {opens}" in closed
    # Tonight's visit is inside the window: its client's page and its details are open.
    assert browser.get(f"/clients/{other_household.id}").status_code == 200
    tonight = day_sections(page)[iso(0)]
    assert "8765" in tonight and "Side door" in tonight and "7 Oak Ave" in tonight
    assert "Rex (Dog)" in tonight and "Details open" not in tonight


def test_today_opens_household_details_exactly_at_the_window_edge(app, make_user, household,
                                                                  business):
    update_row(app, type(business), business.id, staff_access_days=1)
    staff = make_user(Role.STAFF)
    update_row(app, Client, household.id, gate_code="4321")
    visit = add_visit(app, household, staff, 3, time(9, 0))
    edge = visit.starts_at - timedelta(days=1)
    with app.test_request_context():
        viewer = db.session.get(User, staff.id)

        def shown(now):
            [found] = [day_visit.visit for day in visits.today(viewer, now)
                       for day_visit in day.visits]
            return found

        before = shown(edge - timedelta(seconds=1))
        assert not before.details and before.gate_code is None
        assert before.details_open == exact_time(edge, ZONE)
        at_edge = shown(edge)
        assert at_edge.details and at_edge.gate_code == "4321" and at_edge.details_open is None


def test_today_keeps_constant_queries_with_visits_beyond_the_window(
    app, logged_in, make_user, make_client, business
):
    update_row(app, type(business), business.id, staff_access_days=1)
    staff = make_user(Role.STAFF)
    browser = logged_in(staff)
    add_visit(app, make_client(), staff, 0, time(23, 0))
    few = count_queries(app, browser, TODAY)
    for number in range(5):
        add_visit(app, make_client(name=f"Later Household {number}"), staff, 3 + number % 4,
                  time(10, 0))
    assert count_queries(app, browser, TODAY) == few
    assert browser.get(TODAY).get_data(as_text=True).count("Details open") == 5


def test_today_shows_viewer_time_when_their_zone_differs(app, logged_in, make_user, household):
    staff = make_user(Role.STAFF, time_zone="America/New_York")
    add_visit(app, household, staff, 1, time(9, 0))
    page = logged_in(staff).get(TODAY).get_data(as_text=True)
    assert re.search(r"9:00 AM\u20139:30 AM C[SD]T \(10:00 AM\u201310:30 AM E[SD]T your time\)",
                     page)


def test_today_says_when_nothing_is_scheduled(logged_in, unassigned_staff):
    page = logged_in(unassigned_staff).get(TODAY).get_data(as_text=True)
    assert "No visits today." in page and "Nothing scheduled in the next week." in page


def test_today_is_first_in_staff_navigation(logged_in, assigned_staff):
    page = logged_in(assigned_staff).get(TODAY).get_data(as_text=True)
    nav = re.search(r'<nav class="mainnav".*?</nav>', page, re.S).group(0)
    links = re.findall(r'<a href="([^"]+)"', nav)
    assert links[0] == TODAY
    assert 'href="/today" aria-current="page"' in nav


def test_today_takes_constant_queries_however_many_visits(app, logged_in, make_user,
                                                         make_client, make_message):
    staff = make_user(Role.STAFF)
    browser = logged_in(staff)
    first = make_client(name="First Household")
    add_visit(app, first, staff, 0, time(23, 0))
    few = count_queries(app, browser, TODAY)
    for number in range(8):
        other = make_client(name=f"More Household {number}")
        add_visit(app, other, staff, number % 7, time(20, 0), minutes=24 * 60)
        make_message(other, make_user(Role.CLIENT, client=other), "Hello")
    many = count_queries(app, browser, TODAY)
    assert many == few
    assert "More Household 7" in browser.get(TODAY).get_data(as_text=True)


# --- My Clients -----------------------------------------------------------------------------------

def test_my_clients_card_shows_next_visit_with_that_client(app, logged_in, make_user,
                                                          make_client, household):
    staff, colleague = make_user(Role.STAFF), make_user(Role.STAFF)
    add_visit(app, household, staff, 3, time(9, 0))
    add_visit(app, household, staff, 2, time(8, 0), status=ServiceStatus.CANCELLED)
    add_visit(app, household, colleague, 1, time(7, 0))
    add_visit(app, household, staff, 5, time(9, 0))
    page = logged_in(staff).get("/my-clients").get_data(as_text=True)
    card = re.search(r'<li class="card">(.*?)</li>', page, re.S).group(1)
    day = local_today() + timedelta(days=3)
    assert f"Next visit: {day:%a}, {day:%b} {day.day}, 9:00 AM" in card


def test_my_clients_takes_constant_queries_with_next_visits(app, logged_in, make_user,
                                                           make_client):
    staff = make_user(Role.STAFF)
    browser = logged_in(staff)
    add_visit(app, make_client(), staff, 1, time(9, 0))
    few = count_queries(app, browser, "/my-clients")
    for number in range(6):
        add_visit(app, make_client(), staff, number, time(21, 0))
    assert count_queries(app, browser, "/my-clients") == few


# --- the household's portal -----------------------------------------------------------------------

def test_client_portal_shows_upcoming_visits_and_who_is_coming(app, logged_in, make_user,
                                                              household, household_login):
    sam = make_user(Role.STAFF, name="Sam Sitter")
    add_visit(app, household, sam, 1, time(9, 0), title="Morning walk")
    add_visit(app, household, None, 2, time(9, 0), title="Unassigned walk")
    add_visit(app, household, sam, 3, time(9, 0), title="Cancelled walk",
              status=ServiceStatus.CANCELLED)
    add_visit(app, household, sam, 20, time(9, 0), title="Far walk")
    page = logged_in(household_login).get(f"/clients/{household.id}").get_data(as_text=True)
    section = re.search(r'<section class="card" id="upcoming-visits".*?</section>', page,
                        re.S).group(0)
    assert "Upcoming visits" in section
    visits = re.findall(r"<li>(.*?)</li>", section, re.S)
    assert len(visits) == 2
    assert "Morning walk" in visits[0] and "Sam" in visits[0] and "Sitter" not in visits[0]
    assert "Unassigned walk" in visits[1] and "To be confirmed" in visits[1]
    tomorrow = local_today() + timedelta(days=1)
    assert f"{tomorrow:%a}, {tomorrow:%b} {tomorrow.day}, 9:00 AM" in visits[0]
    assert "Cancelled walk" not in page and "Far walk" not in page


def test_client_portal_hides_upcoming_visits_while_archived(app, logged_in, make_user,
                                                            household, household_login):
    add_visit(app, household, make_user(Role.STAFF), 1, time(9, 0), title="Morning walk")
    update_row(app, Client, household.id, archived_at=utcnow())
    page = logged_in(household_login).get(f"/clients/{household.id}").get_data(as_text=True)
    assert "Morning walk" not in page
    update_row(app, Client, household.id, archived_at=None)  # restored: the visit is back
    page = logged_in(household_login).get(f"/clients/{household.id}").get_data(as_text=True)
    assert "Morning walk" in page


def test_client_portal_shows_other_households_no_visits(app, logged_in, make_user, household,
                                                       other_household, other_household_login):
    add_visit(app, household, make_user(Role.STAFF), 1, time(9, 0), title="Rivera walk")
    page = logged_in(other_household_login).get(
        f"/clients/{other_household.id}").get_data(as_text=True)
    assert "Rivera walk" not in page and "No visits in the next two weeks." in page


# --- the calendar link ----------------------------------------------------------------------------

def _token(app, user) -> str | None:
    with app.app_context():
        return db.session.get(User, user.id).calendar_token


def test_calendar_link_made_then_reset_ends_old_link_and_is_audited(app, logged_in,
                                                                   make_user, client):
    staff = make_user(Role.STAFF)
    browser = logged_in(staff)
    page = browser.get(TODAY).get_data(as_text=True)
    assert "Get my calendar link" in page and "webcal://" not in page
    response = browser.submit("/today/calendar-link")
    assert (response.status_code, response.location) == (302, "/today#calendar")
    first = _token(app, staff)
    assert first and len(first) >= 40
    page = browser.get(TODAY).get_data(as_text=True)
    assert f"webcal://localhost/calendar/{first}.ics" in page
    assert f"http://localhost/calendar/{first}.ics" in page
    assert client.get(f"/calendar/{first}.ics").status_code == 200

    browser.submit("/today/calendar-link")
    second = _token(app, staff)
    assert second != first
    assert client.get(f"/calendar/{first}.ics").status_code == 404
    assert client.get(f"/calendar/{second}.ics").status_code == 200
    with app.app_context():
        events = db.session.execute(
            select(AuditEvent.action, AuditEvent.actor_id, AuditEvent.details)
            .where(AuditEvent.action.like("calendar_link.%")).order_by(AuditEvent.id)
        ).all()
    assert [(e.action, e.actor_id) for e in events] == [
        ("calendar_link.created", staff.id), ("calendar_link.reset", staff.id)]
    assert all(first not in str(e.details) and second not in str(e.details) for e in events)


def test_calendar_link_events_read_as_sentences_in_audit_log(app, logged_in, make_user, admin):
    staff = make_user(Role.STAFF, name="Sam Sitter")
    browser = logged_in(staff)
    browser.submit("/today/calendar-link")
    browser.submit("/today/calendar-link")
    page = logged_in(admin).get("/settings/audit-log").get_data(as_text=True)
    assert "made a link to subscribe to their schedule in a calendar" in page
    assert "reset their calendar link: the old link no longer works" in page


def test_calendar_link_refused_to_non_staff(app, logged_in, admin, household_login):
    for user in (admin, household_login):
        assert logged_in(user).submit("/today/calendar-link").status_code == 404
        assert _token(app, user) is None



# --- the Staff page -------------------------------------------------------------------------------

def test_staff_page_shows_each_members_next_visit(app, logged_in, admin, make_user,
                                                 make_client, household):
    sam = make_user(Role.STAFF, name="Sam Sitter")
    make_user(Role.STAFF, name="Pat Idle")  # no visits: an empty cell
    archived = make_client(name="Archived Household")
    add_visit(app, household, sam, 4, time(9, 0))
    add_visit(app, household, sam, 2, time(8, 0), status=ServiceStatus.CANCELLED)
    add_visit(app, archived, sam, 1, time(7, 0))
    update_row(app, Client, archived.id, archived_at=utcnow())
    page = logged_in(admin).get("/staff").get_data(as_text=True)
    rows = dict(re.findall(r"<tr[^>]*>\s*<td[^>]*>([^<]+)</td>(.*?)</tr>", page, re.S))
    day = local_today() + timedelta(days=4)
    assert f"{day:%a}, {day:%b} {day.day}, 9:00 AM" in rows["Sam Sitter"]
    # No time at all in the empty cell (the row's forms carry random tokens: look for a clock).
    assert not re.search(r"\d:\d\d [AP]M", rows["Pat Idle"])


def test_staff_page_takes_constant_queries_with_next_visits(app, logged_in, admin, make_user,
                                                           household):
    browser = logged_in(admin)
    add_visit(app, household, make_user(Role.STAFF), 1, time(9, 0))
    few = count_queries(app, browser, "/staff")
    for number in range(5):
        add_visit(app, household, make_user(Role.STAFF), number, time(21, 0))
    assert count_queries(app, browser, "/staff") == few
