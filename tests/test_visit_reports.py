"""Visit reports: the staff member on a visit presses Start visit and End visit, and files a
report (the business's checklist, a note, photos) that becomes a message of the client's
Conversation feed, shown there as a card, told as any message, listed under the visit."""

import re
from datetime import timedelta
from io import BytesIO

import pytest
import time_machine
from sqlalchemy import select

from portal.extensions import db
from portal.models import (
    Attachment,
    AuditEvent,
    Business,
    Feed,
    Message,
    Notification,
    ScheduledService,
    ServiceStatus,
    VisitReport,
    utcnow,
)
from portal.storage import storage

from .helpers import count_queries, count_rows, deliver, png_bytes, text_of, update_row

CHECKLIST = ["Walked", "Fed", "Water", "Medication given", "Pee", "Poo"]


@pytest.fixture
def visit(make_service, household, assigned_staff):
    """Sam's walk with the Riveras, begun ten minutes ago."""
    return make_service(household, assigned_staff, days_from_now=-10 / (24 * 60))


def service(app, service_id) -> ScheduledService:
    with app.app_context():
        row = db.session.get(ScheduledService, service_id)
        db.session.expunge(row)
        return row


def reports(app) -> list[VisitReport]:
    with app.app_context():
        return list(db.session.scalars(select(VisitReport).order_by(VisitReport.id)))


def feed_messages(app, client) -> list[Message]:
    with app.app_context():
        return list(db.session.scalars(
            select(Message).where(Message.client_id == client.id).order_by(Message.id)))


def send_report(browser, visit, *, answers=None, note="Biscuit was great", photos=(),
                **extra):
    answers = answers or {"Walked": "yes", "Fed": "na", "Water": "yes"}
    data = {"csrf_token": browser.csrf_token(), "note": note, **extra,
            **{f"item-{CHECKLIST.index(item)}": answer for item, answer in answers.items()}}
    if photos:
        data["files"] = [(BytesIO(content), name) for name, content in photos]
    return browser.post(f"/visits/{visit.id}/report", data=data,
                        content_type="multipart/form-data")


# --- start and end --------------------------------------------------------------------------------

def test_the_assigned_sitter_starts_and_ends_the_visit(app, logged_in, assigned_staff, visit):
    browser = logged_in(assigned_staff)
    page = browser.get("/today").get_data(as_text=True)
    assert f'action="/visits/{visit.id}/start"' in page
    assert browser.submit(f"/visits/{visit.id}/start").status_code == 302
    started = service(app, visit.id).started_at
    assert started is not None
    # Pressed again (a second tap): the arrival stays as first recorded.
    browser.submit(f"/visits/{visit.id}/start")
    assert service(app, visit.id).started_at == started
    page = browser.get(f"/visits/{visit.id}").get_data(as_text=True)
    assert "End visit" in page and "Not started" not in page
    assert browser.submit(f"/visits/{visit.id}/end").status_code == 302
    ended = service(app, visit.id)
    assert ended.ended_at >= ended.started_at
    with app.app_context():
        actions = set(db.session.scalars(select(AuditEvent.action)))
    assert {"visit.started", "visit.ended"} <= actions


def test_ending_before_starting_and_a_visit_not_due_are_refused(
        app, logged_in, assigned_staff, visit, make_service, household):
    browser = logged_in(assigned_staff)
    response = browser.submit(f"/visits/{visit.id}/end", follow_redirects=True)
    assert "Start the visit before ending it." in response.get_data(as_text=True)
    assert service(app, visit.id).ended_at is None
    later = make_service(household, assigned_staff, days_from_now=2)
    response = browser.submit(f"/visits/{later.id}/start", follow_redirects=True)
    assert "This visit is not due yet" in response.get_data(as_text=True)
    assert service(app, later.id).started_at is None
    response = send_report(browser, later)
    assert response.status_code == 422
    assert "This visit has not begun" in response.get_data(as_text=True)
    assert reports(app) == []


def test_a_cancelled_visit_is_neither_started_nor_reported(app, logged_in, assigned_staff,
                                                          visit):
    update_row(app, ScheduledService, visit.id, status=ServiceStatus.CANCELLED)
    browser = logged_in(assigned_staff)
    response = browser.submit(f"/visits/{visit.id}/start", follow_redirects=True)
    assert "This visit was cancelled." in response.get_data(as_text=True)
    assert send_report(browser, visit).status_code == 422
    assert reports(app) == [] and feed_messages(app, visit) == []


