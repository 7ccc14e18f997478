"""Saved replies in a real browser: an admin keeps one under Settings; in a client's feed the
picker finds it by search, inserts it with the client's name and pets filled in, by keyboard,
and the message goes with the reply's file."""

import pytest
from playwright.sync_api import expect

from portal.models import Client

from ..helpers import png_bytes, update_row
from .helpers import WAIT, wait_for_htmx

pytestmark = pytest.mark.browser

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_keep_a_saved_reply_then_insert_and_send_it(app, log_in, admin, household, tmp_path,
                                                   screenshot_dir, device):
    update_row(app, Client, household.id, first_name="Carla")
    page = log_in(admin, **(PHONE if device == "phone" else {}))
    page.goto("/settings/saved-replies/new")
    page.get_by_label("Title").fill("Vaccination reminder")
    page.get_by_label("Text").fill("Hi {first_name}! {pet_names} is due for shots.")
    clinic = tmp_path / "clinic.png"
    clinic.write_bytes(png_bytes((60, 40)))
    page.get_by_label("Add files").set_input_files(str(clinic))
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("“Vaccination reminder” was saved.")).to_be_visible()
    page.screenshot(path=screenshot_dir / f"saved-replies-{device}.png", full_page=True)

    page.goto(f"/clients/{household.id}")
    wait_for_htmx(page)
    composer = page.locator("#feed form.composer")
    composer.locator("#message-text").fill("Good morning. ")
    composer.get_by_text("Insert a saved reply").click()
    search = composer.get_by_label("Search saved replies")
    expect(search).to_be_visible(timeout=WAIT)
    search.fill("vacc")
    search.press("Enter")  # inserts the one reply left; never sends the message
    expect(composer.locator("#message-text")).to_have_value(
        "Good morning. Hi Carla! Rex is due for shots.")
    files = composer.get_by_label("Send the files of “Vaccination reminder” with it: clinic.png")
    expect(files).to_be_checked()
    assert page.locator("#feed article.message").count() == 0
    page.screenshot(path=screenshot_dir / f"saved-reply-inserted-{device}.png", full_page=True)
    composer.get_by_role("button", name="Send", exact=True).click()
    sent = page.locator("#feed article.message.own")
    expect(sent).to_contain_text("Hi Carla! Rex is due for shots.", timeout=WAIT)
    expect(sent.get_by_role("img")).to_have_count(1)
