"""Staff message approval: with the business's setting on (or a staff member's own rule), what a
staff member writes to a client waits, "Awaiting approval", seen by them and the admin team only,
until the admin team approves it (then it appears and notifies as if posted then), edits and
approves it, or rejects it with a note emailed to its author. The clock is moved with
time-machine, which every utcnow reads."""

from datetime import UTC, datetime, timedelta
from io import BytesIO

import pytest
import time_machine
from sqlalchemy import select

from portal.clock import day_and_time
from portal.extensions import db
from portal.models import (
    AccountEmail,
    AccountEmailKind,
    Attachment,
    AuditEvent,
    Business,
    DeliveryStatus,
    MessageApproval,
    Notification,
    ScheduledMessage,
    ScheduledMessageFile,
    User,
    utcnow,
)
from portal.services import send_later
from portal.storage import storage

from .helpers import (
    count_queries,
    count_rows,
    deliver,
    png_bytes,
    storing_fails_on_the_second,
    text_of,
    update_row,
)
from .test_send_later import feed_messages, local_input, scheduled_rows

FEED = "conversation"


@pytest.fixture
def approval_on(app, business):
    update_row(app, Business, business.id, staff_messages_need_approval=True)


def write(browser, client, text="Biscuit ate all his dinner", *, htmx=False, **extra):
    url = f"/clients/{client.id}/feeds/{FEED}/messages"
    if htmx:
        return browser.htmx("POST", url, data={"text": text, **extra})
    return browser.submit(url, {"text": text, **extra})


