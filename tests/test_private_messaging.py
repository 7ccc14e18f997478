"""Private Messaging, as the help article describes it: the setting, the Permissions page,
the Private feed, and a private message that never reaches staff."""

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import (
    Attachment,
    AuditEvent,
    Business,
    Feed,
    Message,
    Role,
    ScheduledMessage,
    User,
    utcnow,
)

from .helpers import grant_private_access, png_bytes, set_private_messaging

SECRET = "invoice question zq-7781 about the walker performance"
PHOTO = png_bytes()


def tabs(page: str) -> list[str]:
    return re.findall(r'role="tab" id="tab-(\w+)"', page)


@pytest.fixture
def enabled(app, business):
    set_private_messaging(app, business, True)


@pytest.fixture
def private_message(enabled, make_message, household, admin):
    return make_message(household, admin, SECRET, feed=Feed.PRIVATE,
                        files=[("zq-7781-invoice.png", PHOTO), ("zq-7781-notes.txt", b"zq-7781")])


# --- Settings - Client Settings - Portal Settings ---------------------------------------------

def test_settings_menu_leads_to_portal_settings(logged_in, admin):
    browser = logged_in(admin)
    home = browser.get("/clients").get_data(as_text=True)
    assert re.search(r'<a href="/settings"[^>]*>Settings</a>', home)
    menu = browser.get("/settings").get_data(as_text=True)
    assert "Client Settings" in menu
    assert re.search(r'<a href="/settings/client/portal"[^>]*>Portal Settings</a>', menu)


def test_portal_settings_defaults_to_no(logged_in, admin):
    page = logged_in(admin).get("/settings/client/portal").get_data(as_text=True)
    assert '<label for="private_messaging_enabled">Private Messaging Enabled</label>' in page
    assert re.search(r'<option selected value="no">No</option>', page)
    assert '<option value="yes">Yes</option>' in page
    assert '<button type="submit" class="button primary">Save</button>' in page


def test_saving_yes_enables_private_messaging_with_confirmation(app, logged_in, admin, business):
    browser = logged_in(admin)
    response = browser.submit(
        "/settings/client/portal", {"private_messaging_enabled": "yes", "staff_access_days": "7"}
    )
    assert response.status_code == 302
    page = browser.get(response.headers["Location"]).get_data(as_text=True)
    assert "Portal Settings saved. Private Messaging is enabled." in page
    assert re.search(r'<option selected value="yes">Yes</option>', page)
    with app.app_context():
        assert db.session.get(Business, business.id).private_messaging_enabled
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "settings.changed"))
        assert event.actor_id == admin.id and event.created_at
        assert event.details == {"private_messaging_enabled": {"old": False, "new": True}}


def test_portal_settings_refuses_bad_values_and_changes_nothing(app, logged_in, admin, business):
    response = logged_in(admin).submit(
        "/settings/client/portal", {"private_messaging_enabled": "maybe", "staff_access_days": "-3"}
    )
    assert response.status_code == 422
    with app.app_context():
        stored = db.session.get(Business, business.id)
        assert not stored.private_messaging_enabled and stored.staff_access_days == 7


@pytest.mark.parametrize(
    "role_fixture",
    ["office_manager", "assigned_staff", "household_login"],
)
@pytest.mark.parametrize("path", ["/settings", "/settings/client/portal", "/settings/permissions"])
def test_only_admins_reach_settings(app, logged_in, request, role_fixture, path, business):
    browser = logged_in(request.getfixturevalue(role_fixture))
    assert browser.get(path).status_code == 404
    if path != "/settings":
        response = browser.submit(path, {"private_messaging_enabled": "yes",
                                         "staff_access_days": "7"})
        assert response.status_code == 404
    with app.app_context():
        assert not db.session.get(Business, business.id).private_messaging_enabled


def test_another_business_admin_changes_only_their_own_settings(
    app, logged_in, stranger_admin, stranger_business, business
):
    logged_in(stranger_admin).submit(
        "/settings/client/portal", {"private_messaging_enabled": "yes", "staff_access_days": "3"}
    )
    with app.app_context():
        assert db.session.get(Business, stranger_business.id).private_messaging_enabled
        assert not db.session.get(Business, business.id).private_messaging_enabled


def test_settings_redirect_anonymous_to_login(client):
    assert client.get("/settings/client/portal").headers["Location"].startswith("/login")


def test_settings_link_hidden_from_office_manager(logged_in, office_manager):
    page = logged_in(office_manager).get("/clients").get_data(as_text=True)
    assert 'href="/settings"' not in page


# --- the Permissions page -----------------------------------------------------------------

def test_permissions_page_lists_office_managers_with_switch(logged_in, admin, office_manager):
    page = logged_in(admin).get("/settings/permissions").get_data(as_text=True)
    assert "Oscar Office" in page
    assert re.search(
        rf'type="checkbox" role="switch" name="private_messages" value="{office_manager.id}"', page
    )


