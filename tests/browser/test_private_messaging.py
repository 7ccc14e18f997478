"""Private Messaging in a real browser, step by step as the help article "Using Private
Messaging" tells customers: the same menus, labels and buttons, the same words on screen.

The first test walks the article in order (enable, open the Private tab, send, staff see
nothing); the others start from an enabled business with one private message and cover the
Permissions page, the client's side and switching the setting off and on again.
"""

import re
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from portal.extensions import db
from portal.models import Business, Feed, User

from .helpers import HTMX_READY, WAIT, follow_nav

pytestmark = pytest.mark.browser

DESKTOP = {"viewport": {"width": 1280, "height": 900}}
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}

STAFF_AUDIENCE = "Visible to the client and the admin team. Staff never see private messages."
CLIENT_AUDIENCE = (
    "Visible to you and the Happy Tails admin team. Staff never see private messages."
)


# --- helpers -------------------------------------------------------------------------------

def unique(text: str) -> str:
    """A message text no other page, test or fixture can contain by accident."""
    return f"{text} [{uuid.uuid4().hex[:10]}]"


def profile_url(household) -> str:
    return f"/clients/{household.id}"


def private_url(household) -> str:
    return f"/clients/{household.id}/feeds/private"


def wait_for_htmx(page: Page) -> None:
    # htmx loads deferred; a click before it is ready would follow the link the plain way.
    page.wait_for_function(HTMX_READY, timeout=WAIT)


def mark_page(page: Page) -> None:
    """A full page load would wipe this marker; htmx swaps and history restores keep it."""
    page.evaluate("window.__noReload = 1")


def assert_not_reloaded(page: Page) -> None:
    assert page.evaluate("window.__noReload") == 1, "the page was reloaded"


def tab(page: Page, name: str):
    # Exactly this label, with or without an unread badge after it.
    return page.get_by_role("tablist", name="Message feeds").get_by_role(
        "tab", name=re.compile(rf"^{name}(\s*, \S+ unread)?$")
    )


def expect_tabs(page: Page, *names: str) -> None:
    # A tab may carry an unread badge after its label ("Private, 1 unread").
    expect(page.get_by_role("tablist", name="Message feeds").get_by_role("tab")).to_have_text(
        [re.compile(rf"^{name}(\s*, \S+ unread)?$") for name in names], timeout=WAIT
    )


def expect_open_feed(page: Page, name: str, path: str) -> None:
    expect(page).to_have_url(re.compile(rf"{re.escape(path)}$"), timeout=WAIT)
    expect(tab(page, name)).to_have_attribute("aria-selected", "true", timeout=WAIT)
    expect(page.locator("#feed-panel")).to_have_attribute("data-feed", name.lower(), timeout=WAIT)


def message_text(page: Page, text: str):
    return page.locator("#feed .messages .message-text").filter(has_text=text)


def send(page: Page, text: str) -> None:
    page.locator("#message-text").fill(text)
    page.locator("#feed form.composer").get_by_role("button", name="Send").click()


def open_settings(page: Page) -> None:
    follow_nav(page, "Settings")
    expect(page.get_by_role("heading", name="Settings", level=1)).to_be_visible(timeout=WAIT)


def open_portal_settings(page: Page) -> None:
    """Settings - Client Settings - Portal Settings, as the article says."""
    open_settings(page)
    menu = page.get_by_role("navigation", name="Settings")
    client_settings = menu.locator("h2", has_text="Client Settings").locator(
        "xpath=following-sibling::ul[1]"
    )
    client_settings.get_by_role("link", name="Portal Settings").click()
    expect(page.get_by_role("heading", name="Portal Settings")).to_be_visible(timeout=WAIT)


def set_private_messaging(page: Page, answer: str) -> None:
    """Portal Settings: "Private Messaging Enabled" to Yes or No, then Save."""
    open_portal_settings(page)
    page.get_by_label("Private Messaging Enabled").select_option(label=answer)
    page.get_by_role("button", name="Save", exact=True).click()
    state = "enabled" if answer == "Yes" else "disabled"
    expect(page.get_by_role("status")).to_have_text(
        f"Portal Settings saved. Private Messaging is {state}.", timeout=WAIT
    )
    expect(page.get_by_label("Private Messaging Enabled").locator("option:checked")).to_have_text(
        answer, timeout=WAIT
    )


def open_profile_from_clients_list(page: Page, household) -> None:
    follow_nav(page, "Clients")
    page.locator("#client-results").get_by_role("link", name=household.name, exact=True).click()
    expect(page).to_have_url(re.compile(rf"{profile_url(household)}$"), timeout=WAIT)
    expect(page.get_by_role("heading", name=household.name, level=1)).to_be_visible(timeout=WAIT)


