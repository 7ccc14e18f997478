"""The same send submitted twice makes one message: every composer carries a one-time send key,
and a second post with it answers with the first message and changes nothing (a double tap on
a slow phone, a request the browser or a proxy retried), with and without JavaScript, and when
the two race each other."""

import io
import re
import threading
import time

import pytest

from portal.extensions import db
from portal.models import Attachment, Client, Feed, Message, Notification, User
from portal.notifications import outbox
from portal.services import messages

from .helpers import count_rows, every_row, png_bytes


def feed_url(household) -> str:
    return f"/clients/{household.id}/feeds/conversation"


def composer_fields(page: str) -> dict:
    form = re.search(r'<form id="composer-conversation".*?</form>', page, re.S).group(0)
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form))


def send(browser, household, text="On my way", files=(), hx=False, **fields):
    data = {**fields, "text": text}
    if files:
        data["files"] = files
    headers = {"HX-Request": "true"} if hx else {}
    return browser.post(f"{feed_url(household)}/messages", data=data, headers=headers,
                        content_type="multipart/form-data")


def test_every_composer_shown_carries_a_new_send_key(admin_browser, household):
    first = composer_fields(admin_browser.get(feed_url(household)).get_data(as_text=True))
    again = composer_fields(admin_browser.get(feed_url(household)).get_data(as_text=True))
    assert len(first["send_key"]) >= 16 and first["send_key"] != again["send_key"]


def test_a_repeated_send_without_javascript_makes_one_message(app, admin_browser, household,
                                                              assigned_staff, household_login):
    fields = composer_fields(admin_browser.get(feed_url(household)).get_data(as_text=True))
    first = send(admin_browser, household, **fields)
    before = every_row(app)
    repeat = send(admin_browser, household, **fields)
    assert every_row(app) == before  # no message, notification, summary or audit row more
    assert count_rows(app, Message) == 1
    assert repeat.status_code == first.status_code == 302
    assert repeat.headers["Location"] == first.headers["Location"]
    assert re.search(r"#message-\d+$", repeat.headers["Location"])


def test_a_repeated_send_with_files_stores_nothing_more(app, admin_browser, household):
    fields = composer_fields(admin_browser.get(feed_url(household)).get_data(as_text=True))
    send(admin_browser, household, text="", files=[(io.BytesIO(png_bytes()), "walk.png")],
         **fields)
    stored = sorted(p.name for p in app.config["UPLOAD_FOLDER"].rglob("*") if p.is_file())
    send(admin_browser, household, text="", files=[(io.BytesIO(png_bytes()), "walk.png")],
         **fields)
    assert count_rows(app, Attachment) == 1 and count_rows(app, Message) == 1
    assert sorted(p.name for p in app.config["UPLOAD_FOLDER"].rglob("*")
                  if p.is_file()) == stored


def test_a_repeated_htmx_send_answers_a_fresh_composer_and_asks_the_feed_to_catch_up(
    app, admin_browser, household
):
    fields = composer_fields(admin_browser.get(feed_url(household)).get_data(as_text=True))
    first = send(admin_browser, household, hx=True, **fields).get_data(as_text=True)
    assert first.count('<article class="message') == 1
    repeat = send(admin_browser, household, hx=True, **fields)
    body = repeat.get_data(as_text=True)
    assert repeat.status_code == 200 and "<article" not in body
    assert repeat.headers["HX-Trigger"] == "poll-now"  # brings the message if the first was lost
    fresh = composer_fields(body)
    assert fresh["send_key"] not in (fields["send_key"], composer_fields(first)["send_key"])
    assert fresh["composer"] == fields["composer"]  # still this page's composer
    assert 'hx-swap-oob="true"' in body and "On my way" not in body
    assert count_rows(app, Message) == 1


@pytest.mark.parametrize("hx", [True, False])
def test_a_used_key_with_other_text_keeps_that_text_unsent(app, admin_browser, household, hx):
    """The key came back with a page the browser restored, or the text was changed after an
    answer that never came: the new text is neither sent as a repeat nor thrown away."""
    fields = composer_fields(admin_browser.get(feed_url(household)).get_data(as_text=True))
    send(admin_browser, household, hx=hx, **fields)
    before = every_row(app)
    again = send(admin_browser, household, text="Gate code is 4321 now", hx=hx, **fields)
    body = again.get_data(as_text=True)
    assert every_row(app) == before and count_rows(app, Message) == 1
    assert again.status_code == (200 if hx else 409)
    assert "Gate code is 4321 now</textarea>" in body
    assert "Your previous message was already sent. This text was not sent yet" in body
    assert composer_fields(body)["send_key"] != fields["send_key"]


