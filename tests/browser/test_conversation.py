"""The Conversation feed in a real browser: htmx swaps in place, and the same pages without JS."""

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select, update

from portal.extensions import db
from portal.models import DeliveryStatus, Message, Notification, User
from portal.services import messages

from .helpers import (
    WAIT,
    assert_not_reloaded,
    expect_focused,
    mark_page,
    send,
    wait_for_htmx,
    wait_for_polls,
)

pytestmark = pytest.mark.browser


def conversation_url(household) -> str:
    return f"/clients/{household.id}/feeds/conversation"


def test_send_and_unsend_message_without_reload(
    app, log_in, household, household_login, assigned_staff
):
    client_page = log_in(household_login)
    expect(client_page).to_have_url(re.compile(rf"/clients/{household.id}$"), timeout=WAIT)
    wait_for_htmx(client_page)
    mark_page(client_page)

    text = "Biscuit needs his ear drops at 5pm.\nThey are on the fridge."
    send(client_page, text)
    new_message = client_page.locator("#feed .messages article.message.own")
    expect(new_message.locator(".message-text")).to_have_text(text, timeout=WAIT)
    expect(client_page.locator("#message-text")).to_have_value("", timeout=WAIT)
    expect(client_page.get_by_text("No messages yet")).to_be_hidden(timeout=WAIT)
    assert_not_reloaded(client_page)
    message_id = new_message.get_attribute("id")
    assert re.fullmatch(r"message-\d+", message_id)
    sent = client_page.locator(f"#{message_id}")
    # In the undo window the author can take it back, and sees how long for; no Delete yet.
    expect(sent.get_by_text(re.compile(r"^\d+ s left · nobody notified yet$"))).to_be_visible()
    expect(sent.get_by_role("link", name=re.compile(r"^Delete"))).to_be_hidden()

    # The assigned sitter, in a browser of their own, reads it on the client's profile.
    staff_page = log_in(assigned_staff)
    staff_page.goto(f"/clients/{household.id}")
    staff_message = staff_page.locator(f"#{message_id}")
    expect(staff_message.locator(".message-text")).to_contain_text("ear drops at 5pm", timeout=WAIT)
    expect(staff_message.locator(".author")).to_have_text("Carla Client", timeout=WAIT)
    expect(staff_message.get_by_role("button", name="Unsend")).to_have_count(0)

    # Unsend: the tombstone in place, and the text back in the box to send again. The person is
    # back at their own window: focus lands only in the page in front.
    client_page.bring_to_front()
    sent.get_by_role("button", name="Unsend").click()
    expect(sent.locator(".tombstone")).to_have_text("Message unsent", timeout=WAIT)
    expect(sent).to_have_class(re.compile(r"\bdeleted\b"), timeout=WAIT)
    expect(sent.locator(".message-text")).to_have_count(0, timeout=WAIT)
    expect(client_page.locator("#message-text")).to_have_value(text, timeout=WAIT)
    expect_focused(client_page, "message-text")
    assert_not_reloaded(client_page)
    # Every notification recalled: nobody was, or will be, told.
    with app.app_context():
        statuses = set(db.session.scalars(select(Notification.status)))
    assert statuses == {DeliveryStatus.CANCELLED}

    # The sitter sees the tombstone too once they load the page again.
    staff_page.reload()
    expect(staff_page.locator(f"#{message_id} .tombstone")).to_have_text(
        "Message unsent", timeout=WAIT
    )
    expect(staff_page.get_by_text("ear drops")).to_have_count(0, timeout=WAIT)


def test_unsend_turns_into_delete_when_the_window_ends(app, log_in, household, household_login):
    app.config["NOTIFICATION_DELAY_SECONDS"] = 3
    page = log_in(household_login)
    wait_for_htmx(page)
    send(page, "Short window")
    sent = page.locator("#feed .messages article.message.own")
    unsend = sent.get_by_role("button", name="Unsend")
    expect(unsend).to_be_visible(timeout=WAIT)
    expect(unsend).to_have_count(0, timeout=6_000)  # 2 s, shown a second early, and slack
    delete = sent.get_by_role("link", name=re.compile(r"^Delete"))
    expect(delete).to_be_visible()
    delete.click()
    expect(sent.locator("form.confirm-delete")).to_contain_text(
        "It will be replaced by “Message deleted” for everyone.", timeout=WAIT
    )


