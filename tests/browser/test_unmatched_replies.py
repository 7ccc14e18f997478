"""Settings > Unmatched replies in a real browser: File into and Discard swap the reply out in
place (no reload), the menu's count follows, and the page fits a phone."""

import re
from email.message import EmailMessage
from email.utils import make_msgid

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from portal.extensions import db
from portal.inbound.ingest import ingest_email
from portal.models import Feed, InboundMessage, InboundOutcome, Message
from portal.reply_addresses import ReplyToken, address_for

from .helpers import WAIT, assert_not_reloaded, mark_page, wait_for_htmx

pytestmark = pytest.mark.browser

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


@pytest.fixture
def two_replies(app, household, household_login):
    """Two replies to Carla's reply address from an address the portal does not know."""
    app.config["REPLY_DOMAIN"] = "replies.example.com"
    with app.app_context():
        address = address_for(ReplyToken(household.business_id, household.id,
                                         Feed.CONVERSATION, household_login.id))
        for number, text in enumerate(["Rex is limping on his front paw.",
                                       "The gate code changed to 4321."]):
            message = EmailMessage()
            message["From"] = f"Neighbour {number} <neighbour{number}@example.org>"
            message["To"] = address
            message["Subject"] = "Re: Rex's walk"
            message["Message-ID"] = make_msgid(domain="example.org")
            message.set_content(text)
            assert ingest_email(bytes(message)).kind == InboundOutcome.UNMATCHED


def test_file_and_discard_in_place(log_in, admin, household, two_replies):
    page = log_in(admin)
    page.goto("/settings/unmatched-replies")
    wait_for_htmx(page)
    mark_page(page)
    count = page.locator("#unmatched-replies-count")
    expect(count).to_have_text("2")
    limping = page.locator(".reply", has_text="Rex is limping")
    expect(limping.get_by_label("File into")).to_have_value(str(household.id))
    limping.get_by_role("button", name="File").click()
    expect(page.get_by_role("status").filter(has_text="Filed into")).to_be_visible()
    expect(count).to_have_text("1")
    gate = page.locator(".reply", has_text="The gate code")
    gate.get_by_role("link", name="Discard").click()
    expect(gate.get_by_text("Discard this reply?")).to_be_visible()
    gate.get_by_role("link", name="Keep").click()
    expect(gate.get_by_text("Discard this reply?")).to_be_hidden()
    gate.get_by_role("link", name="Discard").click()
    gate.get_by_role("button", name="Discard").click()
    expect(page.get_by_text("The reply was discarded.")).to_be_visible()
    expect(count).to_have_text("")
    assert_not_reloaded(page)
    page.get_by_role("link", name="Open it").click()
    expect(page.get_by_text("Rex is limping on his front paw.")).to_be_visible()
    expect(page.get_by_text("via email")).to_be_visible()


def test_capture_unmatched_replies_on_phone(log_in, admin, two_replies, screenshot_dir):
    page = log_in(admin, **PHONE)
    page.goto("/settings/unmatched-replies")
    expect(page.get_by_text("The gate code changed")).to_be_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways ({width}px)"
    page.screenshot(path=screenshot_dir / "unmatched-replies-phone.png", full_page=True)


def test_file_pressed_again_while_the_first_is_on_its_way_makes_one_message(
    app, log_in, admin, household, two_replies
):
    """On a slow network the person presses File again while the first File is on its way:
    one message, and the other reply still waits."""
    page = log_in(admin)
    page.goto("/settings/unmatched-replies")
    wait_for_htmx(page)
    held = []
    page.route(re.compile(r"/settings/unmatched-replies/\d+/file$"),
               lambda route: held.append(route))
    limping = page.locator(".reply", has_text="Rex is limping")
    limping.get_by_role("button", name="File").click()
    page.wait_for_timeout(300)
    limping.get_by_role("button", name="File").click(force=True)
    page.wait_for_timeout(200)
    for route in list(held):
        route.continue_()
    page.unroute(re.compile(r"/settings/unmatched-replies/\d+/file$"))
    expect(page.get_by_role("status").filter(has_text="Filed into").first).to_be_visible(
        timeout=WAIT)
    with app.app_context():
        filed = db.session.scalars(select(Message).where(
            Message.client_id == household.id, Message.text.contains("Rex is limping"))).all()
        outcomes = sorted(row.outcome for row in db.session.scalars(select(InboundMessage)))
    assert len(filed) == 1
    assert outcomes == [InboundOutcome.FILED, InboundOutcome.UNMATCHED]


def test_capture_unmatched_replies_on_desktop(log_in, admin, two_replies, screenshot_dir):
    page = log_in(admin, viewport={"width": 1280, "height": 900})
    page.goto("/settings/unmatched-replies")
    expect(page.get_by_text("The gate code changed")).to_be_visible()
    page.screenshot(path=screenshot_dir / "unmatched-replies-desktop.png", full_page=True)
