"""Accounts: invitations, forgotten and changed passwords, deactivation, the password rules, audit
events, logout clearing site data, and captured cookies that stop working (session replay).

Emails go through the real worker to an SMTP server on loopback, and links are followed from
the emails as a person would."""

import json
import re
import time
import unicodedata
from datetime import timedelta

import pytest
from itsdangerous import TimestampSigner
from sqlalchemy import select, update

from portal import policy
from portal.config import DEFAULTS
from portal.extensions import db
from portal.models import (
    AccountEmail,
    AuditEvent,
    DeliveryStatus,
    Feed,
    LoginSession,
    Role,
    User,
    utcnow,
)
from portal.services import account_links, accounts, passwords

from .helpers import (
    BASE_URL,
    NEW_PASSWORD,
    PASSWORD,
    count_rows,
    deliver,
    link_in,
    record_sql,
    smtp_mailbox,
    text_of,
)


@pytest.fixture
def mailbox(app):
    with smtp_mailbox(app) as server:
        yield server


def emails_to(mailbox, address: str) -> list:
    return mailbox.inbox.to(address)


def load_user(app, email: str) -> User:
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == email))
        db.session.expunge(user)
        return user


def audit_actions(app, user_id: int) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(
            select(AuditEvent.action).where(AuditEvent.object_id == user_id)
            .order_by(AuditEvent.id)
        ))


def invite_staff(admin_browser, name="Wendy Walker", email="wendy@example.com"):
    response = admin_browser.submit("/staff/new", {"name": name, "email": email})
    assert response.status_code == 302, response.get_data(as_text=True)


def set_password(browser, link: str, password: str = NEW_PASSWORD, confirm: str | None = None):
    page = browser.get(link)
    assert page.status_code == 200
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"',
                      page.get_data(as_text=True))[1]
    return browser.post(link, data={"csrf_token": token, "password": password,
                                    "confirm": password if confirm is None else confirm})


def is_logged_in(browser) -> bool:
    return not browser.get("/").location.startswith("/login")


def replay(new_client, cookie: str, value: str):
    """A fresh browser with only the captured cookie: where does it get?"""
    browser = new_client()
    browser.set_cookie(cookie, value)
    return browser.get("/clients")


# --- invitations -------------------------------------------------------------------------------

def test_invitation_email_lets_the_person_set_a_password_and_log_in(
    app, mailbox, admin_browser, admin, new_client
):
    invite_staff(admin_browser)
    wendy = load_user(app, "wendy@example.com")
    assert wendy.is_invited and wendy.password_hash == ""
    # Queued with the invitation, not sent in the request.
    assert emails_to(mailbox, "wendy@example.com") == []
    deliver(app)
    [invitation] = emails_to(mailbox, "wendy@example.com")
    assert invitation["Subject"] == "Set up your login for Happy Tails"
    assert "Happy Tails" in invitation["From"] and "7 days" in text_of(invitation)
    link = link_in(invitation, "/invitation/")

    browser = new_client()
    page = browser.get(link).get_data(as_text=True)
    assert "Choose your password" in page and "wendy@example.com" in page
    response = set_password(browser, link)
    assert (response.status_code, response.location) == (302, "/today")
    assert "Welcome! Your password is set" in browser.get("/my-clients").get_data(as_text=True)
    # From now on the password is the way in.
    again = new_client()
    again.login(wendy, NEW_PASSWORD)
    assert audit_actions(app, wendy.id) == ["user.invited", "user.invitation_accepted"]


def test_invitation_link_works_once(app, mailbox, admin_browser, new_client):
    invite_staff(admin_browser)
    deliver(app)
    link = link_in(emails_to(mailbox, "wendy@example.com")[0], "/invitation/")
    assert set_password(new_client(), link).status_code == 302
    stranger = new_client()
    page = stranger.get(link)
    assert page.status_code == 200
    assert "This link was already used" in page.get_data(as_text=True)
    # A second password through the same link is refused too.
    with app.app_context():
        first_hash = db.session.scalar(select(User.password_hash)
                                       .where(User.email == "wendy@example.com"))
    response = stranger.submit(link, {"password": "someone else's words", "confirm":
                                      "someone else's words"})
    assert "This link was already used" in response.get_data(as_text=True)
    assert load_user(app, "wendy@example.com").password_hash == first_hash


