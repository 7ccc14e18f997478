"""Throttling: failed logins per account and per address, posts and uploads per person, reset
requests; counters fresh for every app, in memory by default and in Redis when configured."""

import socket
import time
import uuid
from io import BytesIO

import pytest
from sqlalchemy import select

from portal import throttle
from portal.extensions import db
from portal.models import AuditEvent, Message, Role

from .helpers import PASSWORD, count_rows, png_bytes

OFFICE = "192.0.2.10"  # documentation addresses: only ever REMOTE_ADDR values here
ELSEWHERE = "198.51.100.7"


def attempt(browser, user_or_email, password="wrong password", address=OFFICE):
    email = getattr(user_or_email, "email", user_or_email)
    return browser.post(
        "/login",
        data={"csrf_token": browser.csrf_token(), "email": email, "password": password},
        environ_base={"REMOTE_ADDR": address},
    )


@pytest.fixture
def limits(app):
    """Small limits, so a test needs a few requests rather than dozens."""
    app.config.update(
        THROTTLE_LOGIN_FAILURES_PER_ACCOUNT="3 per 15 minutes",
        THROTTLE_LOGIN_FAILURES_PER_ADDRESS="6 per 15 minutes",
        THROTTLE_MESSAGES_PER_USER="2 per minute",
        THROTTLE_FILES_PER_USER="3 per 10 minutes",
        THROTTLE_RESET_REQUESTS_PER_EMAIL="2 per hour",
        THROTTLE_RESET_REQUESTS_PER_ADDRESS="3 per hour",
    )
    return app.config


# --- logins ------------------------------------------------------------------------------------

def test_failed_logins_lock_the_account_with_a_clear_message(client, admin, limits):
    for _ in range(3):
        assert attempt(client, admin).status_code == 401
    response = attempt(client, admin, password=PASSWORD)  # even the right password now
    assert response.status_code == 429
    assert "Too many attempts. Try again in 15 minutes." in response.get_data(as_text=True)
    assert 1 <= int(response.headers["Retry-After"]) <= 15 * 60


def test_locked_account_stays_locked_from_another_address(client, admin, limits):
    for _ in range(3):
        attempt(client, admin)
    assert attempt(client, admin, PASSWORD, address=ELSEWHERE).status_code == 429


def test_success_is_not_blocked_by_failures_on_other_accounts(client, new_client, admin,
                                                              office_manager, limits):
    # Someone in the same office locks their own account; a colleague still gets in.
    for _ in range(4):
        attempt(client, office_manager)
    assert attempt(client, office_manager, PASSWORD).status_code == 429
    assert attempt(new_client(), admin, PASSWORD).status_code == 302


def test_only_failures_count_and_success_forgives_them(client, new_client, admin, limits):
    for _ in range(2):
        attempt(client, admin)
    assert attempt(new_client(), admin, PASSWORD).status_code == 302
    for _ in range(2):
        assert attempt(client, admin).status_code == 401
    assert attempt(new_client(), admin, PASSWORD).status_code == 302


def test_many_accounts_from_one_address_lock_the_address(client, new_client, admin, limits):
    for number in range(6):
        attempt(client, f"guess{number}@example.com")
    response = attempt(new_client(), admin, PASSWORD)
    assert response.status_code == 429
    assert "Too many attempts. Try again in 15 minutes." in response.get_data(as_text=True)
    assert attempt(new_client(), admin, PASSWORD, address=ELSEWHERE).status_code == 302


def test_unknown_and_known_emails_lock_alike(client, admin, limits):
    for _ in range(3):
        attempt(client, "nobody@example.com", address=ELSEWHERE)
    unknown = attempt(client, "nobody@example.com", address=ELSEWHERE)
    for _ in range(3):
        attempt(client, admin)
    known = attempt(client, admin)
    assert (unknown.status_code, known.status_code) == (429, 429)


def test_email_case_and_spaces_do_not_dodge_the_lock(client, admin, limits):
    for variant in (admin.email.upper(), f"  {admin.email}", admin.email.title()):
        attempt(client, variant)
    assert attempt(client, admin, PASSWORD).status_code == 429


