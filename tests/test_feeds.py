"""The Conversation feed: reading, paging, posting and deleting, with and without htmx."""

import re
import threading
import time
from io import BytesIO

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.feed_component import query
from portal.models import AuditEvent, Feed, Message, utcnow

from .helpers import POSTGRES_URL, count_queries, count_rows, png_bytes, record_sql


def feed_url(record, feed="conversation"):
    return f"/clients/{record.id}/feeds/{feed}"


# --- reading ---------------------------------------------------------------------------------

def test_profile_shows_conversation_feed_first(admin_browser, admin, household, make_message):
    make_message(household, admin, "Biscuit had a great walk")
    page = admin_browser.get(f"/clients/{household.id}").get_data(as_text=True)
    assert "Biscuit had a great walk" in page
    tabs = re.findall(r'role="tab" id="tab-(\w+)"', page)
    assert tabs == ["conversation"]
    assert re.search(r'id="tab-conversation"[^>]*aria-selected="true"', page)


def test_feed_orders_oldest_to_newest_and_marks_own(
    admin_browser, admin, household_login, household, make_message
):
    make_message(household, household_login, "first from client")
    make_message(household, admin, "second from admin")
    page = admin_browser.get(feed_url(household)).get_data(as_text=True)
    assert page.index("first from client") < page.index("second from admin")
    own = re.search(r'<article class="message own"[^>]*>.*?</article>', page, re.S).group(0)
    assert "second from admin" in own and "You" in own
    assert "Carla Client" in page and ">Client<" in page


def test_feed_shows_times_in_viewer_time_zone(
    logged_in, make_user, household, admin, make_message, app
):
    from portal.models import Role

    tokyo_admin = make_user(Role.ADMIN, time_zone="Asia/Tokyo")
    make_message(household, admin, "what time is it")
    page = logged_in(tokyo_admin).get(feed_url(household)).get_data(as_text=True)
    assert re.search(r'<time datetime="[^"]+" title="[^"]+ JST">just now</time>', page)


def test_feed_fragment_for_htmx_and_page_without(admin_browser, household):
    page = admin_browser.get(feed_url(household))
    fragment = admin_browser.htmx("GET", feed_url(household))
    assert "<html" in page.get_data(as_text=True)
    assert fragment.get_data(as_text=True).lstrip().startswith('<section id="feed"')
    assert "HX-Request" in fragment.headers["Vary"]


def test_history_restore_gets_whole_page(admin_browser, household):
    response = admin_browser.htmx(
        "GET", feed_url(household), headers={"HX-History-Restore-Request": "true"}
    )
    assert "<html" in response.get_data(as_text=True)


def test_message_text_is_escaped_and_links_made_safe(admin_browser, admin, household, make_message):
    make_message(
        household, admin,
        '<script>alert(1)</script> see https://example.com/a?b=1&c=2.\nsecond line '
        'javascript:alert(2) <img src=x onerror=alert(3)>',
    )
    page = admin_browser.get(feed_url(household)).get_data(as_text=True)
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img src=x" not in page
    assert (
        '<a href="https://example.com/a?b=1&amp;c=2" rel="noopener noreferrer nofollow"'
        in page
    )
    assert 'href="javascript' not in page
    assert "c=2.\nsecond line" in page.replace("</a>", "")


# --- paging ----------------------------------------------------------------------------------

def add_messages(app, record, author, count, text="m{}"):
    """count Conversation messages in one insert; text is formatted with each one's number."""
    with app.app_context():
        db.session.execute(Message.__table__.insert(), [
            {"business_id": record.business_id, "client_id": record.id,
             "feed": Feed.CONVERSATION, "author_id": author.id, "text": text.format(n),
             "created_at": utcnow()}
            for n in range(count)
        ])
        db.session.commit()


@pytest.fixture
def long_feed(app, household, admin):
    add_messages(app, household, admin, 120, text="note {:03}")
    with app.app_context():
        return list(db.session.scalars(
            select(Message.id).where(Message.client_id == household.id).order_by(Message.id)
        ))


def test_feed_shows_latest_fifty_with_load_earlier(admin_browser, household, long_feed):
    page = admin_browser.get(feed_url(household)).get_data(as_text=True)
    assert page.count('<article class="message') == 50
    assert "note 119" in page and "note 070" in page and "note 069" not in page
    assert f"/earlier?before={long_feed[70]}" in page
    assert "Load earlier messages" in page


