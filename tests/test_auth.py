"""Logging in and out, sessions that really end, safe redirects, and the production guard."""

import subprocess
import sys
from datetime import timedelta
from email.utils import parsedate_to_datetime

import pytest
from sqlalchemy import select, update

from portal import config, create_app
from portal.extensions import db
from portal.models import LoginSession, User, utcnow

from .helpers import PASSWORD, update_row


def test_login_page_renders(client):
    page = client.get("/login").get_data(as_text=True)
    assert 'name="email"' in page and 'name="password"' in page and "Remember me" in page


def test_anonymous_is_sent_to_login_with_next(client, household):
    response = client.get(f"/clients/{household.id}")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


def test_anonymous_htmx_request_is_redirected_as_a_whole_page(client, household):
    response = client.get(f"/clients/{household.id}/feeds/conversation",
                          headers={"HX-Request": "true"})
    assert response.status_code == 401
    assert response.headers["HX-Redirect"] == (
        f"/login?next=/clients/{household.id}/feeds/conversation"
    )


@pytest.mark.parametrize("role", ["admin", "assigned_staff", "household_login"])
def test_login_lands_on_the_role_home(client, request, role, household):
    user = request.getfixturevalue(role)
    response = client.login(user)
    expected = {
        "admin": "/clients",
        "assigned_staff": "/today",
        "household_login": f"/clients/{household.id}",
    }[role]
    assert response.headers["Location"] == expected
    assert client.get(expected).status_code == 200


def test_login_with_wrong_password_shows_clear_error(client, admin):
    response = client.submit("/login", {"email": admin.email, "password": "wrong password"})
    assert response.status_code == 401
    assert "That email and password do not match an account." in response.get_data(as_text=True)


def test_login_with_unknown_email_gives_the_same_error(client):
    response = client.submit("/login", {"email": "nobody@example.com", "password": PASSWORD})
    assert response.status_code == 401
    assert "That email and password do not match an account." in response.get_data(as_text=True)


def test_login_is_case_insensitive_on_email(client, admin):
    response = client.submit("/login", {"email": admin.email.upper(), "password": PASSWORD})
    assert response.status_code == 302


def test_login_without_csrf_token_is_refused(client, admin):
    response = client.post("/login", data={"email": admin.email, "password": PASSWORD})
    assert response.status_code == 400


def test_deactivated_user_cannot_log_in(client, make_user):
    from portal.models import Role

    user = make_user(Role.STAFF, active=False)
    response = client.submit("/login", {"email": user.email, "password": PASSWORD})
    assert response.status_code == 401


def test_login_rotates_the_session(client, admin):
    client.get("/login")
    before = client.get_cookie("session").value
    client.login(admin)
    after = client.get_cookie("session").value
    assert before != after


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/staff", "/staff"),
        ("https://evil.example/", "/clients"),
        ("//evil.example/", "/clients"),
        ("/\\evil.example", "/clients"),
        ("javascript:alert(1)", "/clients"),
        ("/clients\r\nSet-Cookie: x=1", "/clients"),
    ],
)
def test_login_follows_next_only_to_local_paths(client, admin, target, expected):
    response = client.submit(
        "/login", {"email": admin.email, "password": PASSWORD, "next": target}
    )
    assert response.headers["Location"] == expected


def test_logout_needs_post(client, admin):
    client.login(admin)
    assert client.get("/logout").status_code == 405


def test_logout_ends_the_session_even_for_a_copied_cookie(app, client, new_client, admin):
    client.login(admin)
    stolen = client.get_cookie("session").value
    client.submit("/logout")
    assert client.get("/clients").status_code == 302

    replay = new_client()
    replay.set_cookie("session", stolen)
    response = replay.get("/clients")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    with app.app_context():
        assert db.session.scalar(select(LoginSession)) is None


def test_remember_me_cookie_stops_working_after_logout(app, client, new_client, admin):
    client.login(admin, remember=True)
    remember = client.get_cookie("remember_token").value
    # A browser restart: only the remember-me cookie is left.
    restarted = new_client()
    restarted.set_cookie("remember_token", remember)
    assert restarted.get("/clients").status_code == 200
    client.submit("/logout")
    replay = new_client()
    replay.set_cookie("remember_token", remember)
    assert replay.get("/clients").status_code == 302


