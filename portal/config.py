"""Configuration: the only module that reads the environment."""

import os
import secrets
from datetime import timedelta
from pathlib import Path


class ConfigError(RuntimeError):
    pass


# Written by `flask --app wsgi notifications vapid-keys`; the environment takes precedence.
VAPID_PRIVATE_KEY_FILE = "vapid_private_key.pem"
VAPID_PUBLIC_KEY_FILE = "vapid_public_key.txt"


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


# Keys seen in tutorials and templates: anyone can sign a session cookie with them.
PLACEHOLDER_SECRET_KEYS = frozenset({
    "dev", "development", "changeme", "change-me", "change_me", "changethis", "secret",
    "secretkey", "secret-key", "secret_key", "mysecretkey", "your-secret-key", "yoursecretkey",
    "supersecret", "super-secret-key", "test", "testing", "password", "default", "replaceme",
    "replace-me", "please-change-me", "xxx", "key",
})
# Long placeholders ("change-this-to-a-long-random-secret") pass the length and variety checks;
# words like these are in no randomly generated key.
PLACEHOLDER_WORDS = ("change", "replace", "secret", "example", "placeholder", "your", "insert",
                     "random", "password", "default", "sample")
MIN_SECRET_KEY_BYTES = 32
# A random key of 32 bytes or more, in hex or base64, has far more different characters.
MIN_SECRET_KEY_CHARACTERS = 10


def refuse_unsafe_production(settings: dict) -> None:
    """Production does not start with a guessable key or with the debugger on (its error pages
    run any code a browser sends). Raises ConfigError with a one-line reason."""
    if not settings.get("PRODUCTION"):
        return
    key = settings.get("SECRET_KEY") or ""
    if not key:
        raise ConfigError("SECRET_KEY must be set in the environment when PORTAL_ENV=production")
    lowered = key.strip().lower()
    if lowered in PLACEHOLDER_SECRET_KEYS or any(word in lowered for word in PLACEHOLDER_WORDS):
        raise ConfigError("SECRET_KEY is a well-known placeholder; set a random one, e.g. "
                          "from: python3 -c 'import secrets; print(secrets.token_hex(32))'")
    if len(key.encode()) < MIN_SECRET_KEY_BYTES or len(set(key)) < MIN_SECRET_KEY_CHARACTERS:
        raise ConfigError(f"SECRET_KEY is too weak: use at least {MIN_SECRET_KEY_BYTES} random "
                          "bytes, e.g. python3 -c 'import secrets; print(secrets.token_hex(32))'")
    if settings.get("DEBUG"):
        raise ConfigError("debug mode is on (FLASK_DEBUG or --debug): production must run "
                          "without it")
    if settings.get("PUSH_ALLOW_INSECURE_ENDPOINTS"):
        raise ConfigError("PUSH_ALLOW_INSECURE_ENDPOINTS is for development only: it lets the "
                          "worker post to this machine")
    if settings.get("MAIL_TRANSPORT") != "smtp":
        raise ConfigError("MAIL_SERVER must be set when PORTAL_ENV=production: without it "
                          "emails (invitations, password resets, notifications) are only printed")
    if not settings.get("PORTAL_BASE_URL_GIVEN"):
        raise ConfigError("PORTAL_BASE_URL must be set when PORTAL_ENV=production: links in "
                          "emails and texts would lead to http://127.0.0.1:5000")


