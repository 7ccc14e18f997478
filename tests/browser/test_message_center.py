"""The Message Center in a real browser: filters and search swap the list in place, More appends,
and the page fits a phone."""

import re
from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect

from portal.extensions import db
from portal.models import Client, Feed, FeedSummary, Role, User, utcnow
from portal.services import messages

from ..helpers import set_private_messaging
from .helpers import HTMX_READY, WAIT

pytestmark = pytest.mark.browser

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


def wait_for_htmx(page: Page) -> None:
    page.wait_for_function(HTMX_READY, timeout=WAIT)


def post(app, client, author, text, feed=Feed.CONVERSATION, hours_ago=0.0):
    """A message written through the service, then dated back as if sent earlier."""
    with app.app_context():
        message = messages.post_message(
            db.session.get(User, author.id), db.session.get(Client, client.id), feed, text
        )
        if hours_ago:
            moment = utcnow() - timedelta(hours=hours_ago)
            message.created_at = moment
            summary = db.session.get(FeedSummary, (client.id, feed))
            summary.last_message_at = moment
            if summary.awaiting_reply_since is not None:
                summary.awaiting_reply_since = moment
            db.session.commit()


@pytest.fixture
def busy_business(app, business, make_client, make_user, admin, assigned_staff):
    """Several households at different points of their conversations."""
    set_private_messaging(app, business, True)
    people = {}
    for name, login in [("The Rivera Household", "Carla Rivera"),
                        ("Okafor Family", "Dan Okafor"),
                        ("Mei & Tom Chen", "Mei Chen"),
                        ("The Abernathy-Wellington Residence", "Priya Abernathy"),
                        ("Jonas Berg", "Jonas Berg")]:
        record = make_client(name=name)
        people[name] = (record, make_user(Role.CLIENT, client=record, name=login))
    rivera, carla = people["The Rivera Household"]
    okafor, dan = people["Okafor Family"]
    chen, mei = people["Mei & Tom Chen"]
    aber, priya = people["The Abernathy-Wellington Residence"]
    berg, _ = people["Jonas Berg"]
    post(app, berg, admin, "Welcome to Happy Tails! Your first walk is booked.", hours_ago=80)
    post(app, aber, priya, "Could Luna get her evening meds at 6 instead of 7? She has been "
         "restless at night and the vet suggested an earlier dose.", hours_ago=26)
    post(app, chen, mei, "Key is under the blue pot.", hours_ago=5)
    post(app, chen, admin, "Got it, thanks Mei!", hours_ago=4.5)
    post(app, okafor, dan, "About the invoice for March", feed=Feed.PRIVATE, hours_ago=3)
    post(app, okafor, dan, "Can we pay it in two parts?", feed=Feed.PRIVATE, hours_ago=2.9)
    post(app, rivera, assigned_staff, "Walk done: 45 minutes, Biscuit was a star.", hours_ago=1)
    post(app, rivera, carla, "Thank you! Did he drink enough water?", hours_ago=0.2)
    return people


def test_capture_message_center_on_desktop(log_in, admin, busy_business, screenshot_dir):
    page = log_in(admin, viewport={"width": 1280, "height": 800})
    page.goto("/messages")
    expect(page.locator("li.thread")).to_have_count(5, timeout=WAIT)
    expect(page.get_by_role("link", name=re.compile(r"^Messages\s*,?\s*6 unread$"))).to_be_visible()
    page.screenshot(path=screenshot_dir / "message-center-desktop.png", full_page=True)


def test_capture_message_center_on_phone(log_in, admin, busy_business, screenshot_dir):
    page = log_in(admin, **PHONE)
    page.goto("/messages")
    expect(page.locator("li.thread")).to_have_count(5, timeout=WAIT)
    page.screenshot(path=screenshot_dir / "message-center-phone.png", full_page=True)
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px"


def test_filters_and_search_swap_the_list_in_place(log_in, admin, busy_business):
    page = log_in(admin, viewport={"width": 1280, "height": 800})
    page.goto("/messages")
    wait_for_htmx(page)
    page.evaluate("window.__noReload = 1")
    page.get_by_text("Awaiting reply", exact=True).click()
    expect(page.locator("li.thread")).to_have_count(3, timeout=WAIT)
    expect(page.locator("li.thread .waiting").first).to_have_text(re.compile(r"^Waiting "))
    expect(page).to_have_url(re.compile(r"show=awaiting"), timeout=WAIT)
    page.get_by_text("All", exact=True).click()
    page.get_by_label("Search by client name").fill("chen")
    expect(page.locator("li.thread")).to_have_count(1, timeout=WAIT)
    expect(page.locator("li.thread .thread-client")).to_have_text("Mei & Tom Chen")
    assert page.evaluate("window.__noReload") == 1, "the page was reloaded"


def test_more_appends_the_next_threads(app, log_in, admin, business, make_client,
                                       household_login):
    with app.app_context():
        writer = db.session.get(User, household_login.id)
        for number in range(27):
            record = db.session.get(Client, make_client(name=f"Client {number:02}").id)
            messages.post_message(writer, record, Feed.CONVERSATION, f"note {number}")
    page = log_in(admin, viewport={"width": 1280, "height": 800})
    page.goto("/messages")
    wait_for_htmx(page)
    expect(page.locator("li.thread")).to_have_count(25, timeout=WAIT)
    page.get_by_role("link", name="More").click()
    expect(page.locator("li.thread")).to_have_count(27, timeout=WAIT)
    expect(page.get_by_role("link", name="More")).to_have_count(0)
    expect(page.locator("li.thread .thread-client").last).to_have_text("Client 00")


def test_opening_a_thread_clears_its_badge(log_in, admin, busy_business):
    page = log_in(admin, viewport={"width": 1280, "height": 800})
    page.goto("/messages")
    page.locator("li.thread", has_text="The Rivera Household").get_by_role("link").click()
    expect(page).to_have_url(re.compile(r"/feeds/conversation$"), timeout=WAIT)
    expect(page.get_by_role("link", name=re.compile(r"^Messages\s*,?\s*4 unread$"))).to_be_visible()
