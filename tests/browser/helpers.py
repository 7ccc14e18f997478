"""What the browser tests share: how long to wait, and the moves on a feed page."""

from playwright.sync_api import Page

# Every wait is explicit and short: a local server answers in milliseconds.
WAIT = 5_000


def mark_page(page: Page) -> None:
    """A full page load would wipe this marker; htmx swaps keep it."""
    page.evaluate("window.__noReload = 1")


def assert_not_reloaded(page: Page) -> None:
    assert page.evaluate("window.__noReload") == 1, "the page was reloaded"


def wait_for_htmx(page: Page) -> None:
    # htmx loads deferred; a click before it is ready would post the form the plain way.
    page.wait_for_function("() => window.htmx !== undefined", timeout=WAIT)


def send(page: Page, text: str) -> None:
    page.locator("#message-text").fill(text)
    page.locator("#feed form.composer").get_by_role("button", name="Send").click()