def from_environment(instance_path: Path) -> dict:
    production = os.environ.get("PORTAL_ENV", "development") == "production"
    secret_key = os.environ.get("SECRET_KEY")
    if not secret_key and not production:
        secret_key = _instance_secret_key(instance_path)
    return {
        "PRODUCTION": production,
        "SECRET_KEY": secret_key,
        "SQLALCHEMY_DATABASE_URI": _sqlalchemy_url(instance_path),
        "SESSION_COOKIE_SECURE": production,
        "REMEMBER_COOKIE_SECURE": production,
        "REMEMBER_COOKIE_DURATION": timedelta(days=_whole_number("REMEMBER_ME_DAYS", 30,
                                                                 minimum=1)),
        "MAIL_SERVER": os.environ.get("MAIL_SERVER", "localhost"),
        "MAIL_PORT": _whole_number("MAIL_PORT", 25, minimum=1),
        "MAIL_USE_TLS": os.environ.get("MAIL_USE_TLS", "") == "1",
        "MAIL_USERNAME": os.environ.get("MAIL_USERNAME"),
        "MAIL_PASSWORD": os.environ.get("MAIL_PASSWORD"),
        "MAIL_DEFAULT_SENDER": os.environ.get("MAIL_DEFAULT_SENDER", "portal@localhost"),
        # Without an SMTP server, development prints emails to the console instead.
        "MAIL_TRANSPORT": "smtp" if os.environ.get("MAIL_SERVER") else "console",
        **_base_url(),
        "SMS_PROVIDER": "twilio" if os.environ.get("TWILIO_ACCOUNT_SID") else "console",
        "TWILIO_ACCOUNT_SID": os.environ.get("TWILIO_ACCOUNT_SID"),
        "TWILIO_AUTH_TOKEN": os.environ.get("TWILIO_AUTH_TOKEN"),
        "TWILIO_FROM_NUMBER": os.environ.get("TWILIO_FROM_NUMBER"),
        "TWILIO_API_BASE": os.environ.get("TWILIO_API_BASE", "https://api.twilio.com"),
        **_upload_limits(),
        **_object_storage(),
        **_inbound(production),
        **_web_push(instance_path),
        # Throttle counters: in Redis every worker shares them; memory is per process.
        "RATELIMIT_STORAGE_URI": os.environ.get("REDIS_URL") or "memory://",
        # Rendered messages: kept per process, and shared in Redis when there is one.
        "REDIS_URL": os.environ.get("REDIS_URL"),
        "RENDERED_MESSAGES_CACHE_SIZE": _whole_number(
            "RENDERED_MESSAGES_CACHE_SIZE", DEFAULTS["RENDERED_MESSAGES_CACHE_SIZE"], minimum=1),
        "TRUSTED_PROXIES": _whole_number("TRUSTED_PROXIES", 0, minimum=0),
        "NOTIFICATION_DELAY_SECONDS": _whole_number(
            "NOTIFICATION_DELAY_SECONDS", DEFAULTS["NOTIFICATION_DELAY_SECONDS"], minimum=0),
        **{name: _whole_number(name, DEFAULTS[name], minimum=1)
           for name in ("FEED_POLL_SECONDS", "DELIVERY_POLL_SECONDS", "UNREAD_POLL_SECONDS",
                        "NOTIFICATION_STALE_CLAIM_SECONDS", "NOTIFICATION_RETRY_SECONDS",
                        "NOTIFICATION_RETRY_MAX_SECONDS", "NOTIFICATION_MAX_ATTEMPTS")},
        # Any limit may be set in the environment, e.g. THROTTLE_MESSAGES_PER_USER="30 per minute".
        **{name: os.environ[name] for name in DEFAULTS
           if name.startswith("THROTTLE_") and name in os.environ},
    }


def _whole_number(variable: str, default: int, *, minimum: int) -> int:
    """An integer setting from the environment; anything else stops the start with one line
    (a zero REMEMBER_ME_DAYS would end every session the moment it began)."""
    value = os.environ.get(variable, "").strip()
    if not value:
        return default
    if not value.isascii() or not value.isdigit() or int(value) < minimum:
        raise ConfigError(f"{variable} must be a whole number, at least {minimum} "
                          f"(it is {value!r})")
    return int(value)


def _base_url() -> dict:
    """Where links in emails and texts point. Unset, the development server puts its own
    address there (`flask serve --port`)."""
    if url := os.environ.get("PORTAL_BASE_URL"):
        return {"PORTAL_BASE_URL": url, "PORTAL_BASE_URL_GIVEN": True}
    return {}


def _inbound(production: bool) -> dict:
    """Replies: the reply domain of notification emails, the receiver's address, an IMAP
    mailbox to fetch from instead, and whose Authentication-Results headers are believed."""
    settings = {
        # Development gives every email a reply address, taken by `make run`'s receiver.
        "REPLY_DOMAIN": os.environ.get("REPLY_DOMAIN") or (None if production
                                                           else "replies.localhost"),
        "MAIL_RECEIVE_HOST": os.environ.get("MAIL_RECEIVE_HOST", "127.0.0.1"),
        "MAIL_RECEIVE_PORT": _whole_number("MAIL_RECEIVE_PORT", 2525, minimum=1),
        "INBOUND_AUTHSERV_ID": os.environ.get("INBOUND_AUTHSERV_ID") or None,
        "IMAP_HOST": os.environ.get("IMAP_HOST") or None,
        "IMAP_PORT": _whole_number("IMAP_PORT", 993, minimum=1),
        "IMAP_SSL": os.environ.get("IMAP_SSL", "1") != "0",
        "IMAP_USER": os.environ.get("IMAP_USER") or None,
        "IMAP_PASSWORD": os.environ.get("IMAP_PASSWORD") or None,
        "IMAP_FOLDER": os.environ.get("IMAP_FOLDER") or "INBOX",
        "IMAP_POLL_SECONDS": _whole_number("IMAP_POLL_SECONDS", 60, minimum=1),
    }
    if "INBOUND_MAX_MB" in os.environ:
        settings["INBOUND_MAX_BYTES"] = _whole_number("INBOUND_MAX_MB", 0, minimum=1) * 1024 * 1024
    return settings