def _remember_cookie_expiry(client, admin):
    response = client.login(admin, remember=True)
    header = next(value for value in response.headers.getlist("Set-Cookie")
                  if value.startswith("remember_token="))
    expires = next(part.split("=", 1)[1] for part in header.split("; ")
                   if part.startswith("Expires="))
    return parsedate_to_datetime(expires) - utcnow()


def test_remember_me_lasts_thirty_days_and_the_login_page_says_so(client, admin):
    page = client.get("/login").get_data(as_text=True)
    assert "Keeps you logged in on this device for 30 days" in page
    assert 'aria-describedby="remember-hint"' in page
    expiry = _remember_cookie_expiry(client, admin)
    assert timedelta(days=29, hours=23) < expiry <= timedelta(days=30)


def test_remember_me_duration_is_configurable(monkeypatch, tmp_path, make_app, admin):
    monkeypatch.setenv("REMEMBER_ME_DAYS", "7")
    assert config.from_environment(tmp_path)["REMEMBER_COOKIE_DURATION"] == timedelta(days=7)
    app = make_app(REMEMBER_COOKIE_DURATION=timedelta(days=7))
    browser = app.test_client()
    assert "for 7 days" in browser.get("/login").get_data(as_text=True)


def test_poll_intervals_are_read_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("FEED_POLL_SECONDS", "4")
    settings = config.from_environment(tmp_path)
    assert (settings["FEED_POLL_SECONDS"], settings["DELIVERY_POLL_SECONDS"],
            settings["UNREAD_POLL_SECONDS"]) == (4, 5, 10)


@pytest.mark.parametrize(("variable", "value"), [
    ("REMEMBER_ME_DAYS", "0"), ("REMEMBER_ME_DAYS", "-3"), ("REMEMBER_ME_DAYS", "thirty"),
    ("MAIL_PORT", "25x"), ("TRUSTED_PROXIES", "-1"), ("UPLOAD_MAX_FILE_MB", "0"),
    ("FEED_POLL_SECONDS", "0"), ("UNREAD_POLL_SECONDS", "0.5"),
    ("REMEMBER_ME_DAYS", "٣٠"),  # digits, but not ones a person types into a setting
])
def test_a_number_setting_that_is_not_a_whole_number_stops_the_start(
        monkeypatch, tmp_path, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(config.ConfigError, match=f"^{variable} must be a whole number"):
        config.from_environment(tmp_path)


def test_a_copied_remember_me_cookie_stops_working_when_the_browsers_would_expire(
    app, client, new_client, admin
):
    """The cookie's expiry is the browser's to keep; the server holds the session to the same
    bound, so a copy kept elsewhere stops working then too."""
    client.login(admin, remember=True)
    remember = client.get_cookie("remember_token").value
    restarted = new_client()
    restarted.set_cookie("remember_token", remember)
    assert restarted.get("/clients").status_code == 200
    with app.app_context():
        db.session.execute(update(LoginSession).values(
            created_at=utcnow() - timedelta(days=30, minutes=1)))
        db.session.commit()
    for browser in (new_client(), client):  # the copy, and the browser's own session
        browser.set_cookie("remember_token", remember)
        assert browser.get("/clients").status_code == 302


def test_deactivation_ends_a_live_session(app, client, admin):
    client.login(admin)
    update_row(app, User, admin.id, active=False)
    assert client.get("/clients").status_code == 302


def test_session_cookie_flags(client, admin):
    client.login(admin)
    header = next(
        value for value in _set_cookie_headers(client, admin) if value.startswith("session=")
    )
    assert "HttpOnly" in header and "SameSite=Lax" in header


def _set_cookie_headers(client, admin):
    client.submit("/logout")
    response = client.submit("/login", {"email": admin.email, "password": PASSWORD})
    return response.headers.getlist("Set-Cookie")


def test_not_found_page_has_no_traceback(client, admin):
    client.login(admin)
    page = client.get("/clients/999999").get_data(as_text=True)
    assert "This page is not available" in page and "Traceback" not in page


def test_production_refuses_to_start_without_secret_key(monkeypatch, tmp_path):
    monkeypatch.setenv("PORTAL_ENV", "production")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(config.ConfigError, match="SECRET_KEY"):
        create_app()


@pytest.mark.parametrize("secret_key", [
    "dev", "changeme", "Change-Me", "secret", "s" * 64, "0123456789abcdef", "short but random 7#x",
    "change-this-to-a-long-random-secret-key", "Replace with your own value, 32+ chars!",
])
def test_production_refuses_a_weak_or_placeholder_secret_key(monkeypatch, secret_key):
    monkeypatch.setenv("PORTAL_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", secret_key)
    with pytest.raises(config.ConfigError, match="SECRET_KEY is"):
        create_app()


RANDOM_KEY = "5f0c2a9e8b7d41c3a6e9f2b8d0c7a1e4b3f6a9d2c5e8b1f4a7d0c3e6b9f2a5d8"


def test_production_refuses_debug_mode(monkeypatch):
    monkeypatch.setenv("PORTAL_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", RANDOM_KEY)
    monkeypatch.setenv("FLASK_DEBUG", "1")
    with pytest.raises(config.ConfigError, match="debug mode is on"):
        create_app()


@pytest.fixture
def production(monkeypatch, tmp_path):
    """What a production start needs, each test taking one thing away."""
    monkeypatch.setenv("PORTAL_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", RANDOM_KEY)
    monkeypatch.setenv("MAIL_SERVER", "smtp.example")
    monkeypatch.setenv("PORTAL_BASE_URL", "https://portal.example")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'portal.sqlite3'}")
    for variable in ("FLASK_DEBUG", "PUSH_ALLOW_INSECURE_ENDPOINTS"):
        monkeypatch.delenv(variable, raising=False)


