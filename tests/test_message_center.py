"""The Message Center, unread counts and feed summaries: who counts what, marking read, the
awaiting-reply filter, keyset paging, search, and a constant number of queries."""

import difflib
import re
from datetime import timedelta

import pytest
from flask import template_rendered
from flask_migrate import downgrade, upgrade
from sqlalchemy import Column, Integer, MetaData, Table, func, select, text

from portal import policy, unread
from portal.extensions import db
from portal.models import (
    Business,
    Client,
    Feed,
    FeedSummary,
    Message,
    ReadMarker,
    User,
    utcnow,
)
from portal.models.types import UTCDateTime

from .cast import ROLES
from .helpers import POSTGRES_URL, record_sql, set_private_messaging, update_row

CENTER = "/messages"

# The number in an unread badge ("<span class=unread-badge>, 3 unread").
BADGE_COUNT = r'class="unread-badge"><span class="visually-hidden">, </span>([^<]*)<'


def feed_url(record, feed="conversation"):
    return f"/clients/{record.id}/feeds/{feed}"


# --- reading what a page shows --------------------------------------------------------------------

_THREAD = re.compile(r'<li class="thread[^"]*">(.*?)</li>', re.S)


def threads(browser, url=CENTER, hx=False):
    """The rows of the Message Center, as (client, feed or None, unread, waiting, excerpt)."""
    response = browser.htmx("GET", url) if hx else browser.get(url)
    assert response.status_code == 200
    rows = []
    for block in _THREAD.findall(response.get_data(as_text=True)):
        client = re.search(r'class="thread-client">([^<]*)<', block).group(1)
        feed = re.search(r'class="tag feed-tag">([^<]*)<', block)
        count = re.search(BADGE_COUNT, block)
        waiting = re.search(r'class="waiting">Waiting ([^<]*)<', block)
        excerpt = re.search(r'class="thread-excerpt">(.*?)</span>\n', block, re.S).group(1)
        rows.append((
            client, feed and feed.group(1), count.group(1) if count else "0",
            waiting and waiting.group(1), re.sub(r"<[^>]+>", "", excerpt),
        ))
    return rows


def counts(browser, url=CENTER):
    """{(client, feed label or None): unread} as the Message Center shows them."""
    return {(client, feed): count for client, feed, count, _, _ in threads(browser, url)}


def nav_badge(page: str) -> str:
    badge = re.search(r'<span id="nav-unread"[^>]*>(.*?)</span>\s*</a>', page, re.S)
    assert badge, "no unread badge in the navigation"
    number = re.search(BADGE_COUNT, badge.group(1))
    return number.group(1) if number else "0"


def open_feed(app, browser, url, hx=False):
    """(body, {feed: unread}): the page, and the `unread` dict the feed component was given
    for its tabs (templates/feeds/_feed.html shows it)."""
    given = []

    def record(sender, template, context, **extra):
        if "unread" in context:
            given.append({feed.value: count for feed, count in context["unread"].items()})

    with template_rendered.connected_to(record, app):
        response = browser.htmx("GET", url) if hx else browser.get(url)
    assert response.status_code == 200 and len(given) == 1
    return response.get_data(as_text=True), given[0]


def without_csrf(page: str) -> str:
    """CSRF tokens are signed with the time: they change from one second to the next."""
    page = re.sub(r'"X-CSRFToken": "[^"]+"', "", page)
    # Hidden fields by hand (name, value) and by WTForms (name, type, value) alike.
    return re.sub(r'(name="csrf_token"[^>]*?) value="[^"]+"', r"\1", page)


@pytest.fixture
def private_on(app, business):
    set_private_messaging(app, business, True)


def age_message(app, message, **delta):
    update_row(app, Message, message.id, created_at=utcnow() - timedelta(**delta))
    with app.app_context():
        summary = db.session.get(FeedSummary, (message.client_id, message.feed))
        if summary.last_message_id == message.id:
            summary.last_message_at = utcnow() - timedelta(**delta)
        if summary.awaiting_reply_since is not None:
            summary.awaiting_reply_since = min(
                summary.awaiting_reply_since, utcnow() - timedelta(**delta)
            )
        db.session.commit()


# --- unread counts, by role and feed --------------------------------------------------------------

