"""Client records in a real browser: the admin team edits a client and a pet (with a photo) and
archives and unarchives the client; the household edits its own details and a pet's feeding
notes. Screenshots at phone and desktop widths."""

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from portal.extensions import db
from portal.models import Client, Pet

from ..helpers import png_bytes
from .helpers import WAIT

pytestmark = pytest.mark.browser

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
DESKTOP = {"viewport": {"width": 1280, "height": 900}}
SIZES = {"desktop": DESKTOP, "phone": PHONE}


def pet_of(app, household) -> Pet:
    with app.app_context():
        pet = db.session.scalar(select(Pet).where(Pet.client_id == household.id))
        db.session.expunge(pet)
        return pet


def client_row(app, household) -> Client:
    with app.app_context():
        client = db.session.get(Client, household.id)
        db.session.expunge(client)
        return client


def shoot(page: Page, screenshot_dir, name: str) -> None:
    page.screenshot(path=screenshot_dir / f"{name}.png", full_page=True)


@pytest.mark.parametrize("size", SIZES)
def test_admin_edits_client_and_pet_then_archives_and_unarchives(
    app, log_in, admin, assigned_staff, household, screenshot_dir, tmp_path, size,
):
    page = log_in(admin, **SIZES[size])
    page.goto(f"/clients/{household.id}")
    page.get_by_role("link", name="Edit client").click()
    expect(page.get_by_role("heading", name="Edit client")).to_be_visible()
    page.get_by_label("First name").fill("Sam")
    page.get_by_label("Last name").fill("Rivera")
    page.get_by_label("Phone", exact=True).fill("call me")  # refused first
    page.get_by_label("Entry instructions").fill("Key under the blue pot. Alarm off with 1234#.")
    page.get_by_label("Gate or door code").fill("4321")
    page.get_by_label("Vet", exact=True).fill("Elm Street Vets")
    page.get_by_label("Vet's phone").fill("555-010-7777")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".field-error")).to_contain_text("phone number")
    shoot(page, screenshot_dir, f"client-edit-error-{size}")
    page.get_by_label("Phone", exact=True).fill("(555) 010-2030")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".flash-success")).to_contain_text("was saved")
    details = page.locator("#details")
    expect(details).to_contain_text("Key under the blue pot")
    expect(details).to_contain_text("4321")
    expect(details).to_contain_text("Elm Street Vets")

    # The pet, with a photo.
    photo = tmp_path / "rex.png"
    photo.write_bytes(png_bytes((300, 200), "orange"))
    pet = pet_of(app, household)
    details.get_by_role("link", name=f"Edit {pet.name}").click()
    page.get_by_label("Breed").fill("Beagle")
    page.get_by_label("Birthday").fill("2019-05-04")
    page.get_by_label("Feeding").fill("One cup at 7am and 6pm")
    page.get_by_label("Choose a photo", exact=True).set_input_files(str(photo))
    shoot(page, screenshot_dir, f"pet-edit-{size}")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".flash-success")).to_contain_text("was saved")
    image = page.locator("#details img.pet-photo")
    expect(image).to_be_visible()
    # Loaded, not just laid out: on a loaded machine the file may still be on its way.
    expect(image).not_to_have_js_property("naturalWidth", 0, timeout=WAIT)
    expect(page.locator("#details")).to_contain_text("One cup at 7am and 6pm")
    page.locator("#details").scroll_into_view_if_needed()
    shoot(page, screenshot_dir, f"client-details-{size}")

    # The History: what was just changed, before and after.
    page.get_by_role("link", name="History", exact=True).click()
    expect(page.get_by_role("heading", name="History")).to_be_visible()
    expect(page.locator("#audit-list")).to_contain_text("Elm Street Vets")
    shoot(page, screenshot_dir, f"client-history-{size}")
    page.go_back()

    # Archive, after confirming; then unarchive.
    page.get_by_role("link", name="Archive", exact=True).click()
    expect(page.get_by_role("heading", name=f"Archive {household.name}?")).to_be_visible()
    shoot(page, screenshot_dir, f"client-archive-confirm-{size}")
    page.get_by_role("button", name=f"Archive {household.name}").click()
    expect(page.locator(".archived-banner")).to_contain_text("read-only")
    expect(page.locator("#message-text")).to_have_count(0)
    shoot(page, screenshot_dir, f"client-archived-{size}")
    assert client_row(app, household).archived_at is not None
    page.goto("/clients")
    expect(page.locator("#client-results")).not_to_contain_text(household.name)
    page.get_by_role("link", name="Archived clients").click()
    page.locator("#client-results").get_by_role("link", name=household.name).click()
    page.get_by_role("button", name="Unarchive").first.click()
    expect(page.locator(".flash-success")).to_contain_text("active again")
    expect(page.locator(".archived-banner")).to_have_count(0)
    expect(page.locator("#message-text")).to_be_visible()
    assert client_row(app, household).archived_at is None


@pytest.mark.parametrize("size", SIZES)
def test_household_edits_its_details_and_a_pets_feeding_notes(
    app, log_in, household_login, household, screenshot_dir, size,
):
    page = log_in(household_login, **SIZES[size])
    page.get_by_role("link", name="Edit my details").first.click()
    expect(page.get_by_role("heading", name="My details")).to_be_visible()
    page.get_by_label("Phone", exact=True).fill("555-010-4545")
    page.get_by_label("Emergency contact", exact=True).fill("Dana Rivera")
    page.get_by_label("Emergency contact's phone").fill("555-010-9999")
    page.get_by_label("Entry instructions").fill("Side gate, then the back door.")
    expect(page.locator(".field", has=page.get_by_label("Phone", exact=True))
           .get_by_role("link", name="Notifications page")).to_have_attribute(
        "href", "/notifications#phone-texts")
    shoot(page, screenshot_dir, f"household-edit-{size}")
    page.get_by_role("heading", name="Your pets' care notes").scroll_into_view_if_needed()
    shoot(page, screenshot_dir, f"household-edit-pets-{size}")
    page.get_by_role("button", name="Save my details").click()
    expect(page.locator(".flash-success")).to_contain_text("Your details were saved")
    expect(page.locator("#details")).to_contain_text("Dana Rivera")
    pet = pet_of(app, household)
    page.locator("#details").get_by_role("link", name=f"Edit care notes for {pet.name}").click()
    page.get_by_label("Feeding").fill("Half a cup of kibble, twice a day")
    page.get_by_role("button", name="Save care notes").click()
    expect(page.locator("#details")).to_contain_text("Half a cup of kibble, twice a day")
    page.locator("#details").scroll_into_view_if_needed()
    shoot(page, screenshot_dir, f"household-portal-{size}")
    with app.app_context():
        assert db.session.get(Pet, pet.id).feeding_notes == "Half a cup of kibble, twice a day"
        assert db.session.get(Client, household.id).phone == "555-010-4545"
