"""The composer belongs to its feed: its id, target and token name the feed it is shown with,
and a page its viewer left for another feed (the tab's ping) posts nothing."""

import re

import pytest
from flask import url_for

from portal.models import Feed, Message, RetiredComposer

from .helpers import count_rows, set_private_messaging


@pytest.fixture
def private_on(app, business):
    set_private_messaging(app, business, True)


def feed_url(household, feed: Feed) -> str:
    return f"/clients/{household.id}/feeds/{feed.value}"


def composer_token(page: str) -> str:
    return re.search(r'name="composer" value="([^"]+)"', page).group(1)


def ping(browser, household, feed: Feed, token: str, **headers):
    """What Chromium sends for <a ping>: a POST of "PING", no form, no CSRF token."""
    return browser.post(
        f"{feed_url(household, feed)}/left/{token}", data=b"PING",
        headers={"Content-Type": "text/ping", "Sec-Fetch-Site": "same-origin", **headers},
    )


@pytest.mark.parametrize("feed", list(Feed))
def test_composer_names_its_own_feed(logged_in, admin, household, private_on, feed):
    page = logged_in(admin).get(feed_url(household, feed)).get_data(as_text=True)
    assert f'id="composer-{feed.value}"' in page
    assert f'hx-target="#messages-{feed.value}"' in page
    assert f'<div class="messages" id="messages-{feed.value}">' in page
    button = re.search(r'<button type="submit" class="button primary[^"]*">(.*?)</button>', page)
    assert button.group(1).endswith(feed.send_label)
    if feed == Feed.PRIVATE:
        assert "<svg" in button.group(1)  # the lock, on the button itself
        assert 'class="composer composer-private"' in page
        assert 'placeholder="Write a private message…"' in page


def test_other_tabs_ping_with_the_pages_composer_token(logged_in, admin, household, private_on):
    page = logged_in(admin).get(feed_url(household, Feed.CONVERSATION)).get_data(as_text=True)
    token = composer_token(page)
    pings = re.findall(r'\sping="([^"]+)"', page)
    # Only the tab to another feed pings, naming the feed being left and this page's token.
    assert pings == [f"{feed_url(household, Feed.CONVERSATION)}/left/{token}"]


def test_send_from_a_left_page_is_refused_and_keeps_the_text(
    app, logged_in, admin, household, private_on, assigned_staff
):
    browser = logged_in(admin)
    token = composer_token(browser.get(feed_url(household, Feed.CONVERSATION)).get_data(True))
    assert ping(browser, household, Feed.CONVERSATION, token).status_code == 204

    response = browser.submit(
        f"{feed_url(household, Feed.CONVERSATION)}/messages",
        {"text": "meant for Private", "composer": token},
    )
    assert response.status_code == 409
    page = response.get_data(as_text=True)
    assert "Not sent: you opened another feed before this message went." in page
    assert ">meant for Private</textarea>" in page
    # A new token: pressing Send again on this page posts where it says.
    new_token = composer_token(page)
    assert new_token != token
    assert count_rows(app, Message) == 0
    again = browser.submit(
        f"{feed_url(household, Feed.CONVERSATION)}/messages",
        {"text": "meant for Private", "composer": new_token},
    )
    assert again.status_code == 302
    assert count_rows(app, Message, Message.feed == Feed.CONVERSATION) == 1


def test_htmx_send_from_a_left_page_comes_back_to_its_own_composer(
    app, logged_in, admin, household, private_on
):
    browser = logged_in(admin)
    page = browser.get(feed_url(household, Feed.PRIVATE)).get_data(as_text=True)
    token = composer_token(page)
    ping(browser, household, Feed.PRIVATE, token)
    response = browser.htmx(
        "POST", f"{feed_url(household, Feed.PRIVATE)}/messages",
        data={"text": "typed in Private", "composer": token},
    )
    assert response.status_code == 200
    assert response.headers["HX-Retarget"] == "#composer-private"
    body = response.get_data(as_text=True)
    assert "press Send privately again" in body
    assert count_rows(app, Message) == 0


def test_a_retired_composer_counts_only_for_the_person_who_left_it(
    app, logged_in, admin, office_manager, household
):
    admin_browser = logged_in(admin)
    token = composer_token(admin_browser.get(feed_url(household, Feed.CONVERSATION)).get_data(True))
    # Someone else pinging the same token (they could not know it) changes nothing for the admin.
    manager = logged_in(office_manager)
    assert ping(manager, household, Feed.CONVERSATION, token).status_code == 204
    response = admin_browser.submit(
        f"{feed_url(household, Feed.CONVERSATION)}/messages", {"text": "mine", "composer": token}
    )
    assert response.status_code == 302
    assert count_rows(app, Message) == 1


@pytest.mark.parametrize("site", ["cross-site", "same-site"])
def test_ping_from_another_site_is_refused(app, logged_in, admin, household, site):
    browser = logged_in(admin)
    response = ping(browser, household, Feed.CONVERSATION, "a" * 22, **{"Sec-Fetch-Site": site})
    assert response.status_code == 404
    assert count_rows(app, RetiredComposer) == 0


@pytest.mark.parametrize("token", ["short", "x" * 44, "bad token with spaces!", "%2e%2e"])
def test_ping_with_a_malformed_token_is_refused(app, logged_in, admin, household, token):
    response = ping(logged_in(admin), household, Feed.CONVERSATION, token)
    assert response.status_code == 404
    assert count_rows(app, RetiredComposer) == 0


def test_ping_for_a_feed_the_person_may_not_see_is_404(
    app, logged_in, unassigned_staff, household, private_on
):
    browser = logged_in(unassigned_staff)
    assert ping(browser, household, Feed.CONVERSATION, "a" * 22).status_code == 404
    assert count_rows(app, RetiredComposer) == 0


def test_every_post_endpoint_but_the_ping_needs_a_csrf_token(app, logged_in, admin, household):
    """The tab's ping is the one POST a browser cannot add a token to; the SMS provider's
    callbacks (a text's status, a text coming in) prove themselves by their signature instead
    (tests/test_delivery.py, tests/test_sms_replies.py). Nothing else goes without."""
    browser = logged_in(admin)
    values = {"client_id": household.id, "feed_name": "conversation", "token": "a" * 22,
              "message_id": 1, "service_id": 1, "staff_id": 1, "user_id": 1, "reply_id": 1,
              "pet_id": 1, "scheduled_id": 1}
    exempt = []
    with app.test_request_context():
        rules = [rule for rule in app.url_map.iter_rules() if "POST" in rule.methods]
        urls = {rule.endpoint: url_for(rule.endpoint, **{
            name: values[name] for name in rule.arguments}) for rule in rules}
    for endpoint, url in sorted(urls.items()):
        if browser.post(url, data={}).status_code != 400:
            exempt.append(endpoint)
    assert exempt == ["feeds.leave", "sms.receive", "sms.status"]