def test_unread_counts_follow_each_role_and_feed(
    request, logged_in, private_on, household, household_login, make_message
):
    make_message(household, household_login, "Is Biscuit eating?")
    make_message(household, household_login, "He skipped breakfast")
    make_message(household, household_login, "About the bill", feed=Feed.PRIVATE)
    name = household.name
    expected = {
        "admin": {(name, "Conversation"): "2", (name, "Private"): "1"},
        "office_manager": {(name, None): "2"},
        "office_manager_private": {(name, "Conversation"): "2", (name, "Private"): "1"},
        "staff_scheduled": {(name, None): "2"},
        "staff_preferred": {(name, None): "2"},
        "staff_unrelated": {},
    }
    totals = {"admin": "3", "office_manager_private": "3", "staff_unrelated": "0"}
    for role, shown in expected.items():
        browser = logged_in(request.getfixturevalue(ROLES[role]))
        page = browser.get(CENTER).get_data(as_text=True)
        assert counts(browser) == shown, role
        assert nav_badge(page) == totals.get(role, "2"), role


def test_private_message_changes_nothing_staff_see(
    request, logged_in, private_on, household, household_login, make_message, assigned_staff
):
    make_message(household, household_login, "Conversation note")
    browser = logged_in(assigned_staff)
    pages = ("/messages", "/messages?show=unread", "/messages?show=awaiting", "/my-clients",
             "/messages?show=private", "/notifications")

    def seen():
        return [without_csrf(browser.get(url).get_data(as_text=True)) for url in pages]

    before = seen()
    make_message(household, household_login, "Private: the gate code is 4411", feed=Feed.PRIVATE)
    for url, old, new in zip(pages, before, seen(), strict=True):
        assert new == old, url + "\n" + "\n".join(
            difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm=""))
    assert "4411" not in "".join(before)


def test_client_portal_counts_messages_from_the_business(
    app, logged_in, private_on, household, household_login, admin, make_message
):
    make_message(household, admin, "Walk done")
    make_message(household, admin, "Photos attached")
    make_message(household, admin, "Invoice question", feed=Feed.PRIVATE)
    make_message(household, household_login, "Thanks!")  # their own: never unread
    browser = logged_in(household_login)
    assert nav_badge(browser.get("/notifications").get_data(as_text=True)) == "3"
    # Opening the portal shows the Conversation: read now; Private still counts on its tab.
    page, tabs = open_feed(app, browser, f"/clients/{household.id}")
    assert tabs == {"conversation": 0, "private": 1}
    assert nav_badge(page) == "1"
    page, tabs = open_feed(app, browser, feed_url(household, "private"))
    assert tabs == {"conversation": 0, "private": 0}
    assert nav_badge(page) == "0"


def test_client_has_no_message_center(logged_in, household_login):
    assert logged_in(household_login).get(CENTER).status_code == 404


def test_unread_count_stops_at_99_plus(app, admin_browser, household, household_login,
                                      make_message):
    with app.app_context():
        db.session.execute(Message.__table__.insert(), [
            {"business_id": household.business_id, "client_id": household.id,
             "feed": Feed.CONVERSATION, "author_id": household_login.id, "text": f"m{n}",
             "created_at": utcnow()}
            for n in range(130)
        ])
        db.session.commit()
    make_message(household, household_login, "and one more")  # keeps the summary
    page = admin_browser.get(CENTER).get_data(as_text=True)
    assert counts(admin_browser) == {(household.name, None): "99+"}
    assert nav_badge(page) == "99+"
    assert '99+<span class="visually-hidden"> unread</span>' in page


def test_own_and_deleted_messages_are_not_unread(
    app, admin_browser, admin, household, household_login, make_message
):
    make_message(household, admin, "mine")
    gone = make_message(household, household_login, "oops, wrong client")
    make_message(household, household_login, "still here")
    with app.app_context():
        from portal.services import messages

        messages.delete_message(db.session.get(User, household_login.id),
                                db.session.get(Message, gone.id))
    assert counts(admin_browser) == {(household.name, None): "1"}


# --- marking read ---------------------------------------------------------------------------------

def test_opening_feed_marks_it_read(app, admin_browser, admin, household, household_login,
                                    make_message):
    make_message(household, household_login, "first")
    latest = make_message(household, household_login, "second")
    assert counts(admin_browser) == {(household.name, None): "2"}
    page = admin_browser.get(feed_url(household)).get_data(as_text=True)
    assert nav_badge(page) == "0"
    assert counts(admin_browser) == {(household.name, None): "0"}
    with app.app_context():
        marker = db.session.get(ReadMarker, (admin.id, household.id, Feed.CONVERSATION))
        assert marker.last_read_id == latest.id
    make_message(household, household_login, "third")
    assert counts(admin_browser) == {(household.name, None): "1"}