def test_load_earlier_pages_by_keyset(admin_browser, household, long_feed):
    earlier = admin_browser.htmx("GET", f"{feed_url(household)}/earlier?before={long_feed[70]}")
    body = earlier.get_data(as_text=True)
    assert "<html" not in body
    assert body.count('<article class="message') == 50
    assert "note 020" in body and "note 069" in body and "note 070" not in body
    last = admin_browser.htmx("GET", f"{feed_url(household)}/earlier?before={long_feed[20]}")
    body = last.get_data(as_text=True)
    assert body.count('<article class="message') == 20 and "Load earlier" not in body


def test_load_earlier_without_javascript_is_a_page(admin_browser, household, long_feed):
    response = admin_browser.get(f"{feed_url(household)}/earlier?before={long_feed[70]}")
    page = response.get_data(as_text=True)
    assert "<html" in page and "note 069" in page and "note 070" not in page
    assert "Back to the latest messages" in page


def test_feed_pages_by_keyset_not_offset(app, admin_browser, household, long_feed):
    with record_sql(app) as executed:
        admin_browser.htmx("GET", f"{feed_url(household)}/earlier?before={long_feed[70]}")
    feed_queries = [(sql, params) for sql, params in executed if "FROM messages" in sql]
    assert len(feed_queries) == 1
    sql, params = feed_queries[0]
    assert "messages.id <" in sql
    # SQLite's dialect always appends "OFFSET ?" bound to 0; nothing is ever skipped by offset.
    if "OFFSET" in sql:
        assert list(params)[-1] == 0


@pytest.mark.parametrize("viewer", ["admin", "assigned_staff", "household_login"])
def test_feed_page_query_count_is_constant(app, request, logged_in, make_client, admin, viewer):
    user = request.getfixturevalue(viewer)
    household = request.getfixturevalue("household")
    small, large = household, make_client(name="Large household")
    if viewer == "assigned_staff":
        request.getfixturevalue("make_service")(large, user)
    if viewer == "household_login":
        large = small  # a client sees only their own feed: compare it before and after growth
    browser = logged_in(user)
    add_messages(app, small, admin, 5)
    few = count_queries(app, browser, feed_url(small))
    add_messages(app, large, admin, 500 if large is not small else 495)
    many = count_queries(app, browser, feed_url(large))
    assert few == many, (few, many)
    # 7 to show the page, 2 for where each message went (the admin team's lines), 1 for the
    # unread counts of the tabs and the navigation, 1 for the business side's scheduled
    # messages, and 2 to mark the feed read when it had unread messages (the marker and its
    # receipt).
    assert many <= 13


# --- posting ---------------------------------------------------------------------------------

def test_post_with_htmx_returns_message_and_fresh_composer(app, admin_browser, household):
    response = admin_browser.htmx(
        "POST", f"{feed_url(household)}/messages", data={"text": "On my way!\nSee you soon"}
    )
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert re.search(r'<article class="message own" id="message-\d+"', body)
    assert "On my way!\nSee you soon" in body
    assert 'id="composer-conversation"' in body and 'hx-swap-oob="true"' in body
    composer = body[body.index('id="composer-conversation"'):]
    assert "On my way" not in composer
    assert count_rows(app, Message) == 1


@pytest.mark.parametrize("files", [[], [("walk.png", png_bytes()), ("notes.txt", b"notes")]],
                         ids=["text", "with-files"])
def test_posted_message_shows_as_the_feed_shows_it(admin_browser, household, files):
    # The answer to a post is built from what was written; the feed reads it back.
    data = {"text": "Back home, https://example.com/walk", "files": [
        (BytesIO(content), name) for name, content in files]}
    body = admin_browser.htmx("POST", f"{feed_url(household)}/messages", data=data,
                              content_type="multipart/form-data").get_data(as_text=True)
    posted = re.search(r"<article .*?</article>", body, re.S).group(0)
    page = admin_browser.get(feed_url(household)).get_data(as_text=True)
    assert "Unsend" in posted
    assert without_the_moment(posted) in without_the_moment(page)


def without_the_moment(html: str) -> str:
    """Markup without what changes from one second to the next: the seconds left to unsend,
    and CSRF tokens (signed with the time)."""
    html = re.sub(r'name="csrf_token" value="[^"]+"', 'name="csrf_token"', html)
    html = re.sub(r'data-unsend-seconds="\d+"', "data-unsend-seconds", html)
    return re.sub(r">\d+ s left ·", "> s left ·", html)


