"""Messages as HTML: each message's article rendered once and kept.

A message's article is the same for every viewer who is shown the same things about it. So it
is kept under a key made of everything the article shows (see `shown`): the author as this
viewer sees them ("You" or a name, the role), the times in the viewer's zone and the relative
time's words, the deletion and who did it when the viewer may know, the Delete link when they
may delete, the attachments, the delivery line. Two viewers with different rights are shown
different things, so their keys differ: an article can never carry another viewer's rights.
Nothing is ever invalidated by hand: what changes a message (deleting, unsending, its files,
a notification going out, the minutes passing) changes its key, in every process at once.

A feed page keys its articles by its rows instead (query.Presenter.article_key): the row, and
the viewer's facts that decide every field of its item, so that an article kept is found
without building the item at all. The two keys tell the same things apart.

What carries a session or a moment stays out: an article with the Unsend form (a CSRF token
and a countdown), a notice, or a Retry form (a CSRF token) is rendered every time.

Kept in a bounded per-process LRU, and in Redis when REDIS_URL is set, so that the workers
share what any one rendered (one MGET per page). Redis failing only means rendering.
"""

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from pathlib import Path

from flask import current_app

from portal.bidi import Printed

TEMPLATE = "feeds/_message.html"
# The templates an article is made of: the article's and the macros it imports.
ARTICLE_TEMPLATES = (TEMPLATE, "_macros/report_card.html")
# How long Redis keeps an article no page asked for: relative times make most keys short-lived.
REDIS_TTL_SECONDS = 24 * 3600
# After Redis failed, pages leave it alone this long rather than each waiting on it.
REDIS_PAUSE_SECONDS = 30
REDIS_TIMEOUT_SECONDS = 0.25

log = logging.getLogger(__name__)


def render_messages(items: Sequence, oob: bool = False) -> Printed:
    """The articles of FeedItems, as the `messages` macro shows them: the kept ones as kept,
    the others rendered together in one call of the template's `articles` macro."""
    store = _store()
    # The settings the template reads: the same in every request of a process, not of a test.
    settings = (oob, current_app.config["DELIVERY_POLL_SECONDS"])
    article_keys = getattr(items, "article_keys", None)  # a page's rows (query.PresentedRows)
    if article_keys is not None:
        keys = article_keys(settings)
    else:
        keys = [shown(item, settings) if lasts(item) else None for item in items]
    found = store.get_many(keys)
    missing = [index for index, html in enumerate(found) if html is None]
    if missing:
        fresh = _render([items[index] for index in missing], oob)
        kept = []
        for index, html in zip(missing, fresh, strict=True):
            found[index] = html
            if keys[index] is not None:
                kept.append((keys[index], html))
        store.set_many(kept)
    return Printed("".join(found))


def lasts(item) -> bool:
    """Whether the item's article may be kept: nothing in it is the session's or the moment's."""
    return not (item.unsend_url or item.notice or (item.delivery and item.delivery.retry))


def shown(item, settings: tuple) -> tuple:
    """Everything templates/feeds/_message.html shows of an item (what it derives, such as the
    author label or the css class, comes from these) and the settings it reads: two items with
    the same key render the same. A field the template starts to show must be added here."""
    return (
        item.id, settings, item.is_own, item.author_name, item.author_role, item.text,
        item.iso_time, item.exact_time, item.relative_time, item.via_label,
        item.deleted, item.unsent, item.deleted_by_name, item.deleted_exact_time,
        item.images, item.files, item.delete_url, item.delivery, item.report,
        item.report_note_url, item.reply_url, item.reply_to_id,
    )


def _render(items: list, oob: bool) -> list[str]:
    articles: list[str] = []
    macro = current_app.jinja_env.get_template(TEMPLATE).module.articles
    macro(items, oob, articles.append)
    return articles


def _store() -> "LocalStore | RedisStore":
    store = current_app.extensions.get("rendered_messages")
    if store is None:
        store = current_app.extensions["rendered_messages"] = store_for(current_app.config)
    return store


def store_for(config) -> "LocalStore | RedisStore":
    local = LocalStore(config["RENDERED_MESSAGES_CACHE_SIZE"])
    if not config.get("REDIS_URL"):
        return local
    return RedisStore(config["REDIS_URL"], local, prefix=_redis_prefix(config))


