"""The admin team's schedule in a real browser: a recurring walk and an overnight stay scheduled
from the client's page, the overlap warning confirmed, one visit and then "this and following"
cancelled, and the week's schedule; the business's zone set on Portal Settings and an admin in
another zone seeing both times, a series edited from one visit on and reassigned whole; at
desktop and phone widths."""

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, expect

from portal.models import Role, utcnow

from .helpers import WAIT, follow_nav

pytestmark = pytest.mark.browser

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
DESKTOP = {"viewport": {"width": 1280, "height": 900}}
SIZES = {"desktop": DESKTOP, "phone": PHONE}


def next_monday():
    today = utcnow().astimezone(ZoneInfo("America/Chicago")).date()
    return today + timedelta(days=7 - today.weekday())


def no_sideways_scroll(page: Page) -> None:
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px"


def open_schedule_form(page: Page) -> None:
    summary = page.locator("#services summary", has_text="Schedule a service")
    summary.click()
    expect(page.locator("#service-title")).to_be_visible()


def walk_items(page: Page):
    return page.locator("li.service", has_text="Dog walk")


@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES)
def test_admin_schedules_confirms_overlap_cancels_and_sees_the_week(
        log_in, admin, household, unassigned_staff, screenshot_dir, size):
    name = "desktop" if size is DESKTOP else "phone"
    monday = next_monday()
    page = log_in(admin, **size)
    page.goto(f"/clients/{household.id}")

    # A weekly walk on Mondays and Wednesdays, six visits.
    open_schedule_form(page)
    expect(page.locator("[data-repeat-fields]")).to_be_hidden()  # shown only when repeating
    page.locator("#service-title").fill("Dog walk")
    page.locator("#service-staff").select_option(label=unassigned_staff.name)
    page.locator("#service-date").fill(monday.isoformat())
    page.locator("#service-starts").fill("09:00")
    page.locator("#service-ends").fill("09:30")
    page.locator("#service-repeat").select_option("weekly")
    expect(page.locator("[data-repeat-fields]")).to_be_visible()
    page.locator("input[name=weekdays][value='0']").check()
    page.locator("input[name=weekdays][value='2']").check()
    page.locator("#service-count").fill("6")
    page.screenshot(path=screenshot_dir / f"schedule-form-{name}.png", full_page=True)
    page.locator("#services form").filter(has=page.locator("#service-title")).get_by_role(
        "button", name="Schedule", exact=True).click()
    expect(page.get_by_text("6 visits of Dog walk with Uma Unassigned scheduled.")).to_be_visible()
    expect(walk_items(page)).to_have_count(6)
    expect(walk_items(page).first).to_contain_text("Repeats weekly on Mon, Wed, 6 visits")

    # An overnight stay from Tuesday evening to Wednesday morning: it overlaps Wednesday's walk.
    open_schedule_form(page)
    page.locator("#service-title").fill("Overnight stay")
    page.locator("#service-staff").select_option(label=unassigned_staff.name)
    page.locator("#service-date").fill((monday + timedelta(days=1)).isoformat())
    page.locator("#service-starts").fill("18:00")
    page.locator("#service-end-date").fill((monday + timedelta(days=2)).isoformat())
    page.locator("#service-ends").fill("09:15")
    page.locator("#services form").filter(has=page.locator("#service-title")).get_by_role(
        "button", name="Schedule", exact=True).click()
    warning = page.locator("#overlap-warning")
    expect(warning).to_contain_text("already busy")
    expect(warning).to_contain_text("Dog walk: Wed")
    expect(page.locator("#service-title")).to_have_value("Overnight stay")
    page.screenshot(path=screenshot_dir / f"schedule-overlap-{name}.png", full_page=True)
    no_sideways_scroll(page)
    warning.get_by_role("button", name="Schedule anyway").click()
    expect(page.get_by_text("Overnight stay with Uma Unassigned scheduled.")).to_be_visible()
    expect(page.locator("li.service", has_text="Overnight stay")).to_have_count(1)

    # Cancel the second walk alone, then the fourth and those after it.
    second = walk_items(page).nth(1)
    second.locator("summary", has_text="Cancel").click()
    second.get_by_label("Cancel which visits").select_option("one")
    second.get_by_role("button", name="Cancel visits").click()
    expect(page.get_by_text("The visit was cancelled.")).to_be_visible()
    expect(walk_items(page).nth(1)).to_contain_text("Cancelled")
    fourth = walk_items(page).nth(3)
    fourth.locator("summary", has_text="Cancel").click()
    fourth.get_by_label("Cancel which visits").select_option("following")
    fourth.get_by_role("button", name="Cancel visits").click()
    expect(page.get_by_text("3 visits were cancelled.")).to_be_visible()
    expect(walk_items(page).filter(has_text="Cancelled")).to_have_count(4)
    page.locator("#services").scroll_into_view_if_needed()
    page.screenshot(path=screenshot_dir / f"schedule-profile-{name}.png", full_page=True)
    no_sideways_scroll(page)

    # The week's schedule: from the navigation, then next week, where the visits are.
    follow_nav(page, "Schedule")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Week of")
    page.get_by_role("link", name="Next week").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(
        f"Week of {monday.strftime('%b')} {monday.day}")
    if size is DESKTOP:
        row = page.locator("table.week-table tr", has_text=unassigned_staff.name)
        expect(row.locator("td").nth(0)).to_contain_text("9:00 AM")  # Monday's walk
        expect(row.locator("td").nth(1)).to_contain_text("from 6:00 PM")  # the stay begins
        expect(row.locator("td").nth(2)).to_contain_text("until 9:15 AM")  # and ends
        expect(page.locator("table.week-table tr.unassigned")).to_be_visible()
        expect(page.locator(".week-narrow")).to_be_hidden()
    else:
        expect(page.locator("table.week-table")).to_be_hidden()
        tuesday = page.locator(".week-day").nth(1)
        expect(tuesday).to_contain_text("Overnight stay")
        expect(tuesday).to_contain_text("from 6:00 PM")
        expect(page.locator(".week-day").nth(2)).to_contain_text("until 9:15 AM")
    page.screenshot(path=screenshot_dir / f"schedule-week-{name}.png", full_page=True)
    no_sideways_scroll(page)

    # Cancelled visits on request, struck through.
    page.get_by_role("link", name="Show cancelled visits").click()
    expect(page.locator(".week-visit.cancelled").first).to_be_attached(timeout=WAIT)


