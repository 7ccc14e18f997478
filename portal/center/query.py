"""The Message Center's list: every client feed the viewer may see, newest activity first.

One Core query per page whatever the number of clients: the feed summaries give the latest
message, the read markers the unread counts (capped), the policy which feeds may appear at all.
Paged by keyset on the latest message id, which orders feeds by activity and is unique.
"""

from dataclasses import dataclass
from functools import lru_cache

from markupsafe import Markup
from sqlalchemy import and_, bindparam, exists, func, select
from sqlalchemy.orm import aliased

from portal import policy, unread
from portal.clock import ViewerClock, elapsed
from portal.driver_reads import DriverRead
from portal.extensions import db, plan_for_values
from portal.models import Client, Feed, FeedSummary, Message, ReadMarker, User, utcnow
from portal.urls import url_pattern

EXCERPT_LENGTH = 140


class Show:
    """The filters, in the order the page offers them."""

    ALL = "all"
    UNREAD = "unread"
    AWAITING = "awaiting"
    APPROVAL = "approval"
    LABELS = {"all": "All", "unread": "Unread", "awaiting": "Awaiting reply"}
    # The admin team's: staff messages held for approval (send_later.held_for), not threads.
    APPROVAL_LABEL = "Awaiting approval"


@dataclass(frozen=True, slots=True)
class Filters:
    show: str
    search: str
    # The choices this viewer has: feed filters only for those who see more than one feed.
    choices: tuple[tuple[str, str], ...]

    @classmethod
    def from_args(cls, args, feeds: list[Feed], approvals: bool = False) -> "Filters":
        choices = tuple(Show.LABELS.items())
        if approvals:
            choices += ((Show.APPROVAL, Show.APPROVAL_LABEL),)
        if len(feeds) > 1:
            choices += tuple((feed.value, feed.label) for feed in feeds)
        show = args.get("show", Show.ALL)
        if show not in dict(choices):
            show = Show.ALL
        return cls(show, args.get("q", "").strip()[:100], choices)

    @property
    def mixed_feeds(self) -> bool:
        """Whether rows need to say which feed they are: only when there is a choice."""
        feeds = {feed.value for feed in Feed}
        return any(value in feeds for value, _ in self.choices)


@dataclass(frozen=True, slots=True)
class Thread:
    """One feed as a row of the list, formatted once in Python: the template only places the
    parts (a page prints twenty-five of them)."""

    css_class: str  # "thread has-unread is-private"
    url: str
    client_name: str
    feed_label: str | None  # only where the list mixes feeds
    iso_time: str
    exact_time: str
    relative_time: str
    author: str
    excerpt: str
    unread_badge: Markup
    waiting: str | None  # "3 h" while the client waits for an answer


@dataclass(frozen=True, slots=True)
class CenterPage:
    threads: list[Thread]
    # The keyset for "More": the last message id of the last thread shown, or None at the end.
    next_before: int | None
    # The navigation's unread total, when asked for and the page has a row to carry it.
    unread_total: int | None = None
    # With it, for the admin team, how many messages await their approval.
    held_total: int | None = None


_author = aliased(User)


def load(viewer: User, filters: Filters, *, before: int | None, limit: int,
         with_total: bool = False) -> CenterPage:
    """A page of threads; `with_total` also counts the navigation's unread total in the same
    statement (for the whole page, which shows the navigation)."""
    read = _read(policy.viewer_shape(viewer), filters.show, before is not None, limit,
                 with_total)
    parameters = {**policy.viewer_parameters(viewer), "before": before}
    if filters.search:
        # Added to the built statement: autoescape takes the text itself, not a parameter.
        statement = read.statement.where(Client.name.icontains(filters.search, autoescape=True))
        plan_for_values()
        rows = db.session.execute(statement, parameters).all()
    else:
        rows = read.rows(parameters)
    more = len(rows) > limit
    rows = rows[:limit]
    present = _Presenter(viewer, filters.mixed_feeds)
    carries_totals = with_total and rows
    return CenterPage([present(row) for row in rows], rows[-1].last_message_id if more else None,
                      rows[0].unread_total if carries_totals else None,
                      rows[0].held if carries_totals and "held" in rows[0]._fields else None)


