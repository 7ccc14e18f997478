"""Two people with the same feed open: messages and deletions arrive without a reload, and
what the reader is typing is kept."""


import re

import pytest
from playwright.sync_api import expect

from .helpers import WAIT, assert_not_reloaded, mark_page, send, wait_for_htmx

pytestmark = pytest.mark.browser
LIVE = 3_500  # the promise is three seconds; polls run every two


def test_message_and_unsend_arrive_live(log_in, household, household_login, admin):
    client_page = log_in(household_login)
    wait_for_htmx(client_page)
    admin_page = log_in(admin)
    admin_page.goto(f"/clients/{household.id}")
    wait_for_htmx(admin_page)
    mark_page(admin_page)
    admin_page.locator("#message-text").fill("Half-written reply")

    send(client_page, "Can Sam come at 4 instead?")
    sent = client_page.locator("#feed .messages article.message.own")
    expect(sent).to_have_count(1, timeout=WAIT)
    message_id = sent.get_attribute("id")

    arrived = admin_page.locator(f"#{message_id}")
    expect(arrived.locator(".message-text")).to_have_text("Can Sam come at 4 instead?",
                                                          timeout=LIVE)
    expect(admin_page.locator("#message-text")).to_have_value("Half-written reply")
    expect(admin_page.locator(f"#feed .messages #{message_id}")).to_have_count(1)

    sent.get_by_role("button", name="Unsend").click()
    expect(sent.locator(".tombstone")).to_be_visible(timeout=WAIT)
    expect(arrived.locator(".tombstone")).to_contain_text("Message unsent by Carla Client",
                                                          timeout=LIVE)
    expect(admin_page.locator("#message-text")).to_have_value("Half-written reply")
    assert_not_reloaded(admin_page)


def test_own_message_is_not_shown_twice(log_in, household, admin):
    page = log_in(admin)
    page.goto(f"/clients/{household.id}")
    wait_for_htmx(page)
    send(page, "Only once, please")
    expect(page.locator("#feed .messages article.message")).to_have_count(1, timeout=WAIT)
    # Several polls later it is still there exactly once.
    page.wait_for_timeout(4_500)
    expect(page.locator("#feed .messages article.message")).to_have_count(1)


def test_hidden_tab_does_not_poll(log_in, household, admin):
    page = log_in(admin)
    page.goto(f"/clients/{household.id}")
    wait_for_htmx(page)
    polls = []
    page.on("request", lambda request: "/updates" in request.url and polls.append(request.url))
    page.evaluate("""() => {
        Object.defineProperty(document, "hidden", {configurable: true, get: () => true});
        document.dispatchEvent(new Event("visibilitychange"));
    }""")
    page.wait_for_timeout(4_500)
    assert polls == []
    page.evaluate("""() => {
        Object.defineProperty(document, "hidden", {configurable: true, get: () => false});
        document.dispatchEvent(new Event("visibilitychange"));
    }""")
    page.wait_for_timeout(1_000)
    assert polls, "coming back to the tab polls at once"


def test_navigation_badge_updates_by_itself(log_in, household, household_login, admin):
    admin_page = log_in(admin)  # lands on the Clients list, no feed open
    wait_for_htmx(admin_page)
    mark_page(admin_page)
    badge = admin_page.locator("#nav-unread")
    expect(badge).to_have_text("")
    client_page = log_in(household_login)
    wait_for_htmx(client_page)
    send(client_page, "Is Friday still on?")
    # The badge asks every ten seconds.
    expect(badge).to_contain_text("1", timeout=11_000)
    assert_not_reloaded(admin_page)


def test_a_deletion_arrives_live(undo_window_over, log_in, household, household_login, admin,
                                 make_message):
    message = make_message(household, household_login, "Wrong household, sorry")
    client_page = log_in(household_login)
    wait_for_htmx(client_page)
    admin_page = log_in(admin)
    admin_page.goto(f"/clients/{household.id}")
    wait_for_htmx(admin_page)
    article = client_page.locator(f"#message-{message.id}")
    article.get_by_role("link", name=re.compile(r"^Delete")).click()
    article.locator("form.confirm-delete").get_by_role("button", name="Delete", exact=True).click()
    expect(article.locator(".tombstone")).to_have_text("Message deleted", timeout=WAIT)
    expect(admin_page.locator(f"#message-{message.id} .tombstone")).to_contain_text(
        "Message deleted by Carla Client", timeout=LIVE)