def test_posting_text_reads_nothing_back_from_messages(app, admin_browser, household):
    admin_browser.csrf_token()
    with record_sql(app) as statements:
        admin_browser.htmx("POST", f"{feed_url(household)}/messages", data={"text": "Hi"})
    written = [index for index, (sql, _) in enumerate(statements)
               if "INSERT INTO messages" in sql]
    assert written and not [sql for sql, _ in statements[written[0]:]
                            if sql.startswith("SELECT") and "FROM messages" in sql]


def test_written_message_has_the_shape_of_a_feed_row():
    # Presenter.item unpacks rows by position: both kinds must list the same columns in order.
    assert query._Written._fields == tuple(query._FEED_PAGE.selected_columns.keys())


def test_post_without_javascript_redirects_back_to_the_feed(app, admin_browser, household):
    response = admin_browser.submit(f"{feed_url(household)}/messages", {"text": "Plain form"})
    assert response.status_code == 302
    assert re.search(rf"{feed_url(household)}#message-\d+$", response.headers["Location"])
    page = admin_browser.get(response.headers["Location"]).get_data(as_text=True)
    assert "Plain form" in page


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", "Write a message before sending."),
        ("   \n\t  ", "Write a message before sending."),
        ("x" * 10_001, "at most 10,000 characters"),
    ],
    ids=["empty", "whitespace", "too-long"],
)
def test_post_refuses_bad_text_and_stores_nothing(app, admin_browser, household, text, error):
    fragment = admin_browser.htmx("POST", f"{feed_url(household)}/messages", data={"text": text})
    assert fragment.status_code == 200
    assert fragment.headers["HX-Retarget"] == "#composer-conversation"
    assert error in fragment.get_data(as_text=True)
    page = admin_browser.submit(f"{feed_url(household)}/messages", {"text": text})
    assert page.status_code == 422 and error in page.get_data(as_text=True)
    assert count_rows(app, Message) == 0


def test_post_of_exactly_ten_thousand_characters_is_kept(app, admin_browser, household):
    response = admin_browser.htmx(
        "POST", f"{feed_url(household)}/messages", data={"text": "y" * 10_000}
    )
    assert "HX-Retarget" not in response.headers
    assert count_rows(app, Message) == 1


def test_post_keeps_text_after_refusal(admin_browser, household):
    # Only a length problem keeps text; check the textarea is refilled so nothing typed is lost.
    long_text = "z" * 10_001
    body = admin_browser.htmx(
        "POST", f"{feed_url(household)}/messages", data={"text": long_text}
    ).get_data(as_text=True)
    assert f">{long_text}</textarea>" in body


def test_post_without_csrf_token_is_refused(app, admin_browser, household):
    response = admin_browser.post(
        f"{feed_url(household)}/messages", data={"text": "forged"}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 400
    assert count_rows(app, Message) == 0


def test_post_with_csrf_header_passes(app, admin_browser, household):
    response = admin_browser.post(
        f"{feed_url(household)}/messages", data={"text": "with header"},
        headers={"X-CSRFToken": admin_browser.page_csrf_token()},
    )
    assert response.status_code == 302
    assert count_rows(app, Message) == 1


def test_post_to_another_business_client_is_404(app, logged_in, stranger_admin, household):
    response = logged_in(stranger_admin).submit(f"{feed_url(household)}/messages", {"text": "hi"})
    assert response.status_code == 404
    assert count_rows(app, Message) == 0


# --- deleting --------------------------------------------------------------------------------

def test_delete_flow_with_htmx_leaves_tombstone(
    app, logged_in, household_login, household, make_message, admin
):
    message = make_message(household, household_login, "oops, wrong client")
    browser = logged_in(household_login)
    confirm = browser.htmx("GET", f"/messages/{message.id}/delete")
    assert "Delete this message?" in confirm.get_data(as_text=True)
    deleted = browser.htmx("POST", f"/messages/{message.id}/delete")
    body = deleted.get_data(as_text=True)
    assert deleted.status_code == 200
    assert f'id="message-{message.id}"' in body and "Message deleted" in body
    assert "oops" not in body
    # The client sees a plain tombstone; the admin team sees who deleted it and when.
    assert "by Carla Client" not in body
    admin_page = logged_in(admin).get(feed_url(household)).get_data(as_text=True)
    assert "Message deleted by Carla Client" in admin_page


def test_delete_erases_text_and_records_audit_event(
    app, admin_browser, admin, household, make_message
):
    message = make_message(household, admin, "secret gate code 9876")
    assert admin_browser.submit(f"/messages/{message.id}/delete").status_code == 302
    with app.app_context():
        stored = db.session.get(Message, message.id)
        assert stored.text is None and stored.deleted_by_id == admin.id and stored.deleted_at
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "message.deleted"))
        assert event.object_id == message.id and event.actor_id == admin.id
        assert "9876" not in str(event.details)