def test_only_the_assigned_sitter_and_the_admin_team_work_the_visit(
        app, logged_in, visit, preferred_sitter, household_login, stranger_admin, admin):
    for outsider in (preferred_sitter, household_login, stranger_admin):
        browser = logged_in(outsider)
        assert browser.get(f"/visits/{visit.id}").status_code == 404
        assert browser.submit(f"/visits/{visit.id}/start").status_code == 404
        assert send_report(browser, visit).status_code == 404
    assert service(app, visit.id).started_at is None and reports(app) == []
    assert logged_in(admin).get(f"/visits/{visit.id}").status_code == 200


def test_location_is_kept_only_when_the_business_records_it_and_shown_to_the_office(
        app, logged_in, business, admin, assigned_staff, visit, make_service, household):
    browser = logged_in(assigned_staff)
    browser.submit(f"/visits/{visit.id}/start", {"latitude": "41.88", "longitude": "-87.63"})
    assert service(app, visit.id).start_latitude is None
    update_row(app, Business, business.id, record_visit_location=True)
    second = make_service(household, assigned_staff, days_from_now=-0.001)
    browser.submit(f"/visits/{second.id}/start", {"latitude": "41.88", "longitude": "-87.63"})
    assert (service(app, second.id).start_latitude,
            service(app, second.id).start_longitude) == (41.88, -87.63)
    assert "openstreetmap" in logged_in(admin).get(f"/visits/{second.id}").get_data(
        as_text=True)
    assert "openstreetmap" not in browser.get(f"/visits/{second.id}").get_data(as_text=True)


# --- the report -----------------------------------------------------------------------------------

def test_a_report_is_a_card_in_the_conversation_told_as_a_message(
        app, logged_in, assigned_staff, visit, household, household_login, admin):
    browser = logged_in(assigned_staff)
    browser.submit(f"/visits/{visit.id}/start")
    response = send_report(browser, visit, note="Biscuit napped after", action="end",
                           photos=[("couch.png", png_bytes((80, 60))),
                                   ("walk.png", png_bytes((60, 80), "blue"))])
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/clients/{household.id}/feeds/conversation"
                                                 f"#message-{reports(app)[0].message_id}")
    [report] = reports(app)
    [message] = feed_messages(app, household)
    assert (message.id, message.via, message.feed, message.text) == (
        report.message_id, "report", Feed.CONVERSATION, "Biscuit napped after")
    assert service(app, visit.id).ended_at is not None  # "End visit and send report"
    assert report.checklist[:3] == [["Walked", "yes"], ["Fed", "na"], ["Water", "yes"]]
    assert report.checklist[3:] == [["Medication given", "na"], ["Pee", "na"], ["Poo", "na"]]
    with app.app_context():
        assert count_rows(app, Attachment, Attachment.message_id == message.id) == 2
        told = set(db.session.scalars(select(Notification.recipient_id)
                                      .where(Notification.message_id == message.id)))
    assert household_login.id in told
    page = logged_in(household_login).get(f"/clients/{household.id}").get_data(as_text=True)
    card = re.search(r'<div class="report-card">.*?</ul>', page, re.S).group(0)
    assert "Dog walk" in card and "arrived" in card and "left" in card
    assert "Walked" in card and "Yes" in card and "n/a" in card
    assert "visit report" in page and "Biscuit napped after" in page


def test_a_second_report_changes_the_first_and_a_retry_makes_no_second(
        app, logged_in, assigned_staff, visit, household):
    browser = logged_in(assigned_staff)
    send_report(browser, visit, note="First words", send_key="a" * 22,
                photos=[("one.png", png_bytes())])
    # The same send again (no signal, pressed twice): the one report.
    assert send_report(browser, visit, note="First words", send_key="a" * 22,
                       photos=[("one.png", png_bytes())]).status_code == 302
    assert len(feed_messages(app, household)) == 1
    for _ in range(2):  # the change sent twice: made once, its photo added once
        send_report(browser, visit, note="Better words", answers={"Walked": "no"},
                    send_key="b" * 22, photos=[("two.png", png_bytes())])
    [message] = feed_messages(app, household)
    [report] = reports(app)
    assert message.text == "Better words" and report.checklist[0] == ["Walked", "no"]
    with app.app_context():
        names = list(db.session.scalars(select(Attachment.original_name)
                                        .where(Attachment.message_id == message.id)
                                        .order_by(Attachment.position)))
    assert names == ["one.png", "two.png"]


