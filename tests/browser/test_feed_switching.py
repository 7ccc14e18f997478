"""Switching from Conversation to Private on a slow connection: the composer can only ever post
into the feed it is shown with.

The Private tab's request is held at the browser's edge, at two moments: before the portal has
seen it, and after the portal has answered but before the browser has the answer. At each, the
person clicks into the composer still on screen, types and presses Send, the way a person does
(mouse and keyboard, not form-filling). The text must end in Private or nowhere, never in
Conversation, and no staff member may be told of it. The same for the admin team's client
profile and the client's own portal, with JavaScript and without.
"""

import contextlib
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, Route, expect
from sqlalchemy import select

from portal.extensions import db
from portal.models import Feed, Message, Notification, Role, User

from ..helpers import set_private_messaging
from .helpers import HTMX_READY, WAIT, wait_until

pytestmark = pytest.mark.browser

STAGES = ("before the portal sees it", "after the portal answered")
LEFT_PAGE = "Not sent: you opened another feed before this message went."


@dataclass
class HeldTab:
    """GET requests for one path held until release(): at the "request" stage the portal has not
    seen them; at the "response" stage it has answered and the browser waits for the answer."""

    page: Page
    path: str
    stage: str
    held: list = field(default_factory=list)

    def __post_init__(self):
        self.page.route(lambda url: urlsplit(url).path == self.path, self._hold)

    def _hold(self, route: Route) -> None:
        if route.request.method != "GET":
            route.continue_()
        elif self.stage == STAGES[1]:
            self.held.append((route, route.fetch()))
        else:
            self.held.append((route, None))

    def wait_until_held(self) -> None:
        wait_until(self.page, lambda: self.held, f"the request for {self.path}")

    def release(self) -> None:
        for route, response in self.held:
            # The browser may have given the request up (a form was sent instead).
            with contextlib.suppress(PlaywrightError):
                route.fulfill(response=response) if response else route.continue_()
        self.page.unroute_all(behavior="ignoreErrors")


# The page notes each answer htmx has dealt with: its handlers run on "load", before "loadend".
NOTE_HANDLED_ANSWERS = """() => {
    window.__handled = [];
    const send = XMLHttpRequest.prototype.send;
    XMLHttpRequest.prototype.send = function (...body) {
        this.addEventListener("loadend", () => window.__handled.push(this.responseURL));
        return send.apply(this, body);
    };
}"""


def hold_answers(page: Page, matches) -> list:
    """The answers to requests whose URL `matches`: fetched from the portal, kept from the
    browser until open_private_before_the_answer lets them through."""
    page.evaluate(NOTE_HANDLED_ANSWERS)
    held: list = []
    page.route(matches, lambda route: held.append((route, route.fetch())))
    return held


def open_private_before_the_answer(page: Page, held: list) -> None:
    """Once the held request has reached the portal, opens Private; then lets the answer in."""
    wait_until(page, lambda: held, "the held request")
    page.get_by_role("tab", name="Private").click()
    expect(page.locator("#feed-panel")).to_have_attribute("data-feed", "private", timeout=WAIT)
    route, response = held[0]
    route.fulfill(response=response)
    # The answer lands (or finds nothing to land in).
    page.wait_for_function("url => window.__handled.includes(url)", arg=route.request.url,
                           timeout=WAIT)


def click_centre(page: Page, box: dict) -> None:
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)


def type_and_send_as_a_person(page: Page, text: str, boxes: dict) -> None:
    """Click into the box where the composer was, type, click where Send was. Raw mouse and
    keyboard: they do not wait for the page to be ready, as a person does not."""
    click_centre(page, boxes["text"])
    page.keyboard.type(text)
    click_centre(page, boxes["send"])


def composer_boxes(page: Page) -> dict:
    composer = page.locator("#feed form.composer")
    return {
        "text": composer.locator("#message-text").bounding_box(),
        "send": composer.locator(".composer-actions button[type=submit]").bounding_box(),
    }


def stored(app, text: str) -> list[Message]:
    with app.app_context():
        return list(db.session.scalars(select(Message).where(Message.text == text)))


def staff_notified(app, text: str) -> int:
    with app.app_context():
        return len(db.session.scalars(
            select(Notification.id)
            .join(Message, Message.id == Notification.message_id)
            .join(User, User.id == Notification.recipient_id)
            .where(Message.text == text, User.role == Role.STAFF)
        ).all())


