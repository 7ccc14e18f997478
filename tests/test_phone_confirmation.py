"""Each person's own phone number for texts, on their Notifications page: a new number gets a
code texted to it (through the SMS path the notifications use, delivered by the worker) and
replaces the number on file only when the code comes back; texts go only to confirmed numbers."""

import re
from datetime import timedelta

import pytest
from flask_migrate import upgrade
from sqlalchemy import select, text, update

from portal import create_app
from portal.extensions import db
from portal.models import (
    AuditEvent,
    Channel,
    DeliveryStatus,
    Notification,
    PhoneConfirmation,
    Role,
    User,
    utcnow,
)
from portal.services import accounts, phone_numbers

from .helpers import (
    PASSWORD,
    TwilioStandIn,
    count_rows,
    deliver,
    every_row,
    make_due,
    update_row,
)

NEW = "+13125550142"
OLD = "+13125550100"


@pytest.fixture
def sms(twilio):
    """The texts the SMS path sent through the provider stand-in: (to, body) pairs."""

    class Sent:
        @property
        def texts(self) -> list[tuple[str, str]]:
            return [(form["To"][0], form["Body"][0]) for path, form in twilio
                    if path.endswith("/Messages.json")]

        def code(self, index: int = -1) -> str:
            return re.search(r"\b(\d{6})\b", self.texts[index][1]).group(1)

    return Sent()


def person(app, someone) -> User:
    with app.app_context():
        user = db.session.get(User, someone.id)
        db.session.expunge(user)
        return user


def confirmation(app, someone) -> PhoneConfirmation | None:
    with app.app_context():
        row = db.session.scalar(select(PhoneConfirmation)
                                .where(PhoneConfirmation.user_id == someone.id))
        if row is not None:
            db.session.expunge(row)
        return row


def events(app, action: str) -> list[AuditEvent]:
    with app.app_context():
        return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def send(browser, number: str):
    return browser.submit("/notifications/phone", {"phone": number})


def enter(browser, code: str):
    return browser.submit("/notifications/phone/code", {"code": code})


def page_text(response) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", response.get_data(as_text=True)).split())


def relaxed(app):
    """Throttle limits wide enough for a test that sends several codes on purpose."""
    app.config.update(THROTTLE_PHONE_CODES_PER_USER="50 per minute",
                      THROTTLE_PHONE_CODES_PER_NUMBER="50 per minute")


# --- the code flow --------------------------------------------------------------------------

def test_send_code_texts_six_digits_to_the_number_and_keeps_only_a_hash(
        app, logged_in, household_login, sms):
    browser = logged_in(household_login)
    response = send(browser, "(312) 555-0142")
    assert response.status_code == 302 and response.location.endswith("/notifications#phone-texts")
    assert sms.texts == []  # the request sends nothing itself: the worker does
    page = page_text(browser.get("/notifications"))
    assert "We are texting a 6-digit code to +1 312-555-0142" in page
    deliver(app)
    [(to, body)] = sms.texts
    code = sms.code()
    assert to == NEW and body.startswith("Happy Tails: your code to confirm this number")
    row = confirmation(app, household_login)
    assert (row.phone, row.status, row.wrong_codes) == (NEW, DeliveryStatus.SENT, 0)
    assert row.expires_at - row.sent_at == timedelta(minutes=10)
    stored = str(every_row(app))
    assert code not in stored.replace(row.code_hash, "")
    with app.app_context():
        assert row.code_hash == phone_numbers.code_digest(row.id, code) != code
    # Nothing changes on the login until the code comes back.
    assert person(app, household_login).phone is None
    page = page_text(browser.get("/notifications"))
    assert "We texted a 6-digit code to +1 312-555-0142" in page and "works for 10 minutes" in page