def test_bad_input_is_refused_and_changes_nothing(app, logged_in, assigned_staff, visit):
    browser = logged_in(assigned_staff)
    response = send_report(browser, visit, answers={"Walked": "maybe"})
    assert response.status_code == 422
    assert "Answer each item with Yes, No or n/a." in response.get_data(as_text=True)
    response = send_report(browser, visit, photos=[("couch.png", b"<script>x</script>")])
    assert response.status_code == 422
    assert reports(app) == [] and feed_messages(app, visit) == []
    with app.app_context():
        assert list(storage().keys()) == []
    response = send_report(browser, visit, note="<script>alert(1)</script>")
    assert response.status_code == 302
    page = browser.get(f"/clients/{visit.client_id}/feeds/conversation").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page


def test_the_admin_team_edits_the_note_audited_and_staff_cannot(
        app, logged_in, admin, assigned_staff, visit, household):
    send_report(logged_in(assigned_staff), visit, note="teh walk was fine")
    [report] = reports(app)
    assert logged_in(assigned_staff).get(
        f"/messages/{report.message_id}/report-note").status_code == 404
    browser = logged_in(admin)
    page = browser.get(f"/clients/{household.id}/feeds/conversation").get_data(as_text=True)
    assert f"/messages/{report.message_id}/report-note" in page
    response = browser.submit(f"/messages/{report.message_id}/report-note",
                              {"note": "The walk was fine."})
    assert response.status_code == 302
    assert feed_messages(app, household)[0].text == "The walk was fine."
    with app.app_context():
        event = db.session.scalar(select(AuditEvent).where(
            AuditEvent.action == "visit_report.note_changed"))
    assert event.actor_id == admin.id and "note" not in event.details


def test_deleting_the_report_leaves_a_tombstone_without_its_card(
        app, logged_in, admin, assigned_staff, visit, household):
    send_report(logged_in(assigned_staff), visit, note="Gone soon")
    [report] = reports(app)
    browser = logged_in(admin)
    browser.submit(f"/messages/{report.message_id}/delete")
    page = browser.get(f"/clients/{household.id}/feeds/conversation").get_data(as_text=True)
    assert "Message deleted" in page and "report-card" not in page
    assert ">Visit report</a>" not in browser.get(f"/clients/{household.id}").get_data(
        as_text=True)


def test_the_report_is_listed_under_the_visit(app, logged_in, admin, assigned_staff, visit,
                                              household):
    send_report(logged_in(assigned_staff), visit)
    [report] = reports(app)
    page = logged_in(admin).get(f"/clients/{household.id}").get_data(as_text=True)
    assert f'conversation#message-{report.message_id}">Visit report</a>' in page


def test_the_email_carries_the_card_and_photos_as_links_and_nothing_private(
        app, smtp, logged_in, assigned_staff, visit, household, household_login):
    update_row(app, type(household), household.id, gate_code="4321")
    browser = logged_in(assigned_staff)
    browser.submit(f"/visits/{visit.id}/start")
    send_report(browser, visit, note="All good", action="end",
                photos=[("couch.png", png_bytes((80, 60)))])
    with time_machine.travel(utcnow() + timedelta(minutes=5), tick=True):
        deliver(app)
    [email] = smtp.inbox.to(household_login.email)
    assert email["Subject"].startswith("Visit report: Dog walk · ")
    text = text_of(email)
    html = next(part for part in email.walk() if part.get_content_type() == "text/html")
    html = html.get_content()
    for part in (text, html):
        assert "Dog walk" in part and "arrived" in part and "All good" in part
        assert "Walked" in part and "/files/" in part and "/view" in part
        assert "4321" not in part and "latitude" not in part
    assert "<img" not in html  # photos are links into the portal, behind its login