def test_profile_page_marks_conversation_read(admin_browser, household, household_login,
                                              make_message):
    make_message(household, household_login, "hello")
    admin_browser.get(f"/clients/{household.id}")
    assert counts(admin_browser) == {(household.name, None): "0"}


def test_tab_switch_marks_read_and_updates_nav_badge(
    app, logged_in, private_on, admin, household, household_login, make_message
):
    make_message(household, household_login, "conversation")
    make_message(household, household_login, "private", feed=Feed.PRIVATE)
    browser = logged_in(admin)
    page, tabs = open_feed(app, browser, feed_url(household))
    assert tabs == {"conversation": 0, "private": 1}
    assert nav_badge(page) == "1"
    fragment, tabs = open_feed(app, browser, feed_url(household, "private"), hx=True)
    assert fragment.lstrip().startswith('<section id="feed"')
    assert tabs == {"conversation": 0, "private": 0}
    oob = re.search(r'<span id="nav-unread"[^>]*hx-swap-oob="true">(.*?)</span>\s*$', fragment,
                    re.S)
    assert oob and "unread-badge" not in oob.group(1)
    assert counts(browser) == {(household.name, "Conversation"): "0",
                               (household.name, "Private"): "0"}


def test_earlier_page_does_not_mark_read(app, admin_browser, household, household_login,
                                         make_message):
    first = make_message(household, household_login, "older")
    make_message(household, household_login, "newer")
    admin_browser.get(f"{feed_url(household)}/earlier?before={first.id + 1}")
    assert counts(admin_browser) == {(household.name, None): "2"}


def test_reload_with_nothing_new_writes_nothing(app, admin_browser, household, household_login,
                                                make_message):
    make_message(household, household_login, "hello")
    admin_browser.get(feed_url(household))
    with record_sql(app) as statements:
        admin_browser.get(feed_url(household))
    assert not [sql for sql, _ in statements if "read_markers" in sql and "INSERT" in sql]


def test_read_marker_never_moves_back(app, admin, household, household_login, make_message):
    from portal.services import feed_activity

    older = make_message(household, household_login, "older")
    newer = make_message(household, household_login, "newer")
    with app.app_context():
        user, client = db.session.get(User, admin.id), db.session.get(Client, household.id)
        feed_activity.mark_read(user, client, Feed.CONVERSATION, newer.id)
        feed_activity.mark_read(user, client, Feed.CONVERSATION, older.id)
        marker = db.session.get(ReadMarker, (admin.id, household.id, Feed.CONVERSATION))
        assert marker.last_read_id == newer.id


def test_staff_tabs_count_conversation_only(app, logged_in, private_on, assigned_staff,
                                            household, household_login, make_message):
    make_message(household, household_login, "private one", feed=Feed.PRIVATE)
    _, tabs = open_feed(app, logged_in(assigned_staff), feed_url(household))
    assert tabs == {"conversation": 0}


# --- feed summaries -------------------------------------------------------------------------------

def summary(app, client, feed=Feed.CONVERSATION) -> FeedSummary | None:
    with app.app_context():
        row = db.session.get(FeedSummary, (client.id, feed))
        if row is not None:
            db.session.expunge(row)
        return row


def test_summary_follows_posts_and_deletions(app, admin, household, household_login,
                                             make_message):
    from portal.services import messages

    question = make_message(household, household_login, "question")
    assert summary(app, household).last_message_id == question.id
    assert summary(app, household).awaiting_reply_since == question.created_at
    answer = make_message(household, admin, "answer")
    row = summary(app, household)
    assert (row.last_message_id, row.last_author_id, row.awaiting_reply_since) == (
        answer.id, admin.id, None)
    with app.app_context():
        messages.delete_message(db.session.get(User, admin.id),
                                db.session.get(Message, answer.id))
    row = summary(app, household)
    assert (row.last_message_id, row.awaiting_reply_since) == (question.id, question.created_at)
    with app.app_context():
        messages.delete_message(db.session.get(User, admin.id),
                                db.session.get(Message, question.id))
    assert summary(app, household) is None