def test_right_code_confirms_and_replaces_the_old_number_only_then(
        app, logged_in, make_user, household, sms, make_message, admin):
    carla = make_user(Role.CLIENT, client=household, name="Carla Client", phone=OLD,
                      notify_sms=True)
    browser = logged_in(carla)
    send(browser, NEW)
    deliver(app)
    # Until the code comes back, texts keep going to the confirmed number.
    make_message(household, admin, "Walk at noon")
    make_due(app)
    deliver(app)
    assert sms.texts[-1][0] == OLD
    assert enter(browser, "000000" if sms.code(0) != "000000" else "111111").status_code == 422
    assert person(app, carla).phone == OLD
    response = enter(browser, sms.code(0))
    assert response.status_code == 302
    stored = person(app, carla)
    assert stored.phone == NEW and stored.phone_confirmed_at is not None
    assert confirmation(app, carla) is None
    [event] = events(app, "user.phone_changed")
    assert (event.actor_id, event.object_id) == (carla.id, carla.id)
    assert event.details == {"changes": {"phone": ["•••0100", "•••0142"]}}
    assert "Your number is confirmed: texts now go to +1 312-555-0142" in page_text(
        browser.get("/notifications"))
    make_message(household, admin, "Walk at one")
    make_due(app)
    deliver(app)
    assert sms.texts[-1][0] == NEW


def test_a_first_number_confirmed_is_recorded_as_added(app, logged_in, assigned_staff, sms):
    browser = logged_in(assigned_staff)
    send(browser, NEW)
    deliver(app)
    enter(browser, f" {sms.code()[:3]} {sms.code()[3:]} ")  # spaces as people type them
    assert person(app, assigned_staff).phone == NEW
    [event] = events(app, "user.phone_added")
    assert event.details == {"changes": {"phone": [None, "•••0142"]}}


def test_wrong_codes_are_counted_and_the_fifth_voids_the_code(app, logged_in, admin, sms):
    browser = logged_in(admin)
    send(browser, NEW)
    deliver(app)
    right = sms.code()
    wrong = "123456" if right != "123456" else "654321"
    response = enter(browser, wrong)
    assert response.status_code == 422
    assert "That code is not right. Check the text and try again (4 tries left)." in page_text(
        response)
    for _ in range(2):
        enter(browser, wrong)
    assert "(1 try left)" in page_text(enter(browser, wrong))
    response = enter(browser, "12ab")  # not even digits: counted all the same
    assert "That code is not right, and after too many wrong tries it no longer works." in (
        page_text(response))
    assert confirmation(app, admin).wrong_codes == 5
    response = enter(browser, right)
    assert response.status_code == 422
    assert "That code no longer works after too many wrong tries. Send a new code." in page_text(
        response)
    assert person(app, admin).phone is None
    assert "no longer works. Send a new code." in page_text(browser.get("/notifications"))


def test_an_expired_code_is_refused(app, logged_in, office_manager, sms):
    browser = logged_in(office_manager)
    send(browser, NEW)
    deliver(app)
    row = confirmation(app, office_manager)
    update_row(app, PhoneConfirmation, row.id, expires_at=utcnow() - timedelta(seconds=1))
    response = enter(browser, sms.code())
    assert response.status_code == 422
    assert "That code has expired. Send a new code." in page_text(response)
    assert person(app, office_manager).phone is None


def test_a_code_before_the_text_went_or_with_nothing_asked_is_refused(
        app, logged_in, admin, sms):
    browser = logged_in(admin)
    assert "There is no code waiting" in page_text(enter(browser, "123456"))
    send(browser, NEW)
    response = enter(browser, "123456")
    assert response.status_code == 422 and "still being sent" in page_text(response)
    assert "Enter the 6-digit code from the text." in page_text(enter(browser, ""))


def test_resend_texts_a_new_code_and_the_old_one_stops_working(app, logged_in, admin, sms):
    relaxed(app)
    browser = logged_in(admin)
    send(browser, NEW)
    deliver(app)
    first = sms.code()
    assert send(browser, NEW).status_code == 302  # "Send a new code" posts the waiting number
    deliver(app)
    second = sms.code()
    assert len(sms.texts) == 2 and count_rows(app, PhoneConfirmation) == 1
    if first != second:
        assert enter(browser, first).status_code == 422
    assert enter(browser, second).status_code == 302
    assert person(app, admin).phone == NEW


def test_cancel_keeps_the_number_on_file(app, logged_in, make_user, sms):
    staff = make_user(Role.STAFF, phone=OLD)
    browser = logged_in(staff)
    send(browser, NEW)
    assert browser.submit("/notifications/phone/cancel").status_code == 302
    assert confirmation(app, staff) is None
    stored = person(app, staff)
    assert stored.phone == OLD and stored.phone_confirmed_at is not None
    deliver(app)
    assert sms.texts == []