def test_production_starts_with_a_random_key_and_debug_off(production):
    assert create_app().config["PRODUCTION"]


@pytest.mark.parametrize(("variable", "value", "reason"), [
    ("PUSH_ALLOW_INSECURE_ENDPOINTS", "1", "PUSH_ALLOW_INSECURE_ENDPOINTS is for development"),
    ("MAIL_SERVER", None, "MAIL_SERVER must be set"),
    ("PORTAL_BASE_URL", None, "PORTAL_BASE_URL must be set"),
])
def test_production_refuses_development_shortcuts(production, monkeypatch, variable, value,
                                                  reason):
    if value is None:
        monkeypatch.delenv(variable)
    else:
        monkeypatch.setenv(variable, value)
    with pytest.raises(config.ConfigError, match=reason):
        create_app()


def test_refusing_to_start_says_why_in_one_line(tmp_path):
    environment = {"PORTAL_ENV": "production", "SECRET_KEY": "changeme", "PATH": "/usr/bin:/bin",
                   "DATABASE_URL": f"sqlite:///{tmp_path / 'portal.sqlite3'}"}
    started = subprocess.run([sys.executable, "-c", "import wsgi"], env=environment,
                             capture_output=True, text=True, timeout=60, cwd=config_root())
    assert started.returncode == 3  # gunicorn's "worker failed to boot": it stops, not loops
    assert started.stderr.count("\n") == 1
    assert started.stderr.startswith("The portal will not start: SECRET_KEY is a well-known")


def config_root() -> str:
    from portal import ROOT

    return str(ROOT)


def test_development_generates_a_secret_key_into_instance(monkeypatch, tmp_path):
    monkeypatch.delenv("PORTAL_ENV", raising=False)
    monkeypatch.delenv("SECRET_KEY", raising=False)
    settings = config.from_environment(tmp_path)
    assert len(settings["SECRET_KEY"]) == 64
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0
    assert config.from_environment(tmp_path)["SECRET_KEY"] == settings["SECRET_KEY"]


def test_production_marks_cookies_secure(monkeypatch, tmp_path):
    monkeypatch.setenv("PORTAL_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "s" * 64)
    settings = config.from_environment(tmp_path)
    assert settings["SESSION_COOKIE_SECURE"] and settings["REMEMBER_COOKIE_SECURE"]


def test_database_url_gets_the_psycopg_driver(monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@db/portal")
    assert config.from_environment(tmp_path)["SQLALCHEMY_DATABASE_URI"] == (
        "postgresql+psycopg://u:p@db/portal"
    )


def test_unknown_email_costs_a_hash_of_the_configured_method(app, monkeypatch):
    # A cheaper check for unknown emails would tell which addresses have logins.
    from portal.services import accounts

    methods = []
    real = accounts.check_password_hash
    monkeypatch.setattr(accounts, "check_password_hash",
                        lambda stored, password: methods.append(stored.split("$")[0])
                        or real(stored, password))
    with app.app_context():
        assert accounts.authenticate("nobody@example.com", "whatever password") is None
    assert methods == [app.config["PASSWORD_HASH_METHOD"]]