def page_of(browser, client) -> str:
    response = browser.get(f"/clients/{client.id}/feeds/{FEED}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def told_of(app, message_id: int) -> set[int]:
    with app.app_context():
        return set(db.session.scalars(
            select(Notification.recipient_id).where(Notification.message_id == message_id)))


# --- the settings ---------------------------------------------------------------------------------

def test_off_by_default_and_turned_on_in_portal_settings(app, logged_in, admin, business,
                                                         assigned_staff, household):
    browser = logged_in(admin)
    page = browser.get("/settings/client/portal").get_data(as_text=True)
    assert "Staff messages need approval before clients see them" in page
    assert write(logged_in(assigned_staff), household, "Straight through").status_code == 302
    assert [message.text for message in feed_messages(app, household)] == ["Straight through"]

    response = browser.submit("/settings/client/portal", {
        "private_messaging_enabled": "no", "client_read_receipts": "no",
        "time_zone": "America/Chicago", "staff_access_days": "7",
        "staff_messages_need_approval": "yes",
    })
    assert response.status_code == 302
    with app.app_context():
        assert db.session.get(Business, business.id).staff_messages_need_approval
        assert db.session.scalar(select(AuditEvent.details).where(
            AuditEvent.action == "settings.changed"))["staff_messages_need_approval"] == {
                "old": False, "new": True}
    write(logged_in(assigned_staff), household, "Now it waits")
    assert len(feed_messages(app, household)) == 1
    [held] = scheduled_rows(app)
    assert held.held and held.text == "Now it waits"


@pytest.mark.parametrize(("business_on", "rule", "held"), [
    (False, MessageApproval.ALWAYS, True),
    (True, MessageApproval.NEVER, False),
    (True, None, True),
    (False, None, False),
])
def test_a_staff_members_own_rule_overrides_the_business(app, logged_in, admin, business,
                                                         assigned_staff, household, business_on,
                                                         rule, held):
    update_row(app, Business, business.id, staff_messages_need_approval=business_on)
    response = logged_in(admin).submit(f"/accounts/{assigned_staff.id}/message-approval",
                                       {"message_approval": rule.value if rule else ""})
    assert response.status_code == 302
    with app.app_context():
        assert db.session.get(User, assigned_staff.id).message_approval == rule
    write(logged_in(assigned_staff), household, "Which way?")
    assert bool(scheduled_rows(app)) == held
    assert bool(feed_messages(app, household)) != held


def test_the_rule_is_set_on_the_staff_page_and_a_bad_choice_changes_nothing(
        app, logged_in, admin, assigned_staff):
    browser = logged_in(admin)
    page = browser.get("/staff").get_data(as_text=True)
    assert f'id="approval-{assigned_staff.id}"' in page
    assert f'id="approval-{admin.id}"' not in page  # the admin team is never held
    response = browser.htmx("POST", f"/accounts/{assigned_staff.id}/message-approval",
                            data={"message_approval": "sometimes"})
    assert "Choose whether their messages need approval." in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(User, assigned_staff.id).message_approval is None
    # Only a staff member has a rule: an office manager's login answers 404.
    assert browser.submit(f"/accounts/{admin.id}/message-approval",
                          {"message_approval": "always"}).status_code == 404


def test_admins_office_managers_and_clients_are_never_held(
        app, logged_in, approval_on, admin, office_manager, household, household_login):
    for person in (admin, office_manager, household_login):
        assert write(logged_in(person), household, f"From {person.name}").status_code == 302
    assert scheduled_rows(app) == []
    assert len(feed_messages(app, household)) == 3


# --- held -----------------------------------------------------------------------------------------

def test_a_held_message_is_seen_by_its_author_and_the_admin_team_only(
        app, logged_in, approval_on, admin, office_manager, assigned_staff, preferred_sitter,
        household, household_login):
    author = logged_in(assigned_staff)
    response = write(author, household, "Biscuit was a star today", htmx=True)
    assert response.status_code == 200
    assert "Sent for approval: The Rivera Household will see it once it is approved." in \
        response.get_data(as_text=True)
    [held] = scheduled_rows(app)
    assert held.held and held.status == DeliveryStatus.PENDING
    assert feed_messages(app, household) == []
    assert count_rows(app, Notification) == 0  # nobody is told of it yet

    page = page_of(author, household)
    assert "Awaiting approval" in page and "Biscuit was a star today" in page
    assert "Approve" not in page and "Send now" not in page  # its author cannot let it through
    for reviewer in (admin, office_manager):
        page = page_of(logged_in(reviewer), household)
        assert "Biscuit was a star today" in page and ">Approve</button>" in page
        assert "Edit and approve" in page and "by Sam Sitter" in page
    for outsider in (preferred_sitter, household_login):
        page = logged_in(outsider).get(f"/clients/{household.id}").get_data(as_text=True)
        assert "Biscuit was a star today" not in page and "Awaiting approval" not in page


def test_the_admin_team_sees_a_count_and_the_message_center_filter(
        app, logged_in, approval_on, admin, assigned_staff, household, preferred_sitter):
    write(logged_in(assigned_staff), household, "First for approval")
    write(logged_in(preferred_sitter), household, "Second for approval")
    browser = logged_in(admin)
    home = browser.get("/messages").get_data(as_text=True)
    assert "2<span class=\"visually-hidden\"> awaiting approval</span>" in home
    assert 'value="approval"' in home and "Awaiting approval" in home
    listing = browser.get("/messages?show=approval").get_data(as_text=True)
    assert listing.index("First for approval") < listing.index("Second for approval")
    assert "Sam Sitter:" in listing and "The Rivera Household" in listing
    # The badge's own poll carries it too; search narrows the list by client name.
    assert "awaiting approval" in browser.get("/messages/badge").get_data(as_text=True)
    assert "First for approval" not in browser.htmx(
        "GET", "/messages?show=approval&q=Nobody").get_data(as_text=True)
    # Staff have no such filter, and no count.
    staff_page = logged_in(assigned_staff).get("/messages?show=approval").get_data(as_text=True)
    assert 'value="approval"' not in staff_page and "awaiting approval" not in staff_page


def test_approving_posts_it_as_if_written_then_and_tells_who_is_told_then(
        app, logged_in, approval_on, admin, preferred_sitter, household, household_login):
    written = datetime(2027, 2, 3, 15, tzinfo=UTC)
    with time_machine.travel(written, tick=True):
        write(logged_in(preferred_sitter), household, "Walked the long loop")
    [held] = scheduled_rows(app)
    approved_at = written + timedelta(hours=2)
    with time_machine.travel(approved_at, tick=True):
        browser = logged_in(admin)
        response = browser.htmx("POST", f"/scheduled/{held.id}/approve")
        assert response.status_code == 200
        assert "Approved and sent to The Rivera Household." in response.get_data(as_text=True)
        assert response.headers["HX-Trigger"] == "poll-now"
    [message] = feed_messages(app, household)
    assert message.author_id == preferred_sitter.id and message.text == "Walked the long loop"
    assert message.created_at >= approved_at and message.via is None
    assert household_login.id in told_of(app, message.id)
    [held] = scheduled_rows(app)
    assert (held.status, held.held, held.reviewed_by_id, held.message_id) == (
        DeliveryStatus.SENT, False, admin.id, message.id)
    with app.app_context():
        assert db.session.scalar(select(AuditEvent.details).where(
            AuditEvent.action == "message.approved"))["changed"] is False
    page = logged_in(household_login).get(f"/clients/{household.id}").get_data(as_text=True)
    assert "Walked the long loop" in page
    # Pressed again (a second tab): nothing more is posted.
    again = logged_in(admin).htmx("POST", f"/scheduled/{held.id}/approve")
    assert "no longer awaits approval" in again.get_data(as_text=True)
    assert len(feed_messages(app, household)) == 1


def test_edit_and_approve_posts_the_reviewers_words(app, logged_in, approval_on, admin,
                                                    assigned_staff, household):
    write(logged_in(assigned_staff), household, "biscuit did good")
    [held] = scheduled_rows(app)
    browser = logged_in(admin)
    page = browser.get(f"/scheduled/{held.id}/edit").get_data(as_text=True)
    assert "Edit and approve" in page and "Save without approving" in page
    assert 'name="send_at"' not in page  # held as written: no time to change
    response = browser.submit(f"/scheduled/{held.id}/edit",
                              {"text": "Biscuit did very well today.", "action": "approve"})
    assert response.status_code == 302
    [message] = feed_messages(app, household)
    assert message.text == "Biscuit did very well today."
    assert message.author_id == assigned_staff.id
    with app.app_context():
        assert db.session.scalar(select(AuditEvent.details).where(
            AuditEvent.action == "message.approved"))["changed"] is True


def test_save_without_approving_keeps_it_held_and_the_author_may_edit_or_withdraw(
        app, logged_in, approval_on, admin, assigned_staff, household):
    write(logged_in(assigned_staff), household, "Draft one")
    [held] = scheduled_rows(app)
    logged_in(admin).submit(f"/scheduled/{held.id}/edit", {"text": "Draft two"})
    author = logged_in(assigned_staff)
    assert author.submit(f"/scheduled/{held.id}/edit", {"text": "Draft three"}).status_code == 302
    [held] = scheduled_rows(app)
    assert held.held and held.text == "Draft three"
    assert author.submit(f"/scheduled/{held.id}/send-now").status_code == 404
    response = author.htmx("POST", f"/scheduled/{held.id}/cancel")
    assert "Withdrawn: it will not be sent." in response.get_data(as_text=True)
    assert scheduled_rows(app)[0].status == DeliveryStatus.CANCELLED
    assert feed_messages(app, household) == []


def test_rejecting_emails_the_note_and_shows_it_to_the_author_until_dismissed(
        app, smtp, logged_in, approval_on, admin, business, assigned_staff, household,
        household_login):
    write(logged_in(assigned_staff), household, "lol the dog is fine")
    [held] = scheduled_rows(app)
    browser = logged_in(admin)
    # A note is required: nothing changes without one.
    response = browser.submit(f"/scheduled/{held.id}/reject", {"note": "  "})
    assert response.status_code == 422
    assert "Write a note saying why" in response.get_data(as_text=True)
    assert scheduled_rows(app)[0].held
    response = browser.htmx("POST", f"/scheduled/{held.id}/reject",
                            data={"note": "Please write in full sentences."})
    assert "Not approved: Sam Sitter was sent your note." in response.get_data(as_text=True)
    [held] = scheduled_rows(app)
    assert (held.status, held.held, held.rejection_note) == (
        DeliveryStatus.CANCELLED, False, "Please write in full sentences.")
    assert feed_messages(app, household) == []
    deliver(app)
    [email] = smtp.inbox.to(assigned_staff.email)
    assert email["Subject"] == f"{business.name}: your message was not approved"
    body = text_of(email)
    assert "Please write in full sentences." in body and "lol the dog is fine" in body
    assert count_rows(app, AccountEmail, AccountEmail.kind == AccountEmailKind.MESSAGE_NOT_APPROVED,
                      AccountEmail.status == DeliveryStatus.SENT) == 1

    author = logged_in(assigned_staff)
    page = page_of(author, household)
    assert "Not approved" in page and "Please write in full sentences." in page
    for other in (admin, household_login):
        assert "Please write in full sentences." not in logged_in(other).get(
            f"/clients/{household.id}").get_data(as_text=True)
    assert author.htmx("POST", f"/scheduled/{held.id}/dismiss").status_code == 200
    assert "Please write in full sentences." not in page_of(author, household)
    # Approving what was rejected is too late.
    late = logged_in(admin).htmx("POST", f"/scheduled/{held.id}/approve")
    assert "no longer awaits approval" in late.get_data(as_text=True)
    assert feed_messages(app, household) == []


def test_its_photos_wait_with_it_and_go_with_the_approval(app, logged_in, approval_on, admin,
                                                          assigned_staff, household):
    author = logged_in(assigned_staff)
    response = author.post(f"/clients/{household.id}/feeds/{FEED}/messages", data={
        "csrf_token": author.csrf_token(), "text": "",
        "files": [(BytesIO(png_bytes((60, 40))), "couch.png")],
    }, content_type="multipart/form-data")
    assert response.status_code == 302
    [held] = scheduled_rows(app)
    with app.app_context():
        [file] = db.session.get(ScheduledMessage, held.id).files
        token, keys = file.token, {file.storage_key, file.thumbnail_key}
    browser = logged_in(admin)
    page = page_of(browser, household)
    assert f"/waiting-files/{token}/thumbnail" in page and "couch.png" in page
    assert browser.get(f"/waiting-files/{token}/thumbnail").status_code == 200
    browser.submit(f"/scheduled/{held.id}/approve")
    [message] = feed_messages(app, household)
    with app.app_context():
        [attachment] = db.session.scalars(
            select(Attachment).where(Attachment.message_id == message.id))
        assert attachment.original_name == "couch.png"
        assert count_rows(app, ScheduledMessageFile) == 0
        assert not keys & set(storage().keys())


def test_a_fake_photo_is_refused_and_nothing_is_held(app, logged_in, approval_on,
                                                     assigned_staff, household):
    author = logged_in(assigned_staff)
    response = author.post(f"/clients/{household.id}/feeds/{FEED}/messages", data={
        "csrf_token": author.csrf_token(), "text": "Look",
        "files": [(BytesIO(b"<script>alert(1)</script>"), "couch.png")],
    }, content_type="multipart/form-data")
    assert response.status_code == 422
    assert scheduled_rows(app) == []
    with app.app_context():
        assert list(storage().keys()) == []


def test_sent_twice_with_its_key_it_is_held_once(app, logged_in, approval_on, assigned_staff,
                                                 household):
    author = logged_in(assigned_staff)
    for _ in range(2):
        assert write(author, household, "Once", send_key="k" * 22).status_code == 302
    assert len(scheduled_rows(app)) == 1
    response = write(author, household, "Once, changed", send_key="k" * 22)
    assert response.status_code == 409
    assert "This text was not sent yet" in response.get_data(as_text=True)


def test_access_ended_before_approval_is_not_sent_and_the_author_told(
        app, smtp, logged_in, approval_on, admin, make_user, make_service, household):
    from portal.models import Role

    sitter = make_user(Role.STAFF, name="Sid Sitter")
    visit = make_service(household, sitter, days_from_now=1)
    write(logged_in(sitter), household, "See you tomorrow")
    [held] = scheduled_rows(app)
    with app.app_context():
        db.session.delete(db.session.merge(visit))
        db.session.commit()
    response = logged_in(admin).htmx("POST", f"/scheduled/{held.id}/approve")
    assert ("Approved, but not sent: its author&#39;s access to this client&#39;s feed had "
            "ended.") in response.get_data(as_text=True)
    assert feed_messages(app, household) == []
    deliver(app)
    assert smtp.inbox.to(sitter.email)


# --- held and scheduled ---------------------------------------------------------------------------

def test_a_scheduled_message_waits_for_approval_and_goes_at_its_time(
        app, logged_in, approval_on, admin, preferred_sitter, household):
    start = datetime(2027, 2, 3, 15, tzinfo=UTC)
    send_at = start + timedelta(hours=3)
    with time_machine.travel(start, tick=True):
        logged_in(preferred_sitter).submit(f"/clients/{household.id}/feeds/{FEED}/messages", {
            "text": "Tomorrow's walk is at 9", "action": "schedule",
            "send_at": local_input(send_at)})
        [held] = scheduled_rows(app)
        assert held.held and held.due_at == send_at
        page = page_of(logged_in(admin), household)
        assert f"to go {day_and_time(send_at, 'America/Chicago')}" in page
    # Its time comes, unapproved: the worker passes it by.
    with time_machine.travel(send_at + timedelta(minutes=1), tick=True):
        deliver(app)
    assert feed_messages(app, household) == []
    # Approved after its time: it goes at once.
    with time_machine.travel(send_at + timedelta(minutes=30), tick=True):
        logged_in(admin).submit(f"/scheduled/{held.id}/approve")
    [message] = feed_messages(app, household)
    assert message.text == "Tomorrow's walk is at 9"


def test_approved_ahead_of_its_time_it_goes_then_and_the_author_changing_it_holds_it_again(
        app, logged_in, approval_on, admin, preferred_sitter, household):
    start = datetime(2027, 2, 3, 15, tzinfo=UTC)
    send_at = start + timedelta(hours=3)
    with time_machine.travel(start, tick=True):
        author = logged_in(preferred_sitter)
        author.submit(f"/clients/{household.id}/feeds/{FEED}/messages", {
            "text": "Approved wording", "action": "schedule", "send_at": local_input(send_at)})
        [held] = scheduled_rows(app)
        response = logged_in(admin).htmx("POST", f"/scheduled/{held.id}/approve")
        assert "Approved: it goes to The Rivera Household" in response.get_data(as_text=True)
        assert not scheduled_rows(app)[0].held
        # Its author changes the approved words: they wait for approval again.
        author.submit(f"/scheduled/{held.id}/edit", {"text": "Sneaky new wording",
                                                      "send_at": local_input(send_at)})
        assert scheduled_rows(app)[0].held
    with time_machine.travel(send_at + timedelta(seconds=5), tick=True):
        deliver(app)
    assert feed_messages(app, household) == []


def test_approval_across_the_spring_clock_change(app, logged_in, approval_on, admin,
                                                 preferred_sitter, household):
    # 2027-03-14 in Chicago: 2:00 AM becomes 3:00 AM. A walk note for 3:30 AM is 08:30 UTC.
    with time_machine.travel(datetime(2027, 3, 13, 18, tzinfo=UTC), tick=True):
        logged_in(preferred_sitter).submit(f"/clients/{household.id}/feeds/{FEED}/messages", {
            "text": "Early walk done", "action": "schedule", "send_at": "2027-03-14T03:30"})
        [held] = scheduled_rows(app)
        assert held.due_at == datetime(2027, 3, 14, 8, 30, tzinfo=UTC)
        logged_in(admin).submit(f"/scheduled/{held.id}/approve")
    with time_machine.travel(datetime(2027, 3, 14, 8, 29, tzinfo=UTC), tick=True):
        deliver(app)
    assert feed_messages(app, household) == []
    with time_machine.travel(datetime(2027, 3, 14, 8, 30, 5, tzinfo=UTC), tick=True):
        deliver(app)
    [message] = feed_messages(app, household)
    assert message.via == "scheduled"


# --- the rest -------------------------------------------------------------------------------------

def test_deactivating_the_author_withdraws_it_and_its_files(app, logged_in, approval_on, admin,
                                                            assigned_staff, household):
    author = logged_in(assigned_staff)
    author.post(f"/clients/{household.id}/feeds/{FEED}/messages", data={
        "csrf_token": author.csrf_token(), "text": "With a photo",
        "files": [(BytesIO(png_bytes()), "a.png")],
    }, content_type="multipart/form-data")
    response = logged_in(admin).submit(f"/accounts/{assigned_staff.id}/deactivate")
    assert response.status_code == 302
    [held] = scheduled_rows(app)
    assert held.status == DeliveryStatus.CANCELLED
    assert count_rows(app, ScheduledMessageFile) == 0
    with app.app_context():
        assert list(storage().keys()) == []


def test_pages_take_as_many_queries_with_one_held_message_as_with_six(
        app, logged_in, approval_on, admin, assigned_staff, household):
    write(logged_in(assigned_staff), household, "Held 0")
    browser = logged_in(admin)
    urls = [f"/clients/{household.id}/feeds/{FEED}", "/messages?show=approval", "/messages",
            "/staff"]
    before = [count_queries(app, browser, url) for url in urls]
    for number in range(1, 6):
        write(logged_in(assigned_staff), household, f"Held {number}")
    assert [count_queries(app, browser, url) for url in urls] == before


def test_script_in_a_held_message_and_its_note_is_shown_as_text(
        app, logged_in, approval_on, admin, assigned_staff, household):
    write(logged_in(assigned_staff), household, "<script>alert('held')</script>")
    [held] = scheduled_rows(app)
    browser = logged_in(admin)
    page = page_of(browser, household)
    assert "<script>alert('held')</script>" not in page
    assert "&lt;script&gt;alert(&#39;held&#39;)&lt;/script&gt;" in page
    browser.submit(f"/scheduled/{held.id}/reject", {"note": "<b>no</b>"})
    page = page_of(logged_in(assigned_staff), household)
    assert "<b>no</b>" not in page and "&lt;b&gt;no&lt;/b&gt;" in page


def test_another_business_cannot_reach_it(app, logged_in, approval_on, assigned_staff,
                                          household, stranger_admin):
    write(logged_in(assigned_staff), household, "Ours alone")
    [held] = scheduled_rows(app)
    browser = logged_in(stranger_admin)
    for method, url in (("POST", f"/scheduled/{held.id}/approve"),
                        ("GET", f"/scheduled/{held.id}/reject"),
                        ("GET", f"/scheduled/{held.id}/edit")):
        response = browser.get(url) if method == "GET" else browser.submit(url)
        assert response.status_code == 404
    assert "Ours alone" not in browser.get("/messages?show=approval").get_data(as_text=True)
    assert scheduled_rows(app)[0].held


def test_held_for_lists_only_pending_held_messages(app, approval_on, admin, assigned_staff,
                                                   household, logged_in):
    write(logged_in(assigned_staff), household, "Waiting")
    write(logged_in(assigned_staff), household, "Withdrawn")
    rows = scheduled_rows(app)
    logged_in(assigned_staff).submit(f"/scheduled/{rows[1].id}/cancel")
    with app.app_context():
        viewer = db.session.get(User, admin.id)
        assert [row.text for row in send_later.held_for(viewer)] == ["Waiting"]
        assert send_later.held_count(viewer) == 1


def test_the_audit_log_says_who_held_approved_rejected_and_set_the_rule(
        app, logged_in, approval_on, admin, assigned_staff, household):
    from .test_audit_log import sentences

    author = logged_in(assigned_staff)
    write(author, household, "First")
    write(author, household, "Second")
    first, second = scheduled_rows(app)
    browser = logged_in(admin)
    browser.submit(f"/scheduled/{first.id}/edit", {"text": "First, better", "action": "approve"})
    browser.submit(f"/scheduled/{second.id}/reject", {"note": "Not this one"})
    browser.submit(f"/accounts/{assigned_staff.id}/message-approval",
                   {"message_approval": "never"})
    said = sentences(browser.get("/settings/audit-log").get_data(as_text=True))
    feed = "The Rivera Household's Conversation feed"
    # (sentences() reads each tag as a space: the link's end before the comma)
    assert [line.replace(" ,", ",") for line in said[:4]] == [
        "Alice Admin set Sam Sitter's messages to never need approval",
        f"Alice Admin did not approve Sam Sitter's message in {feed}",
        f"Alice Admin approved Sam Sitter's message in {feed}, with changes",
        f"Sam Sitter wrote a message awaiting approval in {feed}",
    ]
    kind = browser.get("/settings/audit-log?kind=scheduled").get_data(as_text=True)
    assert "did not approve" in kind and "Not this one" not in kind  # no message text, no note


# --- the rule coming after the message, and races -------------------------------------------------

def test_a_message_scheduled_before_the_rule_came_waits_for_approval(
        app, logged_in, admin, business, assigned_staff, household):
    """Scheduled while approval was off, then the setting turned on: neither its time nor its
    author's Send now lets it through; the admin team's Send now is an approval."""
    start = utcnow()
    author = logged_in(assigned_staff)
    author.submit(f"/clients/{household.id}/feeds/{FEED}/messages", {
        "text": "Written before the rule", "action": "schedule",
        "send_at": local_input(start + timedelta(hours=1))})
    author.submit(f"/clients/{household.id}/feeds/{FEED}/messages", {
        "text": "Also before the rule", "action": "schedule",
        "send_at": local_input(start + timedelta(hours=2))})
    first, second = scheduled_rows(app)
    assert not first.held
    update_row(app, Business, business.id, staff_messages_need_approval=True)

    response = author.htmx("POST", f"/scheduled/{first.id}/send-now")
    assert "your messages now need approval" in response.get_data(as_text=True)
    with time_machine.travel(second.due_at + timedelta(seconds=5), tick=True):
        deliver(app)
    assert feed_messages(app, household) == []
    assert [row.held for row in scheduled_rows(app)] == [True, True]

    update_row(app, ScheduledMessage, second.id, held=False)  # as a page showing Send now
    logged_in(admin).submit(f"/scheduled/{second.id}/send-now")
    [message] = feed_messages(app, household)
    assert message.text == "Also before the rule"
    assert scheduled_rows(app)[1].reviewed_by_id == admin.id


def test_approving_words_changed_since_they_were_read_is_refused(
        app, logged_in, approval_on, admin, assigned_staff, household):
    write(logged_in(assigned_staff), household, "What the reviewer reads")
    [held] = scheduled_rows(app)
    read_at = held.revision
    page = page_of(logged_in(admin), household)
    assert f'name="revision" value="{read_at}"' in page
    # The author changes it while the reviewer's page is open.
    logged_in(assigned_staff).submit(f"/scheduled/{held.id}/edit",
                                     {"text": "Something else entirely"})
    browser = logged_in(admin)
    for url, data in ((f"/scheduled/{held.id}/approve", {}),
                      (f"/scheduled/{held.id}/reject", {"note": "No"})):
        response = browser.htmx("POST", url, data={"revision": str(read_at), **data})
        assert "was changed after you opened it" in response.get_data(as_text=True)
    [held] = scheduled_rows(app)
    assert held.held and held.status == DeliveryStatus.PENDING and held.rejection_note is None
    assert feed_messages(app, household) == []
    browser.htmx("POST", f"/scheduled/{held.id}/approve", data={"revision": str(held.revision)})
    [message] = feed_messages(app, household)
    assert message.text == "Something else entirely"


def test_the_author_withdrawing_while_it_is_approved_is_one_or_the_other(
        app, logged_in, approval_on, admin, assigned_staff, household):
    write(logged_in(assigned_staff), household, "Race")
    [held] = scheduled_rows(app)
    logged_in(assigned_staff).submit(f"/scheduled/{held.id}/cancel")
    response = logged_in(admin).htmx("POST", f"/scheduled/{held.id}/approve",
                                     data={"revision": "0"})
    assert "no longer awaits approval" in response.get_data(as_text=True)
    assert feed_messages(app, household) == []
    assert count_rows(app, Notification) == 0


# --- nothing left behind --------------------------------------------------------------------------

def write_with_photo(app, browser, household, text="With a photo"):
    browser.post(f"/clients/{household.id}/feeds/{FEED}/messages", data={
        "csrf_token": browser.csrf_token(), "text": text,
        "files": [(BytesIO(png_bytes()), "a.png")],
    }, content_type="multipart/form-data")
    [held] = scheduled_rows(app)
    with app.app_context():
        [file] = db.session.get(ScheduledMessage, held.id).files
        return held, file.token


def test_rejecting_removes_its_files_and_they_are_no_longer_served(
        app, logged_in, approval_on, admin, assigned_staff, household):
    held, token = write_with_photo(app, logged_in(assigned_staff), household)
    # Held with files: nobody is told of anything yet.
    assert count_rows(app, Notification) == 0 and count_rows(app, AccountEmail) == 0
    browser = logged_in(admin)
    assert browser.get(f"/waiting-files/{token}").status_code == 200
    browser.submit(f"/scheduled/{held.id}/reject", {"note": "Blurry"})
    assert count_rows(app, ScheduledMessageFile) == 0
    with app.app_context():
        assert list(storage().keys()) == []
    assert browser.get(f"/waiting-files/{token}").status_code == 404


def test_archiving_the_client_settles_what_awaits_approval(
        app, smtp, logged_in, approval_on, admin, assigned_staff, household):
    held, _ = write_with_photo(app, logged_in(assigned_staff), household)
    assert logged_in(admin).submit(f"/clients/{household.id}/archive").status_code == 302
    [held] = scheduled_rows(app)
    assert (held.status, held.held, held.last_error) == (
        DeliveryStatus.FAILED, False, "the client is archived")
    assert count_rows(app, ScheduledMessageFile) == 0
    with app.app_context():
        assert list(storage().keys()) == []
    deliver(app)
    [email] = smtp.inbox.to(assigned_staff.email)
    assert email["Subject"].endswith(": your message awaiting approval was not sent")
    body = text_of(email)
    assert "awaiting approval, was not sent: the client is archived" in body
    assert "scheduled for" not in body


def test_a_post_that_keeps_failing_leaves_no_files(app, logged_in, admin, household,
                                                   monkeypatch):
    browser = logged_in(admin)
    browser.post(f"/clients/{household.id}/feeds/{FEED}/messages", data={
        "csrf_token": browser.csrf_token(), "text": "Doomed", "action": "schedule",
        "send_at": local_input(utcnow() + timedelta(hours=1)),
        "files": [(BytesIO(png_bytes()), "a.png")],
    }, content_type="multipart/form-data")
    [row] = scheduled_rows(app)

    def broken(*args, **kwargs):
        raise RuntimeError("the portal broke")

    monkeypatch.setattr("portal.services.messages.post_message", broken)
    for attempt in range(app.config["NOTIFICATION_MAX_ATTEMPTS"]):
        with time_machine.travel(row.due_at + timedelta(hours=attempt, seconds=5), tick=True):
            deliver(app)
    [row] = scheduled_rows(app)
    assert row.status == DeliveryStatus.FAILED
    assert count_rows(app, ScheduledMessageFile) == 0
    with app.app_context():
        assert list(storage().keys()) == []


def test_a_file_failing_to_store_leaves_no_held_message_and_no_bytes(
        app, logged_in, approval_on, assigned_staff, household, monkeypatch):
    storing_fails_on_the_second(monkeypatch)
    author = logged_in(assigned_staff)
    with pytest.raises(OSError):
        author.post(f"/clients/{household.id}/feeds/{FEED}/messages", data={
            "csrf_token": author.csrf_token(), "text": "Two photos",
            "files": [(BytesIO(png_bytes()), "a.png"), (BytesIO(png_bytes()), "b.png")],
        }, content_type="multipart/form-data")
    assert scheduled_rows(app) == [] and count_rows(app, ScheduledMessageFile) == 0
    with app.app_context():
        assert list(storage().keys()) == []