def test_remove_takes_the_number_off_and_records_it(app, logged_in, make_user, household,
                                                     admin, make_message, sms):
    carla = make_user(Role.CLIENT, client=household, phone=OLD, notify_sms=True)
    browser = logged_in(carla)
    make_message(household, admin, "Walk at noon")  # written while the number was on file
    assert browser.submit("/notifications/phone/remove").status_code == 302
    stored = person(app, carla)
    assert stored.phone is None and stored.phone_confirmed_at is None
    [event] = events(app, "user.phone_removed")
    assert event.details == {"changes": {"phone": ["•••0100", None]}}
    make_due(app)
    deliver(app)
    assert sms.texts == []  # asked again when sent: no number any more
    with app.app_context():
        row = db.session.scalar(select(Notification).where(Notification.channel == Channel.SMS))
        assert (row.status, row.last_error) == (DeliveryStatus.CANCELLED,
                                                "no confirmed phone number")
    response = browser.submit("/notifications/phone/remove")
    assert response.status_code == 422 and "There is no number to remove." in page_text(response)


# --- throttle ---------------------------------------------------------------------------------

def test_codes_are_throttled_per_person(app, logged_in, admin, sms):
    browser = logged_in(admin)
    send(browser, NEW)
    response = send(browser, "+13125550199")
    assert response.status_code == 429 and response.headers["Retry-After"]
    assert ("A code was texted to you or to this number a short while ago. Try again in 1 "
            "minute.") in page_text(response)
    assert confirmation(app, admin).phone == NEW  # the refused request changed nothing
    deliver(app)
    assert len(sms.texts) == 1


def test_codes_are_throttled_per_number_whoever_asks(app, logged_in, admin, assigned_staff,
                                                     sms):
    send(logged_in(admin), NEW)
    response = send(logged_in(assigned_staff), "312.555.0142")
    assert response.status_code == 429 and "Try again in 1 minute" in page_text(response)
    assert confirmation(app, assigned_staff) is None


def test_at_most_five_codes_a_day_per_person(app, logged_in, admin, sms):
    app.config.update(THROTTLE_PHONE_CODES_PER_USER="5 per day",
                      THROTTLE_PHONE_CODES_PER_NUMBER="50 per minute")
    browser = logged_in(admin)
    for number in range(5):
        assert send(browser, f"+1312555{200 + number:04d}").status_code == 302
    response = send(browser, "+13125550299")
    assert response.status_code == 429
    minutes = int(re.search(r"Try again in (\d+) minutes", page_text(response)).group(1))
    assert minutes > 60 * 23


# --- bad input ----------------------------------------------------------------------------

@pytest.mark.parametrize("typed, message", [
    ("12345", phone_numbers.INVALID_NUMBER),
    ("call me maybe", phone_numbers.INVALID_NUMBER),
    ("+1234", phone_numbers.INVALID_NUMBER),
    ("", "Enter the mobile number to text."),
    ("5" * 41, "Field cannot be longer than 40 characters."),
])
def test_an_invalid_number_is_refused_clearly_and_nothing_is_saved(
        app, logged_in, household_login, sms, typed, message):
    browser = logged_in(household_login)
    before = every_row(app)
    response = send(browser, typed)
    assert response.status_code == 422
    assert message in page_text(response)
    assert every_row(app) == before


def test_a_forged_request_changes_nothing(app, logged_in, make_user, sms):
    staff = make_user(Role.STAFF, phone=OLD)
    browser = logged_in(staff)
    send(browser, NEW)
    before = every_row(app)
    for url, data in (("/notifications/phone", {"phone": "+13125550177"}),
                      ("/notifications/phone/code", {"code": "123456"}),
                      ("/notifications/phone/cancel", {}),
                      ("/notifications/phone/remove", {})):
        for token in (None, "forged"):
            form = dict(data, **({"csrf_token": token} if token else {}))
            assert browser.post(url, data=form).status_code == 400
    assert every_row(app) == before


def test_anonymous_visitors_are_sent_to_log_in(client, sms):
    for url in ("/notifications/phone", "/notifications/phone/code",
                "/notifications/phone/cancel", "/notifications/phone/remove"):
        response = client.submit(url, {"phone": NEW, "code": "123456"})
        assert response.status_code == 302 and "/login" in response.location
    assert sms.texts == []


# --- one number per login within a business -------------------------------------------------

