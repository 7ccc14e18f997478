"""Send later in a real browser: schedule from the composer, see it listed under the feed, Send
now, and the message arrives in the open feed; on a phone too, and safe when clicked twice on a
slow network."""

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from portal.clock import zone
from portal.extensions import db
from portal.models import Message, ScheduledMessage, utcnow

from .helpers import WAIT, assert_not_reloaded, mark_page, wait_for_htmx

pytestmark = pytest.mark.browser

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


def tomorrow_at_nine() -> str:
    local = (utcnow() + timedelta(days=1)).astimezone(zone("America/Chicago"))
    return local.strftime("%Y-%m-%dT09:00")


def schedule(page, text: str, *, by_enter: bool = False) -> None:
    composer = page.locator("#feed form.composer")
    composer.locator("#message-text").fill(text)
    composer.get_by_text("Send later").click()
    when = composer.get_by_label("Send at")
    when.fill(tomorrow_at_nine())
    if by_enter:
        when.press("Enter")  # the form's first button is Send: Enter here must schedule
    else:
        composer.get_by_role("button", name="Schedule").click()


def texts(app, model) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(select(model.text).order_by(model.id)))


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_schedule_see_it_listed_then_send_now(app, log_in, admin, household, household_login,
                                             screenshot_dir, device):
    page = log_in(admin, **(PHONE if device == "phone" else {}))
    page.goto(f"/clients/{household.id}")
    wait_for_htmx(page)
    mark_page(page)
    schedule(page, "Biscuit's walk is at 9 tomorrow", by_enter=device == "phone")

    listed = page.locator("#scheduled-conversation")
    said = page.locator("#scheduled-said-conversation")
    expect(said).to_contain_text("Scheduled for ")
    item = listed.get_by_role("listitem")
    expect(item).to_contain_text("Biscuit's walk is at 9 tomorrow")
    expect(item).to_contain_text("9:00 AM")
    expect(page.locator("#message-text")).to_have_value("")
    expect(page.locator("#feed .messages article.message")).to_have_count(0)
    assert_not_reloaded(page)
    item.scroll_into_view_if_needed()
    page.screenshot(path=screenshot_dir / f"send-later-listed-{device}.png", full_page=True)

    # The household, in its own browser with the feed open, sees nothing of it yet.
    household_page = log_in(household_login)
    expect(household_page.locator("#feed")).to_be_visible()
    expect(household_page.get_by_text("Biscuit's walk is at 9")).to_have_count(0)

    item.get_by_role("button", name=re.compile("^Send now")).click()
    expect(said).to_have_text("Sent.")
    expect(listed.get_by_role("listitem")).to_have_count(0)
    posted = page.locator("#feed .messages article.message")
    expect(posted).to_have_count(1, timeout=WAIT)
    expect(posted).to_contain_text("Biscuit's walk is at 9 tomorrow")
    assert_not_reloaded(page)
    page.screenshot(path=screenshot_dir / f"send-later-sent-{device}.png", full_page=True)
    # It reaches the household's open feed as any new message does.
    expect(household_page.get_by_text("Biscuit's walk is at 9 tomorrow")).to_be_visible(
        timeout=WAIT * 2)


def test_send_now_clicked_twice_on_a_slow_network_posts_once(app, log_in, admin, household):
    page = log_in(admin)
    page.goto(f"/clients/{household.id}")
    wait_for_htmx(page)
    schedule(page, "Only once, please")
    item = page.locator("#scheduled-conversation").get_by_role("listitem")
    expect(item).to_have_count(1)

    def slowly(route):
        page.wait_for_timeout(800)
        route.continue_()

    page.route("**/send-now", slowly)
    button = item.get_by_role("button", name=re.compile("^Send now"))
    button.click()
    button.click(force=True, no_wait_after=True, timeout=WAIT)  # mid-swap: disabled, or gone
    expect(page.locator("#feed .messages article.message")).to_have_count(1, timeout=WAIT * 2)
    assert texts(app, Message) == ["Only once, please"]
    assert texts(app, ScheduledMessage) == ["Only once, please"]