def test_locking_an_account_is_audited_once_in_its_business(app, client, admin, limits):
    for _ in range(5):
        attempt(client, admin)
    with app.app_context():
        events = list(db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "login.locked_out")))
    assert [(e.business_id, e.object_type, e.object_id, e.actor_id) for e in events] == [
        (admin.business_id, "user", admin.id, None)
    ]
    assert events[0].details == {"minutes": 15}


def test_locking_an_unknown_email_records_nothing(app, client, limits):
    for _ in range(4):
        attempt(client, "nobody@example.com")
    assert count_rows(app, AuditEvent, AuditEvent.action == "login.locked_out") == 0


def test_behind_a_trusted_proxy_each_client_address_counts(make_app, admin):
    app = make_app(TRUSTED_PROXIES=1, THROTTLE_LOGIN_FAILURES_PER_ADDRESS="2 per 15 minutes")

    def via_proxy(client_address, email, password="wrong password"):
        browser = app.test_client()
        return browser.post("/login", headers={"X-Forwarded-For": client_address}, data={
            "csrf_token": browser.csrf_token(), "email": email, "password": password})

    via_proxy(OFFICE, "guess1@example.com")
    via_proxy(OFFICE, "guess2@example.com")
    assert via_proxy(OFFICE, admin.email, PASSWORD).status_code == 429
    assert via_proxy(ELSEWHERE, admin.email, PASSWORD).status_code == 302
    with app.app_context():
        db.engine.dispose()


# --- messages and uploads ---------------------------------------------------------------------

def composer_url(household) -> str:
    return f"/clients/{household.id}/feeds/conversation/messages"


def test_posting_too_fast_is_refused_in_the_composer(app, logged_in, admin, household, limits):
    browser = logged_in(admin)
    for number in range(2):
        assert browser.submit(composer_url(household), {"text": f"note {number}"}).status_code \
            == 302
    response = browser.htmx("POST", composer_url(household), data={"text": "third note"})
    assert response.status_code == 200  # htmx swaps only 2xx: a form error is a 200 fragment
    assert response.headers["HX-Retarget"] == "#composer-conversation"
    body = response.get_data(as_text=True)
    assert 'id="composer-conversation"' in body and "third note" in body  # the text is kept
    assert "You have sent many messages in a short time. Try again in 1 minute." in body
    assert count_rows(app, Message) == 2


def test_posting_too_fast_without_javascript_gets_the_page(app, logged_in, admin, household,
                                                           limits):
    browser = logged_in(admin)
    for number in range(2):
        browser.submit(composer_url(household), {"text": f"note {number}"})
    response = browser.submit(composer_url(household), {"text": "third note"})
    assert response.status_code == 429
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    body = response.get_data(as_text=True)
    assert "<html" in body and 'id="composer-error"' in body and "third note" in body
    assert "Try again in 1 minute." in body


def test_one_persons_pace_does_not_slow_another(logged_in, admin, household_login, household,
                                                limits):
    browser = logged_in(admin)
    for number in range(3):
        browser.submit(composer_url(household), {"text": f"note {number}"})
    response = logged_in(household_login).submit(composer_url(household), {"text": "hi"})
    assert response.status_code == 302


def test_too_many_files_are_refused_but_text_still_goes(app, logged_in, admin, household,
                                                        limits):
    browser = logged_in(admin)
    files = [(BytesIO(png_bytes()), f"walk{number}.png") for number in range(4)]
    response = browser.htmx("POST", composer_url(household),
                            data={"text": "photos", "files": files},
                            content_type="multipart/form-data")
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "You have sent many files in a short time. Try again in 10 minutes." in body
    assert count_rows(app, Message) == 0
    assert browser.submit(composer_url(household), {"text": "words only"}).status_code == 302


# --- password reset requests (used by the reset view) -----------------------------------------

def test_reset_requests_are_limited_per_email_and_per_address(app, limits):
    def request_from(address, email):
        with app.test_request_context("/", environ_base={"REMOTE_ADDR": address}):
            return throttle.reset_request(email)

    assert request_from(OFFICE, "ann@example.com") is None
    assert request_from(ELSEWHERE, "ANN@example.com ") is None
    refusal = request_from("203.0.113.5", "ann@example.com")
    assert refusal.message == "Too many attempts. Try again in 60 minutes."
    assert request_from(OFFICE, "bob@example.com") is None
    assert request_from(OFFICE, "carl@example.com") is None  # the address's third
    assert request_from(OFFICE, "dave@example.com") is not None


