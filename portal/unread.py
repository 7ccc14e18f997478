"""Unread counts: messages above the person's read marker, not deleted, not their own.

Counts stop at CAP and show as "99+": every count is a COUNT over a subquery with LIMIT CAP, so
a feed nobody has opened for years costs no more than one with a hundred new messages. Lists
get their counts as columns of their one query; nothing here loops over clients.
"""

from dataclasses import dataclass
from functools import lru_cache

from flask import g
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import (
    ColumnElement,
    and_,
    bindparam,
    exists,
    func,
    literal,
    not_,
    select,
    true,
)

from portal import policy
from portal.driver_reads import DriverRead
from portal.extensions import db
from portal.models import Client, Feed, FeedSummary, Message, ReadMarker, User

CAP = 100


def label(count: int) -> str:
    return "99+" if count >= CAP else str(count)


def badge(count: int | None) -> Markup:
    """The badge beside a tab, a link or a row; screen readers hear "3 unread"."""
    if not count:
        return Markup("")
    return Markup(
        '<span class="unread-badge"><span class="visually-hidden">, </span>{}'
        '<span class="visually-hidden"> unread</span></span>'
    ).format(label(count))


def marker_of(viewer: User, client_id, feed, correlate=()) -> ColumnElement[int]:
    """SQL: how far the viewer has read the feed; 0 before they ever opened it."""
    marker = select(ReadMarker.last_read_id).where(
        ReadMarker.user_id == viewer.id, ReadMarker.client_id == client_id,
        ReadMarker.feed == feed,
    )
    if correlate:
        marker = marker.correlate(*correlate)
    return func.coalesce(marker.scalar_subquery(), 0)


def unread_rows(viewer: User, client_id, feed, marker):
    """SQL: the unread messages of one feed above the given marker (a value or a column)."""
    return select(literal(1)).where(
        Message.client_id == client_id, Message.feed == feed, Message.id > marker,
        Message.deleted_at.is_(None), Message.author_id != viewer.id,
    )


def count_column(
    viewer: User, client_id, feed, *, marker=None, correlate=()
) -> ColumnElement[int]:
    """SQL: the capped unread count of one feed, as a column. client_id, feed and marker may
    be columns of the enclosing query, whose tables are then named in `correlate`."""
    if marker is None:
        marker = marker_of(viewer, client_id, feed, correlate)
    rows = unread_rows(viewer, client_id, feed, marker).limit(CAP)
    if correlate:
        rows = rows.correlate(*correlate)
    return select(func.count()).select_from(rows.subquery()).scalar_subquery()


def total_column(viewer: User, read: tuple[int, Feed, int] | None = None) -> ColumnElement[int]:
    """SQL: the capped number of unread messages in every feed the policy lets the viewer see.

    Driven by the feed summaries: only feeds with something above the viewer's marker are
    looked into. `read` = (client_id, feed, up_to_id) counts that feed as read up to that id,
    for the page that is about to mark it so.
    """
    # Looked up for each feed summary read (a correlated subquery), never joined: a join let
    # PostgreSQL hash every marker the viewer has, thousands for an admin, on every page.
    marker = marker_of(viewer, FeedSummary.client_id, FeedSummary.feed, (FeedSummary,))
    rows = (
        select(literal(1))
        .select_from(FeedSummary)
        .join(Message, and_(
            Message.client_id == FeedSummary.client_id, Message.feed == FeedSummary.feed,
            Message.id > marker,
        ))
        .where(
            policy.visible_feeds_clause(
                viewer, FeedSummary.business_id, FeedSummary.client_id, FeedSummary.feed
            ),
            FeedSummary.last_message_id > marker,
            Message.deleted_at.is_(None),
            Message.author_id != viewer.id,
        )
    )
    if read is not None:
        client_id, feed, up_to_id = read
        rows = rows.where(not_(and_(
            Message.client_id == client_id, Message.feed == feed, Message.id <= up_to_id
        )))
    return select(func.count()).select_from(rows.limit(CAP).subquery()).scalar_subquery()


def held_columns(shape: policy.ViewerShape) -> list[ColumnElement[int]]:
    """SQL, for the admin team's navigation: how many messages await their approval (capped),
    as a column labelled "held"; no column for anyone else."""
    if not policy.sees_held_messages(shape):
        return []
    rows = select(literal(1)).where(policy.held_messages_clause(shape)).limit(CAP)
    return [select(func.count()).select_from(rows.subquery()).scalar_subquery().label("held")]