def test_a_number_another_login_of_the_business_confirmed_is_refused(
        app, logged_in, make_user, household, sms):
    make_user(Role.CLIENT, client=household, name="Carlos", phone=NEW)
    carla = make_user(Role.CLIENT, client=household, name="Carla")
    response = send(logged_in(carla), "(312) 555-0142")
    assert response.status_code == 422
    assert "Another login at this business already gets texts at this number." in page_text(
        response)
    assert confirmation(app, carla) is None


def test_the_same_number_is_fine_in_another_business_or_when_unconfirmed_or_deactivated(
        app, logged_in, make_user, stranger_business, admin, sms):
    relaxed(app)
    make_user(Role.ADMIN, business=stranger_business, phone=NEW)
    make_user(Role.STAFF, phone=NEW, phone_confirmed_at=None)
    make_user(Role.STAFF, phone=OLD, active=False)
    browser = logged_in(admin)
    send(browser, NEW)
    deliver(app)
    assert enter(browser, sms.code()).status_code == 302
    send(browser, OLD)
    deliver(app)
    assert enter(browser, sms.code()).status_code == 302
    assert person(app, admin).phone == OLD


def test_a_number_confirmed_by_another_while_waiting_is_refused_at_the_code(
        app, logged_in, make_user, admin, sms):
    browser = logged_in(admin)
    send(browser, NEW)
    deliver(app)
    make_user(Role.STAFF, phone=NEW)
    response = enter(browser, sms.code())
    assert response.status_code == 422 and "Another login at this business" in page_text(
        response)
    assert person(app, admin).phone is None


# --- numbers someone else entered, and texts only to confirmed numbers ------------------------

def test_an_invited_persons_phone_waits_unconfirmed_until_they_confirm_it(
        app, logged_in, admin, household, sms, make_message):
    admin_browser = logged_in(admin)
    response = admin_browser.submit("/staff/new", {"name": "Nina New", "email": "nina@example.com",
                                                   "phone": "(312) 555-0142"})
    assert response.status_code == 302
    with app.app_context():
        nina = db.session.scalar(select(User).where(User.email == "nina@example.com"))
        nina.password_hash = accounts.hash_password(PASSWORD)  # as if they accepted
        nina.notify_sms = True
        db.session.commit()
        db.session.expunge(nina)
    assert nina.phone == "(312) 555-0142" and nina.phone_confirmed_at is None
    staff_list = page_text(admin_browser.get("/staff"))
    assert "Phone not confirmed: no texts to +1 312-555-0142 until they confirm it" in staff_list
    browser = logged_in(nina)
    page = page_text(browser.get("/notifications"))
    assert "Not confirmed yet: we will text you only after you confirm it." in page
    assert "Confirm this number" in page and "(number not confirmed)" in page
    send(browser, nina.phone)  # the Confirm button posts the number on file
    deliver(app)
    assert sms.texts[-1][0] == NEW
    assert enter(browser, sms.code()).status_code == 302
    stored = person(app, nina)
    assert stored.phone == NEW and stored.phone_confirmed_at is not None
    [event] = events(app, "user.phone_confirmed")
    assert event.details == {"changes": {"phone": ["•••0142", "•••0142"]}}
    assert "Phone not confirmed" not in page_text(admin_browser.get("/staff"))


def test_texts_go_only_to_confirmed_numbers(app, make_user, household, admin, make_message,
                                            sms):
    confirmed = make_user(Role.CLIENT, client=household, phone=OLD, notify_sms=True)
    make_user(Role.CLIENT, client=household, phone=NEW, phone_confirmed_at=None, notify_sms=True)
    make_message(household, admin, "Walk at noon")
    with app.app_context():
        rows = db.session.scalars(select(Notification).where(
            Notification.channel == Channel.SMS)).all()
        assert [row.recipient_id for row in rows] == [confirmed.id]
    make_due(app)
    deliver(app)
    assert [to for to, _ in sms.texts] == [OLD]


def test_a_number_changed_by_someone_else_is_unconfirmed_and_not_stopped(app, make_user):
    staff = make_user(Role.STAFF, phone=OLD, sms_opted_out_at=utcnow())
    assert person(app, staff).phone_confirmed_at is not None
    update_row(app, User, staff.id, phone="312-555-0100")  # the same number, written otherwise
    stored = person(app, staff)
    assert stored.phone_confirmed_at is not None and stored.sms_opted_out_at is not None
    update_row(app, User, staff.id, phone=NEW)
    stored = person(app, staff)
    # STOP was the old number's; the new one has not opted out, and waits for its code.
    assert stored.phone_confirmed_at is None and stored.sms_opted_out_at is None