def test_deleting_an_older_message_keeps_the_summary(app, admin, household, household_login,
                                                     make_message):
    from portal.services import messages

    older = make_message(household, household_login, "older")
    newer = make_message(household, household_login, "newer")
    with app.app_context():
        messages.delete_message(db.session.get(User, admin.id),
                                db.session.get(Message, older.id))
    row = summary(app, household)
    assert row.last_message_id == newer.id
    assert row.awaiting_reply_since == older.created_at  # as stored when it was written


# --- awaiting reply -------------------------------------------------------------------------------

def test_awaiting_reply_lists_feeds_whose_last_message_is_the_clients(
    app, admin_browser, admin, household, household_login, other_household,
    other_household_login, make_message
):
    first = make_message(household, household_login, "Can you come at 3?")
    make_message(household, household_login, "Or 4?")
    age_message(app, first, hours=3, minutes=5)
    make_message(other_household, other_household_login, "Hi")
    make_message(other_household, admin, "Hello! Yes.")
    rows = threads(admin_browser, f"{CENTER}?show=awaiting")
    # Waiting since the first unanswered message, not the last.
    assert [(client, waiting) for client, _, _, waiting, _ in rows] == [(household.name, "3 h")]
    make_message(household, admin, "3 works")
    assert threads(admin_browser, f"{CENTER}?show=awaiting") == []
    everything = threads(admin_browser)
    assert [row[3] for row in everything] == [None, None]


def test_waiting_time_reads_naturally(admin_browser, app, household, household_login,
                                      make_message):
    message = make_message(household, household_login, "Anyone?")
    assert threads(admin_browser)[0][3] == "under a minute"
    age_message(app, message, minutes=12)
    assert threads(admin_browser)[0][3] == "12 min"
    age_message(app, message, days=3)
    assert threads(admin_browser)[0][3] == "3 days"


# --- filters, search, paging ----------------------------------------------------------------------

def test_filters_by_feed_and_unread(
    logged_in, admin, private_on, household, other_household, household_login, make_message
):
    make_message(household, household_login, "conversation")
    make_message(household, household_login, "private", feed=Feed.PRIVATE)
    make_message(other_household, admin, "my own note")
    browser = logged_in(admin)
    assert [row[:2] for row in threads(browser, f"{CENTER}?show=private")] == [
        (household.name, "Private")]
    assert {row[:2] for row in threads(browser, f"{CENTER}?show=conversation")} == {
        (household.name, "Conversation"), (other_household.name, "Conversation")}
    assert {row[:2] for row in threads(browser, f"{CENTER}?show=unread")} == {
        (household.name, "Conversation"), (household.name, "Private")}


def test_staff_get_no_private_filter(logged_in, private_on, assigned_staff, household,
                                     household_login, make_message):
    make_message(household, household_login, "hello")
    browser = logged_in(assigned_staff)
    page = browser.get(CENTER).get_data(as_text=True)
    assert 'value="private"' not in page and 'value="conversation"' not in page
    # Asked anyway, the filter is ignored: still only the Conversation feed.
    assert counts(browser, f"{CENTER}?show=private") == {(household.name, None): "1"}


def test_list_is_newest_activity_first_with_excerpt_and_author(
    admin_browser, admin, household, other_household, household_login, make_message
):
    make_message(household, household_login, "Biscuit   ate\nhis  dinner " + "very " * 60)
    make_message(other_household, admin, "Reminder: walk at 9")
    rows = threads(admin_browser)
    assert [row[0] for row in rows] == [other_household.name, household.name]
    assert "You: Reminder: walk at 9" in rows[0][4]
    assert "Carla Client: Biscuit ate his dinner very" in rows[1][4]
    assert rows[1][4].rstrip().endswith("very…")


def test_search_by_client_name_takes_wildcards_literally(admin_browser, make_client, admin,
                                                          make_message):
    for name in ("100% Dogs", "1000 Dogs", "Cats_R_Us", "CatsXRXUs"):
        make_message(make_client(name=name), admin, "hi")
    assert [row[0] for row in threads(admin_browser, f"{CENTER}?q=100%25")] == ["100% Dogs"]
    assert [row[0] for row in threads(admin_browser, f"{CENTER}?q=s_r")] == ["Cats_R_Us"]
    assert {row[0] for row in threads(admin_browser, f"{CENTER}?q=dogs")} == {
        "100% Dogs", "1000 Dogs"}
    page = admin_browser.get(f"{CENTER}?q=nobody").get_data(as_text=True)
    assert "No client matches “nobody”." in page


