"""Throttles: how often one person or one address may try something. Every rule is here.

The limits are in the configuration (THROTTLE_*); the counters live in the `limits` package's
storage (RATELIMIT_STORAGE_URI): Redis when REDIS_URL is set, so that every worker shares them,
else the process's memory. Each rule is asked before the work; a refusal says how long to wait:

    refusal = throttle.reset_request(form.email.data)    # a "Forgot password?" request
    if refusal:
        form.email.errors.append(refusal.message)        # "Too many attempts. Try again in …"
        return render_template(...), 429, {"Retry-After": str(refusal.retry_after)}

A storage outage lets everything through (and is logged): nobody should be locked out of the
portal because Redis is down.

The rules use `limits` directly rather than Flask-Limiter's decorators: only failed logins
count, a success forgives the account's failures, the lock-out is audited, files count by their
number, and every refusal is said inside the form that was sent (keeping what was typed), none
of which a decorator that refuses before the view runs can do.
"""

import hashlib
import logging
import math
import time
from dataclasses import dataclass
from functools import lru_cache

from flask import Flask, current_app, request
from limits import RateLimitItem, parse_many
from limits.errors import StorageError
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import STRATEGIES, RateLimiter

from portal.models import User
from portal.services import audit
from portal.services.accounts import normalize_email

log = logging.getLogger(__name__)

TOO_MANY_ATTEMPTS = "Too many attempts."
TOO_MANY_MESSAGES = "You have sent many messages in a short time."
TOO_MANY_FILES = "You have sent many files in a short time."
TOO_MANY_CODES = "A code was texted to you or to this number a short while ago."


@dataclass(frozen=True, slots=True)
class Refusal:
    retry_after: int  # seconds until the next try is allowed
    reason: str = TOO_MANY_ATTEMPTS

    @property
    def minutes(self) -> int:
        return max(1, math.ceil(self.retry_after / 60))

    @property
    def message(self) -> str:
        unit = "minute" if self.minutes == 1 else "minutes"
        return f"{self.reason} Try again in {self.minutes} {unit}."


def init_app(app: Flask) -> None:
    """This app's counters: a storage and strategy of its own (fresh counters in memory, or the
    shared ones in Redis)."""
    config = app.config
    if config["RATELIMIT_STORAGE_URI"] == "memory://":
        storage = MemoryCounters()
    else:
        storage = storage_from_string(
            config["RATELIMIT_STORAGE_URI"], **config["RATELIMIT_STORAGE_OPTIONS"]
        )
    app.extensions["throttle"] = STRATEGIES[config["RATELIMIT_STRATEGY"]](storage)


class MemoryCounters(MemoryStorage):
    """limits' memory storage, its expired entries dropped by the hits themselves, once a
    second at most. The stock one starts a timer thread to drop them on almost every hit once
    the last has run (10 ms later): about 0.2 ms of a request each time. Expired entries never
    count either way; dropping them only frees the memory."""

    EXPIRE_EVERY = 1.0  # seconds

    def __init__(self):
        super().__init__()
        self._next_expiry = 0.0

    def _MemoryStorage__schedule_expiry(self) -> None:  # the stock method's mangled name
        now = time.monotonic()
        if now >= self._next_expiry:
            self._next_expiry = now + self.EXPIRE_EVERY
            self._MemoryStorage__expire_events()


# --- the rules --------------------------------------------------------------------------------

def login_refusal(email: str) -> Refusal | None:
    """Asked before a password is checked: too many failures for this account or address."""
    return _refusal(_login_rules(email))


def login_failed(email: str) -> None:
    """Counts a failed login against the account and the address. The failure that locks an
    account is recorded in its business's audit log."""
    account, address = _login_rules(email)
    _count([account, address])
    if refusal := _refusal([account]):
        audit.record_login_locked_out(_email(email), refusal.minutes)


def login_succeeded(email: str) -> None:
    """The account's failures are forgiven; the address keeps its count."""
    account, _ = _login_rules(email)
    _clear(account)


def message_refusal(user: User, files: int) -> Refusal | None:
    """A message by this person, with this many files: refused, or counted."""
    messages = [("THROTTLE_MESSAGES_PER_USER", str(user.id))]
    if refusal := _refusal(messages):
        return Refusal(refusal.retry_after, TOO_MANY_MESSAGES)
    uploads = [("THROTTLE_FILES_PER_USER", str(user.id))]
    if files and (refusal := _refusal(uploads, cost=files)):
        return Refusal(refusal.retry_after, TOO_MANY_FILES)
    _count(messages)
    if files:
        _count(uploads, cost=files)
    return None