def test_confirming_a_new_number_clears_stop_and_reconfirming_the_same_keeps_it(
        app, logged_in, make_user, sms):
    relaxed(app)
    staff = make_user(Role.STAFF, phone=OLD)
    update_row(app, User, staff.id, sms_opted_out_at=utcnow(), phone_confirmed_at=None)
    browser = logged_in(staff)
    send(browser, OLD)
    deliver(app)
    enter(browser, sms.code())
    stored = person(app, staff)
    assert stored.phone_confirmed_at is not None and stored.sms_opted_out_at is not None
    send(browser, NEW)
    deliver(app)
    enter(browser, sms.code())
    stored = person(app, staff)
    assert stored.phone == NEW and stored.sms_opted_out_at is None


def test_a_text_the_provider_refuses_says_so_on_the_page(app, logged_in, admin, sms):
    TwilioStandIn.answer = 400
    browser = logged_in(admin)
    send(browser, NEW)
    deliver(app)
    row = confirmation(app, admin)
    assert row.status == DeliveryStatus.FAILED and row.code_hash is None
    page = page_text(browser.get("/notifications"))
    assert "The text to +1 312-555-0142 could not be sent (Twilio answered 400)" in page


def test_without_a_provider_the_code_is_printed_by_the_console_path(
        app, logged_in, admin, capsys):
    browser = logged_in(admin)
    send(browser, NEW)
    deliver(app)
    printed = capsys.readouterr().out
    assert f"--- text message to Alice Admin ({NEW}) (no SMS provider set) ---" in printed
    code = re.search(r"is (\d{6})\.", printed).group(1)
    assert enter(browser, code).status_code == 302


# --- each role, their own page ---------------------------------------------------------------

@pytest.mark.parametrize("role", ["household_login", "assigned_staff", "office_manager", "admin"])
def test_each_role_keeps_their_own_number_on_their_own_page(
        app, logged_in, request, role, make_user, sms):
    relaxed(app)
    someone = request.getfixturevalue(role)
    bystander = make_user(Role.STAFF, phone=OLD)
    browser = logged_in(someone)
    page = page_text(browser.get("/notifications"))
    assert "Phone for text messages" in page and "No number for texts yet." in page
    send(browser, NEW)
    deliver(app)
    enter(browser, sms.code())
    assert person(app, someone).phone == NEW
    assert browser.submit("/notifications/phone/remove").status_code == 302
    # Nothing here names another login: the bystander's number is as it was.
    stored = person(app, bystander)
    assert stored.phone == OLD and stored.phone_confirmed_at is not None


# --- the audit log ---------------------------------------------------------------------------

def test_the_audit_log_says_each_phone_change_with_the_number_masked(
        app, logged_in, admin, make_user, sms):
    relaxed(app)
    staff = make_user(Role.STAFF, name="Sam Sitter", phone=OLD, phone_confirmed_at=None)
    browser = logged_in(staff)
    for number in (OLD, NEW):
        send(browser, number)
        deliver(app)
        enter(browser, sms.code())
    browser.submit("/notifications/phone/remove")
    send(browser, OLD)
    deliver(app)
    enter(browser, sms.code())
    log = page_text(logged_in(admin).get("/settings/audit-log?kind=accounts"))
    assert ("Sam Sitter confirmed their phone number for texts (•••0100) with a code texted to it"
            in log)
    assert ("Sam Sitter changed their phone number for texts from •••0100 to •••0142, confirmed "
            "with a code texted to it") in log
    assert "Sam Sitter removed their phone number for texts (•••0142)" in log
    assert ("Sam Sitter added their phone number for texts (•••0100), confirmed with a code "
            "texted to it") in log
    assert "5550142" not in log and "555-0142" not in log


# --- the migration ------------------------------------------------------------------------------