def test_delete_confirmation_works_without_javascript(
    admin_browser, admin, household, make_message
):
    message = make_message(household, admin, "to be removed")
    page = admin_browser.get(f"/messages/{message.id}/delete").get_data(as_text=True)
    assert "<html" in page and "Delete this message?" in page
    response = admin_browser.submit(f"/messages/{message.id}/delete")
    assert response.headers["Location"].endswith(f"#message-{message.id}")


def test_cancel_delete_restores_message(admin_browser, admin, household, make_message):
    message = make_message(household, admin, "keep me")
    body = admin_browser.htmx("GET", f"/messages/{message.id}").get_data(as_text=True)
    assert "keep me" in body and "Delete" in body
    assert admin_browser.get(f"/messages/{message.id}").status_code == 302


def test_deleted_message_cannot_be_deleted_again(admin_browser, admin, household, make_message):
    message = make_message(household, admin, "once")
    admin_browser.submit(f"/messages/{message.id}/delete")
    assert admin_browser.submit(f"/messages/{message.id}/delete").status_code == 404


@pytest.mark.parametrize(
    ("deleter", "author", "allowed"),
    [
        ("household_login", "household_login", True),
        ("household_login", "admin", False),
        ("assigned_staff", "assigned_staff", True),
        ("assigned_staff", "household_login", False),
        ("office_manager", "household_login", True),
        ("admin", "assigned_staff", True),
    ],
)
def test_delete_rights(app, request, logged_in, household, make_message, deleter, author, allowed):
    writer, remover = request.getfixturevalue(author), request.getfixturevalue(deleter)
    message = make_message(household, writer, "who may delete me")
    response = logged_in(remover).submit(f"/messages/{message.id}/delete")
    assert response.status_code == (302 if allowed else 404)
    with app.app_context():
        assert (db.session.get(Message, message.id).text is None) is allowed


@pytest.mark.committed  # two threads, each with its own connection
def test_posts_to_one_client_commit_in_the_order_of_their_ids(
    app, admin, assigned_staff, household, monkeypatch
):
    """A slow post (files, many recipients) takes its id first: a later one must not commit
    before it, or a reader shown the later one would never be shown the slow one (the live
    feed asks for what came after the newest it shows) and would not be told of it either."""
    from portal.models import Client, User
    from portal.notifications import outbox
    from portal.services import messages

    enqueue = outbox.enqueue
    slow = threading.Event()
    finished = []

    def enqueue_slowly(message, recipients):
        if message.author_id == admin.id:
            slow.set()  # the slow post has its id: the other one starts now
            time.sleep(0.6)
        enqueue(message, recipients)

    monkeypatch.setattr(outbox, "enqueue", enqueue_slowly)

    def post(author_id: int, text: str) -> None:
        with app.app_context():
            author = db.session.get(User, author_id)
            message = messages.post_message(author, db.session.get(Client, household.id),
                                            Feed.CONVERSATION, text)
            finished.append((text, message.id))
            db.session.remove()

    first = threading.Thread(target=post, args=(admin.id, "slow"))
    first.start()
    assert slow.wait(5)
    started = time.monotonic()
    post(assigned_staff.id, "quick")
    waited = time.monotonic() - started
    first.join()
    ids = dict(finished)
    assert ids["slow"] < ids["quick"]
    # It waited for the slow one to commit (which sleeps 0.6 s holding the client's lock). Not
    # the order of `finished`: once the slow one commits, either thread may append first.
    assert waited > 0.4


def test_posting_text_costs_four_statements_and_its_notifications(
    app, admin_browser, household
):
    """The person, the client, who is told (and who sees the feed), the message (with its
    feed's summary on PostgreSQL; SQLite upserts the summary apart); then one INSERT for
    the notifications, when anyone is told."""
    admin_browser.csrf_token()
    with record_sql(app) as statements:
        admin_browser.htmx("POST", f"{feed_url(household)}/messages", data={"text": "Hi"})
    others = [sql[:60] for sql, _ in statements if not sql.startswith("INSERT INTO notifications")]
    assert len(others) == (4 if POSTGRES_URL else 5), others