def _web_push(instance_path: Path) -> dict:
    """VAPID keys from the environment (both together), else from the files in instance/.
    Without them the portal runs, and web push is simply unavailable."""
    private_key = os.environ.get("VAPID_PRIVATE_KEY")
    public_key = os.environ.get("VAPID_PUBLIC_KEY")
    if not private_key:
        private_file = instance_path / VAPID_PRIVATE_KEY_FILE
        public_file = instance_path / VAPID_PUBLIC_KEY_FILE
        private_key = private_file.read_text() if private_file.is_file() else None
        public_key = public_file.read_text().strip() if public_file.is_file() else None
    sender = os.environ.get("MAIL_DEFAULT_SENDER", "portal@localhost")
    settings = {
        "VAPID_PRIVATE_KEY": private_key or None,
        "VAPID_PUBLIC_KEY": public_key or None,
        "VAPID_SUBJECT": os.environ.get("VAPID_SUBJECT") or f"mailto:{sender}",
        "PUSH_ALLOW_INSECURE_ENDPOINTS": os.environ.get("PUSH_ALLOW_INSECURE_ENDPOINTS") == "1",
    }
    # Replaces the list (commas or spaces between hosts), for a push service not in it yet.
    if hosts := os.environ.get("PUSH_SERVICE_HOSTS", "").replace(",", " ").split():
        settings["PUSH_SERVICE_HOSTS"] = tuple(host.lower().strip(".") for host in hosts)
    return settings


def _object_storage() -> dict:
    """Files in a bucket when STORAGE_URL is set (s3://bucket/prefix), else in instance/uploads.
    The endpoint (for a store other than AWS), region and keys may come under the names every
    S3 tool knows; without keys, boto3 looks where it always does (an instance role, say)."""
    if not os.environ.get("STORAGE_URL"):
        return {}

    def first(*names: str) -> str | None:
        return next((os.environ[name] for name in names if os.environ.get(name)), None)

    return {
        "STORAGE_URL": os.environ["STORAGE_URL"],
        "STORAGE_ENDPOINT_URL": first("STORAGE_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3",
                                      "AWS_ENDPOINT_URL"),
        "STORAGE_REGION": first("STORAGE_REGION", "AWS_REGION", "AWS_DEFAULT_REGION"),
        "STORAGE_ACCESS_KEY_ID": first("STORAGE_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID"),
        "STORAGE_SECRET_ACCESS_KEY": first("STORAGE_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY"),
        # A session token belongs with the keys it came with: AWS_SESSION_TOKEN only beside
        # the AWS_* keys (an assumed role's), never beside STORAGE_* ones.
        "STORAGE_SESSION_TOKEN": os.environ.get("STORAGE_SESSION_TOKEN") or (
            None if os.environ.get("STORAGE_ACCESS_KEY_ID") else first("AWS_SESSION_TOKEN")),
        "STORAGE_TIMEOUT_SECONDS": _whole_number("STORAGE_TIMEOUT_SECONDS", 5, minimum=1),
    }


def _upload_limits() -> dict:
    limits = {}
    for name, variable in (
        ("UPLOAD_MAX_FILE_BYTES", "UPLOAD_MAX_FILE_MB"),
        ("UPLOAD_MAX_FILES", "UPLOAD_MAX_FILES"),
        ("MAX_CONTENT_LENGTH", "UPLOAD_MAX_REQUEST_MB"),
    ):
        if variable in os.environ:
            value = _whole_number(variable, 0, minimum=1)
            limits[name] = value * (1024 * 1024 if variable.endswith("_MB") else 1)
    return limits


