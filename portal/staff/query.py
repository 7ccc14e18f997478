"""A staff member's clients as cards: one Core query for a page of them, one for their pets.

Paged by keyset on (name, id), so the hundredth page costs what the first does.
"""

from dataclasses import dataclass

from flask import url_for
from sqlalchemy import bindparam, literal, select, tuple_

from portal import policy, unread
from portal.extensions import db
from portal.models import Client, Pet, User


@dataclass(frozen=True, slots=True)
class ClientCard:
    id: int
    name: str
    address: str | None
    pets: str  # "Biscuit (Dog), Luna (Cat)"
    unread: int
    url: str


@dataclass(frozen=True, slots=True)
class ClientPage:
    cards: list[ClientCard]
    # The keyset of "More clients": the last card's (name, id), or None at the end.
    next_after: tuple[str, int] | None


_PETS = (
    select(Pet.client_id, Pet.name, Pet.species)
    .where(Pet.client_id.in_(bindparam("client_ids", expanding=True)))
    .order_by(Pet.client_id, Pet.name)
)


def load(viewer: User, *, after: tuple[str, int] | None, limit: int) -> ClientPage:
    # Unread counts as a column of the one query, over the feeds the policy lets staff see.
    unread_count = sum(
        (unread.count_column(viewer, Client.id, feed, correlate=(Client,))
         for feed in policy.feeds_in_lists(viewer)),
        literal(0),
    )
    query = policy.clients_visible_to(viewer).with_only_columns(
        Client.id, Client.name, Client.address, unread_count.label("unread")
    )
    if after is not None:
        query = query.where(tuple_(Client.name, Client.id) > tuple_(*after))
    rows = db.session.execute(query.order_by(Client.name, Client.id).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    pets = _pets([row.id for row in rows])
    cards = [
        ClientCard(row.id, row.name, row.address, pets.get(row.id, ""), row.unread,
                   url_for("clients.profile", client_id=row.id))
        for row in rows
    ]
    return ClientPage(cards, (rows[-1].name, rows[-1].id) if more else None)


def _pets(client_ids: list[int]) -> dict[int, str]:
    found: dict[int, list[str]] = {}
    if client_ids:
        for row in db.session.execute(_PETS, {"client_ids": client_ids}):
            found.setdefault(row.client_id, []).append(f"{row.name} ({row.species})")
    return {client_id: ", ".join(names) for client_id, names in found.items()}
