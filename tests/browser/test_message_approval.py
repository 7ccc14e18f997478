"""Staff message approval in a real browser: a sitter's message waits as "Awaiting approval", the
admin team approves it from the client's page, and it arrives in the household's open feed; on a
phone too. Rejecting with a note, and Approve clicked twice on a slow network."""

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from portal.extensions import db
from portal.models import Business, Message, ScheduledMessage

from ..helpers import png_bytes, update_row
from .helpers import WAIT, assert_not_reloaded, mark_page, wait_for_htmx

pytestmark = pytest.mark.browser

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
DESKTOP = {"viewport": {"width": 1280, "height": 900}}


@pytest.fixture
def approval_on(app, business):
    update_row(app, Business, business.id, staff_messages_need_approval=True)


def texts(app, model) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(select(model.text).order_by(model.id)))


def write_for_approval(log_in, sitter, household, text, tmp_path, options):
    """The sitter writes with a photo; it waits, listed for them as awaiting approval."""
    page = log_in(sitter, **options)
    page.goto(f"/clients/{household.id}/feeds/conversation")
    wait_for_htmx(page)
    photo = tmp_path / "couch.png"
    photo.write_bytes(png_bytes((120, 90), "orange"))
    composer = page.locator("#feed form.composer")
    composer.locator("#message-text").fill(text)
    composer.locator("#message-files").set_input_files(str(photo))
    composer.get_by_role("button", name="Send", exact=True).click()
    said = page.locator("#scheduled-said-conversation")
    expect(said).to_contain_text("Sent for approval", timeout=WAIT)
    item = page.locator("#scheduled-conversation .scheduled-item")
    expect(item).to_contain_text("Awaiting approval")
    expect(item).to_contain_text(text)
    expect(item.get_by_role("button", name=re.compile("^Approve"))).to_have_count(0)
    expect(page.locator("#feed .messages article.message")).to_have_count(0)
    return page


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_approve_a_held_staff_message_and_it_arrives_in_the_clients_open_feed(
        app, log_in, approval_on, admin, assigned_staff, household, household_login,
        screenshot_dir, quick_polls, tmp_path, device):
    options = PHONE if device == "phone" else DESKTOP
    text = "Biscuit napped on the couch after his walk"
    sitter_page = write_for_approval(log_in, assigned_staff, household, text, tmp_path, options)
    sitter_page.screenshot(path=screenshot_dir / f"approval-awaiting-staff-{device}.png",
                           full_page=True)

    household_page = log_in(household_login, **options)
    expect(household_page.locator("#feed")).to_be_visible()
    expect(household_page.get_by_text(text)).to_have_count(0)

    page = log_in(admin, **options)
    page.goto(f"/clients/{household.id}/feeds/conversation")
    wait_for_htmx(page)
    mark_page(page)
    item = page.locator("#scheduled-conversation .scheduled-item")
    expect(item).to_contain_text("Awaiting approval")
    expect(item).to_contain_text("by Sam Sitter")
    expect(item.locator("img")).to_have_count(1)  # the photo it carries, for the reviewer
    expect(page.locator(".held-badge").first).to_contain_text("1")
    item.scroll_into_view_if_needed()
    page.screenshot(path=screenshot_dir / f"approval-review-{device}.png", full_page=True)

    item.get_by_role("button", name=re.compile("^Approve")).click()
    expect(page.locator("#scheduled-said-conversation")).to_have_text(
        "Approved and sent to The Rivera Household.")
    expect(item).to_have_count(0)
    posted = page.locator("#feed .messages article.message")
    expect(posted).to_have_count(1, timeout=WAIT)
    expect(posted).to_contain_text(text)
    expect(posted.locator("img")).to_have_count(1)
    assert_not_reloaded(page)
    page.screenshot(path=screenshot_dir / f"approval-approved-{device}.png", full_page=True)

    # The household's open feed receives it as any new message.
    arrived = household_page.locator("#feed .messages article.message", has_text=text)
    expect(arrived).to_be_visible(timeout=WAIT * 2)
    expect(arrived.locator("img")).to_have_count(1)
    household_page.screenshot(path=screenshot_dir / f"approval-arrived-client-{device}.png",
                              full_page=True)
    # The sitter's list empties as the feed asks again; the message is theirs in the feed.
    expect(sitter_page.locator("#feed .messages article.message", has_text=text)).to_be_visible(
        timeout=WAIT * 2)
    assert texts(app, Message) == [text]


def test_reject_with_a_note_on_a_phone(app, log_in, approval_on, admin, assigned_staff,
                                       household, screenshot_dir, tmp_path):
    write_for_approval(log_in, assigned_staff, household, "dog ok lol", tmp_path, PHONE)
    page = log_in(admin, **PHONE)
    page.goto(f"/clients/{household.id}/feeds/conversation")
    wait_for_htmx(page)
    item = page.locator("#scheduled-conversation .scheduled-item")
    item.locator("summary", has_text="Reject").click()
    item.get_by_label("Note to Sam").fill("Please tell them how the walk went, in full.")
    page.screenshot(path=screenshot_dir / "approval-reject-phone.png", full_page=True)
    item.get_by_role("button", name="Reject", exact=True).click()
    expect(page.locator("#scheduled-said-conversation")).to_have_text(
        "Not approved: Sam Sitter was sent your note.")
    expect(page.locator("#scheduled-conversation .scheduled-item")).to_have_count(0)

    sitter = log_in(assigned_staff, **PHONE)
    sitter.goto(f"/clients/{household.id}/feeds/conversation")
    rejected = sitter.locator("#scheduled-conversation .scheduled-item")
    expect(rejected).to_contain_text("Not approved")
    expect(rejected).to_contain_text("Please tell them how the walk went, in full.")
    rejected.scroll_into_view_if_needed()
    sitter.screenshot(path=screenshot_dir / "approval-rejected-staff-phone.png", full_page=True)
    rejected.get_by_role("button", name=re.compile("^Dismiss")).click()
    expect(rejected).to_have_count(0)
    assert texts(app, Message) == []


def test_approve_clicked_twice_on_a_slow_network_posts_once(app, log_in, approval_on, admin,
                                                            assigned_staff, household,
                                                            tmp_path):
    write_for_approval(log_in, assigned_staff, household, "Only once", tmp_path, DESKTOP)
    page = log_in(admin, **DESKTOP)
    page.goto(f"/clients/{household.id}/feeds/conversation")
    wait_for_htmx(page)

    def slowly(route):
        page.wait_for_timeout(800)
        route.continue_()

    page.route("**/approve", slowly)
    button = page.locator("#scheduled-conversation").get_by_role(
        "button", name=re.compile("^Approve"))
    button.click()
    button.click(force=True, no_wait_after=True, timeout=WAIT)  # mid-swap: disabled, or gone
    expect(page.locator("#feed .messages article.message")).to_have_count(1, timeout=WAIT * 2)
    assert texts(app, Message) == ["Only once"]
    assert texts(app, ScheduledMessage) == ["Only once"]