def many_clients(app, business, author, count, make_client):
    """count clients with one message each, written through post_message."""
    from portal.services import messages

    clients = [make_client(name=f"Client {n:03}") for n in range(count)]
    with app.app_context():
        writer = db.session.get(User, author.id)
        for record in clients:
            messages.post_message(writer, db.session.get(Client, record.id),
                                  Feed.CONVERSATION, f"note for {record.name}")
    return clients


def test_more_pages_by_keyset_not_offset(app, admin_browser, business, household_login,
                                         make_client):
    many_clients(app, business, household_login, 30, make_client)
    page = admin_browser.get(CENTER).get_data(as_text=True)
    assert len(_THREAD.findall(page)) == 25
    more = re.search(r'href="(/messages\?before=(\d+))"', page)
    assert more and ">More</a>" in page
    with record_sql(app) as statements:
        fragment = admin_browser.htmx("GET", more.group(1)).get_data(as_text=True)
    center = [(sql, params) for sql, params in statements if "FROM feed_summaries" in sql
              and "ORDER BY feed_summaries.last_message_id DESC" in sql]
    assert len(center) == 1
    sql, params = center[0]
    assert "feed_summaries.last_message_id <" in sql
    # SQLite's dialect appends "OFFSET ?" bound to 0 to every LIMIT: nothing is skipped.
    if "OFFSET" in sql:
        assert list(params)[-1] == 0
    # The next rows alone, to append, and the pager replaced out of band (now without More).
    assert fragment.lstrip().startswith('<li class="thread')
    assert len(_THREAD.findall(fragment)) == 5
    assert re.search(r'<p class="pager list-pager" id="center-more" hx-swap-oob="true">\s*</p>',
                     fragment)
    shown = [row[0] for row in threads(admin_browser)] + [
        re.search(r'class="thread-client">([^<]*)<', block).group(1)
        for block in _THREAD.findall(fragment)
    ]
    assert shown == [f"Client {n:03}" for n in reversed(range(30))]


def test_more_without_javascript_is_a_page(app, admin_browser, business, household_login,
                                           make_client):
    many_clients(app, business, household_login, 27, make_client)
    page = admin_browser.get(CENTER).get_data(as_text=True)
    url = re.search(r'href="(/messages\?before=\d+)"', page).group(1)
    response = admin_browser.get(url)
    body = response.get_data(as_text=True)
    assert "<html" in body and len(_THREAD.findall(body)) == 2
    assert "Back to the most recent" in body and ">More</a>" not in body


def test_more_keeps_filter_and_search(app, admin_browser, business, household_login,
                                      make_client):
    many_clients(app, business, household_login, 26, make_client)
    page = admin_browser.get(f"{CENTER}?show=awaiting&q=client").get_data(as_text=True)
    url = re.search(r'href="(/messages\?[^"]*before=\d+[^"]*)"', page).group(1)
    assert "show=awaiting" in url and "q=client" in url
    assert len(threads(admin_browser, url.replace("&amp;", "&"))) == 1


# --- page and fragments ---------------------------------------------------------------------------

def test_center_is_page_without_htmx_and_results_with(admin_browser, household, household_login,
                                                      make_message):
    make_message(household, household_login, "hello")
    page = admin_browser.get(CENTER)
    fragment = admin_browser.htmx("GET", f"{CENTER}?show=unread")
    assert "<html" in page.get_data(as_text=True)
    assert 'aria-current="page">Messages' in page.get_data(as_text=True)
    body = fragment.get_data(as_text=True)
    assert body.lstrip().startswith('<section id="center-results"') and "<html" not in body
    assert household.name in body
    assert "HX-Request" in fragment.headers["Vary"]


def test_history_restore_gets_the_whole_center_page(admin_browser):
    response = admin_browser.get(CENTER, headers={"HX-Request": "true",
                                                 "HX-History-Restore-Request": "true"})
    assert "<html" in response.get_data(as_text=True)


def test_empty_center_says_so(admin_browser):
    page = admin_browser.get(CENTER).get_data(as_text=True)
    assert "No messages yet." in page
    assert "Nothing unread" in admin_browser.get(f"{CENTER}?show=unread").get_data(as_text=True)


