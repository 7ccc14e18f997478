"""The audit log in a real browser: filters swap the events in place, More appends, and the page
fits a phone."""

import re

import pytest
from playwright.sync_api import Page, expect

from portal.extensions import db
from portal.models import AuditEvent, Client, Feed, User
from portal.services import messages, settings
from portal.settings import routes as settings_routes

from ..helpers import set_private_messaging
from .helpers import HTMX_READY, WAIT, wait_until

pytestmark = pytest.mark.browser

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
DESKTOP = {"viewport": {"width": 1280, "height": 900}}


def wait_for_htmx(page: Page) -> None:
    page.wait_for_function(HTMX_READY, timeout=WAIT)


@pytest.fixture
def eventful_business(app, business, admin, office_manager, assigned_staff, household,
                      household_login):
    """A morning at Happy Tails: a deleted private message, settings, permissions, accounts."""
    set_private_messaging(app, business, True)
    with app.app_context():
        alice = db.session.get(User, admin.id)
        manager = db.session.get(User, office_manager.id)
        message = messages.post_message(
            db.session.get(User, household_login.id), db.session.get(Client, household.id),
            Feed.PRIVATE, "Please charge the card ending 4242",
        )
        messages.delete_message(alice, message)
        settings.update_business_settings(alice, alice.business, staff_access_days=14)
        settings.set_private_messages_access(alice, [manager], {manager.id})
        for action, actor, subject in [("user.invited", alice, assigned_staff),
                                       ("user.deactivated", manager, assigned_staff),
                                       ("login.locked_out", None, household_login)]:
            db.session.add(AuditEvent(
                business_id=business.id, actor_id=actor.id if actor else None, action=action,
                object_type="user", object_id=subject.id,
                details={"login.locked_out": {"minutes": 15}, "user.invited": {"role": "staff"}}
                .get(action, {})))
        db.session.commit()


def test_capture_audit_log_on_desktop(log_in, admin, eventful_business, screenshot_dir):
    page = log_in(admin, **DESKTOP)
    page.goto("/settings/audit-log")
    expect(page.locator("li.audit-entry").first).to_contain_text(
        "Carla Client's login was locked for 15 minutes")
    expect(page.get_by_role("link", name="Audit log")).to_have_attribute("aria-current", "page")
    page.screenshot(path=screenshot_dir / "audit-log-desktop.png", full_page=True)


def test_capture_audit_log_on_phone(log_in, admin, eventful_business, screenshot_dir):
    page = log_in(admin, **PHONE)
    page.goto("/settings/audit-log")
    expect(page.locator("li.audit-entry").first).to_be_visible()
    page.screenshot(path=screenshot_dir / "audit-log-phone.png", full_page=True)
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px"


def test_filters_swap_the_events_in_place(log_in, admin, eventful_business):
    page = log_in(admin, **DESKTOP)
    page.goto("/settings/audit-log")
    wait_for_htmx(page)
    page.evaluate("window.__noReload = 1")
    page.get_by_label("What").select_option("messages")
    expect(page.locator("li.audit-entry")).to_have_count(1, timeout=WAIT)
    expect(page.locator("li.audit-entry")).to_contain_text(
        "Alice Admin deleted a message by Carla Client in The Rivera Household's Private feed")
    expect(page).to_have_url(re.compile(r"kind=messages"), timeout=WAIT)
    page.get_by_label("What").select_option("")
    page.get_by_label("Who").select_option(label="Oscar Office")
    expect(page.locator("li.audit-entry")).to_have_count(3, timeout=WAIT)
    assert page.evaluate("window.__noReload") == 1, "the page was reloaded"


def test_more_appends_the_next_events(app, log_in, admin, business, assigned_staff,
                                      monkeypatch):
    monkeypatch.setattr(settings_routes, "AUDIT_EVENTS_PER_PAGE", 4)
    with app.app_context():
        for _ in range(6):
            db.session.add(AuditEvent(business_id=business.id, actor_id=admin.id,
                                      action="user.reactivated", object_type="user",
                                      object_id=assigned_staff.id, details={}))
        db.session.commit()
        total = db.session.query(AuditEvent).count()
    page = log_in(admin, **DESKTOP)
    page.goto("/settings/audit-log")
    wait_for_htmx(page)
    expect(page.locator("li.audit-entry")).to_have_count(4, timeout=WAIT)
    page.get_by_role("link", name="More").click()
    expect(page.locator("li.audit-entry")).to_have_count(8, timeout=WAIT)
    assert 8 < total <= 12  # the six above and the cast's own: one more page
    page.get_by_role("link", name="More").click()
    expect(page.locator("li.audit-entry")).to_have_count(total, timeout=WAIT)
    expect(page.get_by_role("link", name="More")).to_have_count(0)


def test_works_without_javascript(log_in, admin, eventful_business):
    page = log_in(admin, java_script_enabled=False, **DESKTOP)
    page.goto("/settings/audit-log")
    page.get_by_label("What").select_option("settings")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"kind=settings"), timeout=WAIT)
    expect(page.locator("li.audit-entry")).to_have_count(2, timeout=WAIT)



def test_more_pressed_twice_on_a_slow_network_appends_the_next_events_once(
    app, log_in, admin, business, assigned_staff, monkeypatch
):
    monkeypatch.setattr(settings_routes, "AUDIT_EVENTS_PER_PAGE", 4)
    with app.app_context():
        for _ in range(10):
            db.session.add(AuditEvent(business_id=business.id, actor_id=admin.id,
                                      action="user.reactivated", object_type="user",
                                      object_id=assigned_staff.id, details={}))
        db.session.commit()
    page = log_in(admin, **DESKTOP)
    page.goto("/settings/audit-log")
    wait_for_htmx(page)
    held, released = [], []

    def hold_until_released(route):
        if released:
            route.continue_()  # anything asked later goes through: it must not append again
        else:
            held.append(route)

    page.route(re.compile(r"/settings/audit-log\?.*before"), hold_until_released)
    more = page.get_by_role("link", name="More")
    more.click()
    wait_until(page, lambda: held, "the first More request")
    more.click()  # pressed again while the first answer is on its way
    page.wait_for_timeout(200)
    released.append(True)
    for route in held:
        route.continue_()
    expect(page.locator("li.audit-entry")).to_have_count(8, timeout=WAIT)
    page.wait_for_timeout(500)  # anything queued behind it would have landed by now
    ids = page.locator("li.audit-entry").evaluate_all("items => items.map(i => i.id)")
    assert len(ids) == len(set(ids)) == 8