def expect_private_feed_hidden(page: Page, household, *texts: str) -> None:
    """No Private tab on the profile, none of the texts anywhere, and the feed's URL a 404."""
    page.goto(profile_url(household))
    expect_tabs(page, "Conversation")
    for text in texts:
        expect(page.get_by_text(text)).to_have_count(0, timeout=WAIT)
    # Neither the page nor the fragment htmx asks for when the tab is clicked.
    fragment = page.request.get(private_url(household), headers={"HX-Request": "true"})
    assert fragment.status == 404, f"the Private tab's fragment answered {fragment.status}"
    response = page.goto(private_url(household))
    assert response.status == 404, f"{private_url(household)} answered {response.status}"
    for text in texts:
        expect(page.get_by_text(text)).to_have_count(0, timeout=WAIT)


def shoot(page: Page, directory: Path, name: str) -> None:
    page.screenshot(path=directory / f"private-{name}.png", full_page=True)


# --- the article, in order ------------------------------------------------------------------

def test_enable_private_messaging_and_send_a_private_message(
    log_in, household, admin, assigned_staff, screenshot_dir
):
    # 1. Settings - Client Settings - Portal Settings: "Private Messaging Enabled" to "Yes", Save.
    page = log_in(admin, **DESKTOP)
    open_portal_settings(page)
    enabled = page.get_by_label("Private Messaging Enabled")
    # "By default, Private Messaging is disabled."
    expect(enabled.locator("option:checked")).to_have_text("No", timeout=WAIT)
    enabled.select_option(label="Yes")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("status")).to_have_text(
        "Portal Settings saved. Private Messaging is enabled.", timeout=WAIT
    )
    expect(page.get_by_role("status")).to_be_visible(timeout=WAIT)
    expect(enabled.locator("option:checked")).to_have_text("Yes", timeout=WAIT)
    shoot(page, screenshot_dir, "1-portal-settings")

    # 2. The client's profile has a sub-tab labeled "Private" beside "Conversation".
    open_profile_from_clients_list(page, household)
    expect_tabs(page, "Conversation", "Private")
    expect_open_feed(page, "Conversation", profile_url(household))
    wait_for_htmx(page)
    mark_page(page)
    tab(page, "Private").click()
    expect_open_feed(page, "Private", private_url(household))
    expect(page.locator("#feed-panel .feed-note")).to_contain_text(
        "Private Messages are only visible between your admin team and The Rivera Household.",
        timeout=WAIT,
    )
    assert_not_reloaded(page)
    shoot(page, screenshot_dir, "2-private-tab")
    # Back and Forward move between the two tabs like between pages.
    page.go_back()
    expect_open_feed(page, "Conversation", profile_url(household))
    page.go_forward()
    expect_open_feed(page, "Private", private_url(household))
    assert_not_reloaded(page)

    # 3. Sending works as on the Conversation feed, and the line beside Send says who reads it.
    text = unique("Question about Sam's last walk: was it shorter than booked?")
    composer = page.locator("#feed form.composer")
    expect(composer.get_by_text("New private message")).to_be_visible(timeout=WAIT)
    expect(composer.locator(".composer-actions")).to_contain_text(STAFF_AUDIENCE, timeout=WAIT)
    expect(composer.locator("#composer-audience")).to_have_text(STAFF_AUDIENCE, timeout=WAIT)
    send(page, text)
    sent = page.locator("#feed .messages article.message.own").filter(has_text=text)
    expect(sent.locator(".message-text")).to_have_text(text, timeout=WAIT)
    expect(page.locator("#message-text")).to_have_value("", timeout=WAIT)
    expect_open_feed(page, "Private", private_url(household))
    assert_not_reloaded(page)
    shoot(page, screenshot_dir, "3-private-message-sent")
    # The message is in the Private feed only, not in the Conversation feed.
    tab(page, "Conversation").click()
    expect_open_feed(page, "Conversation", f"{profile_url(household)}/feeds/conversation")
    expect(page.get_by_text(text)).to_have_count(0, timeout=WAIT)

    # 4. The sitter scheduled with this client sees the profile, but nothing private.
    staff_page = log_in(assigned_staff, **DESKTOP)
    staff_page.goto("/my-clients")
    expect(staff_page.get_by_text(text)).to_have_count(0, timeout=WAIT)
    staff_page.get_by_role("link", name=household.name, exact=True).click()
    expect(staff_page).to_have_url(re.compile(rf"{profile_url(household)}$"), timeout=WAIT)
    expect_tabs(staff_page, "Conversation")
    expect(staff_page.get_by_role("tab", name="Private")).to_have_count(0, timeout=WAIT)
    expect(staff_page.get_by_text(text)).to_have_count(0, timeout=WAIT)
    shoot(staff_page, screenshot_dir, "4-staff-profile")
    expect_private_feed_hidden(staff_page, household, text)


