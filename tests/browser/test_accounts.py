"""Accounts in a real Chromium: an invitation followed from its email to a logged-in person, the
admin's htmx buttons, and logging out clearing the site's storage and service worker."""

import re

import pytest
from playwright.sync_api import expect

from portal.models import Role, utcnow

from ..helpers import NEW_PASSWORD, deliver, link_in, smtp_mailbox
from .helpers import WAIT

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


def test_invitation_to_password_to_logged_in(app, log_in, new_page, admin, screenshot_dir):
    with smtp_mailbox(app) as mailbox:
        page = log_in(admin, viewport=DESKTOP)
        page.goto("/staff/new")
        page.get_by_label("Name").fill("Wendy Walker")
        page.get_by_label("Email").fill("wendy@example.com")
        page.get_by_role("button", name="Add and send invitation").click()
        expect(page.get_by_text("Wendy Walker was invited")).to_be_visible()
        row = page.get_by_role("row", name=re.compile("Wendy Walker"))
        expect(row.get_by_text("Invited", exact=True)).to_be_visible()
        page.screenshot(path=screenshot_dir / "accounts-staff-desktop.png", full_page=True)
        deliver(app)
        link = link_in(mailbox.inbox.to("wendy@example.com")[0], "/invitation/")

    wendy = new_page(viewport=PHONE)
    wendy.goto(link)
    expect(wendy.get_by_role("heading", name="Choose your password")).to_be_visible()
    expect(wendy.get_by_label("Your login email")).to_have_value("wendy@example.com")
    wendy.get_by_label("New password", exact=True).fill("password123")
    wendy.get_by_label("Repeat the new password").fill("password123")
    wendy.get_by_role("button", name="Set password and log in").click()
    # Refused, said on the field, and announced with it.
    password = wendy.get_by_label("New password", exact=True)
    expect(password).to_have_attribute("aria-invalid", "true")
    expect(wendy.get_by_text("one of the first that attackers try")).to_be_visible()
    wendy.screenshot(path=screenshot_dir / "accounts-set-password-phone.png", full_page=True)
    password.fill(NEW_PASSWORD)
    wendy.get_by_label("Repeat the new password").fill(NEW_PASSWORD)
    wendy.get_by_role("button", name="Set password and log in").click()
    expect(wendy).to_have_url(re.compile(r"/today$"), timeout=WAIT)
    expect(wendy.get_by_text("Welcome! Your password is set")).to_be_visible()
    # Logged in as herself: her name on the phone's menu button, Log out inside the menu.
    menu = wendy.get_by_role("button", name=re.compile(r"^Wendy\W+menu$"))
    menu.click()
    expect(wendy.get_by_role("button", name="Log out")).to_be_visible()

    # The admin deactivates her in place (htmx): she is logged out on her next request.
    page.reload()
    row = page.get_by_role("row", name=re.compile("Wendy Walker"))
    expect(row.get_by_text("Active", exact=True)).to_be_visible()
    row.get_by_role("button", name="Deactivate Wendy Walker").click()
    expect(row.get_by_role("status")).to_have_text(
        "Wendy Walker is logged out and can no longer log in.")
    expect(row.get_by_text("Deactivated", exact=True)).to_be_visible()
    wendy.reload()
    expect(wendy).to_have_url(re.compile(r"/login"), timeout=WAIT)

    # The used link now says so, on a phone too.
    wendy.goto(link)
    expect(wendy.get_by_role("heading", name="This link was already used")).to_be_visible()
    wendy.screenshot(path=screenshot_dir / "accounts-used-link-phone.png", full_page=True)


def test_account_pages_at_phone_and_desktop_widths(app, log_in, new_page, make_user, household,
                                                   screenshot_dir):
    make_user(Role.CLIENT, client=household, name="Carla Client")
    make_user(Role.CLIENT, client=household, name="Ramon Rivera", password_hash="",
              invited_at=utcnow())
    admin = make_user(Role.ADMIN, name="Alice Admin")
    for name, size in (("phone", PHONE), ("desktop", DESKTOP)):
        page = log_in(admin, viewport=size)
        page.goto(f"/clients/{household.id}#logins")
        logins = page.locator("#logins")
        expect(logins.get_by_text("Invited", exact=True)).to_be_visible()
        expect(logins.get_by_role("button", name="Resend the invitation to Ramon Rivera")
               ).to_be_visible()
        logins.screenshot(path=screenshot_dir / f"accounts-client-logins-{name}.png")
        page.goto("/account/password")
        expect(page.get_by_label("Current password")).to_be_visible()
        page.screenshot(path=screenshot_dir / f"accounts-change-password-{name}.png",
                        full_page=True)
        anonymous = new_page(viewport=size)
        anonymous.goto("/login")
        anonymous.get_by_role("link", name="Forgot password?").click()
        anonymous.get_by_label("Email").fill("carla@example.com")
        anonymous.get_by_role("button", name="Send me a link").click()
        expect(anonymous.get_by_role("heading", name="Check your email")).to_be_visible()
        anonymous.screenshot(path=screenshot_dir / f"accounts-reset-requested-{name}.png",
                             full_page=True)


def test_logout_clears_storage_and_service_worker(log_in, admin):
    page = log_in(admin)
    page.evaluate("localStorage.setItem('left-behind', 'yes')")
    page.evaluate("navigator.serviceWorker.register('/service-worker.js', {scope: '/'})"
                  ".then(() => navigator.serviceWorker.ready)")
    assert page.evaluate("navigator.serviceWorker.getRegistrations().then(r => r.length)") == 1
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login$"), timeout=WAIT)
    expect(page.get_by_text("You are logged out.")).to_be_visible()
    assert page.evaluate("localStorage.getItem('left-behind')") is None
    assert page.evaluate("navigator.serviceWorker.getRegistrations().then(r => r.length)") == 0