def test_navigation_offers_messages_to_admin_team_and_staff(
    request, logged_in, household_login
):
    for role in ("admin", "office_manager", "staff_unrelated"):
        page = logged_in(request.getfixturevalue(ROLES[role])).get("/notifications")
        assert 'href="/messages"' in page.get_data(as_text=True), role
    page = logged_in(household_login).get("/notifications").get_data(as_text=True)
    assert 'href="/messages"' not in page and 'id="nav-unread"' in page


# --- My Clients -----------------------------------------------------------------------------------

def test_my_clients_shows_unread_counts(logged_in, assigned_staff, household, household_login,
                                        make_message, private_on):
    make_message(household, household_login, "one")
    make_message(household, household_login, "two")
    make_message(household, household_login, "private", feed=Feed.PRIVATE)
    page = logged_in(assigned_staff).get("/my-clients").get_data(as_text=True)
    assert re.search(re.escape(household.name) + r'<span class="unread-badge">'
                     r'<span class="visually-hidden">, </span>2<span '
                     r'class="visually-hidden"> unread</span></span></a>', page)


@pytest.mark.parametrize("url", [CENTER, "/my-clients"])
def test_list_pages_count_the_navigation_total_in_their_list_statement(
    app, logged_in, assigned_staff, household, household_login, make_message, private_on, url
):
    """The lists count the navigation's badge in their own statement; an empty list (a search
    matching nobody) leaves it to the badge's own query. Either way it is the same number."""
    make_message(household, household_login, "one")
    make_message(household, household_login, "two")
    make_message(household, household_login, "private", feed=Feed.PRIVATE)
    browser = logged_in(assigned_staff)
    expected = nav_badge(browser.get("/notifications").get_data(as_text=True))
    assert expected == "2"
    with record_sql(app) as statements:
        page = browser.get(url).get_data(as_text=True)
    assert nav_badge(page) == expected and household.name in page
    # The badge's own query (unread.total) is a select of one count and nothing else.
    assert not [sql for sql, _ in statements if sql.startswith("SELECT (SELECT count(*)")]
    assert nav_badge(browser.get(f"{CENTER}?q=nobody").get_data(as_text=True)) == expected


# --- a constant number of queries -----------------------------------------------------------------

def center_queries(app, browser, url=CENTER) -> int:
    with record_sql(app) as statements:
        assert browser.get(url).status_code == 200
    return len(statements)


@pytest.mark.parametrize("viewer", ["admin", "assigned_staff"])
def test_center_query_count_is_constant(app, request, logged_in, business, household_login,
                                        make_client, make_service, viewer):
    user = request.getfixturevalue(viewer)
    browser = logged_in(user)

    def add_clients(count):
        for record in many_clients(app, business, household_login, count, make_client):
            if viewer == "assigned_staff":
                make_service(record, user)

    add_clients(3)
    small = center_queries(app, browser)
    add_clients(37)
    large = center_queries(app, browser)
    assert len(threads(browser)) == 25
    assert small == large <= 2, (small, large)
    # A search on PostgreSQL first asks for a plan of its own (portal.extensions.plan_for_values).
    searching = large + (1 if POSTGRES_URL else 0)
    assert center_queries(app, browser, f"{CENTER}?show=unread&q=client") == searching


def test_my_clients_query_count_is_constant(app, logged_in, assigned_staff, business,
                                            household_login, make_client, make_service):
    browser = logged_in(assigned_staff)
    for record in many_clients(app, business, household_login, 3, make_client):
        make_service(record, assigned_staff)
    small = center_queries(app, browser, "/my-clients")
    for record in many_clients(app, business, household_login, 37, make_client):
        make_service(record, assigned_staff)
    assert center_queries(app, browser, "/my-clients") == small <= 2


# --- the policy's SQL agrees with its rules -------------------------------------------------------

@pytest.mark.parametrize("private_enabled", [True, False], ids=["private_on", "private_off"])
def test_visible_feeds_clause_matches_can_view_feed(
    app, request, business, household, other_household, make_client, stranger_business,
    private_enabled
):
    set_private_messaging(app, business, private_enabled)
    foreign = make_client(business=stranger_business, name="Rival Household")
    records = [household, other_household, foreign]
    for role in ROLES:
        user = request.getfixturevalue(ROLES[role])
        with app.test_request_context():
            viewer = db.session.get(User, user.id)
            for record in records:
                record = db.session.get(Client, record.id)
                for feed in Feed:
                    clause = policy.visible_feeds_clause(
                        viewer, record.business_id, record.id, feed)
                    in_sql = bool(db.session.scalar(select(clause)))
                    assert in_sql == policy.can_view_feed(viewer, record, feed), (
                        role, record.name, feed)