def test_resend_invitation_sends_a_new_link_and_retires_the_old(
    app, mailbox, admin_browser, new_client
):
    invite_staff(admin_browser)
    deliver(app)
    old_link = link_in(emails_to(mailbox, "wendy@example.com")[0], "/invitation/")
    wendy = load_user(app, "wendy@example.com")
    time.sleep(0.01)  # a later invitation time, even on a coarse clock
    response = admin_browser.submit(f"/accounts/{wendy.id}/invitation")
    assert (response.status_code, response.location) == (302, "/staff")
    assert "A new invitation is on its way" in admin_browser.get("/staff").get_data(as_text=True)
    deliver(app)
    _, second = emails_to(mailbox, "wendy@example.com")
    new_link = link_in(second, "/invitation/")
    assert new_link != old_link
    assert "This link was already used" in new_client().get(old_link).get_data(as_text=True)
    assert set_password(new_client(), new_link).status_code == 302
    assert audit_actions(app, wendy.id) == [
        "user.invited", "user.invitation_resent", "user.invitation_accepted"]


def test_resend_is_refused_once_the_password_is_set(app, admin_browser, unassigned_staff):
    response = admin_browser.htmx("POST", f"/accounts/{unassigned_staff.id}/invitation")
    assert response.status_code == 200
    assert "has already set a password" in response.get_data(as_text=True)
    assert count_rows(app, AccountEmail) == 0


def test_expired_invitation_gets_a_page_saying_whom_to_ask(app, client, make_user, monkeypatch):
    invited = make_user(Role.STAFF, password_hash="", invited_at=utcnow())
    eight_days_ago = int(time.time()) - 8 * 24 * 3600
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: eight_days_ago)
    with app.app_context():
        token = account_links.make(db.session.get(User, invited.id),
                                   account_links.Purpose.INVITATION)
    monkeypatch.undo()
    response = client.get(f"/invitation/{token}")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "This link has expired" in page
    assert "ask Happy Tails to send you a new invitation" in page
    response = client.submit(f"/invitation/{token}", {"password": NEW_PASSWORD,
                                                      "confirm": NEW_PASSWORD})
    assert "This link has expired" in response.get_data(as_text=True)
    assert load_user(app, invited.email).password_hash == ""


@pytest.mark.parametrize("path", [
    "/invitation/not-a-token", "/password/reset/not-a-token", "/invitation/" + "x" * 2000,
])
def test_broken_links_get_a_clear_page(client, path):
    response = client.get(path)
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "This link does not work" in page and "Traceback" not in page


def test_a_reset_link_is_no_invitation(app, client, make_user):
    invited = make_user(Role.STAFF, password_hash="", invited_at=utcnow())
    with app.app_context():
        token = account_links.make(db.session.get(User, invited.id),
                                   account_links.Purpose.PASSWORD_RESET)
    assert "This link does not work" in client.get(f"/invitation/{token}").get_data(as_text=True)


def test_invited_person_cannot_log_in_before_choosing_a_password(client, make_user):
    invited = make_user(Role.STAFF, password_hash="", invited_at=utcnow())
    for password in ("", PASSWORD, "None"):
        response = client.submit("/login", {"email": invited.email, "password": password})
        assert response.status_code in (200, 401)
        assert not is_logged_in(client)


def test_invitation_is_not_sent_to_a_login_deactivated_meanwhile(app, mailbox, admin_browser):
    invite_staff(admin_browser)
    wendy = load_user(app, "wendy@example.com")
    admin_browser.submit(f"/accounts/{wendy.id}/deactivate")
    deliver(app)
    assert emails_to(mailbox, "wendy@example.com") == []
    with app.app_context():
        assert db.session.scalar(select(AccountEmail.status)) == DeliveryStatus.CANCELLED