def test_used_keys_are_not_brought_back_by_a_restored_page(admin_browser, household):
    page = admin_browser.get(feed_url(household)).get_data(as_text=True)
    assert re.search(r'name="send_key" value="[^"]+" autocomplete="off"', page)
    profile = admin_browser.get(f"/clients/{household.id}").get_data(as_text=True)
    assert re.search(r'name="once" value="[^"]+" autocomplete="off"', profile)


def test_a_new_key_sends_the_same_text_again(app, admin_browser, household):
    """Saying the same thing twice on purpose is two messages: only the key makes a repeat."""
    page = admin_browser.get(feed_url(household)).get_data(as_text=True)
    send(admin_browser, household, **composer_fields(page))
    page = admin_browser.get(feed_url(household)).get_data(as_text=True)
    send(admin_browser, household, **composer_fields(page))
    assert count_rows(app, Message) == 2


def test_a_key_is_one_persons_own(app, logged_in, admin, household_login, household):
    """Another person's post with the same key (copied, or forged) is their own new message."""
    admin_browser, client_browser = logged_in(admin), logged_in(household_login)
    fields = composer_fields(admin_browser.get(feed_url(household)).get_data(as_text=True))
    send(admin_browser, household, **fields)
    own = composer_fields(client_browser.get(feed_url(household)).get_data(as_text=True))
    send(client_browser, household, text="Thanks!", **{**own, "send_key": fields["send_key"]})
    assert count_rows(app, Message) == 2


def test_a_repeat_of_an_unsent_message_brings_nothing_back(app, admin_browser, household):
    fields = composer_fields(admin_browser.get(feed_url(household)).get_data(as_text=True))
    location = send(admin_browser, household, **fields).headers["Location"]
    message_id = int(location.rsplit("-", 1)[1])
    admin_browser.post(f"/messages/{message_id}/unsend",
                       data={"csrf_token": admin_browser.csrf_token()})
    repeat = send(admin_browser, household, **fields)
    assert repeat.headers["Location"] == feed_url(household)  # no anchor: it is gone
    assert count_rows(app, Message) == 1


@pytest.mark.parametrize("key", ["", "short", "x" * 500, "<script>"])
def test_a_send_without_a_usable_key_is_still_sent(app, admin_browser, household, key):
    """Pages from before keys existed, or a mangled field: sent, just not protected."""
    fields = composer_fields(admin_browser.get(feed_url(household)).get_data(as_text=True))
    assert send(admin_browser, household, **{**fields, "send_key": key}).status_code == 302
    assert count_rows(app, Message) == 1


@pytest.mark.committed  # two threads, each with its own connection
def test_two_sends_racing_with_one_key_make_one_message(app, admin, household, monkeypatch):
    """The second arrives while the first is still writing: it waits for the first's commit
    (PostgreSQL: the client's row lock; SQLite: the one writer) and finds its message."""
    enqueue = outbox.enqueue
    first_written = threading.Event()

    def enqueue_slowly(message, recipients):
        if message.text == "first":
            first_written.set()
            time.sleep(0.5)
        enqueue(message, recipients)

    monkeypatch.setattr(outbox, "enqueue", enqueue_slowly)
    outcomes = []

    def post(text: str) -> None:
        with app.app_context():
            author, client = db.session.get(User, admin.id), db.session.get(Client, household.id)
            try:
                message = messages.post_message(author, client, Feed.CONVERSATION, text,
                                                send_key="k" * 22)
                outcomes.append(("made", message.id))
            except messages.AlreadySent as repeat:
                outcomes.append(("repeat", repeat.message.id))
            finally:
                db.session.remove()

    first = threading.Thread(target=post, args=("first",))
    first.start()
    assert first_written.wait(5)
    post("second")
    first.join()
    made = [message_id for kind, message_id in outcomes if kind == "made"]
    assert len(made) == 1 and sorted(outcomes) == [("made", made[0]), ("repeat", made[0])]
    assert count_rows(app, Message) == 1
    assert count_rows(app, Notification) == count_rows(app, Notification,
                                                       Notification.message_id == made[0])