def test_message_center_rule_by_role(app, request):
    allowed = {"admin", "office_manager", "office_manager_private", "staff_scheduled",
               "staff_preferred", "staff_unrelated", "other_business_admin"}
    for role in ROLES:
        user = request.getfixturevalue(ROLES[role])
        with app.test_request_context():
            viewer = db.session.get(User, user.id)
            assert policy.can_use_message_center(viewer) == (role in allowed), role


# --- the migration's backfill ---------------------------------------------------------------------

# The messages table as that revision has it: the model's later columns are not there yet.
MESSAGES_AT_90D70486D2BD = Table(
    "messages", MetaData(), Column("id", Integer, primary_key=True),
    *(Column(name) for name in ("business_id", "client_id", "feed", "author_id", "text")),
    Column("created_at", UTCDateTime()), Column("deleted_at", UTCDateTime()),
)


@pytest.mark.committed  # Alembic migrates through a connection of its own
def test_migration_backfills_summaries_and_read_markers(app, business, admin, household,
                                                        household_login, other_household):
    with app.app_context():
        downgrade(revision="90d70486d2bd")
        now = utcnow()
        rows = [
            (household.id, Feed.CONVERSATION, admin.id, "hello", now - timedelta(hours=5), None),
            (household.id, Feed.CONVERSATION, household_login.id, "q1", now - timedelta(hours=4),
             None),
            (household.id, Feed.CONVERSATION, household_login.id, "q2", now - timedelta(hours=3),
             None),
            (household.id, Feed.CONVERSATION, household_login.id, None, now - timedelta(hours=2),
             now),
            (other_household.id, Feed.CONVERSATION, household_login.id, "x", now, None),
            (other_household.id, Feed.CONVERSATION, admin.id, "answered", now, None),
            (household.id, Feed.PRIVATE, admin.id, None, now, now),  # only a deleted one
        ]
        ids = []
        for client_id, feed, author_id, text, created_at, deleted_at in rows:
            ids.append(db.session.execute(MESSAGES_AT_90D70486D2BD.insert().values(
                business_id=business.id, client_id=client_id, feed=feed, author_id=author_id,
                text=text, created_at=created_at, deleted_at=deleted_at,
            )).inserted_primary_key[0])
        db.session.commit()
        db.session.remove()
        upgrade()
        summaries = {
            (row.client_id, row.feed): row for row in db.session.scalars(select(FeedSummary))
        }
        assert set(summaries) == {(household.id, Feed.CONVERSATION),
                                  (other_household.id, Feed.CONVERSATION)}
        mine = summaries[(household.id, Feed.CONVERSATION)]
        assert (mine.last_message_id, mine.last_author_id) == (ids[2], household_login.id)
        assert mine.awaiting_reply_since == rows[1][4]  # since q1: the deleted one is gone
        theirs = summaries[(other_household.id, Feed.CONVERSATION)]
        assert (theirs.last_message_id, theirs.awaiting_reply_since) == (ids[5], None)
        markers = {(row.user_id, row.client_id): row.last_read_id
                   for row in db.session.scalars(select(ReadMarker))}
        # Everyone has read what was there; the client login only their household's feeds.
        assert markers == {
            (admin.id, household.id): ids[2], (admin.id, other_household.id): ids[5],
            (household_login.id, household.id): ids[2],
        }
        assert db.session.get(Business, business.id) is not None


@pytest.mark.skipif(bool(POSTGRES_URL), reason="reads SQLite's query plan")
def test_unread_counts_read_the_feed_index_alone(app, admin, household):
    # Deleted and own messages are left out of counts: the index holds both columns, so a
    # count over thousands of unread messages never reads their rows.
    rows = unread.unread_rows(admin, household.id, Feed.CONVERSATION, 0).limit(unread.CAP)
    statement = select(func.count()).select_from(rows.subquery())
    with app.app_context():
        sql = statement.compile(db.engine, compile_kwargs={"literal_binds": True})
        plan = db.session.execute(text(f"EXPLAIN QUERY PLAN {sql}")).all()
    assert any("USING COVERING INDEX ix_messages_client_feed" in row.detail for row in plan), plan
