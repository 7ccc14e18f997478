"""Business hours in a real browser: an admin sets them on Portal Settings; on a Saturday the
client sees the away notice above the message box and gets the automatic reply in the open
feed, and the admin sends at opening. The server's clock (in this process) is moved with
time-machine; the browser's is its own."""

from datetime import UTC, datetime

import pytest
import time_machine
from playwright.sync_api import expect

from portal.models import Business

from ..helpers import update_row
from .helpers import WAIT, send, wait_for_htmx

pytestmark = pytest.mark.browser

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
SATURDAY_10 = datetime(2027, 1, 9, 16, tzinfo=UTC)  # 10 AM in Chicago


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_admin_sets_the_business_hours(app, log_in, admin, business, screenshot_dir, device):
    page = log_in(admin, **(PHONE if device == "phone" else {}))
    page.goto("/settings/client/portal")
    hours = page.locator("#business-hours")
    for day in ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday"):
        hours.get_by_label(f"Open on {day}").check()
    hours.get_by_label("Friday closes").fill("17:00")
    hours.get_by_label("Closed days").fill("2027-12-25 Christmas Day")
    hours.get_by_label("Away message").fill("Urgent? Call (312) 555-0100.")
    hours.get_by_role("button", name="Save business hours").click()
    expect(page.get_by_text("Business hours saved.")).to_be_visible()
    expect(hours.get_by_label("Open on Monday")).to_be_checked()
    expect(hours.get_by_label("Open on Saturday")).not_to_be_checked()
    expect(hours.get_by_label("Friday closes")).to_have_value("17:00")
    hours.scroll_into_view_if_needed()
    page.screenshot(path=screenshot_dir / f"business-hours-{device}.png", full_page=True)


def test_on_a_saturday_the_client_is_told_and_answered_and_the_team_sends_at_opening(
        app, log_in, admin, business, household, household_login, screenshot_dir):
    update_row(app, Business, business.id,
               weekly_hours={str(day): ["08:00", "18:00"] for day in range(5)},
               away_message="Urgent? Call (312) 555-0100.")
    with time_machine.travel(SATURDAY_10, tick=True):
        page = log_in(household_login, **PHONE)
        notice = page.locator("#away-notice")
        expect(notice).to_have_text(
            "We're closed until Monday 8:00 AM. Urgent? Call (312) 555-0100.")
        wait_for_htmx(page)
        send(page, "Can someone walk Rex today?")
        reply = page.locator("#feed article.message").filter(has_text="Thanks for your message")
        expect(reply).to_be_visible(timeout=WAIT * 2)
        expect(reply).to_contain_text(business.name)
        expect(reply).to_contain_text("automatic reply")
        page.screenshot(path=screenshot_dir / "away-client-phone.png", full_page=True)

        team = log_in(admin)
        team.goto(f"/clients/{household.id}")
        wait_for_htmx(team)
        team.locator("#message-text").fill("Yes: Sam can come at noon on Monday.")
        team.get_by_role("button", name="Send at opening (Mon 8:00 AM)").click()
        listed = team.locator("#scheduled-conversation").get_by_role("listitem")
        expect(listed).to_contain_text("Scheduled for Mon, Jan 11, 8:00 AM CST")
        team.screenshot(path=screenshot_dir / "away-send-at-opening.png", full_page=True)
