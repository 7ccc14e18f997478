"""`flask --app wsgi check`: is this host's configuration one the portal can run on? Each check
says what it found, or exactly what is wrong and what to set; nothing is changed but a probe
file written to the store and removed again."""

import smtplib
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from flask import Flask
from sqlalchemy import text

from portal import storage
from portal.config import ConfigError, refuse_unsafe_production
from portal.extensions import db
from portal.models import utcnow


@dataclass(frozen=True)
class Finding:
    name: str
    ok: bool
    said: str

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'}  {self.name}: {self.said}"


def check(app: Flask) -> list[Finding]:
    return [finding for run in CHECKS for finding in run(app)]


def _database(app: Flask) -> Iterator[Finding]:
    from alembic.script import ScriptDirectory

    where = db.engine.url.render_as_string(hide_password=True)
    try:
        with db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as error:
        yield Finding("database", False, f"{where} cannot be reached: {_first_line(error)} "
                      "(DATABASE_URL)")
        return
    try:
        with db.engine.connect() as connection:
            current = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except Exception:
        current = None  # a new, empty database
    migrations = app.extensions["migrate"].migrate.get_config()
    head = ScriptDirectory.from_config(migrations).get_current_head()
    if current != head:
        at = f"is at revision {current}" if current else "has no tables yet"
        yield Finding("database", False, f"{where} {at}, the code needs {head}: run "
                      "`flask --app wsgi db upgrade`")
    else:
        yield Finding("database", True, f"{where} reachable, migrated ({head})")


def _redis(app: Flask) -> Iterator[Finding]:
    url = app.config.get("REDIS_URL")
    if not url:
        yield Finding("redis", True, "REDIS_URL not set: throttles count per process (set it "
                      "when more than one process serves the portal)")
        return
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3).ping()
    except redis.RedisError as error:
        yield Finding("redis", False, f"REDIS_URL {_without_password(url)} does not answer: "
                      f"{_first_line(error)}")
    else:
        yield Finding("redis", True, f"{_without_password(url)} answers")


def _storage(app: Flask) -> Iterator[Finding]:
    store = app.extensions["storage"]
    probe = b"portal deployment check"
    try:
        key = store.save(probe)
        read = store.read(key)
        store.delete(key)
    except (OSError, ValueError) as error:
        yield Finding("storage", False, f"{store} is not writable: {_first_line(error)}")
        return
    try:
        # What else the portal asks of it: to say a file is missing (a 404 for the person, not
        # a 503; a bucket answers "forbidden" instead without the list permission), and to
        # list what is stored (the sweeper, the copy).
        missing = store.checksum(storage.new_key()) is None
        next(iter(store.stored_before(utcnow() - timedelta(days=1))), None)
    except (OSError, ValueError) as error:
        yield Finding("storage", False, f"{store} cannot be listed, or cannot say a file is "
                      f"missing: {_first_line(error)} (the keys need the list permission)")
        return
    if not missing:
        yield Finding("storage", False, f"{store} answered for a file that was never stored")
        return
    if read != probe:
        yield Finding("storage", False, f"{store} gave back other bytes than were written")
    elif isinstance(store, storage.LocalStorage):
        yield Finding("storage", True, f"{store} writable (this host only: several hosts need "
                      "STORAGE_URL)")
    else:
        yield Finding("storage", True, f"{store} writable, read back and removed")


def _production(app: Flask) -> Iterator[Finding]:
    if not app.config.get("PRODUCTION"):
        yield Finding("production", True, "PORTAL_ENV is not production: development "
                      "settings (a generated SECRET_KEY, cookies without Secure) are allowed")
        return
    try:
        refuse_unsafe_production(app.config)
    except ConfigError as error:
        yield Finding("production", False, str(error))
        return
    base = app.config.get("PORTAL_BASE_URL", "")
    if not base.startswith("https://"):
        yield Finding("production", False, f"PORTAL_BASE_URL is {base}: production is served "
                      "over https (links in emails, Secure cookies, web push)")
        return
    yield Finding("production", True, "SECRET_KEY set and strong, debug off, PORTAL_BASE_URL "
                  f"{base}")


def _vapid(app: Flask) -> Iterator[Finding]:
    from portal.notifications import push

    private, public = app.config.get("VAPID_PRIVATE_KEY"), app.config.get("VAPID_PUBLIC_KEY")
    if not private:
        said = ("VAPID_PUBLIC_KEY is set without VAPID_PRIVATE_KEY: set both, or neither"
                if public else "no VAPID keys: web push is off (`flask --app wsgi notifications "
                "vapid-keys` makes them)")
        yield Finding("web push", not public, said)
        return
    try:
        keys = push.load_keys(private, public)
    except (ValueError, TypeError) as error:
        yield Finding("web push", False, f"the VAPID keys are unusable: {error}")
        return
    yield Finding("web push", True, f"VAPID keys consistent (public key {keys.public_key[:12]}…)")


def _mail(app: Flask) -> Iterator[Finding]:
    config = app.config
    if config.get("MAIL_TRANSPORT") != "smtp" or config.get("MAIL_SUPPRESS_SEND"):
        yield Finding("mail", not config.get("PRODUCTION"), "MAIL_SERVER not set: emails are "
                      "printed to the console, not sent")
        return
    sender = config.get("MAIL_DEFAULT_SENDER") or ""
    if "@" not in sender or sender.endswith("@localhost"):
        yield Finding("mail", False, f"MAIL_DEFAULT_SENDER is {sender!r}: set the address "
                      "emails come from (e.g. portal@example.com)")
        return
    if bool(config.get("MAIL_USERNAME")) != bool(config.get("MAIL_PASSWORD")):
        yield Finding("mail", False, "set MAIL_USERNAME and MAIL_PASSWORD together")
        return
    server = f"{config['MAIL_SERVER']}:{config['MAIL_PORT']}"
    try:
        with smtplib.SMTP(config["MAIL_SERVER"], config["MAIL_PORT"], timeout=10) as smtp:
            smtp.ehlo()
            if config.get("MAIL_USE_TLS"):
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if config.get("MAIL_USERNAME"):
                smtp.login(config["MAIL_USERNAME"], config["MAIL_PASSWORD"])
    except (OSError, smtplib.SMTPException) as error:
        yield Finding("mail", False, f"the SMTP server {server} cannot be used: "
                      f"{_first_line(error)} (MAIL_SERVER, MAIL_PORT, MAIL_USE_TLS, "
                      "MAIL_USERNAME, MAIL_PASSWORD)")
        return
    login = " and took the login" if config.get("MAIL_USERNAME") else ""
    yield Finding("mail", True, f"{server} answered{login}; emails come from {sender}")


def _first_line(error: BaseException) -> str:
    said = (str(error).strip().splitlines() or [""])[0][:300]
    return said or type(error).__name__


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")).geturl()


CHECKS: tuple[Callable[[Flask], Iterator[Finding]], ...] = (
    _production, _database, _redis, _storage, _mail, _vapid,
)