@lru_cache(maxsize=256)
def _read(shape: policy.ViewerShape, show: str, paged: bool, limit: int,
          with_total: bool) -> DriverRead:
    """The list's statement for a kind of viewer and filter, built once; who the viewer is
    and the keyset are bound at execution."""
    return DriverRead(_statement(shape, show, paged, limit, with_total))


def _statement(shape: policy.ViewerShape, show: str, paged: bool, limit: int, with_total: bool):
    marker = func.coalesce(ReadMarker.last_read_id, 0)
    query = (
        select(
            FeedSummary.client_id,
            Client.name.label("client_name"),
            FeedSummary.feed,
            FeedSummary.last_message_id,
            FeedSummary.last_message_at,
            FeedSummary.last_author_id,
            FeedSummary.awaiting_reply_since,
            _author.name.label("author_name"),
            func.substr(Message.text, 1, EXCERPT_LENGTH * 2).label("text"),
            unread.count_column(
                shape, FeedSummary.client_id, FeedSummary.feed, marker=marker,
                correlate=(FeedSummary, ReadMarker),
            ).label("unread"),
        )
        .join(Client, Client.id == FeedSummary.client_id)
        .join(Message, Message.id == FeedSummary.last_message_id)
        .join(_author, _author.id == FeedSummary.last_author_id)
        .outerjoin(ReadMarker, and_(
            ReadMarker.user_id == shape.id, ReadMarker.client_id == FeedSummary.client_id,
            ReadMarker.feed == FeedSummary.feed,
        ))
        .where(policy.visible_feeds_clause(
            shape, FeedSummary.business_id, FeedSummary.client_id, FeedSummary.feed
        ))
    )
    if show == Show.UNREAD:
        news = unread.unread_rows(shape, FeedSummary.client_id, FeedSummary.feed, marker)
        query = query.where(
            FeedSummary.last_message_id > marker,
            exists(news.correlate(FeedSummary, ReadMarker)),
        )
    elif show == Show.AWAITING:
        query = query.where(FeedSummary.awaiting_reply_since.is_not(None))
    elif show in (Feed.CONVERSATION, Feed.PRIVATE):
        query = query.where(FeedSummary.feed == Feed(show))
    if paged:
        query = query.where(FeedSummary.last_message_id < bindparam("before"))
    if with_total:  # not correlated: the database counts it once, not per row
        query = query.add_columns(unread.total_column(shape).label("unread_total"),
                                  *unread.held_columns(shape))
    return query.order_by(FeedSummary.last_message_id.desc()).limit(limit + 1)


def excerpt(text: str | None) -> str:
    words = " ".join((text or "").split())
    if len(words) <= EXCERPT_LENGTH:
        return words
    return words[:EXCERPT_LENGTH].rsplit(" ", 1)[0].rstrip(".,;:") + "…"


class _Presenter:
    """Formats rows for one viewer: their clock and the shape of links, worked out once."""

    def __init__(self, viewer: User, mixed_feeds: bool):
        self.viewer_id = viewer.id
        self.clock = ViewerClock(viewer.time_zone, utcnow())
        self.links = {
            feed: url_pattern("feeds.show", client_id=0, feed_name=feed.value) for feed in Feed
        }
        self.mixed_feeds = mixed_feeds

    def __call__(self, row) -> Thread:
        exact, relative = self.clock.exact_and_relative(row.last_message_at)
        waiting = row.awaiting_reply_since
        feed = row.feed
        return Thread(
            css_class=_css_class(bool(row.unread), feed == Feed.PRIVATE),
            url=self.links[feed](row.client_id),
            client_name=row.client_name,
            feed_label=feed.label if self.mixed_feeds else None,
            iso_time=row.last_message_at.isoformat(),
            exact_time=exact,
            relative_time=relative,
            author="You" if row.last_author_id == self.viewer_id else row.author_name,
            excerpt=excerpt(row.text) or "sent a file",
            unread_badge=_badge(row.unread),
            waiting=elapsed(waiting, self.clock.now) if waiting else None,
        )


@lru_cache(maxsize=4)
def _css_class(has_unread: bool, is_private: bool) -> str:
    return "thread" + (" has-unread" if has_unread else "") + (" is-private" if is_private else "")


# The few badges a page shows, made once: counts stop at unread.CAP.
_badge = lru_cache(maxsize=unread.CAP + 1)(unread.badge)