DEFAULTS = {
    # Rendered messages kept per process: about 2.5 KB each with its key, so ~12 MB.
    "RENDERED_MESSAGES_CACHE_SIZE": 5_000,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "REMEMBER_COOKIE_HTTPONLY": True,
    "REMEMBER_COOKIE_SAMESITE": "Lax",
    # "Remember me" keeps a browser logged in this long after logging in, then asks again
    # (Flask-Login's own default is a year). The server holds each session to it too.
    "REMEMBER_COOKIE_DURATION": timedelta(days=30),
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
    # How often an open page asks the portal again, in seconds: the live feed (a message shows
    # within three seconds), the delivery line of a message still settling, and the navigation's
    # unread total. The browser tests set them short.
    "FEED_POLL_SECONDS": 2,
    "DELIVERY_POLL_SECONDS": 5,
    "UNREAD_POLL_SECONDS": 10,
    # The undo window: a message deleted within it is never delivered anywhere.
    "NOTIFICATION_DELAY_SECONDS": 20,
    "NOTIFICATION_MAX_ATTEMPTS": 8,
    "NOTIFICATION_RETRY_SECONDS": 30,
    "NOTIFICATION_RETRY_MAX_SECONDS": 3600,
    # A claim older than this belongs to a worker that died (killed, its machine gone): its rows
    # go back to the outbox, and may be sent a second time (README: at least once).
    "NOTIFICATION_STALE_CLAIM_SECONDS": 600,
    # How long a code texted to confirm a phone number works, from when it is sent.
    "PHONE_CODE_MINUTES": 10,
    "MAIL_TRANSPORT": "smtp",
    "SMS_PROVIDER": "console",
    "PORTAL_BASE_URL": "http://127.0.0.1:5000",
    "PORTAL_BASE_URL_GIVEN": False,
    "MAIL_DEFAULT_SENDER": "portal@localhost",
    # Replies (portal/inbound): without a reply domain, emails carry no reply address.
    "REPLY_DOMAIN": None,
    "MAIL_RECEIVE_HOST": "127.0.0.1",
    "MAIL_RECEIVE_PORT": 2525,
    # The largest email taken in, whole (the receiver refuses more at DATA).
    "INBOUND_MAX_BYTES": 30 * 1024 * 1024,
    # The authserv-id of the business's own mail server: only its Authentication-Results
    # header is read (anyone can write one into a message they send).
    "INBOUND_AUTHSERV_ID": None,
    "IMAP_HOST": None,
    "IMAP_PORT": 993,
    "IMAP_SSL": True,
    "IMAP_USER": None,
    "IMAP_PASSWORD": None,
    "IMAP_FOLDER": "INBOX",
    # The mailbox is searched again at least this often, even while IDLE waits for news.
    "IMAP_POLL_SECONDS": 60,
    # Web push: unavailable until VAPID keys are configured.
    "VAPID_PRIVATE_KEY": None,
    "VAPID_PUBLIC_KEY": None,
    "VAPID_SUBJECT": "mailto:portal@localhost",
    # The push services browsers use: a subscription's endpoint must be https on one of these
    # hosts or a name below it (web.push.apple.com under push.apple.com). FCM for Chrome and
    # most Chromium browsers (android.googleapis.com its older name), Mozilla autopush for
    # Firefox, Apple for Safari, WNS (wns2-....notify.windows.com) for Edge on Windows.
    "PUSH_SERVICE_HOSTS": (
        "fcm.googleapis.com", "android.googleapis.com", "updates.push.services.mozilla.com",
        "push.apple.com", "notify.windows.com",
    ),
    # Development only: lets a subscription point at a push service on http(s)://127.0.0.1
    # (that address exactly, whatever the list above says).
    "PUSH_ALLOW_INSECURE_ENDPOINTS": False,
    # How long a push service keeps a notification for a device that is offline.
    "PUSH_TTL_SECONDS": 24 * 3600,
    "PUSH_TIMEOUT_SECONDS": 10,
    # Throttling (portal/throttle.py), in moving windows; limits as the `limits` package reads
    # them, several separated by ";". Only failed logins count against a login.
    "RATELIMIT_STORAGE_URI": "memory://",
    "RATELIMIT_STRATEGY": "moving-window",
    # A Redis outage raises one StorageError (the throttle then lets requests through) and is
    # noticed within a second rather than hanging the request.
    "RATELIMIT_STORAGE_OPTIONS": {
        "wrap_exceptions": True, "socket_connect_timeout": 1, "socket_timeout": 1,
    },
    "THROTTLE_KEY_PREFIX": "portal",
    # Reverse proxies in front of the app whose X-Forwarded-For/-Proto are believed: without
    # them every request would come from the proxy's address, one throttle for everybody.
    "TRUSTED_PROXIES": 0,
    "THROTTLE_LOGIN_FAILURES_PER_ACCOUNT": "5 per 15 minutes",
    # Generous: an office shares one address, and one person's typos must not lock out the rest.
    "THROTTLE_LOGIN_FAILURES_PER_ADDRESS": "30 per 15 minutes",
    "THROTTLE_MESSAGES_PER_USER": "20 per minute;300 per hour",
    "THROTTLE_FILES_PER_USER": "60 per 10 minutes;200 per hour",
    "THROTTLE_RESET_REQUESTS_PER_EMAIL": "3 per hour",
    "THROTTLE_RESET_REQUESTS_PER_ADDRESS": "20 per hour",
    # Fetches of one calendar link (phone calendars refresh hourly at most).
    "THROTTLE_CALENDAR_FEED_PER_LINK": "30 per hour",
    # Codes texted to confirm a phone number: per person, and per number whoever asks.
    "THROTTLE_PHONE_CODES_PER_USER": "1 per minute;5 per day",
    "THROTTLE_PHONE_CODES_PER_NUMBER": "1 per minute;5 per day",
    # Codes typed back to confirm a number, right or wrong, per person.
    "THROTTLE_PHONE_CONFIRM_ATTEMPTS_PER_USER": "10 per 10 minutes;30 per day",
}
