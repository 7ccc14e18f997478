"""A staff member's clients as cards: one Core query for a page of them, one for their pets.

Paged by keyset on (name, id), so the hundredth page costs what the first does.
"""

from dataclasses import dataclass
from functools import lru_cache

from markupsafe import Markup
from sqlalchemy import bindparam, literal, select, tuple_

from portal import clock, policy, unread
from portal.extensions import db
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


_PETS = (
    select(Pet.client_id, Pet.name, Pet.species)
    .where(Pet.client_id.in_(bindparam("client_ids", expanding=True)), Pet.archived_at.is_(None))
    .order_by(Pet.client_id, Pet.name)
)


def load(viewer: User, *, after: tuple[str, int] | None, limit: int) -> ClientPage:
    statement = _page_statement(policy.viewer_shape(viewer), after is not None, limit)
    parameters = {**policy.viewer_parameters(viewer), "now": utcnow()}
    if after is not None:
        parameters.update(after_name=after[0], after_id=after[1])
    rows = db.session.execute(statement, parameters).all()
    more = len(rows) > limit
    rows = rows[:limit]
    pets = _pets([row.id for row in rows])
    profile_url = url_pattern("clients.profile", client_id=0)
    zones = (viewer.business.time_zone, viewer.time_zone)
    cards = [
        ClientCard(row.id, row.name, row.address, pets.get(row.id, ""), _badge(row.unread),
                   profile_url(row.id),
                   clock.visit_span(row.next_starts_at, row.next_ends_at, *zones)
                   if row.next_starts_at else None)
        for row in rows
    ]
    return ClientPage(cards, (rows[-1].name, rows[-1].id) if more else None)


@lru_cache(maxsize=64)
def _page_statement(shape: policy.ViewerShape, paged: bool, limit: int):
    """A page of the clients the policy shows this kind of viewer, built once: the page is
    chosen first, by the (business, name, id) index, and only its rows are counted."""
    page = policy.clients_visible_to(shape).with_only_columns(Client.id)
    if paged:
        page = page.where(
            tuple_(Client.name, Client.id) > tuple_(bindparam("after_name"), bindparam("after_id"))
        )
    page = page.order_by(Client.name, Client.id).limit(limit + 1)
    # Unread counts as a column, over the feeds the policy lets the viewer see.
    unread_count = sum(
        (unread.count_column(shape, Client.id, feed, correlate=(Client,))
         for feed in policy.feeds_in_lists(shape)),
        literal(0),
    )
    # The viewer's next visit with each client: its start and end, as two columns.
    next_visit = visits.next_visit_columns(shape.id, bindparam("now", type_=UTCDateTime()),
                                           client_id=Client.id)
    return (
        select(Client.id, Client.name, Client.address, unread_count.label("unread"),
               *next_visit)
        .where(Client.id.in_(page))
        .order_by(Client.name, Client.id)
    )


# The few badges a page shows, made once: counts stop at unread.CAP.
_badge = lru_cache(maxsize=unread.CAP + 1)(unread.badge)


def _pets(client_ids: list[int]) -> dict[int, str]:
    found: dict[int, list[str]] = {}
    if client_ids:
        for row in db.session.execute(_PETS, {"client_ids": client_ids}):
            found.setdefault(row.client_id, []).append(f"{row.name} ({row.species})")
    return {client_id: ", ".join(names) for client_id, names in found.items()}
