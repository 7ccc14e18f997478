"""A sitter confirms their own phone for texts on their Notifications page, in a real Chromium:
the number typed, the code read from where the SMS path puts it without a provider (the console
text the notification worker prints), typed back, and the number confirmed."""

import re

import pytest
from playwright.sync_api import expect

from portal.models import User

from ..helpers import deliver, update_row
from .helpers import WAIT

pytestmark = pytest.mark.browser

SIZES = {
    "desktop": {"viewport": {"width": 1280, "height": 900}},
    "phone": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True},
}


@pytest.mark.parametrize("size", SIZES)
def test_a_sitter_confirms_a_new_number_with_the_texted_code(
        app, log_in, assigned_staff, size, screenshot_dir, capsys):
    # Entered by the office when the sitter was invited: not confirmed yet.
    update_row(app, User, assigned_staff.id, phone="312 555 0100")
    page = log_in(assigned_staff, **SIZES[size])
    page.goto("/notifications")
    section = page.locator("#phone-texts")
    expect(section.get_by_role("heading", name="Phone for text messages")).to_be_visible()
    expect(section).to_contain_text(
        "Not confirmed yet: we will text you only after you confirm it.")
    page.screenshot(path=screenshot_dir / f"phone-unconfirmed-{size}.png", full_page=True)

    # A different number: typed, then a code is texted to it.
    section.get_by_text("Change number").click()
    section.get_by_label("Mobile number").fill("(312) 555-0142")
    section.get_by_role("button", name="Text me a code").click()
    expect(page.get_by_text("We are texting a code to +1 312-555-0142")).to_be_visible()
    capsys.readouterr()
    deliver(app)  # the notification worker sends it (the console path: no provider set)
    printed = capsys.readouterr().out
    assert "text message to Sam Sitter (+13125550142) (no SMS provider set)" in printed
    code = re.search(r"your code to confirm this number for texts is (\d{6})", printed).group(1)

    page.reload()
    section = page.locator("#phone-texts")
    expect(section.get_by_role("status")).to_contain_text(
        "We texted a 6-digit code to +1 312-555-0142")
    # A wrong code first: said on the form, and the number is not taken yet.
    section.get_by_label("Code from the text").fill("000000" if code != "000000" else "111111")
    section.get_by_role("button", name="Confirm number").click()
    section = page.locator("#phone-texts")
    expect(section.get_by_text("That code is not right.")).to_be_visible()
    page.screenshot(path=screenshot_dir / f"phone-code-{size}.png", full_page=True)

    section.get_by_label("Code from the text").fill(code)
    section.get_by_role("button", name="Confirm number").click()
    expect(page.get_by_text("Your number is confirmed: texts now go to +1 312-555-0142.")
           ).to_be_visible(timeout=WAIT)
    section = page.locator("#phone-texts")
    expect(section.locator(".phone-current")).to_have_text("Texts go to +1 312-555-0142 Confirmed")
    page.screenshot(path=screenshot_dir / f"phone-confirmed-{size}.png", full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= SIZES[size]["viewport"]["width"]


@pytest.mark.parametrize("size", SIZES)
def test_the_channel_table_fits_the_card_at_every_width(
        app, log_in, assigned_staff, size, screenshot_dir):
    # A phone stacks the table per channel: each setting readable in full, nothing past the card.
    update_row(app, User, assigned_staff.id, phone="312 555 0100")
    page = log_in(assigned_staff, **SIZES[size])
    page.goto("/notifications")
    expect(page.get_by_text("(number not confirmed)")).to_be_visible()
    page.screenshot(path=screenshot_dir / f"notifications-channels-{size}.png", full_page=True)
    card = page.locator("section.card").first.bounding_box()
    for select in page.locator("table select").all():
        box = select.bounding_box()
        assert box["x"] + box["width"] <= card["x"] + card["width"]
        assert select.evaluate("s => s.scrollWidth <= s.clientWidth + 1"), "the choice is cut"
    note = page.get_by_text("(number not confirmed)").bounding_box()
    assert note["x"] + note["width"] <= card["x"] + card["width"]