def reset_request(email: str) -> Refusal | None:
    """A "Forgot password?" request: per address and per email, refused or counted. Every
    request counts, whether the email has a login or not, so the answer tells nothing."""
    rules = [
        ("THROTTLE_RESET_REQUESTS_PER_ADDRESS", _address()),
        ("THROTTLE_RESET_REQUESTS_PER_EMAIL", _digest(_email(email))),
    ]
    if refusal := _refusal(rules):
        return refusal
    _count(rules)
    return None


def calendar_feed_refusal(token: str) -> Refusal | None:
    """A fetch of a staff member's calendar feed: phone calendars ask every hour or so, so a
    link asked for far more often is being scraped. Refused or counted, per link."""
    rules = [("THROTTLE_CALENDAR_FEED_PER_LINK", _digest(token))]
    if refusal := _refusal(rules):
        return refusal
    _count(rules)
    return None


def phone_code_refusal(user: User, number: str) -> Refusal | None:
    """A code texted to confirm a number: per person and per number (in E.164), refused or
    counted. A refusal sends nothing, so it costs the business no text."""
    rules = [
        ("THROTTLE_PHONE_CODES_PER_USER", str(user.id)),
        ("THROTTLE_PHONE_CODES_PER_NUMBER", _digest(number)),
    ]
    if refusal := _refusal(rules):
        return Refusal(refusal.retry_after, TOO_MANY_CODES)
    _count(rules)
    return None


def phone_confirm_refusal(user: User) -> Refusal | None:
    """A code typed back to confirm a number, per person, refused or counted: each code allows
    only a few wrong tries, and this keeps a person from guessing on through new codes."""
    rules = [("THROTTLE_PHONE_CONFIRM_ATTEMPTS_PER_USER", str(user.id))]
    if refusal := _refusal(rules):
        return refusal
    _count(rules)
    return None


def _login_rules(email: str) -> list[tuple[str, str]]:
    return [
        ("THROTTLE_LOGIN_FAILURES_PER_ACCOUNT", _digest(_email(email))),
        ("THROTTLE_LOGIN_FAILURES_PER_ADDRESS", _address()),
    ]


def _email(email: str) -> str:
    return normalize_email(email or "")


def _digest(value: str) -> str:
    """Counters are keyed by a hash: the storage never holds email addresses."""
    return hashlib.sha256(value.encode()).hexdigest()[:32]


def _address() -> str:
    return request.remote_addr or "unknown"


# --- counting ---------------------------------------------------------------------------------

Rule = tuple[str, str]  # (the config key of its limits, whose counter)


@lru_cache(maxsize=64)
def _parse(limits: str) -> tuple[RateLimitItem, ...]:
    return tuple(parse_many(limits))


def _items(config_key: str) -> tuple[RateLimitItem, ...]:
    return _parse(current_app.config[config_key])


def _strategy() -> RateLimiter:
    return current_app.extensions["throttle"]


def _key(config_key: str, who: str) -> tuple[str, str, str]:
    return current_app.config["THROTTLE_KEY_PREFIX"], config_key, who


def _refusal(rules: list[Rule], cost: int = 1) -> Refusal | None:
    """The longest wait any of the rules asks for, or None when all allow `cost` more."""
    waits = []
    try:
        for config_key, who in rules:
            for item in _items(config_key):
                if not _strategy().test(item, *_key(config_key, who), cost=cost):
                    reset_at, _ = _strategy().get_window_stats(item, *_key(config_key, who))
                    waits.append(reset_at - time.time())
    except StorageError:
        log.exception("Throttle storage unavailable: letting the request through")
        return None
    return Refusal(max(1, math.ceil(max(waits)))) if waits else None


def _count(rules: list[Rule], cost: int = 1) -> None:
    try:
        for config_key, who in rules:
            for item in _items(config_key):
                _strategy().hit(item, *_key(config_key, who), cost=cost)
    except StorageError:
        log.exception("Throttle storage unavailable: this try was not counted")


def _clear(rule: Rule) -> None:
    config_key, who = rule
    try:
        for item in _items(config_key):
            _strategy().clear(item, *_key(config_key, who))
    except StorageError:
        log.exception("Throttle storage unavailable: nothing was cleared")
