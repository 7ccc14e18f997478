"""Unsend and the delivery line in a real browser, at desktop and phone widths: the countdown,
the line settling by itself once the worker has sent, a failure with its Retry."""

import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import update

from portal.extensions import db
from portal.models import DeliveryStatus, Notification, User
from portal.notifications import worker

from ..helpers import confirmed_phone, update_row
from .helpers import HTMX_READY, WAIT

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("quick_polls")]

SIZES = {
    "desktop": {"viewport": {"width": 1280, "height": 900}},
    "phone": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True},
}


def deliver_now(app) -> None:
    with app.app_context():
        db.session.execute(update(Notification).values(due_at=db.func.now()))
        db.session.commit()
    while worker.run_once(app, "test-worker"):
        pass


def open_feed(log_in, user, household, size: str) -> Page:
    page = log_in(user, **SIZES[size])
    page.goto(f"/clients/{household.id}")
    page.wait_for_function(HTMX_READY, timeout=WAIT)
    return page


@pytest.mark.parametrize("size", SIZES)
def test_unsend_countdown_then_the_line_settles_by_itself(
    app, log_in, household, admin, household_login, assigned_staff, size, screenshot_dir
):
    app.config.update(MAIL_TRANSPORT="console", NOTIFICATION_DELAY_SECONDS=20)
    update_row(app, User, assigned_staff.id, **confirmed_phone("+15550102030"), notify_sms=True)
    page = open_feed(log_in, admin, household, size)
    page.locator("#message-text").fill("Sam is running ten minutes late today.")
    page.get_by_role("button", name="Send", exact=True).click()
    sent = page.locator("#feed .messages article.message.own")
    expect(sent.get_by_role("button", name="Unsend")).to_be_visible(timeout=WAIT)
    left = sent.locator(".unsend-left")
    expect(left).to_have_text(re.compile(r"^1\d s left · nobody notified yet$"))
    first = left.inner_text()
    expect(left).not_to_have_text(first, timeout=2_500)  # it counts down
    expect(sent.locator(".delivery")).to_have_text(
        "Waiting to notify Carla Client (email) and Sam Sitter (email, text message)")
    sent.scroll_into_view_if_needed()
    page.screenshot(path=screenshot_dir / f"delivery-unsend-{size}.png", full_page=True)

    # The worker sends; the line settles in place, with no reload (it asks again by itself).
    deliver_now(app)
    expect(sent.locator(".delivery")).to_have_text(
        "Emailed Carla Client ✓ · Emailed Sam Sitter ✓ · Texted Sam Sitter ✓", timeout=WAIT)
    expect(sent.locator(".delivery")).not_to_have_attribute("hx-get", re.compile("."))


@pytest.mark.parametrize("size", SIZES)
def test_delivery_line_with_seen_and_a_failure_to_retry(
    app, log_in, household, admin, household_login, assigned_staff, make_message, size,
    screenshot_dir
):
    app.config.update(MAIL_TRANSPORT="console", NOTIFICATION_DELAY_SECONDS=0)
    update_row(app, User, assigned_staff.id, **confirmed_phone("+15550102030"), notify_sms=True)
    question = make_message(household, household_login, "Can Biscuit get an extra walk on Friday?")
    answer = make_message(household, admin, "Yes! Sam will come at 2pm on Friday.")
    deliver_now(app)
    with app.app_context():
        db.session.execute(
            update(Notification)
            .where(Notification.message_id == answer.id, Notification.recipient_id
                   == assigned_staff.id, Notification.channel == "sms")
            .values(status=DeliveryStatus.FAILED, last_error="Twilio answered 400"))
        db.session.commit()
    client_page = open_feed(log_in, household_login, household, "desktop")  # she reads it
    expect(client_page.get_by_text("Sam will come at 2pm")).to_be_visible()

    page = open_feed(log_in, admin, household, size)
    line = page.locator(f"#delivery-{answer.id}")
    expect(line).to_contain_text("Emailed Carla Client ✓ · Emailed Sam Sitter ✓ · "
                                 "Text message to Sam Sitter failed · Seen by Carla Client")
    expect(page.locator(f"#delivery-{question.id}")).to_contain_text(
        "Emailed Alice Admin ✓ · Emailed Sam Sitter ✓")
    page.locator(f"#message-{answer.id}").scroll_into_view_if_needed()
    page.screenshot(path=screenshot_dir / f"delivery-line-{size}.png", full_page=True)

    line.get_by_role("button", name=re.compile("^Retry")).click()
    expect(line).to_contain_text("Waiting to notify Sam Sitter (text message)", timeout=WAIT)
    deliver_now(app)
    expect(line).to_contain_text("Texted Sam Sitter ✓", timeout=WAIT)
