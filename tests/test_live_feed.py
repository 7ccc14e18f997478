"""Open feeds update themselves: the poll answers 204 when nothing changed, otherwise new
messages to append and tombstones to swap in."""

import re
from datetime import timedelta

from portal.feeds.routes import DELETIONS_LOOKED_BACK
from portal.models import Feed, Message, utcnow
from portal.urls import moment_token

from .helpers import record_sql, update_row


def poll_url(record, after, oldest=None, since=None, feed="conversation"):
    since = since if since is not None else moment_token(utcnow() - timedelta(seconds=1))
    oldest = oldest if oldest is not None else after
    return (f"/clients/{record.id}/feeds/{feed}/updates"
            f"?after={after}&oldest={oldest}&since={since}")


def test_feed_page_carries_the_poller(admin_browser, household):
    page = admin_browser.get(f"/clients/{household.id}").get_data(as_text=True)
    assert re.search(r'id="feed-poller" hidden hx-get="/clients/\d+/feeds/conversation/updates'
                     r'\?since=\d+" hx-trigger="every 2s', page)


def test_nothing_new_is_an_empty_204(app, admin_browser, admin, household, make_message):
    message = make_message(household, admin, "already shown")
    response = admin_browser.htmx("GET", poll_url(household, message.id))
    assert response.status_code == 204 and response.data == b""


def test_nothing_new_costs_one_feed_query(app, admin_browser, admin, household, make_message):
    message = make_message(household, admin, "already shown")
    with record_sql(app) as statements:
        admin_browser.htmx("GET", poll_url(household, message.id))
    assert len([sql for sql, _ in statements if "FROM messages" in sql]) == 1
    assert len(statements) <= 3


def test_new_messages_from_others_arrive(app, admin_browser, admin, household_login, household,
                                         make_message):
    shown = make_message(household, admin, "shown already")
    make_message(household, household_login, "Biscuit is at the vet today")
    response = admin_browser.htmx("GET", poll_url(household, shown.id))
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert body.lstrip().startswith('<div id="feed-poller"')
    assert '<div hx-swap-oob="beforeend:#messages-conversation">' in body
    assert "Biscuit is at the vet today" in body and "shown already" not in body


def test_deletions_arrive_as_tombstones(app, admin_browser, admin, household_login, household,
                                        make_message, logged_in):
    since = moment_token(utcnow() - timedelta(seconds=1))
    message = make_message(household, household_login, "oops")
    logged_in(household_login).submit(f"/messages/{message.id}/delete")
    body = admin_browser.htmx("GET", poll_url(household, message.id, since=since)).get_data(
        as_text=True)
    assert re.search(rf'<article class="message deleted" id="message-{message.id}"[^>]*'
                     r'hx-swap-oob="true"', body)
    assert "Message deleted" in body and "oops" not in body


def test_a_deletion_committed_after_a_poll_answered_past_its_moment_still_arrives(
    app, admin_browser, household_login, household, make_message, logged_in,
):
    """Its moment is taken before its transaction commits (or on a host whose clock is
    behind): the poll that read just before the commit answered with a later moment."""
    message = make_message(household, household_login, "Sent to the wrong household")
    answered = utcnow()
    logged_in(household_login).submit(f"/messages/{message.id}/delete")
    update_row(app, Message, message.id, deleted_at=answered - timedelta(seconds=2))
    body = admin_browser.htmx("GET", poll_url(household, message.id,
                                              since=moment_token(answered))).get_data(as_text=True)
    assert f'id="message-{message.id}"' in body and "Message deleted" in body
    assert "wrong household" not in body


def test_old_deletions_are_not_sent_again(app, admin_browser, admin, household, make_message):
    message = make_message(household, admin, "gone")
    admin_browser.submit(f"/messages/{message.id}/delete")
    past_the_look_back = utcnow() + DELETIONS_LOOKED_BACK + timedelta(seconds=1)
    response = admin_browser.htmx("GET", poll_url(household, message.id,
                                                  since=moment_token(past_the_look_back)))
    assert response.status_code == 204


def test_poll_follows_the_feed_policy(app, logged_in, unassigned_staff, assigned_staff,
                                      business, household, admin, make_message):
    from .helpers import set_private_messaging

    make_message(household, admin, "hello")
    assert logged_in(unassigned_staff).htmx("GET", poll_url(household, 0)).status_code == 404
    staff = logged_in(assigned_staff)
    assert staff.htmx("GET", poll_url(household, 0)).status_code == 200
    set_private_messaging(app, business, True)
    private = poll_url(household, 0, feed=Feed.PRIVATE.value)
    assert staff.htmx("GET", private).status_code == 404
    assert logged_in(admin).htmx("GET", private).status_code == 204


def test_bad_poll_parameters_are_harmless(admin_browser, household):
    poll = f"/clients/{household.id}/feeds/conversation/updates"
    # A moment too far for any clock is simply "now"; ids that are not ids find no page.
    far_moment = admin_browser.htmx("GET", f"{poll}?since=999999999999999999999")
    assert far_moment.status_code in (200, 204)
    for ids in ("after=x", "oldest=-5", "shown=1e3"):
        assert admin_browser.htmx("GET", f"{poll}?{ids}").status_code == 404


