"""A staff member's clients as cards: one Core query for a page of them with their pets.

Paged by keyset on (name, id), so the hundredth page costs what the first does.
"""

from dataclasses import dataclass
from functools import lru_cache

from markupsafe import Markup
from sqlalchemy import String, bindparam, literal, select, tuple_
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import GenericFunction

from portal import clock, policy, unread
from portal.driver_reads import DriverRead
from portal.models import Client, Pet, User, utcnow
from portal.models.types import UTCDateTime
from portal.staff import visits
from portal.urls import url_pattern


@dataclass(frozen=True, slots=True)
class ClientCard:
    """One client as a card, formatted once in Python: the template only places the parts."""

    id: int
    name: str
    address: str | None
    pets: str  # "Biscuit (Dog), Luna (Cat)"
    unread_badge: Markup
    url: str
    # When the staff member's next visit with the client (or the one under way) happens.
    next_visit: str | None = None


@dataclass(frozen=True, slots=True)
class ClientPage:
    cards: list[ClientCard]
    # The keyset of "More clients": the last card's (name, id), or None at the end.
    next_after: tuple[str, int] | None
    # The navigation's unread total, when asked for and the page has a card to carry it.
    unread_total: int | None = None


class _ordered_join(GenericFunction):
    """SQL aggregate: texts joined by a separator in the order of a key. PostgreSQL orders
    inside string_agg; SQLite's group_concat (before 3.44) takes rows in the order its
    subquery gives them, so the texts come from a subquery ordered by the same key."""

    type = String()
    inherit_cache = True


@compiles(_ordered_join)
def _group_concat(element, compiler, **kw):
    text, _key, separator = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"group_concat({text}, {separator})"


@compiles(_ordered_join, "postgresql")
def _string_agg(element, compiler, **kw):
    text, key, separator = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"string_agg({text}, {separator} ORDER BY {key})"


def _pets_column(client_id):
    """SQL: a client's pets as one text, "Biscuit (Dog), Luna (Cat)", by name."""
    pets = (
        select((Pet.name + " (" + Pet.species + ")").label("text"), Pet.name)
        .where(Pet.client_id == client_id, Pet.archived_at.is_(None))
        .order_by(Pet.name)
        .correlate_except(Pet)
        .subquery()
    )
    return select(_ordered_join(pets.c.text, pets.c.name, literal(", "))).scalar_subquery()


def load(viewer: User, *, after: tuple[str, int] | None, limit: int,
         with_total: bool = False) -> ClientPage:
    """A page of cards; `with_total` also counts the navigation's unread total in the same
    statement (for the whole page, which shows the navigation)."""
    statement = _page_statement(policy.viewer_shape(viewer), after is not None, limit,
                                with_total)
    parameters = {**policy.viewer_parameters(viewer), "now": utcnow()}
    if after is not None:
        parameters.update(after_name=after[0], after_id=after[1])
    rows = statement.rows(parameters)
    more = len(rows) > limit
    rows = rows[:limit]
    profile_url = url_pattern("clients.profile", client_id=0)
    zones = (viewer.business.time_zone, viewer.time_zone)
    cards = [
        ClientCard(row.id, row.name, row.address, row.pets or "", _badge(row.unread),
                   profile_url(row.id),
                   clock.visit_span(row.next_starts_at, row.next_ends_at, *zones)
                   if row.next_starts_at else None)
        for row in rows
    ]
    return ClientPage(cards, (rows[-1].name, rows[-1].id) if more else None,
                      rows[0].unread_total if with_total and rows else None)


@lru_cache(maxsize=64)
def _page_statement(shape: policy.ViewerShape, paged: bool, limit: int,
                    with_total: bool) -> DriverRead:
    """A page of the clients the policy shows this kind of viewer, built once: the page is
    chosen first, by the (business, name, id) index, and only its rows are counted. The
    counts read the page's own columns: the clients table is not read a second time."""
    page = policy.clients_visible_to(shape).with_only_columns(
        Client.id, Client.name, Client.address
    )
    if paged:
        page = page.where(
            tuple_(Client.name, Client.id) > tuple_(bindparam("after_name"), bindparam("after_id"))
        )
    page = page.order_by(Client.name, Client.id).limit(limit + 1).subquery("page")
    # Unread counts as a column, over the feeds the policy lets the viewer see.
    unread_count = sum(
        (unread.count_column(shape, page.c.id, feed, correlate=(page,))
         for feed in policy.feeds_in_lists(shape)),
        literal(0),
    )
    # The viewer's next visit with each client: its start and end, as two columns.
    next_visit = visits.next_visit_columns(shape.id, bindparam("now", type_=UTCDateTime()),
                                           client_id=page.c.id)
    statement = (
        select(page.c.id, page.c.name, page.c.address, _pets_column(page.c.id).label("pets"),
               unread_count.label("unread"), *next_visit)
        .order_by(page.c.name, page.c.id)
    )
    if with_total:  # not correlated: the database counts it once, not per row
        statement = statement.add_columns(unread.total_column(shape).label("unread_total"))
    return DriverRead(statement)


# The few badges a page shows, made once: counts stop at unread.CAP.
_badge = lru_cache(maxsize=unread.CAP + 1)(unread.badge)