def test_granting_access_takes_effect_on_next_request_without_new_login(
    app, logged_in, admin, office_manager, household, private_message
):
    manager = logged_in(office_manager)
    assert manager.get(f"/clients/{household.id}/feeds/private").status_code == 404
    logged_in(admin).submit("/settings/permissions", {"private_messages": str(office_manager.id)})
    page = manager.get(f"/clients/{household.id}/feeds/private")
    assert page.status_code == 200 and SECRET in page.get_data(as_text=True)
    logged_in(admin).submit("/settings/permissions", {})
    assert manager.get(f"/clients/{household.id}/feeds/private").status_code == 404
    with app.app_context():
        events = list(db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "permission.changed")
            .order_by(AuditEvent.id)
        ))
        assert [(e.object_id, e.details["new"]) for e in events] == [
            (office_manager.id, True), (office_manager.id, False)
        ]


def test_permissions_ignore_ids_that_are_not_this_business_office_managers(
    app, logged_in, admin, assigned_staff, stranger_admin, make_user, stranger_business
):
    foreign_manager = make_user(Role.OFFICE_MANAGER, business=stranger_business)
    logged_in(admin).submit(
        "/settings/permissions",
        {"private_messages": [str(assigned_staff.id), str(foreign_manager.id), "x"]},
    )
    with app.app_context():
        assert not db.session.get(User, assigned_staff.id).private_messages_access
        assert not db.session.get(User, foreign_manager.id).private_messages_access


# --- the Private tab and feed ---------------------------------------------------------------

def test_private_tab_hidden_by_default(logged_in, admin, household):
    page = logged_in(admin).get(f"/clients/{household.id}").get_data(as_text=True)
    assert tabs(page) == ["conversation"]


@pytest.mark.parametrize(
    ("viewer", "expected"),
    [
        ("admin", ["conversation", "private"]),
        ("office_manager", ["conversation"]),
        ("assigned_staff", ["conversation"]),
        ("preferred_sitter", ["conversation"]),
        ("household_login", ["conversation", "private"]),
    ],
)
def test_private_tab_shows_for_those_who_may_see_it(
    logged_in, request, enabled, household, viewer, expected
):
    page = logged_in(request.getfixturevalue(viewer)).get(f"/clients/{household.id}")
    assert tabs(page.get_data(as_text=True)) == expected


def test_private_tab_shows_for_granted_office_manager(
    app, logged_in, enabled, office_manager, household
):
    grant_private_access(app, office_manager)
    page = logged_in(office_manager).get(f"/clients/{household.id}").get_data(as_text=True)
    assert tabs(page) == ["conversation", "private"]


def test_private_tab_switch_is_htmx_fragment_and_full_page(logged_in, admin, private_message,
                                                           household):
    browser = logged_in(admin)
    url = f"/clients/{household.id}/feeds/private"
    page = browser.get(f"/clients/{household.id}").get_data(as_text=True)
    assert re.search(rf'href="{url}"\s+aria-selected="false"[^>]*hx-get="{url}"', page)
    fragment = browser.htmx("GET", url).get_data(as_text=True)
    assert fragment.lstrip().startswith('<section id="feed"') and SECRET in fragment
    assert re.search(r'id="tab-private"[^>]*aria-selected="true"', fragment)
    full = browser.get(url).get_data(as_text=True)
    assert "<html" in full and SECRET in full


def test_private_and_conversation_feeds_are_separate(
    logged_in, admin, household, private_message, make_message
):
    make_message(household, admin, "conversation only text")
    browser = logged_in(admin)
    conversation = browser.get(f"/clients/{household.id}/feeds/conversation").get_data(as_text=True)
    private = browser.get(f"/clients/{household.id}/feeds/private").get_data(as_text=True)
    assert "conversation only text" in conversation and SECRET not in conversation
    assert SECRET in private and "conversation only text" not in private


def test_audience_line_for_each_feed(logged_in, admin, enabled, household, assigned_staff,
                                     household_login):
    browser = logged_in(admin)
    private = browser.get(f"/clients/{household.id}/feeds/private").get_data(as_text=True)
    assert "Visible to the client and the admin team. Staff never see private messages." in private
    conversation = browser.get(f"/clients/{household.id}").get_data(as_text=True)
    assert "Visible to the client, the admin team and staff: Sam Sitter." in conversation
    portal = logged_in(household_login).get(f"/clients/{household.id}/feeds/private")
    assert "Staff never see private messages." in portal.get_data(as_text=True)


@pytest.mark.parametrize("writer", ["admin", "household_login"])
def test_posting_and_deleting_private_messages(app, logged_in, request, enabled, household,
                                               writer):
    browser = logged_in(request.getfixturevalue(writer))
    url = f"/clients/{household.id}/feeds/private/messages"
    created = browser.htmx("POST", url, data={"text": "private hello"})
    assert "private hello" in created.get_data(as_text=True)
    with app.app_context():
        message = db.session.scalar(select(Message))
        assert message.feed == Feed.PRIVATE
    deleted = browser.htmx("POST", f"/messages/{message.id}/delete")
    assert "Message deleted" in deleted.get_data(as_text=True)
    empty = browser.htmx("POST", url, data={"text": "  "})
    assert "Write a message before sending." in empty.get_data(as_text=True)