# --- from an enabled business with one private message --------------------------------------

@pytest.fixture
def private_message(app, business, household, admin, make_message):
    """Private Messaging switched on, and one private message from the admin to the client."""
    with app.app_context():
        db.session.get(Business, business.id).private_messaging_enabled = True
        db.session.commit()
    return make_message(
        household, admin, unique("Your invoice for March is attached."), feed=Feed.PRIVATE
    )


def test_office_manager_gets_private_messages_from_permissions_page(
    log_in, household, admin, office_manager, private_message, screenshot_dir
):
    # 5. "Only Admins will be able to access the Private Message feed" until given access.
    manager_page = log_in(office_manager, **DESKTOP)
    open_profile_from_clients_list(manager_page, household)
    expect_tabs(manager_page, "Conversation")
    expect(manager_page.get_by_text(private_message.text)).to_have_count(0, timeout=WAIT)
    response = manager_page.goto(private_url(household))
    assert response.status == 404, f"{private_url(household)} answered {response.status}"
    manager_page.goto(profile_url(household))

    admin_page = log_in(admin, **DESKTOP)
    open_settings(admin_page)
    admin_page.get_by_role("navigation", name="Settings").get_by_role(
        "link", name="Permissions"
    ).click()
    expect(admin_page.get_by_role("heading", name="Permissions")).to_be_visible(timeout=WAIT)
    access = admin_page.get_by_role(
        "switch", name=f"Access to Private Messages for {office_manager.name}"
    )
    expect(access).not_to_be_checked(timeout=WAIT)
    # The checkbox sits under its styled track: click the switch where a person would.
    admin_page.locator("label.switch").filter(has=access).click()
    admin_page.get_by_role("button", name="Save", exact=True).click()
    expect(admin_page.get_by_role("status")).to_have_text("Permissions saved.", timeout=WAIT)
    expect(access).to_be_checked(timeout=WAIT)
    shoot(admin_page, screenshot_dir, "5-permissions")

    # Without logging in again: a reload shows the Private tab, and the tab the message.
    manager_page.reload()
    expect_tabs(manager_page, "Conversation", "Private")
    wait_for_htmx(manager_page)
    tab(manager_page, "Private").click()
    expect_open_feed(manager_page, "Private", private_url(household))
    expect(message_text(manager_page, private_message.text)).to_be_visible(timeout=WAIT)
    expect(manager_page.locator("#composer-audience")).to_have_text(STAFF_AUDIENCE, timeout=WAIT)
    shoot(manager_page, screenshot_dir, "5-office-manager-private")


def test_client_reads_and_replies_privately(
    log_in, household, admin, household_login, assigned_staff, private_message, screenshot_dir
):
    # 6. "only visible between your admin team and the client": the client has the tab too.
    client_page = log_in(household_login, **PHONE)
    expect(client_page).to_have_url(re.compile(rf"{profile_url(household)}$"), timeout=WAIT)
    expect_tabs(client_page, "Conversation", "Private")
    wait_for_htmx(client_page)
    mark_page(client_page)
    tab(client_page, "Private").click()
    expect_open_feed(client_page, "Private", private_url(household))
    expect(message_text(client_page, private_message.text)).to_be_visible(timeout=WAIT)
    expect(client_page.locator("#composer-audience")).to_have_text(CLIENT_AUDIENCE, timeout=WAIT)

    reply = unique("Thanks, I will pay it this week.")
    send(client_page, reply)
    expect(
        client_page.locator("#feed .messages article.message.own .message-text")
        .filter(has_text=reply)
    ).to_have_text(reply, timeout=WAIT)
    assert_not_reloaded(client_page)
    shoot(client_page, screenshot_dir, "6-client-private-reply")
    overflow = client_page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px"

    admin_page = log_in(admin, **DESKTOP)
    admin_page.goto(private_url(household))
    answer = admin_page.locator("#feed .messages article.message").filter(has_text=reply)
    expect(answer.locator(".author")).to_have_text(household_login.name, timeout=WAIT)
    expect(answer.locator(".message-text")).to_have_text(reply, timeout=WAIT)
    shoot(admin_page, screenshot_dir, "6-admin-sees-reply")

    # Staff never see the reply either.
    staff_page = log_in(assigned_staff, **DESKTOP)
    expect_private_feed_hidden(staff_page, household, private_message.text, reply)