def test_invitation_survives_an_smtp_outage(app, mailbox, admin_browser):
    mailbox.stop()
    invite_staff(admin_browser)  # inviting works while mail is down
    deliver(app)
    with app.app_context():
        row = db.session.scalar(select(AccountEmail))
        assert (row.status, row.attempts) == (DeliveryStatus.PENDING, 1) and row.last_error
    mailbox.start()
    with app.app_context():
        db.session.execute(update(AccountEmail).values(due_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    deliver(app)
    assert len(emails_to(mailbox, "wendy@example.com")) == 1


def test_undeliverable_invitation_is_shown_beside_the_login(app, mailbox, admin_browser):
    mailbox.inbox.refuse_with = "550 No such user"
    invite_staff(admin_browser)
    deliver(app)
    page = admin_browser.get("/staff").get_data(as_text=True)
    assert "The invitation email could not be delivered" in page


def test_undeliverable_invitation_is_listed_with_failed_deliveries_and_retried(
        app, mailbox, admin_browser, make_business, make_user):
    mailbox.inbox.refuse_with = "550 No such user"
    invite_staff(admin_browser)
    other_business_admin = make_user(Role.ADMIN, business=make_business())
    deliver(app)
    page = admin_browser.get("/settings/notifications").get_data(as_text=True)
    assert "Wendy Walker" in page and "Invitation email" in page and "550" in page
    row_id = re.search(r'name="account_email" value="(\d+)"', page).group(1)
    mailbox.inbox.refuse_with = None
    # Another business's admin cannot send it again.
    stranger = app.test_client()
    stranger.login(other_business_admin)
    assert stranger.submit("/settings/notifications/retry", {"account_email": row_id},
                           ).status_code == 302
    deliver(app)
    assert not emails_to(mailbox, "wendy@example.com")
    admin_browser.submit("/settings/notifications/retry", {"account_email": row_id})
    deliver(app)
    [invitation] = emails_to(mailbox, "wendy@example.com")
    assert link_in(invitation, "/invitation/")
    page = admin_browser.get("/settings/notifications").get_data(as_text=True)
    assert "Nothing has failed" in page


def test_undelivered_invitations_cost_one_query_for_the_whole_list(app, mailbox, admin_browser):
    mailbox.inbox.refuse_with = "550 No such user"

    def staff_page_queries() -> int:
        with record_sql(app) as statements:
            page = admin_browser.get("/staff").get_data(as_text=True)
        assert page.count("The invitation email could not be delivered") == invited
        return len(statements)

    invited = 1
    invite_staff(admin_browser)
    deliver(app)
    one = staff_page_queries()
    for number in range(3):
        invite_staff(admin_browser, f"Walker {number}", f"walker{number}@example.com")
    deliver(app)
    invited = 4
    assert staff_page_queries() == one


def test_client_login_is_invited_from_the_client_page(app, mailbox, admin_browser, household,
                                                      new_client):
    response = admin_browser.submit(f"/clients/{household.id}/logins/new",
                                    {"name": "Carla Rivera", "email": "carla@example.com"})
    assert response.location == f"/clients/{household.id}#details"
    page = admin_browser.get(f"/clients/{household.id}").get_data(as_text=True)
    assert "Carla Rivera" in page and "Invited" in page and "Resend invitation" in page
    deliver(app)
    [invitation] = emails_to(mailbox, "carla@example.com")
    assert "client portal" in text_of(invitation)
    browser = new_client()
    response = set_password(browser, link_in(invitation, "/invitation/"))
    assert response.location == f"/clients/{household.id}"
    assert "Active" in admin_browser.get(f"/clients/{household.id}").get_data(as_text=True)


# --- forgotten passwords ---------------------------------------------------------------------

def test_forgot_password_link_on_the_login_page(client):
    page = client.get("/login").get_data(as_text=True)
    assert 'href="/password/forgot"' in page and "Forgot password?" in page


def test_reset_by_email_sets_a_new_password(app, mailbox, client, new_client, admin):
    response = client.submit("/password/forgot", {"email": admin.email.upper()})
    assert response.status_code == 200
    assert "Check your email" in response.get_data(as_text=True)
    deliver(app)
    [reset] = emails_to(mailbox, admin.email)
    assert reset["Subject"] == "Reset your password for Happy Tails"
    assert "1 hour" in text_of(reset)
    browser = new_client()
    response = set_password(browser, link_in(reset, "/password/reset/"))
    assert (response.status_code, response.location) == (302, "/clients")
    assert "Your password was changed" in browser.get("/clients").get_data(as_text=True)
    with app.app_context():
        assert accounts.authenticate(admin.email, PASSWORD) is None
        assert accounts.authenticate(admin.email, NEW_PASSWORD).id == admin.id
    # And a note that it was changed, in case it was not them.
    deliver(app)
    changed = emails_to(mailbox, admin.email)[-1]
    assert changed["Subject"] == "Your password for Happy Tails was changed"
    assert f"{BASE_URL}/password/forgot" in text_of(changed)
    assert audit_actions(app, admin.id)[-1] == "user.password_reset"


def test_reset_link_works_once(app, mailbox, client, new_client, admin):
    client.submit("/password/forgot", {"email": admin.email})
    deliver(app)
    link = link_in(emails_to(mailbox, admin.email)[0], "/password/reset/")
    assert set_password(new_client(), link).status_code == 302
    page = new_client().get(link).get_data(as_text=True)
    assert "This link was already used" in page and 'href="/password/forgot"' in page


def test_reset_link_expires_after_an_hour(app, client, admin, monkeypatch):
    two_hours_ago = int(time.time()) - 2 * 3600
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: two_hours_ago)
    with app.app_context():
        token = account_links.make(db.session.get(User, admin.id),
                                   account_links.Purpose.PASSWORD_RESET)
    monkeypatch.undo()
    page = client.get(f"/password/reset/{token}").get_data(as_text=True)
    assert "This link has expired" in page and "Send me a new link" in page


def test_reset_answers_the_same_whether_or_not_the_email_exists(app, mailbox, new_client, admin):
    def request_reset(email: str):
        browser = new_client()
        browser.csrf_token()
        with record_sql(app) as statements:
            response = browser.submit("/password/forgot", {"email": email})
        page = re.sub(r'(value="|"X-CSRFToken": ")[^"]+', "TOKEN",
                      response.get_data(as_text=True).replace(email, "EMAIL"))
        return response.status_code, page, [statement for statement, _ in statements]

    known = request_reset(admin.email)
    unknown = request_reset("nobody@example.com")
    # The same page, and the very same database work: one insert, whoever asked (besides the
    # page's lookup of whose portal this is, for its name and logo).
    assert known == unknown
    assert [s.split()[0] for s in known[2] if not s.startswith(("BEGIN", "COMMIT"))
            and "FROM businesses" not in s] == ["INSERT"]
    deliver(app)
    assert mailbox.inbox.recipients() == [admin.email]
    # The typed unknown address is not kept.
    assert count_rows(app, AccountEmail, AccountEmail.email.is_not(None)) == 0


def test_no_reset_email_for_a_deactivated_login(app, mailbox, client, make_user):
    gone = make_user(Role.STAFF, active=False)
    client.submit("/password/forgot", {"email": gone.email})
    deliver(app)
    assert mailbox.inbox.received == []


def test_repeated_reset_requests_send_one_email_per_round(app, mailbox, new_client, admin):
    for _ in range(3):
        new_client().submit("/password/forgot", {"email": admin.email})
    deliver(app)
    assert len(emails_to(mailbox, admin.email)) == 1


def test_forgot_password_refuses_a_malformed_address(client):
    response = client.submit("/password/forgot", {"email": "not an address"})
    assert response.status_code == 422 and "Check your email" not in response.get_data(
        as_text=True)


# --- changing the password -------------------------------------------------------------------

def test_change_password_page_for_every_role(logged_in, admin, unassigned_staff,
                                             household_login):
    for user in (admin, unassigned_staff, household_login):
        page = logged_in(user).get("/account/password").get_data(as_text=True)
        assert "Current password" in page and 'href="/account/password"' in page


def test_change_password_needs_the_current_one(app, admin_browser, admin):
    response = admin_browser.submit("/account/password", {
        "current_password": "not my password", "password": NEW_PASSWORD,
        "confirm": NEW_PASSWORD})
    assert response.status_code == 422
    assert "That is not your current password." in response.get_data(as_text=True)
    with app.app_context():
        assert accounts.authenticate(admin.email, PASSWORD) is not None


@pytest.mark.parametrize(("password", "confirm", "error"), [
    ("short one", "short one", passwords.TOO_SHORT),
    ("password123", "password123", passwords.TOO_COMMON),
    (NEW_PASSWORD, NEW_PASSWORD + "!", "The two passwords are not the same."),
])
def test_change_password_refuses_what_the_rules_refuse(app, admin_browser, admin, password,
                                                       confirm, error):
    response = admin_browser.submit("/account/password", {
        "current_password": PASSWORD, "password": password, "confirm": confirm})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert error.replace("'", "&#39;") in page and 'aria-invalid="true"' in page
    with app.app_context():
        assert accounts.authenticate(admin.email, PASSWORD) is not None


def test_change_password_keeps_this_browser_and_sends_a_note(app, mailbox, admin_browser, admin):
    response = admin_browser.submit("/account/password", {
        "current_password": PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert (response.status_code, response.location) == (302, "/account/password")
    assert "Your password was changed" in admin_browser.get(response.location).get_data(
        as_text=True)
    assert admin_browser.get("/clients").status_code == 200
    deliver(app)
    assert emails_to(mailbox, admin.email)[0]["Subject"] == (
        "Your password for Happy Tails was changed")
    assert audit_actions(app, admin.id)[-1] == "user.password_changed"


# --- the password rules ------------------------------------------------------------------------

@pytest.mark.parametrize(("password", "accepted"), [
    ("x7#kQ9!mZ", False),  # 9 characters
    ("x7#kQ9!mZ2", True),  # 10
    ("Walk" + "x7#kQ9!mZ2" * 25 + "gh", True),  # 256
    ("Walk" + "x7#kQ9!mZ2" * 25 + "ghi", False),  # 257
    ("password123", False),
    ("qwertyuiop", False),
    ("1234567890", False),
    ("iloveyou12", False),
    ("P@ssw0rd2024", False),
    ("aaaaaaaaaaaa", False),
    ("correct horse battery", True),
    ("Ünïcødé pässwörd", True),
    ("🐕🐈🐕🐈🐕 walkies!", True),
])
def test_password_rules(password, accepted):
    assert (passwords.problem_with(password) is None) == accepted


def test_password_is_kept_exactly_as_typed(app, admin_browser, admin):
    typed = "  Ünïcødé pässwörd  "  # spaces at both ends, composed letters
    response = admin_browser.submit("/account/password", {
        "current_password": PASSWORD, "password": typed, "confirm": typed})
    assert response.status_code == 302
    with app.app_context():
        assert accounts.authenticate(admin.email, typed) is not None
        for other in (typed.strip(), unicodedata.normalize("NFD", typed), typed.lower()):
            assert accounts.authenticate(admin.email, other) is None


def test_passwords_are_hashed_with_scrypt(app, make_user):
    """At its default cost, which the suite lowers to a single round (tests/conftest.py)."""
    app.config["PASSWORD_HASH_METHOD"] = DEFAULTS["PASSWORD_HASH_METHOD"]
    admin = make_user(Role.ADMIN)
    with app.app_context():
        stored = db.session.scalar(select(User.password_hash).where(User.id == admin.id))
    method, cost, *_ = stored.split(":")
    assert method == "scrypt" and int(cost) >= 2**15 and PASSWORD not in stored


def test_command_line_refuses_a_common_password(runner, business):
    result = runner.invoke(
        args=["create-user", "--role", "admin", "--email", "o@example.com", "--name", "O",
              "--business", business.name, "--password-stdin"],
        input="password1234\n",
    )
    assert result.exit_code != 0 and "one of the first that attackers try" in result.output


# --- deactivation ----------------------------------------------------------------------------

def test_deactivate_and_reactivate_from_the_staff_page(app, admin_browser, logged_in,
                                                      unassigned_staff, new_client):
    staff_browser = logged_in(unassigned_staff)
    response = admin_browser.submit(f"/accounts/{unassigned_staff.id}/deactivate")
    assert (response.status_code, response.location) == (302, "/staff")
    page = admin_browser.get("/staff").get_data(as_text=True)
    assert "can no longer log in" in page and "Deactivated" in page and "Reactivate" in page
    # Logged out at once, and the password no longer works.
    assert staff_browser.get("/my-clients").status_code == 302
    assert count_rows(app, LoginSession, LoginSession.user_id == unassigned_staff.id) == 0
    refused = new_client().submit("/login", {"email": unassigned_staff.email,
                                             "password": PASSWORD})
    assert refused.status_code == 401
    admin_browser.submit(f"/accounts/{unassigned_staff.id}/reactivate")
    new_client().login(unassigned_staff)
    assert audit_actions(app, unassigned_staff.id)[-2:] == ["user.deactivated",
                                                            "user.reactivated"]


def test_account_buttons_answer_htmx_with_the_status_fragment(app, admin_browser,
                                                              household_login, household):
    response = admin_browser.htmx("POST", f"/accounts/{household_login.id}/deactivate")
    fragment = response.get_data(as_text=True)
    assert response.status_code == 200
    assert fragment.lstrip().startswith(f'<div class="account-status" id="account-'
                                        f'{household_login.id}"')
    assert "Deactivated" in fragment and "Reactivate" in fragment and "<html" not in fragment
    assert 'role="status"' in fragment
    # Without JavaScript: back to the client's page, where the login is listed.
    response = admin_browser.submit(f"/accounts/{household_login.id}/reactivate")
    assert response.location == f"/clients/{household.id}#logins"


def test_nobody_manages_their_own_login_or_a_stronger_one(app, logged_in, admin, office_manager,
                                                          make_user):
    other_admin = make_user(Role.ADMIN)
    manager_browser = logged_in(office_manager)
    for target in (office_manager, admin, other_admin):
        assert manager_browser.submit(f"/accounts/{target.id}/deactivate").status_code == 404
    assert logged_in(admin).submit(f"/accounts/{admin.id}/deactivate").status_code == 404
    assert count_rows(app, User, User.active.is_(False)) == 0
    page = manager_browser.get("/staff").get_data(as_text=True)
    assert f"Deactivate {admin.name}" not in page


@pytest.mark.parametrize(("actor", "target", "allowed"), [
    ("admin", "staff", True), ("admin", "client", True), ("admin", "office_manager", True),
    ("admin", "other_admin", True), ("admin", "admin", False),
    ("office_manager", "staff", True), ("office_manager", "client", True),
    ("office_manager", "other_admin", False), ("office_manager", "office_manager", False),
    ("staff", "client", False), ("client", "staff", False), ("stranger_admin", "staff", False),
])
def test_can_manage_account(app, admin, office_manager, unassigned_staff, household_login,
                            stranger_admin, make_user, actor, target, allowed):
    people = {"admin": admin, "office_manager": office_manager, "staff": unassigned_staff,
              "client": household_login, "stranger_admin": stranger_admin,
              "other_admin": make_user(Role.ADMIN)}
    with app.test_request_context():
        assert policy.can_manage_account(
            db.session.get(User, people[actor].id), db.session.get(User, people[target].id)
        ) == allowed


def test_deactivated_person_is_not_notified(app, mailbox, assigned_staff, household_login,
                                            household, make_message, admin_browser):
    # Written before the deactivation: cancelled at send time. Written after: never queued.
    make_message(household, household_login, "Before")
    admin_browser.submit(f"/accounts/{assigned_staff.id}/deactivate")
    make_message(household, household_login, "After")
    deliver(app)
    assert emails_to(mailbox, assigned_staff.email) == []
    with app.app_context():
        staff = db.session.get(User, assigned_staff.id)
        assert not policy.may_be_notified(staff, household, Feed.CONVERSATION)


# --- audit -------------------------------------------------------------------------------------

def test_account_events_are_audited_without_secrets(app, mailbox, admin_browser, admin,
                                                    new_client):
    invite_staff(admin_browser)
    wendy = load_user(app, "wendy@example.com")
    admin_browser.submit(f"/accounts/{wendy.id}/invitation")
    deliver(app)
    invitation_link = link_in(emails_to(mailbox, wendy.email)[-1], "/invitation/")
    wendy_browser = new_client()
    set_password(wendy_browser, invitation_link)
    admin_browser.submit(f"/accounts/{wendy.id}/deactivate")
    admin_browser.submit(f"/accounts/{wendy.id}/reactivate")
    new_client().submit("/password/forgot", {"email": wendy.email})
    deliver(app)
    reset_link = link_in(emails_to(mailbox, wendy.email)[-1], "/password/reset/")
    set_password(new_client(), reset_link, "Mochi naps in the sun")
    browser = new_client()
    browser.login(wendy, "Mochi naps in the sun")
    browser.submit("/account/password", {"current_password": "Mochi naps in the sun",
                                         "password": NEW_PASSWORD + "?",
                                         "confirm": NEW_PASSWORD + "?"})
    with app.app_context():
        events = list(db.session.scalars(
            select(AuditEvent).where(AuditEvent.object_id == wendy.id).order_by(AuditEvent.id)))
        stored = json.dumps([(e.action, e.actor_id, e.details) for e in events])
        password_hash = db.session.get(User, wendy.id).password_hash
    assert [(e.action, e.actor_id) for e in events] == [
        ("user.invited", admin.id), ("user.invitation_resent", admin.id),
        ("user.invitation_accepted", wendy.id), ("user.deactivated", admin.id),
        ("user.reactivated", admin.id), ("user.password_reset", wendy.id),
        ("user.password_changed", wendy.id),
    ]
    for secret in (NEW_PASSWORD, "Mochi naps", invitation_link.rsplit("/", 1)[1],
                   reset_link.rsplit("/", 1)[1], password_hash):
        assert secret not in stored


def test_audit_event_is_written_with_the_change_or_not_at_all(app, admin, monkeypatch):
    # A failing commit leaves neither the deactivation nor its event behind.
    def failing_commit():
        raise RuntimeError("the database went away")

    with app.app_context():
        user = db.session.get(User, admin.id)
        monkeypatch.setattr(db.session, "commit", failing_commit)
        with pytest.raises(RuntimeError):
            accounts.reactivate(user, user)
        db.session.rollback()
    assert count_rows(app, AuditEvent, AuditEvent.action == "user.reactivated") == 0


# --- logout clears site data ----------------------------------------------------------------

@pytest.mark.parametrize("logged_in_first", [True, False])
def test_logout_clears_site_data(admin_browser, client, logged_in_first):
    browser = admin_browser if logged_in_first else client
    response = browser.submit("/logout")
    assert response.status_code == 302
    # Storage and service workers; cookies are expired by the response itself (see routes).
    assert response.headers["Clear-Site-Data"] == '"storage"'


def test_only_logout_clears_site_data(admin_browser):
    assert "Clear-Site-Data" not in admin_browser.get("/clients").headers


# --- captured cookies stop working (session replay) -----------------------------------------

def _logout(app, victim, victim_browser, other_browser, mailbox):
    victim_browser.submit("/logout")


def _change_password_elsewhere(app, victim, victim_browser, other_browser, mailbox):
    response = other_browser.submit("/account/password", {
        "current_password": PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.status_code == 302


def _reset(app, victim, victim_browser, other_browser, mailbox):
    other_browser.submit("/password/forgot", {"email": victim.email})
    deliver(app)
    assert set_password(other_browser, link_in(emails_to(mailbox, victim.email)[-1],
                                               "/password/reset/")).status_code == 302


def _deactivate(app, victim, victim_browser, other_browser, mailbox):
    # other_browser is another admin's here.
    assert other_browser.submit(f"/accounts/{victim.id}/deactivate").status_code == 302


EVENTS = {"logout": _logout, "password_change": _change_password_elsewhere,
          "reset": _reset, "deactivation": _deactivate}


@pytest.mark.parametrize("event", EVENTS.values(), ids=EVENTS)
def test_captured_cookies_stop_working(app, mailbox, make_user, new_client, event):
    # An attacker copied the session cookie and the remember-me cookie of a browser.
    victim = make_user(Role.ADMIN, name="Vera Victim")
    victim_browser = new_client()
    victim_browser.login(victim, remember=True)
    session_cookie = victim_browser.get_cookie("session").value
    remember_cookie = victim_browser.get_cookie("remember_token").value
    assert replay(new_client, "session", session_cookie).status_code == 200
    assert replay(new_client, "remember_token", remember_cookie).status_code == 200
    other_browser = new_client()
    if event is _change_password_elsewhere:
        other_browser.login(victim, remember=True)  # the same person's other browser
    elif event is _deactivate:
        other_browser.login(make_user(Role.ADMIN))
    event(app, victim, victim_browser, other_browser, mailbox)
    for cookie, value in (("session", session_cookie), ("remember_token", remember_cookie)):
        response = replay(new_client, cookie, value)
        assert response.status_code == 302 and response.location.startswith("/login"), cookie
    assert victim_browser.get("/clients").status_code == 302


def test_password_change_keeps_the_current_browser_and_its_remember_me(
    app, make_user, new_client
):
    user = make_user(Role.ADMIN)
    browser = new_client()
    browser.login(user, remember=True)
    old_session = browser.get_cookie("session").value
    old_remember = browser.get_cookie("remember_token").value
    browser.submit("/account/password", {
        "current_password": PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert browser.get("/clients").status_code == 200
    # This browser got a new session key: copies of its old cookies are worth nothing.
    assert replay(new_client, "session", old_session).status_code == 302
    assert replay(new_client, "remember_token", old_remember).status_code == 302
    # Its new remember-me cookie still works after a browser restart.
    new_remember = browser.get_cookie("remember_token").value
    assert new_remember != old_remember
    assert replay(new_client, "remember_token", new_remember).status_code == 200
    assert count_rows(app, LoginSession, LoginSession.user_id == user.id) == 1


def test_accepting_an_invitation_ends_sessions_of_whoever_was_logged_in(
    app, admin_browser, admin, make_user, new_client
):
    invited = make_user(Role.STAFF, password_hash="", invited_at=utcnow())
    with app.app_context():
        token = account_links.make(db.session.get(User, invited.id),
                                   account_links.Purpose.INVITATION)
    admin_session = admin_browser.get_cookie("session").value
    assert set_password(admin_browser, f"/invitation/{token}").location == "/today"
    assert count_rows(app, LoginSession, LoginSession.user_id == admin.id) == 0
    assert replay(new_client, "session", admin_session).status_code == 302