def send_privately(app, page: Page) -> None:
    """Typed once Private is open, a message goes into Private, and no staff member hears of it."""
    text = f"typed in Private {uuid.uuid4().hex[:8]}"
    page.locator("#message-text").fill(text)
    page.get_by_role("button", name="Send privately").click()
    expect(page.locator("#feed .messages .message-text").filter(has_text=text)).to_have_count(1)
    [message] = stored(app, text)
    assert message.feed == Feed.PRIVATE
    assert staff_notified(app, text) == 0


@pytest.fixture
def viewers(app, business, household, household_login, admin, assigned_staff, preferred_sitter):
    """Private Messaging on; two staff members see the Conversation feed and would be told."""
    set_private_messaging(app, business, True)
    return {"admin team": admin, "client": household_login}


def open_conversation(log_in, user, household, js: bool) -> Page:
    page = log_in(user, java_script_enabled=js, viewport={"width": 1280, "height": 900})
    page.goto(f"/clients/{household.id}")
    expect(page.locator("#feed-panel")).to_have_attribute("data-feed", "conversation")
    if js:
        page.wait_for_function(HTMX_READY, timeout=WAIT)
    return page


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("who", ["admin team", "client"])
def test_send_during_switch_with_javascript_ends_in_private_or_nowhere(
    app, log_in, household, viewers, who, stage, screenshot_dir
):
    page = open_conversation(log_in, viewers[who], household, js=True)
    boxes = composer_boxes(page)
    private_path = f"/clients/{household.id}/feeds/private"
    held = HeldTab(page, private_path, stage)
    early = f"typed while switching {uuid.uuid4().hex[:8]}"
    sends = []
    page.on("request", lambda request: request.method == "POST"
            and urlsplit(request.url).path.endswith("/messages") and sends.append(request.url))

    page.get_by_role("tab", name="Private").click()
    held.wait_until_held()
    # The feed being left is visibly out of use: dimmed, busy, nothing to type in or press.
    feed = page.locator("#feed")
    expect(feed).to_have_class("card feed feed-conversation switching", timeout=WAIT)
    expect(feed.locator(".feed-switching")).to_have_text("Opening Private…")
    expect(page.locator("#feed-panel")).to_have_attribute("aria-busy", "true")
    expect(page.locator("#message-text")).to_be_disabled()
    send_button = page.locator("#feed form.composer .composer-actions button[type=submit]")
    expect(send_button).to_be_disabled()
    if stage == STAGES[0]:
        page.screenshot(path=screenshot_dir / f"switching-{who.replace(' ', '-')}.png")
    type_and_send_as_a_person(page, early, boxes)
    page.keyboard.press("Enter")
    assert stored(app, early) == []

    held.release()
    expect(page.locator("#feed-panel")).to_have_attribute("data-feed", "private", timeout=WAIT)
    expect(page).to_have_url(f"{page.url.split('/clients')[0]}{private_path}")
    # The Private composer is its own, says so on its button, and carries no draft over.
    composer = page.locator("#feed form.composer")
    expect(composer.locator("#message-text")).to_have_value("")
    expect(composer.locator("#message-text")).to_be_enabled()
    expect(composer.get_by_role("button", name="Send privately")).to_be_visible()
    expect(composer.locator(".composer-label")).to_have_text("New private message")

    send_privately(app, page)
    assert stored(app, early) == []
    # Nothing left the page before Send privately: not even a post the portal refused.
    assert [urlsplit(url).path for url in sends] == [f"{private_path}/messages"]


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("who", ["admin team", "client"])
def test_send_during_switch_without_javascript_ends_nowhere(
    app, log_in, household, viewers, who, stage
):
    """Without JavaScript the browser keeps the old page usable while the next one loads, and a
    form sent meanwhile replaces that navigation. Following the tab pings the portal first,
    so the send from the page being left is refused, its text kept where it was typed."""
    page = open_conversation(log_in, viewers[who], household, js=False)
    boxes = composer_boxes(page)
    private_path = f"/clients/{household.id}/feeds/private"
    held = HeldTab(page, private_path, stage)
    text = f"typed while the page loads {uuid.uuid4().hex[:8]}"

    with page.expect_request(lambda request: "/left/" in request.url):
        page.get_by_role("tab", name="Private").click(no_wait_after=True)
    held.wait_until_held()
    type_and_send_as_a_person(page, text, boxes)
    error = page.locator("#feed form.composer .field-error")
    expect(error).to_contain_text(LEFT_PAGE, timeout=WAIT)
    held.release()
    expect(error).to_contain_text("press Send again")
    # Still the Conversation page, the text kept in its own composer, and nothing posted.
    expect(page.locator("#feed-panel")).to_have_attribute("data-feed", "conversation")
    expect(page.locator("#message-text")).to_have_value(text)
    assert stored(app, text) == []
    assert staff_notified(app, text) == 0

    # Opened again, Private takes its own messages; the refused text never went there.
    page.get_by_role("tab", name="Private").click()
    expect(page.locator("#feed-panel")).to_have_attribute("data-feed", "private", timeout=WAIT)
    expect(page.locator("#message-text")).to_have_value("")
    send_privately(app, page)