def test_the_feed_page_takes_as_many_queries_with_one_report_as_with_five(
        app, logged_in, admin, assigned_staff, household, make_service):
    sitter = logged_in(assigned_staff)
    visits = [make_service(household, assigned_staff, days_from_now=-0.01 * (n + 1))
              for n in range(5)]
    send_report(sitter, visits[0])
    browser = logged_in(admin)
    url = f"/clients/{household.id}/feeds/conversation"
    before = count_queries(app, browser, url)
    for each in visits[1:]:
        send_report(sitter, each)
    assert count_queries(app, browser, url) == before


# --- settings -------------------------------------------------------------------------------------

def test_the_checklist_and_location_are_set_in_portal_settings(app, logged_in, admin,
                                                               business, assigned_staff,
                                                               visit):
    browser = logged_in(admin)
    page = browser.get("/settings/client/portal").get_data(as_text=True)
    assert "Visit report checklist" in page and "Record location at check-in" in page
    title = re.search(r"<title>(.*?)</title>", page, re.S).group(1)
    assert "<" not in title and title.startswith("Portal Settings")
    response = browser.submit("/settings/client/portal/visit-reports", {
        "checklist": "Walked\n  Fed  \nwalked\nLitter box\n", "record_location": "yes"})
    assert response.status_code == 302
    with app.app_context():
        saved = db.session.get(Business, business.id)
        assert saved.visit_checklist == ["Walked", "Fed", "Litter box"]
        assert saved.record_visit_location
    page = logged_in(assigned_staff).get(f"/visits/{visit.id}").get_data(as_text=True)
    assert "Litter box" in page and "Medication given" not in page
    response = browser.submit("/settings/client/portal/visit-reports",
                              {"checklist": "x" * 60, "record_location": "no"})
    assert response.status_code == 422
    assert "too long" in response.get_data(as_text=True)


# --- the household's Visits -----------------------------------------------------------------------