def test_delete_after_delivery_says_what_cannot_be_recalled(
    app, undo_window_over, log_in, household, household_login, admin, make_message
):
    message = make_message(household, admin, "Gate code is 4411")
    with app.app_context():
        db.session.execute(update(Notification).values(status=DeliveryStatus.SENT))
        db.session.commit()
    page = log_in(admin)
    page.goto(f"/clients/{household.id}")
    wait_for_htmx(page)
    article = page.locator(f"#message-{message.id}")
    article.get_by_role("link", name=re.compile(r"^Delete")).click()
    expect(article.locator("form.confirm-delete")).to_have_text(re.compile(
        r"Delete this message\? It will be replaced by “Message deleted” for everyone\. "
        r"The 1 email already delivered cannot be recalled\."
    ), timeout=WAIT)


def test_send_pressed_again_after_a_lost_answer_makes_one_message(
    app, log_in, household, household_login
):
    """The portal got the send, but its answer never reached the phone (the connection
    dropped). The person presses Send again: the same composer's key makes it a repeat, so the
    feed shows the message once, and the composer is empty for the next one."""
    page = log_in(household_login)
    wait_for_htmx(page)
    lost = []

    def lose_the_first_answer(route):
        if route.request.method == "POST" and not lost:
            lost.append(route.fetch())  # the portal handles it...
            route.abort("connectionreset")  # ...and the phone never hears back
        else:
            route.continue_()

    page.route(re.compile(r"/feeds/conversation/messages$"), lose_the_first_answer)
    text = "Back gate is unlocked for you today."
    send(page, text)
    expect(page.get_by_text("Could not reach the portal")).to_be_visible(timeout=WAIT)
    expect(page.locator("#message-text")).to_have_value(text)
    assert lost and lost[0].status == 200
    page.locator("#feed form.composer").get_by_role("button", name="Send").click()
    expect(page.locator("#message-text")).to_have_value("", timeout=WAIT)
    shown = page.locator("#feed .messages article.message .message-text", has_text=text)
    expect(shown).to_have_count(1, timeout=WAIT)  # brought by the feed's catch-up poll
    wait_for_polls(page, 2)  # and not again by the next one
    expect(shown).to_have_count(1)
    with app.app_context():
        sent = db.session.scalars(select(Message).where(Message.text == text)).all()
    assert len(sent) == 1


def test_send_empty_message_shows_inline_error(log_in, household, household_login):
    page = log_in(household_login)
    wait_for_htmx(page)
    mark_page(page)

    send(page, "")
    error = page.locator("#feed form.composer .field-error")
    expect(error).to_have_text("Write a message before sending.", timeout=WAIT)
    expect(page.locator("#message-text")).to_have_attribute("aria-invalid", "true", timeout=WAIT)
    expect(page.locator("#feed .messages article.message")).to_have_count(0, timeout=WAIT)
    expect(page.get_by_text("No messages yet.")).to_be_visible(timeout=WAIT)
    assert_not_reloaded(page)

    # The swapped-in composer still works, and a good message clears the error.
    send(page, "Sorry, here it is")
    expect(page.locator("#feed .messages .message-text")).to_have_text(
        "Sorry, here it is", timeout=WAIT
    )
    expect(error).to_have_count(0, timeout=WAIT)
    assert_not_reloaded(page)


def test_load_earlier_messages_in_place(log_in, household, household_login, admin, make_message):
    for number in range(1, 61):
        make_message(household, admin, f"Walk report {number:02d}")
    page = log_in(household_login)
    wait_for_htmx(page)
    articles = page.locator("#feed .messages article.message")
    expect(articles).to_have_count(50, timeout=WAIT)
    expect(page.get_by_text("Walk report 10", exact=True)).to_have_count(0, timeout=WAIT)
    mark_page(page)

    page.get_by_role("link", name="Load earlier messages").click()
    oldest = page.get_by_text("Walk report 01", exact=True)
    oldest.scroll_into_view_if_needed()
    expect(oldest).to_be_visible(timeout=WAIT)
    expect(articles).to_have_count(60, timeout=WAIT)
    # Oldest first, no gap or repeat at the seam, and no button left at the start of the feed.
    texts = articles.locator(".message-text").all_inner_texts()
    assert texts == [f"Walk report {number:02d}" for number in range(1, 61)]
    expect(page.get_by_role("link", name="Load earlier messages")).to_have_count(0, timeout=WAIT)
    assert_not_reloaded(page)


def test_post_message_without_javascript(log_in, household, household_login):
    page = log_in(household_login, java_script_enabled=False)

    send(page, "Sent from an old phone")
    # A plain form post redirects back to the feed, at the new message.
    expect(page).to_have_url(
        re.compile(rf"{conversation_url(household)}#message-\d+$"), timeout=WAIT
    )
    message = page.locator("#feed .messages article.message.own")
    expect(message.locator(".message-text")).to_have_text("Sent from an old phone", timeout=WAIT)
    expect(page.locator("#message-text")).to_have_value("", timeout=WAIT)