def test_a_send_already_on_its_way_stays_in_its_own_feed(app, log_in, household, viewers):
    """Send pressed in Conversation, then Private clicked before the answer came: the message
    is the Conversation one it was written as, and its answer lands nowhere in Private."""
    page = open_conversation(log_in, viewers["admin team"], household, js=True)
    create_path = f"/clients/{household.id}/feeds/conversation/messages"
    posts = hold_answers(page, lambda url: urlsplit(url).path == create_path)
    text = f"written for Conversation {uuid.uuid4().hex[:8]}"
    page.locator("#message-text").fill(text)
    page.get_by_role("button", name="Send", exact=True).click()
    open_private_before_the_answer(page, posts)
    expect(page.locator("#feed").get_by_text(text)).to_have_count(0)
    expect(page.locator("#feed form.composer")).to_have_attribute("data-feed", "private")
    expect(page.locator("#message-text")).to_have_value("")
    [message] = stored(app, text)
    assert message.feed == Feed.CONVERSATION
    # Back in Conversation the message is there once, and its text is not offered again.
    page.get_by_role("tab", name="Conversation").click()
    expect(page.locator("#feed-panel")).to_have_attribute("data-feed", "conversation",
                                                          timeout=WAIT)
    expect(page.locator("#feed .messages .message-text").filter(has_text=text)).to_have_count(1)
    expect(page.locator("#message-text")).to_have_value("")


def test_a_draft_stays_with_its_own_feed(app, log_in, household, viewers):
    page = open_conversation(log_in, viewers["admin team"], household, js=True)
    page.locator("#message-text").fill("Half a thought for the sitters")
    page.get_by_role("tab", name="Private").click()
    expect(page.locator("#feed-panel")).to_have_attribute("data-feed", "private", timeout=WAIT)
    expect(page.locator("#message-text")).to_have_value("")
    page.locator("#message-text").fill("Invoice question")
    page.get_by_role("tab", name="Conversation").click()
    expect(page.locator("#feed-panel")).to_have_attribute("data-feed", "conversation",
                                                          timeout=WAIT)
    expect(page.locator("#message-text")).to_have_value("Half a thought for the sitters")
    page.get_by_role("tab", name="Private").click()
    expect(page.locator("#feed-panel")).to_have_attribute("data-feed", "private", timeout=WAIT)
    expect(page.locator("#message-text")).to_have_value("Invoice question")
    assert stored(app, "Half a thought for the sitters") == stored(app, "Invoice question") == []


def test_unsent_text_comes_back_even_when_another_feed_opened_meanwhile(
    app, log_in, household, viewers
):
    """Unsend pressed, then Private opened before its answer came: the text is not lost. It
    waits with Conversation's draft, after what was typed there, for when it is opened again."""
    page = open_conversation(log_in, viewers["admin team"], household, js=True)
    page.locator("#message-text").fill("Gate code is 4411")
    page.get_by_role("button", name="Send", exact=True).click()
    sent = page.locator("#feed .messages article.message.own")
    expect(sent.get_by_role("button", name="Unsend")).to_be_visible(timeout=WAIT)
    page.locator("#message-text").fill("Another thought")
    unsends = hold_answers(page, lambda url: url.endswith("/unsend"))
    sent.get_by_role("button", name="Unsend").click()
    open_private_before_the_answer(page, unsends)
    expect(page.locator("#message-text")).to_have_value("")  # never into Private
    page.get_by_role("tab", name="Conversation").click()
    expect(page.locator("#feed-panel")).to_have_attribute("data-feed", "conversation",
                                                          timeout=WAIT)
    expect(page.locator("#message-text")).to_have_value("Another thought\n\nGate code is 4411")
    expect(page.locator(".tombstone")).to_contain_text("Message unsent by Alice Admin")
