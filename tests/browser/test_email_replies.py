"""A client answers a notification email: the reply, delivered over SMTP to the portal's
receiver, appears in the admin's open Conversation feed without a reload."""

import smtplib

import pytest
from playwright.sync_api import expect

from ..helpers import reply_address, reply_email
from .helpers import WAIT, assert_not_reloaded, mark_page, wait_for_htmx

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("quick_polls")]


def test_email_reply_arrives_in_the_open_feed(app, log_in, reply_receiver, household,
                                              household_login, admin):
    page = log_in(admin)
    page.goto(f"/clients/{household.id}")
    wait_for_htmx(page)
    mark_page(page)
    page.locator("#message-text").fill("Half-written note")

    reply_to = reply_address(app, household_login)
    raw = reply_email(household_login.email, reply_to,
                      "The gate code changed to 4321.\n\n"
                      "On Mon, Dec 7, 2026 at 9:14 AM Happy Tails <portal@happytails.example> "
                      "wrote:\n> Alice Admin wrote in The Rivera Household:\n> Is the gate code "
                      "still 1234?\n")
    with smtplib.SMTP("127.0.0.1", reply_receiver.port, timeout=30) as smtp:
        assert smtp.sendmail(household_login.email, [reply_to], raw) == {}

    arrived = page.locator("#feed .messages article.message").filter(
        has_text="The gate code changed to 4321.")
    expect(arrived).to_have_count(1, timeout=WAIT)
    expect(arrived).to_contain_text("Carla Client")
    expect(arrived.locator(".message-via")).to_have_text("via email")
    # What she wrote, without the notification she answered.
    expect(arrived.locator(".message-text")).to_have_text("The gate code changed to 4321.")
    expect(page.locator("#message-text")).to_have_value("Half-written note")
    assert_not_reloaded(page)