def test_the_household_sees_its_past_visits_with_reports_newest_first_paged(
        app, logged_in, assigned_staff, household, household_login, make_service,
        other_household_login, admin, preferred_sitter, monkeypatch):
    from portal.visits import history

    sitter = logged_in(assigned_staff)
    visits = [make_service(household, assigned_staff, days_from_now=-days)
              for days in (0.001, 1, 2)]
    send_report(sitter, visits[0], note="Today's walk", photos=[("a.png", png_bytes())])
    browser = logged_in(household_login)
    assert "Past visits and their reports" in browser.get(
        f"/clients/{household.id}").get_data(as_text=True)
    page = browser.get(f"/clients/{household.id}/visits").get_data(as_text=True)
    assert page.index("Today&#39;s walk") < page.index("No report for this visit.")
    assert "/thumbnail" in page and "Walked" in page
    # Keyset paged: two a page, then the third.
    monkeypatch.setattr(history, "PAGE_SIZE", 2)
    first = browser.get(f"/clients/{household.id}/visits").get_data(as_text=True)
    assert first.count('class="card past-visit"') == 2
    more = re.search(r'href="(/clients/\d+/visits\?before=[^"]+)"', first)
    assert more, "an Older visits link"
    older = browser.get(more.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert older.count('class="card past-visit"') == 1
    # Nobody else's household; staff read reports in the feed instead.
    for outsider in (other_household_login, preferred_sitter):
        assert logged_in(outsider).get(f"/clients/{household.id}/visits").status_code == 404
    assert logged_in(admin).get(f"/clients/{household.id}/visits").status_code == 200
    # A keyset nobody could have made is the first page, never an error.
    assert browser.get(f"/clients/{household.id}/visits?before=2026-01-01T00:00_x"
                       ).status_code == 200


# --- replies to a report --------------------------------------------------------------------------

def test_a_reply_to_a_report_is_linked_to_it(app, logged_in, assigned_staff, visit, household,
                                             household_login):
    send_report(logged_in(assigned_staff), visit, note="Walked the long loop")
    [report] = reports(app)
    browser = logged_in(household_login)
    page = browser.get(f"/clients/{household.id}").get_data(as_text=True)
    reply_link = f"/clients/{household.id}/feeds/conversation?reply_to={report.message_id}"
    assert reply_link in page
    page = browser.get(reply_link).get_data(as_text=True)
    assert f'name="reply_to" value="{report.message_id}"' in page and "Replying to" in page
    assert browser.submit(f"/clients/{household.id}/feeds/conversation/messages",
                          {"text": "Thank you!", "reply_to": str(report.message_id)}
                          ).status_code == 302
    reply = feed_messages(app, household)[-1]
    assert (reply.text, reply.reply_to_id) == ("Thank you!", report.message_id)
    # Sent with htmx, the page's address drops ?reply_to= (a reload answers nothing again).
    answer = browser.htmx("POST", f"/clients/{household.id}/feeds/conversation/messages",
                          data={"text": "And again", "reply_to": str(report.message_id)})
    assert answer.headers["HX-Replace-Url"] == f"/clients/{household.id}/feeds/conversation"
    page = browser.get(f"/clients/{household.id}").get_data(as_text=True)
    assert f'<a href="#message-{report.message_id}">In reply to a visit report</a>' in page


def test_a_reply_naming_anything_but_a_report_of_this_feed_is_simply_posted(
        app, logged_in, admin, assigned_staff, visit, household, household_login,
        other_household, make_message, make_service, other_household_login):
    ordinary = make_message(household, admin, "Not a report")
    elsewhere_visit = make_service(other_household, assigned_staff, days_from_now=-0.001)
    send_report(logged_in(assigned_staff), elsewhere_visit)
    [elsewhere] = reports(app)
    browser = logged_in(household_login)
    for named in (str(ordinary.id), str(elsewhere.message_id), "99999999", "<script>", "-1"):
        page = browser.get(f"/clients/{household.id}/feeds/conversation?reply_to={named}")
        assert "Replying to" not in page.get_data(as_text=True)
        browser.submit(f"/clients/{household.id}/feeds/conversation/messages",
                       {"text": f"Answer {named}", "reply_to": named})
        assert feed_messages(app, household)[-1].reply_to_id is None


def test_the_sitter_is_told_of_replies_while_the_staff_window_lasts_after_the_visit(
        app, logged_in, business, assigned_staff, household, household_login, make_service):
    """Sam's only visit with the Riveras ended; the business's window (7 days) from its end
    still tells him the household's answer to his report, and no longer after it."""
    with app.app_context():
        db.session.execute(
            ScheduledService.__table__.delete().where(
                ScheduledService.staff_id == assigned_staff.id))
        db.session.commit()
    walk = make_service(household, assigned_staff, days_from_now=-0.01)
    send_report(logged_in(assigned_staff), walk, note="All done")
    [report] = reports(app)

    def reply_at(days_after: int) -> set[int]:
        with time_machine.travel(walk.ends_at + timedelta(days=days_after), tick=True):
            browser = logged_in(household_login)
            browser.submit(f"/clients/{household.id}/feeds/conversation/messages",
                           {"text": f"Thanks, {days_after} days on",
                            "reply_to": str(report.message_id)})
        with app.app_context():
            reply = db.session.scalar(select(Message).where(
                Message.text == f"Thanks, {days_after} days on"))
            return set(db.session.scalars(select(Notification.recipient_id)
                                          .where(Notification.message_id == reply.id)))

    assert assigned_staff.id in reply_at(3)
    assert assigned_staff.id not in reply_at(8)


def test_a_sitter_works_a_visit_only_while_that_visit_opens_the_client(
        app, logged_in, assigned_staff, household, make_service, make_preferred_sitter):
    """Another visit tomorrow, or being the preferred sitter, opens the feed; neither opens a
    walk of two months ago to being started or reported now."""
    make_preferred_sitter(household, assigned_staff)
    old = make_service(household, assigned_staff, days_from_now=-60)
    browser = logged_in(assigned_staff)
    assert browser.get(f"/visits/{old.id}").status_code == 404
    assert browser.submit(f"/visits/{old.id}/start").status_code == 404
    assert send_report(browser, old).status_code == 404
    assert service(app, old.id).started_at is None and reports(app) == []


# --- a sitter whose messages need approval ----------------------------------------------------

def test_the_report_of_a_sitter_who_needs_approval_waits_for_it(
        app, logged_in, admin, assigned_staff, visit, household, household_login):
    from portal.models import MessageApproval, ScheduledMessage, User

    update_row(app, User, assigned_staff.id, message_approval=MessageApproval.ALWAYS)
    sitter = logged_in(assigned_staff)
    response = send_report(sitter, visit, note="unchecked words", send_key="h" * 22,
                           photos=[("a.png", png_bytes())])
    assert response.status_code == 302
    assert response.headers["Location"].endswith("#scheduled-conversation")
    assert feed_messages(app, household) == [] and count_rows(app, Notification) == 0
    # Sent again (no signal): the one held report.
    send_report(sitter, visit, note="unchecked words", send_key="h" * 22)
    with app.app_context():
        [held] = db.session.scalars(select(ScheduledMessage))
        assert held.held and held.visit_report_id == reports(app)[0].id
    # The office sees it with its checklist, approves it: then it is the report.
    page = logged_in(admin).get(f"/clients/{household.id}").get_data(as_text=True)
    assert "Awaiting approval" in page and "Walked" in page and "unchecked words" in page
    logged_in(admin).submit(f"/scheduled/{held.id}/approve")
    [message] = feed_messages(app, household)
    [report] = reports(app)
    assert (message.via, message.text, report.message_id) == (
        "report", "unchecked words", message.id)
    with app.app_context():
        assert count_rows(app, Attachment, Attachment.message_id == message.id) == 1
    page = logged_in(household_login).get(f"/clients/{household.id}").get_data(as_text=True)
    assert 'class="report-card"' in page
    # Once sent, its changes go through the office.
    response = send_report(sitter, visit, note="sneaky change")
    assert response.status_code == 422
    assert "ask the office to change it" in response.get_data(as_text=True)
    assert feed_messages(app, household)[0].text == "unchecked words"


def test_changes_add_photos_up_to_a_messages_limit(app, logged_in, assigned_staff, visit):
    app.config["UPLOAD_MAX_FILES"] = 2
    browser = logged_in(assigned_staff)
    send_report(browser, visit, photos=[("a.png", png_bytes()), ("b.png", png_bytes())])
    response = send_report(browser, visit, photos=[("c.png", png_bytes())])
    assert response.status_code == 422
    assert "at most 2 photos" in response.get_data(as_text=True)
    with app.app_context():
        assert count_rows(app, Attachment) == 2


def test_a_text_and_an_app_notification_say_it_is_a_visit_report(app, logged_in,
                                                                  assigned_staff, visit):
    from portal.notifications import notices, push
    from portal.notifications.sms import SmsText

    browser = logged_in(assigned_staff)
    browser.submit(f"/visits/{visit.id}/start")
    send_report(browser, visit, note="", photos=[("a.png", png_bytes())])
    [report] = reports(app)
    with app.test_request_context():
        [(notice, _)] = notices.build({report.message_id}).values()
        text = SmsText.for_conversation("+13125550100", notice)
        shown = push.payload(notice)
    assert "Visit report, Dog walk." in text.body and "attachment" not in text.body
    assert text.body.endswith(notice.link)
    assert shown["title"] == "Visit report from Sam Sitter"
    assert shown["body"].startswith("Dog walk, arrived ")


def test_an_emailed_answer_to_the_report_email_is_linked_to_the_report(
        app, smtp, logged_in, assigned_staff, visit, household, household_login):
    from email.message import EmailMessage

    from portal.inbound.ingest import ingest_email

    app.config["REPLY_DOMAIN"] = "replies.example.com"
    send_report(logged_in(assigned_staff), visit, note="Walked")
    [report] = reports(app)
    with time_machine.travel(utcnow() + timedelta(minutes=5), tick=True):
        deliver(app)
    [sent] = smtp.inbox.to(household_login.email)
    answer = EmailMessage()
    answer["From"] = f"Carla <{household_login.email}>"
    answer["To"] = sent["Reply-To"]
    answer["Subject"] = f"Re: {sent['Subject']}"
    answer["Message-ID"] = "<answer-1@mail.example.net>"
    answer["In-Reply-To"] = sent["Message-ID"]
    answer.set_content("Thank you, he loved it!")
    with app.app_context():
        outcome = ingest_email(bytes(answer), None)
    assert outcome.message_id is not None
    reply = feed_messages(app, household)[-1]
    assert (reply.text, reply.via, reply.reply_to_id) == (
        "Thank you, he loved it!", "email", report.message_id)


def test_an_answer_held_for_approval_keeps_its_link_to_the_report(
        app, logged_in, admin, assigned_staff, preferred_sitter, visit, household):
    from portal.models import MessageApproval, ScheduledMessage, User

    send_report(logged_in(assigned_staff), visit, note="Walked")
    [report] = reports(app)
    update_row(app, User, preferred_sitter.id, message_approval=MessageApproval.ALWAYS)
    logged_in(preferred_sitter).submit(f"/clients/{household.id}/feeds/conversation/messages",
                                       {"text": "Great walk!", "reply_to": str(report.message_id)})
    with app.app_context():
        [held] = db.session.scalars(select(ScheduledMessage))
    assert held.held and held.reply_to_id == report.message_id
    logged_in(admin).submit(f"/scheduled/{held.id}/approve")
    answer = feed_messages(app, household)[-1]
    assert (answer.text, answer.reply_to_id) == ("Great walk!", report.message_id)


def test_end_visit_and_send_report_is_one_change(app, logged_in, assigned_staff, visit):
    """A report refused (one photo too many) leaves the visit as it was: not ended."""
    app.config["UPLOAD_MAX_FILES"] = 1
    browser = logged_in(assigned_staff)
    browser.submit(f"/visits/{visit.id}/start")
    send_report(browser, visit, photos=[("a.png", png_bytes())])
    response = send_report(browser, visit, action="end", photos=[("b.png", png_bytes())])
    assert response.status_code == 422
    assert service(app, visit.id).ended_at is None
    assert send_report(browser, visit, action="end").status_code == 302
    assert service(app, visit.id).ended_at is not None


# --- a report's thread ----------------------------------------------------------------------------

def test_the_report_writer_reads_and_hears_its_answers_after_the_feed_closed_to_them(
        app, logged_in, make_user, make_service, household, household_login,
        unassigned_staff):
    """Sid reported on his walk; the visit was then given to Uma (the records fixed), which
    closes the Riveras' feed to him. Answers to his report still reach him, and he reads
    them on the report's thread (and its photos), for the staff window after the visit."""
    from portal.models import Role, User
    from portal.notifications import notices

    sid = make_user(Role.STAFF, name="Sid Sitter")
    walk = make_service(household, sid, days_from_now=-0.01)
    sitter = logged_in(sid)
    send_report(sitter, walk, note="Walked", photos=[("a.png", png_bytes())])
    [report] = reports(app)
    update_row(app, ScheduledService, walk.id, staff_id=unassigned_staff.id)
    feed = f"/clients/{household.id}/feeds/conversation"
    assert sitter.get(feed).status_code == 404

    def answer(text):
        logged_in(household_login).submit(f"{feed}/messages",
                                          {"text": text, "reply_to": str(report.message_id)})
        with app.app_context():
            reply = db.session.scalar(select(Message).where(Message.text == text))
            told = set(db.session.scalars(select(Notification.recipient_id)
                                          .where(Notification.message_id == reply.id)))
            return reply, told

    reply, told = answer("Thanks Sid!")
    assert sid.id in told
    with app.test_request_context():
        [(notice, _)] = notices.build({reply.id}).values()
    assert notice.link.endswith(f"/reports/{report.message_id}#answer-{reply.id}")
    page = sitter.get(f"/reports/{report.message_id}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Thanks Sid!" in text and "You can read this report" in text
    assert "Reply in the conversation" not in text
    with app.app_context():
        token = db.session.scalar(select(Attachment.token).where(
            Attachment.message_id == report.message_id))
    assert sitter.get(f"/files/{token}/thumbnail").status_code == 200
    assert sitter.get(f"/files/{token}/view").status_code == 404  # the feed's photo page
    # Nobody else gains anything: Uma sees the feed anyway, another sitter nothing.
    other = make_user(Role.STAFF, name="Olive Other")
    assert logged_in(other).get(f"/reports/{report.message_id}").status_code == 404
    assert logged_in(household_login).get(f"/reports/{report.message_id}").status_code == 200

    # Past the staff window after the visit: neither told nor let in.
    days = 7
    with time_machine.travel(walk.ends_at + timedelta(days=days, hours=1), tick=True):
        _, told = answer("Late thanks")
        assert sid.id not in told
        late = logged_in(sid)
        assert late.get(f"/reports/{report.message_id}").status_code == 404
        assert late.get(f"/files/{token}/thumbnail").status_code == 404
    with app.app_context():
        assert db.session.get(User, sid.id).business.staff_access_days == days