def test_switching_private_messaging_off_hides_the_feed_and_on_brings_it_back(
    app, log_in, household, admin, office_manager, household_login, private_message,
    screenshot_dir,
):
    with app.app_context():
        db.session.get(User, office_manager.id).private_messages_access = True
        db.session.commit()
    admin_page = log_in(admin, **DESKTOP)
    manager_page = log_in(office_manager, **DESKTOP)
    client_page = log_in(household_login, **DESKTOP)
    unstored = unique("Sent after Private Messaging was switched off")
    for page in (admin_page, manager_page, client_page):
        page.goto(private_url(household))
        expect(message_text(page, private_message.text)).to_be_visible(timeout=WAIT)

    # The client stays on the Conversation tab, the office manager starts writing privately.
    client_page.goto(profile_url(household))
    wait_for_htmx(client_page)
    wait_for_htmx(manager_page)
    manager_page.locator("#message-text").fill(unstored)

    # 7. Back to "No": the Private feed is gone for everyone, its address a 404.
    set_private_messaging(admin_page, "No")
    shoot(admin_page, screenshot_dir, "7-portal-settings-off")
    open_settings(admin_page)
    admin_page.get_by_role("navigation", name="Settings").get_by_role(
        "link", name="Permissions"
    ).click()
    expect(admin_page.locator("main")).to_contain_text(
        "Private Messaging is currently disabled in Portal Settings.", timeout=WAIT
    )

    # Pages opened before the change say so in place instead of showing or taking anything.
    tab(client_page, "Private").click()
    expect(client_page.locator("#request-error")).to_have_text(
        "That is no longer available to you. Reload the page to see what is.", timeout=WAIT
    )
    expect(client_page.get_by_text(private_message.text)).to_have_count(0, timeout=WAIT)
    expect_open_feed(client_page, "Conversation", profile_url(household))
    manager_page.locator("#feed form.composer").get_by_role("button", name="Send").click()
    expect(manager_page.locator("#request-error")).to_have_text(
        "That is no longer available to you. Reload the page to see what is.", timeout=WAIT
    )
    expect(manager_page.locator("#message-text")).to_have_value(unstored, timeout=WAIT)
    shoot(manager_page, screenshot_dir, "7-office-manager-stale-page")

    for page in (admin_page, manager_page, client_page):
        expect_private_feed_hidden(page, household, private_message.text)
    shoot(client_page, screenshot_dir, "7-client-private-404")
    admin_page.goto(profile_url(household))
    shoot(admin_page, screenshot_dir, "7-admin-profile-off")

    # Switching it on again brings the feed back with the message in it: nothing was deleted.
    set_private_messaging(admin_page, "Yes")
    for page in (admin_page, manager_page, client_page):
        page.goto(profile_url(household))
        expect_tabs(page, "Conversation", "Private")
        page.goto(private_url(household))
        expect(message_text(page, private_message.text)).to_be_visible(timeout=WAIT)
        # The message sent while it was off was refused, not kept.
        expect(page.get_by_text(unstored)).to_have_count(0, timeout=WAIT)
    shoot(admin_page, screenshot_dir, "7-admin-private-on-again")


def test_back_from_another_page_restores_the_whole_private_feed_page(
    log_in, household, admin, private_message
):
    """The Private tab's URL was pushed by htmx; coming back to it must load the whole page,
    not the fragment the browser fetched for the tab (nor a cached copy of it)."""
    page = log_in(admin, **DESKTOP)
    page.goto(profile_url(household))
    wait_for_htmx(page)
    tab(page, "Private").click()
    expect_open_feed(page, "Private", private_url(household))
    follow_nav(page, "Settings")
    expect(page.get_by_role("heading", name="Settings", level=1)).to_be_visible(timeout=WAIT)
    page.go_back()
    expect_open_feed(page, "Private", private_url(household))
    expect(page.get_by_role("heading", name=household.name, level=1)).to_be_visible(timeout=WAIT)
    expect(page.get_by_role("navigation", name="Main")).to_be_visible(timeout=WAIT)
    expect(message_text(page, private_message.text)).to_be_visible(timeout=WAIT)
    page.go_back()
    expect_open_feed(page, "Conversation", profile_url(household))
    expect(page.get_by_role("navigation", name="Main")).to_be_visible(timeout=WAIT)
    page.go_forward()
    page.go_forward()
    expect(page.get_by_role("heading", name="Settings", level=1)).to_be_visible(timeout=WAIT)
