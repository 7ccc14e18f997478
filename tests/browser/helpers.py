"""What the browser tests share: how long to wait, and the moves on a feed page."""

import time
from collections.abc import Callable
from urllib.parse import urlsplit

from playwright.sync_api import Page, expect

from ..helpers import PASSWORD

# Every wait is explicit and short: a local server answers in milliseconds.
WAIT = 5_000


def log_in_through_form(page: Page, user) -> None:
    """Logs in through the real login form; returns on the user's home page."""
    page.goto("/login")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    # Waits for the redirect to the user's home page to load; a refused login stays here.
    page.wait_for_url(lambda url: urlsplit(url).path != "/login", timeout=WAIT)
    # Logged in: the page has the Log out form (on a phone, folded in the menu).
    expect(page.locator("form[data-logout]")).to_have_count(1, timeout=WAIT)


def mark_page(page: Page) -> None:
    """A full page load would wipe this marker; htmx swaps keep it."""
    page.evaluate("window.__noReload = 1")


def assert_not_reloaded(page: Page) -> None:
    assert page.evaluate("window.__noReload") == 1, "the page was reloaded"


# htmx is defined as soon as its deferred script runs, but it attaches itself to the page's links
# and forms on DOMContentLoaded: a click in between is followed the plain way (a full load).
HTMX_READY = "() => window.htmx !== undefined && document.readyState === 'complete'"


def wait_for_htmx(page: Page) -> None:
    # htmx loads deferred; a click before it is ready would post the form the plain way.
    page.wait_for_function(HTMX_READY, timeout=WAIT)


def expect_focused(page: Page, element_id: str) -> None:
    """Waits until the element is the page's focused one, whether or not the browser counts
    the page's window as the active one: with two windows open, a loaded machine may leave the
    other one active, which Playwright's to_be_focused reports as "inactive"."""
    page.wait_for_function(
        "id => document.activeElement !== null && document.activeElement.id === id",
        arg=element_id, timeout=WAIT,
    )


def wait_until(page: Page, condition: Callable[[], object], what: str) -> None:
    """Waits for something only Python sees (a route handler, a DevTools event): those run
    while Playwright waits, so this waits in short steps until it holds, or fails after WAIT."""
    deadline = time.monotonic() + WAIT / 1000
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {WAIT} ms")
        page.wait_for_timeout(10)


def wait_for_polls(page: Page, count: int) -> None:
    """Returns once the open feed has asked for updates `count` more times. An answer that
    brings anything replaces the poller, and only the new one asks again: every answer before
    the last of these asks has landed."""
    for _ in range(count):
        with page.expect_request(lambda request: "/updates?" in request.url, timeout=WAIT):
            pass


def send(page: Page, text: str) -> None:
    page.locator("#message-text").fill(text)
    page.locator("#feed form.composer").get_by_role("button", name="Send").click()


def follow_nav(page: Page, name: str) -> None:
    """Follows a link of the main navigation as a person would: on a phone, through the menu
    button first."""
    menu = page.locator("#menu-button")
    if menu.is_visible() and menu.get_attribute("aria-expanded") != "true":
        menu.click()
    page.get_by_role("navigation", name="Main").get_by_role("link", name=name).click()