def test_delete_message_without_javascript(
    undo_window_over, log_in, household, household_login, make_message
):
    message = make_message(household, household_login, "Typo, please ignore")
    page = log_in(household_login, java_script_enabled=False)

    page.locator(f"#message-{message.id}").get_by_role("link", name=re.compile(r"^Delete")).click()
    # Without htmx the confirmation is a page of its own.
    expect(page).to_have_url(re.compile(rf"/messages/{message.id}/delete$"), timeout=WAIT)
    page.get_by_role("button", name="Delete message").click()
    expect(page.get_by_text("The message was deleted.")).to_be_visible(timeout=WAIT)
    expect(page.locator(f"#message-{message.id} .tombstone")).to_have_text(
        "Message deleted", timeout=WAIT
    )


def test_cancel_delete_restores_message_in_place(
    undo_window_over, log_in, household, household_login, make_message
):
    message = make_message(household, household_login, "Keep this one")
    page = log_in(household_login)
    wait_for_htmx(page)
    mark_page(page)
    article = page.locator(f"#message-{message.id}")

    article.get_by_role("link", name=re.compile(r"^Delete")).click()
    article.locator("form.confirm-delete").get_by_role("link", name="Cancel").click()
    expect(article.locator("form.confirm-delete")).to_have_count(0, timeout=WAIT)
    expect(article.locator(".message-text")).to_have_text("Keep this one", timeout=WAIT)
    expect(article.get_by_role("link", name=re.compile(r"^Delete"))).to_be_visible(timeout=WAIT)
    # The link pressed was replaced: the focus stays with the message, not lost to the page.
    expect_focused(page, f"message-{message.id}")
    assert_not_reloaded(page)


def test_a_message_the_live_feed_updates_leaves_the_focus_in_the_composer(
    app, undo_window_over, log_in, household, household_login, admin, make_message
):
    """Someone typing while another person deletes a message they can see: the feed's update
    swaps that message in place, and the focus stays where they are typing."""
    message = make_message(household, admin, "Running late today")
    page = log_in(household_login)
    wait_for_htmx(page)
    box = page.locator("#message-text")
    box.click()
    box.fill("Typing an answer")
    with app.app_context():
        messages.delete_message(db.session.get(User, admin.id), db.session.get(Message, message.id))
    expect(page.locator(f"#message-{message.id} .tombstone")).to_be_visible(timeout=WAIT)
    wait_for_polls(page, 1)
    expect_focused(page, "message-text")
    expect(box).to_have_value("Typing an answer")


@pytest.fixture
def lived_in_feed(app, household, household_login, admin, assigned_staff, make_message):
    """A feed with the mix a screenshot should show: roles, a link, a long line, a tombstone."""
    make_message(household, household_login, "Hi! Biscuit has a vet visit on Friday morning.")
    make_message(household, admin, "Thanks Carla, we will move Friday's walk to the afternoon.")
    make_message(
        household,
        assigned_staff,
        "Walk done: 45 minutes around the park. Route: https://maps.example.com/routes/"
        "biscuit-park-loop-with-a-very-long-identifier-1234567890abcdef",
    )
    deleted = make_message(household, household_login, "Wrong household, sorry")
    make_message(household, household_login, "Perfect, thank you!\nSee you next week.")
    with app.app_context():
        messages.delete_message(
            db.session.get(User, household_login.id), db.session.get(Message, deleted.id)
        )
    return deleted


def test_capture_profile_as_admin_on_desktop(
    log_in, household, admin, lived_in_feed, screenshot_dir
):
    page = log_in(admin, viewport={"width": 1280, "height": 900})
    page.goto(f"/clients/{household.id}")
    expect(page.locator("#feed .messages article.message")).to_have_count(5, timeout=WAIT)
    # The admin team sees who deleted a message.
    expect(page.locator(f"#message-{lived_in_feed.id} .tombstone")).to_contain_text(
        "Message deleted by Carla Client", timeout=WAIT
    )
    page.screenshot(path=screenshot_dir / "profile-admin-desktop.png", full_page=True)


def test_capture_portal_as_client_on_phone(
    log_in, household, household_login, lived_in_feed, screenshot_dir
):
    page = log_in(
        household_login, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    expect(page.locator("#feed .messages article.message")).to_have_count(5, timeout=WAIT)
    # Clients are not told who deleted a message.
    expect(page.locator(f"#message-{lived_in_feed.id} .tombstone")).to_have_text(
        "Message deleted", timeout=WAIT
    )
    page.screenshot(path=screenshot_dir / "portal-client-phone.png", full_page=True)
    # Nothing may push the page sideways on a phone.
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px"
