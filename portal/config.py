"""Configuration: the only module that reads the environment."""

import os
import secrets
from pathlib import Path


class ConfigError(RuntimeError):
    pass


def _instance_secret_key(instance_path: Path) -> str:
    """Development only: a random key kept in instance/ so sessions survive restarts."""
    key_file = instance_path / "secret_key"
    if not key_file.exists():
        instance_path.mkdir(parents=True, exist_ok=True)
        key_file.write_text(secrets.token_hex(32))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


def _sqlalchemy_url(instance_path: Path) -> str:
    url = os.environ.get("DATABASE_URL")
    if not url:
        return f"sqlite:///{instance_path / 'portal.sqlite3'}"
    # Hosting platforms hand out postgres:// URLs; SQLAlchemy wants an explicit driver.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url


def from_environment(instance_path: Path) -> dict:
    production = os.environ.get("PORTAL_ENV", "development") == "production"
    secret_key = os.environ.get("SECRET_KEY")
    if not secret_key:
        if production:
            raise ConfigError(
                "SECRET_KEY must be set in the environment when PORTAL_ENV=production"
            )
        secret_key = _instance_secret_key(instance_path)
    return {
        "PRODUCTION": production,
        "SECRET_KEY": secret_key,
        "SQLALCHEMY_DATABASE_URI": _sqlalchemy_url(instance_path),
        "SESSION_COOKIE_SECURE": production,
        "REMEMBER_COOKIE_SECURE": production,
        "MAIL_SERVER": os.environ.get("MAIL_SERVER", "localhost"),
        "MAIL_PORT": int(os.environ.get("MAIL_PORT", "25")),
        "MAIL_USE_TLS": os.environ.get("MAIL_USE_TLS", "") == "1",
        "MAIL_USERNAME": os.environ.get("MAIL_USERNAME"),
        "MAIL_PASSWORD": os.environ.get("MAIL_PASSWORD"),
        "MAIL_DEFAULT_SENDER": os.environ.get("MAIL_DEFAULT_SENDER", "portal@localhost"),
        # Without an SMTP server, development prints emails to the console instead.
        "MAIL_TRANSPORT": "smtp" if os.environ.get("MAIL_SERVER") else "console",
        "PORTAL_BASE_URL": os.environ.get("PORTAL_BASE_URL", "http://127.0.0.1:5000"),
        "SMS_PROVIDER": "twilio" if os.environ.get("TWILIO_ACCOUNT_SID") else "console",
        "TWILIO_ACCOUNT_SID": os.environ.get("TWILIO_ACCOUNT_SID"),
        "TWILIO_AUTH_TOKEN": os.environ.get("TWILIO_AUTH_TOKEN"),
        "TWILIO_FROM_NUMBER": os.environ.get("TWILIO_FROM_NUMBER"),
        "TWILIO_API_BASE": os.environ.get("TWILIO_API_BASE", "https://api.twilio.com"),
        **_upload_limits(),
    }


def _upload_limits() -> dict:
    limits = {}
    for name, variable in (
        ("UPLOAD_MAX_FILE_BYTES", "UPLOAD_MAX_FILE_MB"),
        ("UPLOAD_MAX_FILES", "UPLOAD_MAX_FILES"),
        ("MAX_CONTENT_LENGTH", "UPLOAD_MAX_REQUEST_MB"),
    ):
        if value := os.environ.get(variable):
            limits[name] = int(value) * (1024 * 1024 if variable.endswith("_MB") else 1)
    return limits


DEFAULTS = {
    "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "REMEMBER_COOKIE_HTTPONLY": True,
    "REMEMBER_COOKIE_SAMESITE": "Lax",
    # A page left open all day must still post: CSRF tokens live as long as the session.
    "WTF_CSRF_TIME_LIMIT": None,
    "WTF_CSRF_HEADERS": ["X-CSRFToken"],
    "PASSWORD_HASH_METHOD": "scrypt",
    "FEED_PAGE_SIZE": 50,
    "MESSAGE_MAX_LENGTH": 10_000,
    "UPLOAD_MAX_FILE_BYTES": 25 * 1024 * 1024,
    "UPLOAD_MAX_FILES": 20,
    "UPLOAD_MAX_PIXELS": 50_000_000,
    # The whole request; Flask answers 413 beyond it before reading the body.
    "MAX_CONTENT_LENGTH": 100 * 1024 * 1024,
    # The undo window: a message deleted within it is never delivered anywhere.
    "NOTIFICATION_DELAY_SECONDS": 20,
    "NOTIFICATION_MAX_ATTEMPTS": 8,
    "NOTIFICATION_RETRY_SECONDS": 30,
    "MAIL_TRANSPORT": "smtp",
    "SMS_PROVIDER": "console",
    "PORTAL_BASE_URL": "http://127.0.0.1:5000",
    "MAIL_DEFAULT_SENDER": "portal@localhost",
}
