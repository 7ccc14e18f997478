"""Clear dead ends: nobody's navigation leads to a page that is a 404 for them, and someone whose
access ended gets a page that says so plainly, without telling which (still a 404)."""

import re
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

from portal.models import Feed

from .helpers import grant_private_access, png_bytes, set_private_messaging

LINK = re.compile(r'\s(?:href|hx-get|src)="(/[^"]*)"')
NOT_AVAILABLE = "It is not available to you, or it no longer exists."


def normal(url: str) -> str:
    """One URL per page: no fragment, and not the moment a live feed's poll starts from."""
    parts = urlsplit(url)
    query = urlencode([(name, value) for name, value in parse_qsl(parts.query)
                       if name != "since"])
    return parts.path + (f"?{query}" if query else "")


def without_tokens(page: str) -> str:
    """A page without its CSRF tokens, which change from one second to the next."""
    return re.sub(r'(name="csrf_token" value="|"X-CSRFToken": ")[^"]+', "", page)


def crawl(browser, start: str = "/", limit: int = 200) -> tuple[set[str], list[str]]:
    """Every page reachable from `start` by the links and htmx requests pages offer; returns the
    URLs seen and "url (linked from page)" for each that answered 404."""
    seen: set[str] = set()
    queue = [(start, "the start")]
    broken = []
    while queue and len(seen) < limit:
        url, referrer = queue.pop(0)
        url = normal(url)
        if url in seen or url.startswith("/static/"):
            continue
        seen.add(url)
        response = browser.get(url)
        if response.status_code == 404:
            broken.append(f"{url} (linked from {referrer})")
        elif response.status_code in (301, 302, 303):
            queue.append((urlsplit(response.location).path, url))
        elif response.mimetype == "text/html":
            page = response.get_data(as_text=True).replace("&amp;", "&")
            queue += [(link, url) for link in LINK.findall(page)]
    return seen, broken


@pytest.fixture
def lived_in(app, business, household, admin, household_login, assigned_staff, make_message):
    """A household with messages and files in both feeds."""
    set_private_messaging(app, business, True)
    make_message(household, household_login, "Gate code changed", files=[("gate.png", png_bytes())])
    make_message(household, admin, "Invoice attached", feed=Feed.PRIVATE,
                 files=[("invoice.txt", b"amount due")])


@pytest.mark.parametrize("private_on", [True, False])
@pytest.mark.parametrize("role", ["household_login", "assigned_staff", "office_manager", "admin"])
def test_navigation_never_links_to_a_404(
    app, request, logged_in, business, lived_in, role, private_on
):
    set_private_messaging(app, business, private_on)
    seen, broken = crawl(logged_in(request.getfixturevalue(role)))
    assert len(seen) > 5
    assert broken == []


def test_sitter_after_the_window_is_told_the_page_is_not_available(
    app, logged_in, make_user, make_service, household, make_message, admin
):
    staff = make_user(name="Former Sitter")
    make_service(household, staff, days_from_now=-30)  # long past the access window
    message = make_message(household, admin, "Old news")
    browser = logged_in(staff)
    for url in (f"/clients/{household.id}", f"/clients/{household.id}/feeds/conversation",
                f"/messages/{message.id}/delete", "/clients/987654"):
        response = browser.get(url)
        page = response.get_data(as_text=True)
        assert response.status_code == 404
        assert "This page is not available" in page and NOT_AVAILABLE in page
        assert 'href="/">Go to My Clients</a>' in page
        assert "Old news" not in page and household.name not in page


def test_manager_whose_grant_was_removed_is_told_the_same(
    app, logged_in, business, office_manager, household, make_message, admin
):
    set_private_messaging(app, business, True)
    grant_private_access(app, office_manager)
    make_message(household, admin, "Invoice 42", feed=Feed.PRIVATE)
    browser = logged_in(office_manager)
    private = f"/clients/{household.id}/feeds/private"
    assert browser.get(private).status_code == 200
    grant_private_access(app, office_manager, False)
    response = browser.get(private)
    page = response.get_data(as_text=True)
    assert response.status_code == 404
    assert NOT_AVAILABLE in page and 'href="/">Go to Clients</a>' in page
    assert "Invoice 42" not in page
    # The same page for one that never existed: nothing tells the two apart.
    never = browser.get("/clients/987654/feeds/private")
    assert never.status_code == 404
    assert without_tokens(never.get_data(as_text=True)) == without_tokens(page)


def test_client_is_sent_home_to_their_messages(logged_in, household_login):
    page = logged_in(household_login).get("/clients/987654").get_data(as_text=True)
    assert 'href="/">Go to your messages</a>' in page