def zone_abbreviation(day, time_zone: str) -> str:
    return datetime.combine(day, time(12), ZoneInfo(time_zone)).tzname()


@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES)
def test_business_zone_beside_the_viewers_own_then_edit_and_reassign_a_series(
        log_in, admin, household, unassigned_staff, make_user, screenshot_dir, size):
    name = "desktop" if size is DESKTOP else "phone"
    walker = make_user(Role.STAFF, name="Wendy Walker")
    monday = next_monday()
    pacific, eastern = (zone_abbreviation(monday, "America/Los_Angeles"),
                        zone_abbreviation(monday, "America/New_York"))
    page = log_in(admin, **size)

    # The admin's own zone, on their Notifications page.
    page.goto("/notifications")
    page.get_by_label("Your time zone").select_option("America/New_York")
    page.get_by_role("button", name="Save time zone").click()
    expect(page.get_by_text("Your time zone is now America/New_York.")).to_be_visible()
    expect(page.get_by_label("Your time zone")).to_have_value("America/New_York")
    page.locator("#time-zone").scroll_into_view_if_needed()
    page.screenshot(path=screenshot_dir / f"schedule-own-zone-{name}.png", full_page=True)
    no_sideways_scroll(page)

    # The business's zone, on Portal Settings.
    page.goto("/settings/client/portal")
    page.get_by_label("Business time zone").select_option("America/Los_Angeles")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_label("Business time zone")).to_have_value("America/Los_Angeles")

    # A weekly walk, entered in the business's zone, shown with the admin's time beside it.
    page.goto(f"/clients/{household.id}")
    open_schedule_form(page)
    expect(page.locator("#services")).to_contain_text(
        "Times are in the business's time zone, America/Los_Angeles.")
    page.locator("#service-title").fill("Dog walk")
    page.locator("#service-staff").select_option(label=unassigned_staff.name)
    page.locator("#service-date").fill(monday.isoformat())
    page.locator("#service-starts").fill("09:00")
    page.locator("#service-ends").fill("09:30")
    page.locator("#service-repeat").select_option("weekly")
    page.locator("#service-count").fill("3")
    page.locator("#services form").filter(has=page.locator("#service-title")).get_by_role(
        "button", name="Schedule", exact=True).click()
    expect(walk_items(page)).to_have_count(3)
    expect(walk_items(page).first).to_contain_text(
        f"9:00 AM\u20139:30 AM {pacific} (12:00 PM\u201312:30 PM {eastern} your time)")

    # Edit the second visit and those after it: 10:00 to 10:45.
    walk_items(page).nth(1).get_by_role("link", name="Edit Dog walk").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Edit Dog walk")
    expect(page.locator("#starts")).to_have_value("09:00")  # in the business's zone
    page.locator("#starts").fill("10:00")
    page.locator("#ends").fill("10:45")
    page.get_by_label("Change").select_option("following")
    page.screenshot(path=screenshot_dir / f"schedule-edit-{name}.png", full_page=True)
    no_sideways_scroll(page)
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("Dog walk was changed.")).to_be_visible()
    expect(walk_items(page).nth(0)).to_contain_text(f"9:00 AM\u20139:30 AM {pacific}")
    for index in (1, 2):
        expect(walk_items(page).nth(index)).to_contain_text(
            f"10:00 AM\u201310:45 AM {pacific} (1:00 PM\u20131:45 PM {eastern} your time)")

    # Reassign all still to come, from the first visit.
    first = walk_items(page).first
    first.locator("summary", has_text="Reassign").click()
    first.get_by_label("Staff member").select_option(label=walker.name)
    first.get_by_label("Reassign which visits").select_option("all")
    first.screenshot(path=screenshot_dir / f"schedule-reassign-{name}.png")
    first.get_by_role("button", name="Reassign").click()
    expect(page.get_by_text("Dog walk is now assigned to Wendy Walker.")).to_be_visible()
    expect(walk_items(page).filter(has_text="Wendy Walker")).to_have_count(3)
    # Each visit keeps its own times: the later two still end at 10:45.
    expect(walk_items(page).nth(0)).to_contain_text(f"9:00 AM\u20139:30 AM {pacific}")
    expect(walk_items(page).nth(2)).to_contain_text(f"10:00 AM\u201310:45 AM {pacific}")
    page.locator("#services").scroll_into_view_if_needed()
    page.screenshot(path=screenshot_dir / f"schedule-edited-{name}.png", full_page=True)
    no_sideways_scroll(page)
