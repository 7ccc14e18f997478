"""The feed by keyboard alone: write, attach a photo through the file picker, send, then delete the
message through its confirmation, never touching a mouse; the focus stays where the person is."""

import re

import pytest
from playwright.sync_api import Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from ..helpers import png_bytes
from .helpers import WAIT, expect_focused, wait_for_htmx

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


def focused(page: Page) -> str:
    """The focused element, as its id or its text."""
    return page.evaluate("(document.activeElement.id || document.activeElement.textContent)"
                         ".trim().replace(/\\s+/g, ' ')")


def tab_to(page: Page, pattern: str, *, backwards: bool = False, most: int = 12) -> None:
    """Presses Tab (or Shift+Tab) until the focused element's id or text matches."""
    for _ in range(most):
        page.keyboard.press("Shift+Tab" if backwards else "Tab")
        if re.search(pattern, focused(page)):
            return
    raise AssertionError(f"no {pattern!r} within {most} presses; focus is on {focused(page)!r}")


def open_picker(page: Page):
    """Presses Space on the focused file input: the file chooser it opens. On a loaded machine
    the first press's chooser was now and then never reported (about one run in three, with the
    other suite running beside it): a second press, as a person would, is allowed. The focus is
    checked before each, so the keyboard is still what opens it."""
    for attempt in range(2):
        assert focused(page) == "message-files"
        try:
            with page.expect_file_chooser(timeout=WAIT // 2) as chooser:
                page.keyboard.press("Space")
            return chooser.value
        except PlaywrightTimeoutError:
            if attempt:
                raise
    raise AssertionError("unreachable")


@pytest.mark.parametrize("viewport", [None, PHONE], ids=["desktop", "phone"])
def test_write_attach_send_and_delete_by_keyboard(
    undo_window_over, log_in, admin, household, viewport, screenshot_dir
):
    page = log_in(admin, **({"viewport": viewport} if viewport else {}))
    page.goto(f"/clients/{household.id}")
    wait_for_htmx(page)
    # Keys reach the page either way; a file picker opens only for the window in front.
    page.bring_to_front()
    page.locator("#message-text").focus()  # where Tab from the page's top leads, eventually
    page.keyboard.type("Sent without a mouse")

    tab_to(page, "^message-files$")  # the picker: a real file input, styled as its label
    open_picker(page).set_files([{"name": "rex.png", "mimeType": "image/png",
                                  "buffer": png_bytes((64, 64))}])
    expect(page.locator("#attachment-previews")).to_contain_text("rex.png")

    tab_to(page, "^Send$")
    page.keyboard.press("Enter")
    article = page.locator("article.message", has_text="Sent without a mouse")
    expect(article).to_be_visible()
    expect(article.locator("img")).to_have_count(1)
    expect_focused(page, "message-text")  # back in the composer, ready for the next one

    tab_to(page, "^Delete message from Alice Admin", backwards=True)
    page.keyboard.press("Enter")
    confirm = article.get_by_role("button", name="Delete", exact=True)
    expect(confirm).to_be_focused()  # the confirmation takes the focus (autofocus)
    size = "phone" if viewport else "desktop"
    page.screenshot(path=screenshot_dir / f"keyboard-delete-confirm-{size}.png")
    page.keyboard.press("Enter")
    deleted = page.locator("article.message.deleted")
    expect(deleted).to_have_count(1)
    # The message that held the focus is replaced: the focus stays on it, not lost to the page.
    assert page.evaluate("document.activeElement.matches('article.message.deleted')")
