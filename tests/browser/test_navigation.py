"""The navigation on a phone: folded behind a menu button that works by keyboard and tells
screen readers whether it is open, with who is logged in and the unread badge always in sight;
shown whole on a desktop, and without JavaScript."""

import re

import pytest
from playwright.sync_api import expect

from ..helpers import PASSWORD

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


def test_the_phone_menu_opens_and_closes_by_keyboard(
    log_in, admin, household, household_login, make_message, screenshot_dir
):
    make_message(household, household_login, "Is Rex ok?")
    page = log_in(admin, viewport=PHONE)
    button = page.get_by_role("button", name=re.compile(r"^Alice\W+menu$"))
    clients = page.get_by_role("navigation", name="Main").get_by_role("link", name="Clients")
    messages = page.get_by_role("link", name=re.compile(r"^Messages\W+1 unread$"))
    expect(button).to_have_attribute("aria-expanded", "false")
    expect(clients).to_be_hidden()
    expect(messages).to_be_visible()  # the badge stays in the bar
    expect(page.get_by_role("button", name="Log out")).to_be_hidden()
    page.screenshot(path=screenshot_dir / "navigation-phone-closed.png")

    button.focus()
    page.keyboard.press("Enter")
    expect(button).to_have_attribute("aria-expanded", "true")
    expect(clients).to_be_visible()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    page.screenshot(path=screenshot_dir / "navigation-phone-open.png")
    # Tab leads from the button into the links it unfolded.
    page.keyboard.press("Tab")
    expect(clients).to_be_focused()

    page.keyboard.press("Escape")
    expect(button).to_have_attribute("aria-expanded", "false")
    expect(button).to_be_focused()
    expect(clients).to_be_hidden()
    # Nothing is wider than the phone, open or closed.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    page.goto("/messages")
    button.click()
    clients.click()
    expect(page).to_have_url(re.compile(r"/clients$"))
    expect(button).to_have_attribute("aria-expanded", "false")  # a new page starts folded


def test_a_desktop_shows_the_whole_menu_and_no_button(log_in, admin):
    page = log_in(admin, viewport=DESKTOP)
    expect(page.get_by_role("button", name=re.compile(r"^Alice\W+menu$"))).to_be_hidden()
    nav = page.get_by_role("navigation", name="Main")
    for name in ("Clients", "Schedule", "Staff", "Settings"):
        expect(nav.get_by_role("link", name=name)).to_be_visible()
    expect(page.locator(".account-name")).to_contain_text("Alice Admin")
    expect(page.locator(".account-name")).to_be_visible()


def test_without_javascript_a_phone_shows_the_whole_menu(new_page, admin, live_server):
    page = new_page(viewport=PHONE, java_script_enabled=False)
    page.goto("/login")
    page.get_by_label("Email").fill(admin.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Clients")) \
        .to_be_visible()
    expect(page.locator("#menu-button")).to_be_hidden()
    expect(page.locator(".account-name")).to_be_visible()