def test_refusal_rounds_up_to_whole_minutes():
    assert throttle.Refusal(1).message == "Too many attempts. Try again in 1 minute."
    assert throttle.Refusal(61).message == "Too many attempts. Try again in 2 minutes."


# --- storage ----------------------------------------------------------------------------------

def test_every_app_starts_with_empty_counters(make_app, admin, limits):
    for app in [make_app(THROTTLE_LOGIN_FAILURES_PER_ACCOUNT="1 per hour") for _ in range(2)]:
        with app.test_request_context("/"):
            assert throttle.login_refusal(admin.email) is None
            throttle.login_failed(admin.email)
            assert throttle.login_refusal(admin.email) is not None


def test_storage_outage_lets_logins_through(app, client, admin, limits, caplog, monkeypatch):
    # Nothing listens on port 1: the storage fails fast and the portal keeps working.
    app.extensions["throttle"] = _strategy_for("redis://127.0.0.1:1/0")
    # Alembic's logging set-up (the migrations, run first) switched existing loggers off.
    monkeypatch.setattr(throttle.log, "disabled", False)
    assert attempt(client, admin).status_code == 401
    assert attempt(client, admin, PASSWORD).status_code == 302
    assert "Throttle storage unavailable" in caplog.text


def _strategy_for(uri: str):
    from limits.storage import storage_from_string
    from limits.strategies import MovingWindowRateLimiter

    return MovingWindowRateLimiter(storage_from_string(
        uri, wrap_exceptions=True, socket_connect_timeout=1, socket_timeout=1))


def redis_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.mark.skipif(not redis_reachable(), reason="no Redis on 127.0.0.1:6379")
def test_redis_storage_counts_across_apps(make_app, make_user):
    # Two apps stand for two workers: with REDIS_URL set, a lock seen by one holds in the other.
    prefix = f"portal-test-{uuid.uuid4().hex}"
    config = {"RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379/0",
              "THROTTLE_KEY_PREFIX": prefix,
              "THROTTLE_LOGIN_FAILURES_PER_ACCOUNT": "2 per 15 minutes"}
    first, second = make_app(**config), make_app(**config)
    user = make_user(Role.STAFF)
    try:
        with first.test_request_context("/"):
            throttle.login_failed(user.email)
            throttle.login_failed(user.email)
        with second.test_request_context("/"):
            refusal = throttle.login_refusal(user.email)
        assert refusal and refusal.message == "Too many attempts. Try again in 15 minutes."
        storage = first.extensions["throttle"].storage.storage  # the redis client
        assert storage.keys(f"*{prefix}*")
    finally:
        keys = first.extensions["throttle"].storage.storage.keys(f"*{prefix}*")
        if keys:
            first.extensions["throttle"].storage.storage.delete(*keys)


def test_forgot_password_page_refuses_too_many_requests(client, limits, admin):
    # The same for an address with no login; each from its own network address.
    for email, address in ((admin.email, OFFICE), ("nobody@example.com", ELSEWHERE)):
        def ask(email=email, address=address):
            return client.submit("/password/forgot", {"email": email},
                                 environ_base={"REMOTE_ADDR": address})

        assert [ask().status_code for _ in range(2)] == [200, 200]
        refused = ask()
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
        page = refused.get_data(as_text=True)
        assert "Too many attempts. Try again in" in page and "Check your email" not in page


def test_memory_counters_refuse_within_the_window_and_forget_after_it(monkeypatch):
    from limits import parse
    from limits.strategies import MovingWindowRateLimiter

    storage = throttle.MemoryCounters()
    monkeypatch.setattr(storage, "EXPIRE_EVERY", 0)
    limiter, once = MovingWindowRateLimiter(storage), parse("1 per second")
    assert limiter.hit(once, "someone") and not limiter.hit(once, "someone")
    time.sleep(1.05)
    assert limiter.hit(once, "someone")
    # The hit dropped the expired entry itself, leaving only its own.
    assert [len(events) for events in storage.events.values()] == [1]