# Python that decides what an article says from its key: a feed page's key holds the row and
# the viewer's facts, and these turn them into words (times, the text's links, the item).
ARTICLE_CODE = ("portal/clock.py", "portal/text.py", "portal/feed_component/query.py",
                "portal/feed_component/delivery.py", "portal/report_cards.py")


def _redis_prefix(config) -> str:
    """Keys of this template's, this code's and these settings' articles: a deployment changing
    any of them does not read what the one before kept."""
    loader, env = current_app.jinja_env.loader, current_app.jinja_env
    template = "".join(loader.get_source(env, name)[0] for name in ARTICLE_TEMPLATES)
    root = Path(__file__).resolve().parents[2]
    code = "".join((root / name).read_text() for name in ARTICLE_CODE)
    version = hashlib.blake2b(
        f"{template}|{code}|{config['DELIVERY_POLL_SECONDS']}".encode(), digest_size=8
    ).hexdigest()
    return f"{config.get('RENDERED_MESSAGES_REDIS_PREFIX', 'portal')}:message:{version}:"


def clear(app) -> None:
    """Forgets what this process kept of the app's articles (the benchmarks' cold pages)."""
    if store := app.extensions.get("rendered_messages"):
        store.clear()


class LocalStore:
    """A least-recently-used dict of at most `size` articles, for this process."""

    def __init__(self, size: int):
        self.size = size
        self.entries: OrderedDict[tuple, str] = OrderedDict()
        self.lock = threading.Lock()

    def get_many(self, keys: Sequence[tuple | None]) -> list[str | None]:
        found: list[str | None] = []
        entries = self.entries
        with self.lock:
            for key in keys:
                html = entries.get(key) if key is not None else None
                if html is not None:
                    entries.move_to_end(key)
                found.append(html)
        return found

    def set_many(self, pairs: Iterable[tuple[tuple, str]]) -> None:
        entries = self.entries
        with self.lock:
            for key, html in pairs:
                if key in entries:
                    entries.move_to_end(key)
                entries[key] = html
            while len(entries) > self.size:
                entries.popitem(last=False)

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()


class RedisStore:
    """The process's LRU before Redis: a page asks Redis (one MGET) only for the articles this
    process has not kept, and writes what it rendered in one pipeline with a TTL."""

    def __init__(self, url: str, local: LocalStore, *, prefix: str):
        import redis

        self.redis = redis.Redis.from_url(
            url, socket_timeout=REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        )
        self.errors = (redis.RedisError, OSError)
        self.local, self.prefix = local, prefix
        self.paused_until = 0.0

    def redis_key(self, key: tuple) -> str:
        # repr of strings, numbers, enums and frozen dataclasses: the same in every process.
        return self.prefix + hashlib.blake2b(repr(key).encode(), digest_size=16).hexdigest()

    def get_many(self, keys: Sequence[tuple | None]) -> list[str | None]:
        found = self.local.get_many(keys)
        asked = [index for index, html in enumerate(found) if html is None and keys[index]]
        if not asked or not self._available():
            return found
        try:
            answers = self.redis.mget([self.redis_key(keys[index]) for index in asked])
        except self.errors:
            self._pause()
            return found
        kept = []
        for index, answer in zip(asked, answers, strict=True):
            if answer is not None:
                found[index] = answer.decode()
                kept.append((keys[index], found[index]))
        self.local.set_many(kept)
        return found

    def set_many(self, pairs: Iterable[tuple[tuple, str]]) -> None:
        pairs = list(pairs)
        self.local.set_many(pairs)
        if not pairs or not self._available():
            return
        pipeline = self.redis.pipeline(transaction=False)
        for key, html in pairs:
            pipeline.set(self.redis_key(key), html, ex=REDIS_TTL_SECONDS)
        try:
            pipeline.execute()
        except self.errors:
            self._pause()

    def clear(self) -> None:
        self.local.clear()

    def _available(self) -> bool:
        return time.monotonic() >= self.paused_until

    def _pause(self) -> None:
        log.warning("Redis unreachable: rendering messages without it for %ss",
                    REDIS_PAUSE_SECONDS, exc_info=True)
        self.paused_until = time.monotonic() + REDIS_PAUSE_SECONDS