def test_messages_brought_by_a_poll_count_as_read_once_the_next_poll_shows_them(
    app, admin_browser, admin, household_login, household, make_message
):
    from sqlalchemy import select

    from portal.extensions import db
    from portal.models.feeds import ReadMarker

    def marker():
        with app.app_context():
            return db.session.scalar(select(ReadMarker.last_read_id).where(
                ReadMarker.user_id == admin.id, ReadMarker.client_id == household.id))

    shown = make_message(household, admin, "shown already")
    arrived = make_message(household, household_login, "new from the client")
    body = admin_browser.htmx("GET", poll_url(household, shown.id)).get_data(as_text=True)
    assert "new from the client" in body
    # Not read yet: the answer may never reach the screen (another tab opened meanwhile).
    assert marker() is None
    next_poll = re.search(r'id="feed-poller" hidden hx-get="([^"]+)"', body).group(1)
    assert f"shown={arrived.id}" in next_poll
    # The next poll says the page shows it (after): now it is read, and the badge follows.
    confirmed = admin_browser.htmx(
        "GET", next_poll.replace("&amp;", "&") + f"&after={arrived.id}&oldest={shown.id}")
    assert confirmed.status_code == 200
    confirmed_body = confirmed.get_data(as_text=True)
    assert re.search(r'<span id="nav-unread"[^>]*hx-swap-oob="true">', confirmed_body)
    assert "shown=" not in re.search(r'id="feed-poller" hidden hx-get="([^"]+)"',
                                     confirmed_body).group(1)
    assert marker() == arrived.id


def test_a_poll_claiming_more_than_the_page_shows_marks_nothing(
    app, admin_browser, admin, household_login, household, make_message
):
    shown = make_message(household, admin, "shown already")
    arrived = make_message(household, household_login, "never reached the screen")
    response = admin_browser.htmx(
        "GET", poll_url(household, shown.id) + f"&shown={arrived.id}")
    assert "never reached the screen" in response.get_data(as_text=True)
    from portal.models import ReadMarker

    from .helpers import count_rows
    assert count_rows(app, ReadMarker, ReadMarker.user_id == admin.id) == 0


def test_navigation_badge_polls_its_own_count(logged_in, admin, household_login, household,
                                              make_message, client):
    browser = logged_in(admin)
    page = browser.get("/clients").get_data(as_text=True)
    assert re.search(r'<span id="nav-unread" hx-get="/messages/badge" hx-trigger="every 10s"',
                     page)
    make_message(household, household_login, "a new one")
    badge = browser.htmx("GET", "/messages/badge").get_data(as_text=True)
    assert badge.startswith('<span id="nav-unread"') and "1<span" in badge
    assert client.get("/messages/badge").status_code == 302


def test_badge_poll_on_a_client_page_brings_the_other_tabs_counts(
    app, logged_in, admin, household_login, household, make_message, business, assigned_staff,
    unassigned_staff,
):
    from .helpers import set_private_messaging

    set_private_messaging(app, business, True)
    browser = logged_in(admin)
    page = browser.get(f"/clients/{household.id}").get_data(as_text=True)
    assert f'hx-get="/messages/badge?client_id={household.id}&amp;feed=conversation"' in page
    make_message(household, household_login, "private question", feed=Feed.PRIVATE)
    make_message(household, household_login, "in the open feed")
    body = browser.htmx(
        "GET", f"/messages/badge?client_id={household.id}&feed=conversation"
    ).get_data(as_text=True)
    assert re.search(r'<span id="tab-unread-private" hx-swap-oob="true"><span class="unread-badge">'
                     r'<span class="visually-hidden">, </span>1<', body)
    # The open feed's own badge stays empty: its poll shows and marks those messages.
    assert '<span id="tab-unread-conversation" hx-swap-oob="true"></span>' in body
    staff = logged_in(assigned_staff).htmx(
        "GET", f"/messages/badge?client_id={household.id}&feed=conversation"
    ).get_data(as_text=True)
    assert "tab-unread-private" not in staff
    stranger = logged_in(unassigned_staff).htmx("GET", f"/messages/badge?client_id={household.id}")
    assert stranger.status_code == 404


def test_ids_beyond_any_in_the_url_find_no_page_rather_than_fail(admin_browser, admin, household,
                                                                   make_message):
    make_message(household, admin, "hello")
    largest, huge = 2**31 - 1, 10**30
    feed = f"/clients/{household.id}/feeds/conversation"
    assert admin_browser.htmx("GET", f"{feed}/updates?after={largest}").status_code == 204
    for url in (f"{feed}/updates?after={huge}&oldest={huge}", f"{feed}/earlier?before={-huge}",
                f"{feed}/earlier?before={largest + 1}", f"/messages?before={huge}",
                f"/settings/audit-log?before={huge}",
                f"/messages/badge?client_id={household.id}{huge}"):
        assert admin_browser.htmx("GET", url).status_code == 404, url