def test_office_manager_with_access_deletes_only_own_private_messages(
    app, logged_in, enabled, office_manager, household, make_message, household_login
):
    grant_private_access(app, office_manager)
    theirs = make_message(household, household_login, "client private", feed=Feed.PRIVATE)
    own = make_message(household, office_manager, "manager private", feed=Feed.PRIVATE)
    browser = logged_in(office_manager)
    assert browser.submit(f"/messages/{theirs.id}/delete").status_code == 404
    assert browser.submit(f"/messages/{own.id}/delete").status_code == 302


# --- when the setting is off -----------------------------------------------------------------

def test_turning_off_hides_everything_and_keeps_messages(
    app, logged_in, admin, household, household_login, private_message, business
):
    set_private_messaging(app, business, False)
    message_url = f"/messages/{private_message.id}"
    for user in (admin, household_login):
        browser = logged_in(user)
        assert tabs(browser.get(f"/clients/{household.id}").get_data(as_text=True)) == [
            "conversation"
        ]
        for method, url in [
            ("GET", f"/clients/{household.id}/feeds/private"),
            ("GET", f"/clients/{household.id}/feeds/private/earlier?before=999"),
            ("POST", f"/clients/{household.id}/feeds/private/messages"),
            ("GET", message_url),
            ("GET", f"{message_url}/delete"),
            ("POST", f"{message_url}/delete"),
        ]:
            assert browser.htmx(method, url, data={"text": "x"}).status_code == 404, url
    with app.app_context():
        assert db.session.scalar(select(func.count(Message.id))) == 1
        assert db.session.get(Message, private_message.id).text == SECRET
    set_private_messaging(app, business, True)
    page = logged_in(admin).get(f"/clients/{household.id}/feeds/private")
    assert SECRET in page.get_data(as_text=True)


# --- nothing private leaks to staff -----------------------------------------------------------

def attachment_tokens(app, message) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(
            select(Attachment.token).where(Attachment.message_id == message.id)
        ))


def private_scheduled(app, household, admin) -> int:
    """A private message the admin scheduled with the secret: its id."""
    with app.app_context():
        row = ScheduledMessage(business_id=household.business_id, client_id=household.id,
                               feed=Feed.PRIVATE, author_id=admin.id, text=f"{SECRET} zq-7781",
                               due_at=utcnow() + timedelta(hours=1))
        db.session.add(row)
        db.session.commit()
        return row.id


def staff_reachable_urls(app, household, messages, scheduled_id: int = 0):
    """Every GET URL of the app, filled with this household's, messages' and files' ids."""
    urls = set()
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint == "static":
            continue
        for message in messages:
            for token in attachment_tokens(app, message) or ["none"]:
                values = {"client_id": household.id, "message_id": message.id, "staff_id": 0,
                          "service_id": 0, "reply_id": 0, "pet_id": 0, "token": token,
                          "kind": "clients", "name": "icon-192", "business_id": 0,
                          "scheduled_id": scheduled_id}
                for feed in ("conversation", "private"):
                    values["feed_name"] = feed
                    path = rule.build(values, append_unknown=False)
                    if path:
                        urls.add(path[1])
    return [*sorted(urls), f"/clients/{household.id}/feeds/conversation/earlier?before=99999"]


@pytest.mark.parametrize("staff_fixture", ["assigned_staff", "preferred_sitter"])
def test_private_text_never_reaches_staff(
    app, logged_in, request, staff_fixture, household, private_message, make_message, admin
):
    conversation = make_message(household, admin, "visible to staff",
                                files=[("walk.png", PHOTO)])
    staff = request.getfixturevalue(staff_fixture)
    browser = logged_in(staff)
    private_files = [f"/files/{token}" for token in attachment_tokens(app, private_message)]
    seen_conversation = seen_photo = False
    scheduled_id = private_scheduled(app, household, admin)
    for url in staff_reachable_urls(app, household, [private_message, conversation],
                                    scheduled_id):
        for htmx in (False, True):
            headers = {"HX-Request": "true"} if htmx else {}
            response = browser.get(url, headers=headers, follow_redirects=True)
            body = response.get_data().decode("utf-8", "replace")
            assert SECRET not in body and "zq-7781" not in body, url
            assert "zq-7781" not in str(response.headers), url
            seen_conversation |= "visible to staff" in body
            seen_photo |= response.headers["Content-Type"] == "image/png"
            private = (
                "/feeds/private" in url or url.startswith(f"/messages/{private_message.id}")
                or url.startswith(tuple(private_files))
                or url.startswith(f"/scheduled/{scheduled_id}/")
            )
            if private:
                assert response.status_code == 404, url
    assert seen_conversation and seen_photo


def test_composer_says_how_people_hear_of_a_message(logged_in, admin, enabled, household):
    browser = logged_in(admin)
    private = browser.get(f"/clients/{household.id}/feeds/private").get_data(as_text=True)
    assert "They hear of it by email or app notification, never by text message." in private
    conversation = browser.get(f"/clients/{household.id}").get_data(as_text=True)
    assert "They hear of it by email, text message or app notification" in conversation
    undo = "Notifications go out 20 seconds after you send; until then you can unsend it."
    assert undo in private and undo in conversation
