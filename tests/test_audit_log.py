"""The audit log page: sentences a person can read, links only where the viewer may go, filters,
keyset paging with a constant number of queries, and never the text of a deleted message."""

import html
import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import AuditEvent, Feed, Role, User
from portal.settings import routes as settings_routes

from .helpers import png_bytes, record_sql, set_private_messaging, update_row

URL = "/settings/audit-log"


def text_of(page: str) -> str:
    """What a reader sees: tags dropped, entities decoded, spaces collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def sentences(page: str) -> list[str]:
    found = re.findall(r'<p class="audit-sentence">(.*?)</p>', page, re.S)
    return [text_of(sentence).replace(" 's", "'s") for sentence in found]


def add_event(app, business, action, *, actor=None, object_type="user", object_id=None,
              at: datetime | None = None, **details) -> int:
    with app.app_context():
        event = AuditEvent(
            business_id=business.id, actor_id=actor.id if actor else None, action=action,
            object_type=object_type, object_id=object_id, details=details,
            **({"created_at": at} if at else {}),
        )
        db.session.add(event)
        db.session.commit()
        return event.id


@pytest.fixture
def page_size(monkeypatch):
    monkeypatch.setattr(settings_routes, "AUDIT_EVENTS_PER_PAGE", 5)
    return 5


# --- what a row says --------------------------------------------------------------------------

def test_settings_menu_links_the_audit_log(admin_browser):
    page = admin_browser.get("/settings").get_data(as_text=True)
    assert f'href="{URL}"' in page


def test_deleted_message_reads_as_a_sentence_without_its_text(
        app, business, admin_browser, household, household_login, make_message):
    set_private_messaging(app, business, True)
    message = make_message(household, household_login, "card ending zz-4242", feed=Feed.PRIVATE)
    assert admin_browser.submit(f"/messages/{message.id}/delete").status_code == 302
    page = admin_browser.get(URL).get_data(as_text=True)
    assert sentences(page)[0] == (
        "Alice Admin deleted a message by Carla Client in The Rivera Household's Private feed"
    )
    feed_link = f'href="/clients/{household.id}/feeds/private#message-{message.id}"'
    assert feed_link in page
    assert "zz-4242" not in page


def test_own_message_with_files_names_no_author_twice(admin, admin_browser, household,
                                                      make_message):
    message = make_message(household, admin, "see photos", files=[("a.png", png_bytes()),
                                                                   ("b.png", png_bytes())])
    admin_browser.submit(f"/messages/{message.id}/delete")
    page = admin_browser.get(URL).get_data(as_text=True)
    assert sentences(page)[0] == (
        "Alice Admin deleted a message and its 2 attachments in "
        "The Rivera Household's Conversation feed"
    )


def test_settings_and_permission_changes_say_what_changed(admin_browser, office_manager):
    admin_browser.submit("/settings/client/portal",
                         {"private_messaging_enabled": "yes", "staff_access_days": "14"})
    admin_browser.submit("/settings/permissions", {"private_messages": str(office_manager.id)})
    admin_browser.submit("/settings/permissions", {})
    said = sentences(admin_browser.get(URL).get_data(as_text=True))
    assert said[:3] == [
        "Alice Admin took away Oscar Office's access to private messages",
        "Alice Admin gave Oscar Office access to private messages",
        "Alice Admin changed settings: Private Messaging from off to on; "
        "Staff access around visits (days) from 7 to 14",
    ]


def test_logins_created_in_the_portal_and_outside_it(app, business, admin, admin_browser,
                                                    make_user):
    quinn = make_user(Role.STAFF, name="Quinn Quiet")  # as the command line does: no actor
    add_event(app, business, "user.created", actor=admin, object_id=quinn.id, role="staff")
    said = sentences(admin_browser.get(URL).get_data(as_text=True))
    assert said[0] == "Alice Admin created a login for Quinn Quiet (staff)"
    assert said[1] == "The portal created a login for Quinn Quiet (staff)"


def test_account_events_being_added_elsewhere_have_labels(app, business, admin, admin_browser,
                                                          assigned_staff, household_login):
    staff, client = assigned_staff, household_login
    add_event(app, business, "user.invited", actor=admin, object_id=staff.id, role="staff")
    add_event(app, business, "user.invitation_resent", actor=admin, object_id=staff.id)
    add_event(app, business, "user.invitation_accepted", actor=staff, object_id=staff.id)
    add_event(app, business, "user.deactivated", actor=admin, object_id=staff.id)
    add_event(app, business, "user.reactivated", actor=admin, object_id=staff.id)
    add_event(app, business, "user.password_reset", actor=client, object_id=client.id)
    add_event(app, business, "user.password_reset", object_id=staff.id)
    add_event(app, business, "user.password_changed", actor=staff, object_id=staff.id)
    add_event(app, business, "user.password_changed", actor=admin, object_id=client.id)
    add_event(app, business, "login.locked_out", object_id=client.id, minutes=15)
    said = sentences(admin_browser.get(URL).get_data(as_text=True))
    assert said[:10] == [
        "Carla Client's login was locked for 15 minutes after too many failed attempts",
        "Alice Admin changed Carla Client's password",
        "Sam Sitter changed their password",
        "Sam Sitter's password was reset",
        "Carla Client reset their password",
        "Alice Admin reactivated Sam Sitter's login",
        "Alice Admin deactivated Sam Sitter's login",
        "Sam Sitter accepted the invitation and chose a password",
        "Alice Admin sent Sam Sitter a new invitation",
        "Alice Admin invited Sam Sitter (staff) to the portal",
    ]


def test_unknown_action_gets_a_generic_label_and_no_details(app, business, admin,
                                                            admin_browser):
    add_event(app, business, "widget.frobbed", actor=admin, object_type="widget", object_id=5,
              token="hunter2-secret", text="deleted words")
    page = admin_browser.get(URL).get_data(as_text=True)
    assert sentences(page)[0] == "Alice Admin — widget frobbed (widget #5)"
    assert "hunter2" not in page and "deleted words" not in page


def test_people_and_clients_no_longer_in_the_portal_are_said_so(app, business, admin,
                                                                 admin_browser):
    add_event(app, business, "service.cancelled", actor=admin, object_type="scheduled_service",
              object_id=1, client_id=999999, staff_id=999999)
    said = sentences(admin_browser.get(URL).get_data(as_text=True))
    assert said[0] == ("Alice Admin cancelled a service for a client no longer in the portal "
                       "with someone no longer in the portal")


def test_names_are_escaped_and_isolated(app, business, admin, admin_browser, make_user):
    odd = make_user(Role.STAFF, name='<b>Bo</b> & "Co"')
    add_event(app, business, "user.deactivated", actor=admin, object_id=odd.id)
    page = admin_browser.get(URL).get_data(as_text=True)
    assert ('deactivated <a href="/staff"><bdi>&lt;b&gt;Bo&lt;/b&gt; &amp; &#34;Co&#34;</bdi>'
            "</a>'s login") in page


def test_time_is_shown_in_the_viewers_time_zone(app, business, admin, admin_browser):
    update_row(app, User, admin.id, time_zone="Asia/Tokyo")
    add_event(app, business, "client.created", actor=admin, object_type="client", object_id=0,
              at=datetime(2026, 3, 1, 23, 30, tzinfo=UTC))
    page = admin_browser.get(URL).get_data(as_text=True)
    assert "Mon, Mar 2, 2026 at 8:30 AM JST" in page
    assert 'datetime="2026-03-01T23:30:00+00:00"' in page


def test_links_only_where_the_viewer_may_go(app, business, admin_browser, household,
                                            household_login, make_message):
    set_private_messaging(app, business, True)
    message = make_message(household, household_login, "private words", feed=Feed.PRIVATE)
    admin_browser.submit(f"/messages/{message.id}/delete")
    set_private_messaging(app, business, False)  # the Private feed cannot be opened now
    page = admin_browser.get(URL).get_data(as_text=True)
    assert f"/feeds/private#message-{message.id}" not in page
    assert f'href="/clients/{household.id}"' in page  # the household still can


def test_another_business_events_never_show(app, stranger_business, stranger_admin,
                                            admin_browser):
    add_event(app, stranger_business, "user.deactivated", actor=stranger_admin,
              object_id=stranger_admin.id)
    page = admin_browser.get(URL).get_data(as_text=True)
    assert "Rita Rival" not in page


# --- filters ------------------------------------------------------------------------------------

@pytest.fixture
def mixed_events(app, business, admin, office_manager, assigned_staff):
    add_event(app, business, "settings.changed", actor=admin, object_type="business",
              object_id=business.id, staff_access_days={"old": 7, "new": 3},
              at=datetime(2026, 1, 10, 12, tzinfo=UTC))
    add_event(app, business, "user.deactivated", actor=office_manager,
              object_id=assigned_staff.id, at=datetime(2026, 2, 10, 12, tzinfo=UTC))
    add_event(app, business, "login.locked_out", object_id=office_manager.id, minutes=15,
              at=datetime(2026, 3, 10, 12, tzinfo=UTC))


def test_filter_by_kind(admin_browser, mixed_events):
    said = sentences(admin_browser.get(URL + "?kind=settings").get_data(as_text=True))
    assert said == ["Alice Admin changed settings: Staff access around visits (days) "
                    "from 7 to 3"]


def test_filter_by_person_finds_what_they_did_and_what_was_done_to_them(
        admin_browser, mixed_events, office_manager):
    said = sentences(admin_browser.get(f"{URL}?person={office_manager.id}")
                     .get_data(as_text=True))
    assert said == [
        "Oscar Office's login was locked for 15 minutes after too many failed attempts",
        "Oscar Office deactivated Sam Sitter's login",
        "The portal created a login for Oscar Office (office manager)",
    ]


def test_filter_by_dates_in_the_viewers_zone(admin_browser, mixed_events):
    said = sentences(admin_browser.get(URL + "?from=2026-02-01&to=2026-02-10")
                     .get_data(as_text=True))
    assert said == ["Oscar Office deactivated Sam Sitter's login"]


def test_nonsense_filters_are_ignored(admin_browser, mixed_events):
    response = admin_browser.get(URL + "?kind=nope&person=&from=2026-13-45&to=&before=")
    assert response.status_code == 200
    everything = sentences(admin_browser.get(URL).get_data(as_text=True))
    assert sentences(response.get_data(as_text=True)) == everything


@pytest.mark.parametrize("query", ["person=x", "person=99999999999999999999", "before=abc",
                                   "before=-1", f"before={2**31}"])
def test_ids_that_no_column_holds_find_no_page(admin_browser, mixed_events, query):
    assert admin_browser.get(f"{URL}?{query}").status_code == 404


def test_filters_answer_htmx_with_the_results_alone(admin_browser, mixed_events):
    response = admin_browser.get(URL + "?kind=settings", headers={"HX-Request": "true"})
    body = response.get_data(as_text=True)
    assert body.lstrip().startswith('<section id="audit-results"') and "<html" not in body
    assert len(sentences(body)) == 1


def test_filter_form_works_without_javascript(admin_browser, mixed_events):
    page = admin_browser.get(URL).get_data(as_text=True)
    form = re.search(r'<form class="audit-filters"[^>]*>', page).group(0)
    assert 'method="get"' in form and f'action="{URL}"' in form and 'hx-get="' in form
    for name in ("kind", "person", "from", "to"):
        assert f'name="{name}"' in page


# --- paging ------------------------------------------------------------------------------------

@pytest.fixture
def twelve_events(app, business, admin, assigned_staff):
    return [add_event(app, business, "user.deactivated", actor=admin,
                      object_id=assigned_staff.id) for _ in range(12)]


def more_link(page: str) -> str | None:
    found = re.search(r'<a class="button" href="([^"]+)"[^>]*>More</a>', page)
    return html.unescape(found.group(1)) if found else None


def entry_ids(page: str) -> list[int]:
    return [int(value) for value in re.findall(r'id="audit-event-(\d+)"', page)]


def test_more_pages_by_keyset_without_offset(app, admin_browser, page_size, twelve_events):
    with app.app_context():
        newest_first = list(db.session.scalars(
            select(AuditEvent.id).order_by(AuditEvent.id.desc())))
    pages, link = [], URL
    with record_sql(app) as statements:
        while link:
            page = admin_browser.get(link).get_data(as_text=True)
            pages.append(entry_ids(page))
            link = more_link(page)
    assert [ids for page in pages for ids in page] == newest_first
    assert {len(page) for page in pages[:-1]} == {5} and len(pages) >= 3
    assert "Back to the most recent" in page
    # SQLite writes every LIMIT as "LIMIT ? OFFSET ?" with 0: nothing may skip rows.
    offsets = [params for sql, params in statements if "OFFSET" in sql.upper()]
    assert all(params[-1] == 0 for params in offsets)
    assert any("audit_events.id < " in sql for sql, _ in statements)


def test_more_keeps_the_filters(admin_browser, page_size, twelve_events, assigned_staff):
    first = admin_browser.get(f"{URL}?kind=accounts&person={assigned_staff.id}")
    link = more_link(first.get_data(as_text=True))
    assert "kind=accounts" in link and f"person={assigned_staff.id}" in link


def test_more_with_htmx_appends_rows_and_replaces_the_pager(admin_browser, page_size,
                                                            twelve_events):
    link = more_link(admin_browser.get(URL).get_data(as_text=True))
    body = admin_browser.get(link, headers={"HX-Request": "true"}).get_data(as_text=True)
    assert body.lstrip().startswith('<li class="audit-entry"')
    assert 'id="audit-more" hx-swap-oob="true"' in body
    assert len(entry_ids(body)) == 5 and "<html" not in body


def test_a_page_costs_the_same_queries_however_many_events(
        app, business, admin, admin_browser, household, household_login, office_manager,
        make_message, assigned_staff):
    def queries_for_page() -> int:
        admin_browser.get(URL)  # warm: the first request of a session does more
        with record_sql(app) as statements:
            assert admin_browser.get(URL).status_code == 200
        return len(statements)

    add_event(app, business, "user.deactivated", actor=admin, object_id=assigned_staff.id)
    few = queries_for_page()
    for number in range(15):
        message = make_message(household, household_login, f"note {number}")
        admin_browser.submit(f"/messages/{message.id}/delete")
        add_event(app, business, "pet.created", actor=office_manager, object_type="pet",
                  object_id=number + 1, client_id=household.id)
        add_event(app, business, "service.scheduled", actor=admin,
                  object_type="scheduled_service", object_id=number + 1,
                  client_id=household.id, staff_id=assigned_staff.id)
        add_event(app, business, "permission.changed", actor=admin,
                  object_id=office_manager.id, permission="private_messages", old=False,
                  new=True)
    assert queries_for_page() == few


def test_events_table_holds_no_message_text(app, admin_browser, household, household_login,
                                            make_message):
    message = make_message(household, household_login, "never kept zz-9090")
    admin_browser.submit(f"/messages/{message.id}/delete")
    with app.app_context():
        stored = [event.details for event in db.session.scalars(select(AuditEvent))]
    assert "zz-9090" not in repr(stored)

