"""Two people with the same feed open: messages and deletions arrive without a reload, and
what the reader is typing is kept."""


import re

import pytest
from playwright.sync_api import expect

from .helpers import (
    WAIT,
    assert_not_reloaded,
    mark_page,
    send,
    wait_for_htmx,
    wait_for_polls,
    wait_until,
)

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("quick_polls")]
# The promise is three seconds: pages poll every two (FEED_POLL_SECONDS; tests in
# tests/test_live_feed.py hold the pages to it), here more often.
LIVE = 3_500


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
    # Polls bring the deletion again for a while; the tombstone in place is left as it is.
    arrived.evaluate("article => { article.dataset.first = 'yes'; }")
    wait_for_polls(admin_page, 3)
    expect(arrived).to_have_attribute("data-first", "yes")
    assert_not_reloaded(admin_page)


def test_own_message_is_not_shown_twice(log_in, household, admin):
    page = log_in(admin)
    page.goto(f"/clients/{household.id}")
    wait_for_htmx(page)
    send(page, "Only once, please")
    expect(page.locator("#feed .messages article.message")).to_have_count(1, timeout=WAIT)
    # Several polls later it is still there exactly once.
    wait_for_polls(page, 3)
    expect(page.locator("#feed .messages article.message")).to_have_count(1)


def test_hidden_tab_does_not_poll(log_in, household, admin):
    page = log_in(admin)
    page.goto(f"/clients/{household.id}")
    wait_for_htmx(page)
    polls = []
    page.on("request", lambda request: "/updates" in request.url and polls.append(request.url))
    # The poller's turns (each held back while hidden), and what set off each poll sent.
    page.evaluate("""() => {
        window.__turns = 0;
        window.__sent = [];
        document.addEventListener("htmx:beforeRequest", (event) => {
            if (event.detail.elt.id === "feed-poller") window.__turns += 1;
        });
        document.addEventListener("htmx:beforeSend", (event) => {
            const cause = event.detail.requestConfig.triggeringEvent;
            if (event.detail.elt.id !== "feed-poller") return;
            window.__sent.push(cause ? cause.type : "timer");
        });
        Object.defineProperty(document, "hidden", {configurable: true, get: () => true});
        document.dispatchEvent(new Event("visibilitychange"));
    }""")
    page.wait_for_function("() => window.__turns >= 3", timeout=WAIT)
    assert polls == [] and page.evaluate("window.__sent") == []
    page.evaluate("""() => {
        Object.defineProperty(document, "hidden", {configurable: true, get: () => false});
        document.dispatchEvent(new Event("visibilitychange"));
    }""")
    page.wait_for_function("() => window.__sent.length > 0", timeout=WAIT)
    # The first poll is the one coming back set off, not the poller's next turn.
    assert page.evaluate("window.__sent[0]") == "poll-now", "coming back to the tab polls at once"
    wait_until(page, lambda: polls, "a poll request")


def test_navigation_badge_updates_by_itself(log_in, household, household_login, admin):
    admin_page = log_in(admin)  # lands on the Clients list, no feed open
    wait_for_htmx(admin_page)
    mark_page(admin_page)
    badge = admin_page.locator("#nav-unread")
    expect(badge).to_have_text("")
    client_page = log_in(household_login)
    wait_for_htmx(client_page)
    send(client_page, "Is Friday still on?")
    # The badge asks again by itself (UNREAD_POLL_SECONDS).
    expect(badge).to_contain_text("1", timeout=WAIT)
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