def keep_held(row) -> None:
    """Keeps the navigation's count of messages awaiting approval from a row that has it."""
    if "held" in row._fields:
        g.held_total = row.held


@lru_cache(maxsize=64)
def _total_statement(shape: policy.ViewerShape) -> DriverRead:
    return DriverRead(select(total_column(shape).label("total"), *held_columns(shape)))


def total(viewer: User) -> int:
    """The navigation badge: one query, prepared once per kind of viewer (for the admin team
    it counts what awaits their approval too)."""
    statement = _total_statement(policy.viewer_shape(viewer))
    row = statement.rows(policy.viewer_parameters(viewer))[0]
    keep_held(row)
    return row.total


def nav_total() -> int | None:
    """For the navigation, once per request; a feed page has counted it already."""
    if "unread_total" not in g:
        g.unread_total = total(current_user)
    return g.unread_total


def nav_held() -> int:
    """The admin team's count of messages awaiting approval, once per request (counted with
    the unread total where a page counted that)."""
    if not policy.sees_held_messages(current_user):
        return 0
    if "held_total" not in g:
        g.held_total = db.session.scalar(
            select(*held_columns(policy.viewer_shape(current_user))),
            policy.viewer_parameters(current_user))
    return g.held_total


def held_badge(count: int) -> Markup:
    """Beside Messages: "2 awaiting approval" to a screen reader."""
    if not count:
        return Markup("")
    return Markup(
        '<span class="held-badge" title="Awaiting approval"><span class="visually-hidden">, '
        '</span>{}<span class="visually-hidden"> awaiting approval</span></span>'
    ).format(label(count))


@dataclass(frozen=True, slots=True)
class OpenedFeed:
    """What opening a feed tells the page: counts for its tabs and the navigation, and whether
    the opened feed had unread messages, so that a reload with nothing new writes nothing."""

    unread: dict[Feed, int]
    total: int
    needs_marking: bool
    # The client's staff roster (policy.staff_roster), when asked for.
    roster: list[policy.StaffMember] | None = None


def open_feed(viewer: User, client: Client, feed: Feed | None, feeds: list[Feed],
              newest_id: int | None, *, with_roster: bool = False) -> OpenedFeed:
    """One query: the other tabs' counts, the navigation total as it is once the open feed is
    read up to newest_id, and whether that feed had anything unread up to there; and the
    client's staff roster too `with_roster` (a row per staff member, the counts on each)."""
    others = feeds if newest_id is None else [tab for tab in feeds if tab != feed]
    statement = _open_feed_statement(
        policy.viewer_shape(viewer), tuple(others), feed if newest_id is not None else None,
        with_roster,
    )
    parameters = {**policy.viewer_parameters(viewer), "client_id": client.id,
                  "newest_id": newest_id}
    if with_roster:
        parameters |= policy.roster_parameters(client, viewer.business)
    rows = statement.rows(parameters)
    counts = rows[0]._asdict()
    keep_held(rows[0])
    unread = {tab: counts[tab.value] if tab in others else 0 for tab in feeds}
    roster = policy.roster_of(rows) if with_roster else None
    return OpenedFeed(unread, counts["total"], bool(counts.get("news")), roster)


@lru_cache(maxsize=256)
def _open_feed_statement(shape: policy.ViewerShape, others: tuple[Feed, ...],
                         opened: Feed | None, with_roster: bool = False) -> DriverRead:
    """open_feed's statement for a kind of viewer and set of tabs; `opened` is the feed being
    read up to :newest_id, if any. The client and ids are bound at execution."""
    client_id, newest_id = bindparam("client_id"), bindparam("newest_id")
    columns = [count_column(shape, client_id, tab).label(tab.value) for tab in others]
    if opened is not None:
        news = unread_rows(shape, client_id, opened, marker_of(shape, client_id, opened))
        columns.append(exists(news.where(Message.id <= newest_id)).label("news"))
        columns.append(total_column(shape, (client_id, opened, newest_id)).label("total"))
    else:
        columns.append(total_column(shape).label("total"))
    columns += held_columns(shape)
    if not with_roster:
        return DriverRead(select(*columns))
    # The counts' one row joined to every staff member (to a row of nulls when there is
    # nobody): one round trip instead of two. Their subqueries name no outer column, so the
    # database counts once, not once per staff member.
    counts = select(*columns).subquery("counts")
    roster = policy.roster_subquery()
    return DriverRead(
        select(counts, roster)
        .select_from(counts.outerjoin(roster, true()))
        .order_by(roster.c.name)
    )
