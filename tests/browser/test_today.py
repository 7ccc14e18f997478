"""Seeing the schedule in a browser: a sitter on a phone opens Today, finds an overnight stay and
a walk with its entry instructions, and goes from there to the household's feed; the household
sees its upcoming visits and who is coming. Screenshots at 1280 and 390 px."""

import re
from datetime import time

import pytest
from playwright.sync_api import expect

from portal.models import Client, Role

from ..helpers import update_row
from ..test_today import add_visit

pytestmark = pytest.mark.browser

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
DESKTOP = {"viewport": {"width": 1280, "height": 800}}
SIZES = {"desktop": DESKTOP, "phone": PHONE}


@pytest.fixture
def week(app, make_user, make_client, make_message, household, household_login):
    """Sam's week: a walk tonight at the Riveras' and an overnight stay at the Okafors'
    from tomorrow evening, plus a visit nobody has been assigned yet."""
    sam = make_user(Role.STAFF, name="Sam Sitter")
    update_row(app, Client, household.id, address="12 Elm St, Springfield",
               entry_instructions="Side door; key in the lockbox by the hose.",
               gate_code="4321")
    okafor = make_client(name="The Okafor Household")
    update_row(app, Client, okafor.id, address="7 Birch Rd, Springfield",
               entry_instructions="Front door code on the fridge note.")
    # Until half past midnight: still to come, or under way, whenever today the tests run (a
    # 30-minute walk had ended for the household's upcoming visits after 11:30 PM).
    add_visit(app, household, sam, 0, time(23, 0), minutes=90, title="Evening walk")
    add_visit(app, okafor, sam, 1, time(18, 0), minutes=40 * 60, title="Overnight stay")
    add_visit(app, household, None, 2, time(9, 0), title="Morning walk")
    make_message(household, household_login, "Rex has a sore paw, go easy.")
    return sam


@pytest.mark.parametrize("size", SIZES)
def test_sitter_opens_today_and_goes_to_client_feed(log_in, week, household, screenshot_dir,
                                                    size):
    page = log_in(week, **SIZES[size])
    # A staff login lands on Today.
    expect(page).to_have_url(re.compile(r"/today$"))
    expect(page.get_by_role("heading", name="Today", level=1)).to_be_visible()
    today = page.locator("section.visit-day").first
    expect(today.get_by_text("Evening walk", exact=True)).to_be_visible()
    expect(today.get_by_text("Side door; key in the lockbox by the hose.")).to_be_visible()
    expect(today.get_by_text("4321")).to_be_visible()
    stay = page.locator("li.visit", has_text="Overnight stay")
    expect(stay).to_have_count(3)
    expect(stay.nth(0).get_by_text("Day 1 of 3")).to_be_visible()
    expect(stay.nth(1).get_by_text("Day 2 of 3")).to_be_visible()
    expect(page.get_by_text("Morning walk")).to_have_count(0)  # not Sam's
    page.screenshot(path=screenshot_dir / f"today-{size}.png", full_page=True)

    link = today.get_by_role("link", name=re.compile("^The Rivera Household"))
    expect(link).to_contain_text("1")  # the unread badge
    link.click()
    expect(page).to_have_url(re.compile(rf"/clients/{household.id}/feeds/conversation$"))
    expect(page.get_by_text("Rex has a sore paw, go easy.")).to_be_visible()


@pytest.mark.parametrize("size", SIZES)
def test_sitter_gets_and_resets_calendar_link(log_in, week, screenshot_dir, size):
    page = log_in(week, **SIZES[size], permissions=["clipboard-read", "clipboard-write"])
    page.get_by_role("button", name="Get my calendar link").click()
    expect(page.get_by_text("Your calendar link is ready.")).to_be_visible()
    webcal = page.get_by_label("Calendar app link")
    expect(webcal).to_have_value(re.compile(r"^webcal://.+/calendar/.+\.ics$"))
    first = webcal.input_value()
    page.locator("#calendar").get_by_role("button", name="Copy").first.click()
    expect(page.locator("#calendar-webcal-copied")).to_have_text("Copied.")
    assert page.evaluate("navigator.clipboard.readText()") == first
    page.locator("#calendar").scroll_into_view_if_needed()
    page.screenshot(path=screenshot_dir / f"today-calendar-{size}.png", full_page=True)
    page.get_by_role("button", name="Reset link").click()
    expect(page.get_by_text("the old link no longer works")).to_be_visible()
    expect(page.get_by_label("Calendar app link")).not_to_have_value(first)
    https = page.get_by_label(re.compile("Web link")).input_value()
    assert page.request.get(https).status == 200
    assert page.request.get("http" + first.removeprefix("webcal")).status == 404


@pytest.mark.parametrize("size", SIZES)
def test_household_sees_upcoming_visits_and_who_is_coming(log_in, week, household_login,
                                                          screenshot_dir, size):
    page = log_in(household_login, **SIZES[size])
    upcoming = page.locator("#upcoming-visits")
    expect(upcoming.get_by_role("heading", name="Upcoming visits")).to_be_visible()
    visits = upcoming.locator("li")
    expect(visits).to_have_count(2)
    expect(visits.nth(0)).to_contain_text("Evening walk")
    expect(visits.nth(0)).to_contain_text("Sam")
    expect(visits.nth(1)).to_contain_text("Morning walk")
    expect(visits.nth(1)).to_contain_text("To be confirmed")
    upcoming.scroll_into_view_if_needed()
    page.screenshot(path=screenshot_dir / f"portal-upcoming-visits-{size}.png", full_page=True)


@pytest.mark.parametrize("size", SIZES)
def test_sitter_sees_when_a_later_visits_details_open(app, log_in, week, make_client, business,
                                                     screenshot_dir, size):
    # A one-day access window: a walk in five days at a new household shows its time, title
    # and household, and when its address and entry instructions open.
    update_row(app, type(business), business.id, staff_access_days=1)
    later = make_client(name="The Nguyen Household")
    update_row(app, Client, later.id, address="3 Pine Ct", entry_instructions="Back gate",
               gate_code="2468")
    add_visit(app, later, week, 5, time(10, 0), title="Later walk")
    page = log_in(week, **SIZES[size])
    visit = page.locator("li.visit", has_text="Later walk")
    expect(visit.get_by_text("The Nguyen Household")).to_be_visible()
    expect(visit.get_by_text(re.compile(r"^Details open \w{3}, "))).to_be_visible()
    expect(page.get_by_text("3 Pine Ct")).to_have_count(0)
    expect(page.get_by_text("2468")).to_have_count(0)
    visit.scroll_into_view_if_needed()
    page.screenshot(path=screenshot_dir / f"today-details-later-{size}.png", full_page=True)