def test_the_migration_marks_numbers_already_on_file_confirmed(tmp_path):
    # Entered by the business before codes existed, and texted until now: they keep getting
    # texts. A login without a number has nothing to confirm.
    url = f"sqlite:///{tmp_path / 'before.sqlite3'}"
    app = create_app({"TESTING": True, "SECRET_KEY": "test-only-secret",
                      "SQLALCHEMY_DATABASE_URI": url, "UPLOAD_FOLDER": str(tmp_path)})
    with app.app_context():
        upgrade(revision="c9f1a7d3e5b2")
        with db.engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO businesses (id, name, time_zone, staff_access_days, "
                "private_messaging_enabled, client_read_receipts, private_email_includes_text, "
                "notify_email_default, notify_sms_default, notify_push_default) "
                "VALUES (1, 'Happy Tails', 'America/Chicago', 7, 0, 0, 0, 1, 0, 1)"))
            for user_id, phone in ((1, "+1 312 555 0142"), (2, None), (3, "")):
                connection.execute(text(
                    "INSERT INTO users (id, business_id, email, name, role, password_hash, "
                    "active, phone, time_zone, private_messages_access, created_at) VALUES "
                    "(:id, 1, :email, 'Someone', 'staff', '', 1, :phone, 'America/Chicago', 0, "
                    "CURRENT_TIMESTAMP)"), {"id": user_id, "email": f"{user_id}@example.com",
                                            "phone": phone})
        upgrade()
        confirmed = {user.id: user.phone_confirmed_at for user in db.session.scalars(
            select(User).order_by(User.id))}
        db.session.remove()
        db.engine.dispose()
    assert confirmed[1] is not None and confirmed[1] <= utcnow()
    assert confirmed[2] is None and confirmed[3] is None


def test_confirm_a_try_read_before_the_fifth_wrong_one_was_counted_is_refused(
        app, logged_in, admin, sms):
    # Tries posted side by side all read the row before any of them counts: each takes its try
    # in the database, so one read at 4 wrong tries, when another has made it 5, gets no check
    # of its code (here even the right one), and the count never passes 5.
    send(logged_in(admin), NEW)
    deliver(app)
    right = sms.code()
    update_row(app, PhoneConfirmation, confirmation(app, admin).id, wrong_codes=4)
    with app.app_context():
        someone = db.session.get(User, admin.id)
        stale = phone_numbers.pending(someone)
        assert stale.wrong_codes == 4
        db.session.execute(update(PhoneConfirmation)  # the other request's wrong try
                           .where(PhoneConfirmation.id == stale.id)
                           .values(wrong_codes=5)
                           .execution_options(synchronize_session=False))
        with pytest.raises(phone_numbers.PhoneError, match="no longer works"):
            phone_numbers.confirm(someone, right)
    assert confirmation(app, admin).wrong_codes == 5
    assert person(app, admin).phone is None


def test_confirm_attempts_are_throttled_per_person(app, logged_in, admin, sms):
    app.config.update(THROTTLE_PHONE_CONFIRM_ATTEMPTS_PER_USER="3 per 10 minutes")
    browser = logged_in(admin)
    send(browser, NEW)
    deliver(app)
    right = sms.code()
    wrong = "123456" if right != "123456" else "654321"
    for _ in range(3):
        assert enter(browser, wrong).status_code == 422
    response = enter(browser, right)
    assert response.status_code == 429 and response.headers["Retry-After"]
    assert "Too many attempts. Try again in 10 minutes." in page_text(response)
    assert confirmation(app, admin).wrong_codes == 3  # the refused try was not checked
    assert person(app, admin).phone is None


def test_no_code_goes_to_a_login_deactivated_after_asking(app, logged_in, make_user, sms):
    staff = make_user(Role.STAFF)
    send(logged_in(staff), NEW)
    update_row(app, User, staff.id, active=False)
    deliver(app)
    assert sms.texts == []
    assert confirmation(app, staff).status == DeliveryStatus.CANCELLED


def test_a_client_login_invited_with_a_phone_shows_it_unconfirmed_to_the_admin_team(
        app, logged_in, admin, office_manager, assigned_staff, household, sms):
    response = logged_in(admin).submit(
        f"/clients/{household.id}/logins/new",
        {"name": "Carlos Client", "email": "carlos@example.com", "phone": "312-555-0142"})
    assert response.status_code == 302
    with app.app_context():
        carlos = db.session.scalar(select(User).where(User.email == "carlos@example.com"))
        assert carlos.phone_confirmed_at is None
    said = "Phone not confirmed: no texts to +1 312-555-0142 until they confirm it"
    assert said in page_text(logged_in(office_manager).get(f"/clients/{household.id}"))
    # Staff see the client's page but not the reachability of its logins.
    seen_by_staff = logged_in(assigned_staff).get(f"/clients/{household.id}")
    assert seen_by_staff.status_code == 200 and said not in page_text(seen_by_staff)
