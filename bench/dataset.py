"""A realistic business for the benchmarks, built from scratch with bulk inserts.

One business, 5,000 clients (one login each), 40 staff, 2,000,000 messages spread unevenly
(three clients with 50,000+, one with 20, most with a few hundred), a tenth of them in Private
feeds, 5% with an attachment, 1% deleted; scheduled services and preferred sitters around today;
feed summaries and read markers as the app keeps them. The same seed gives the same data.

Messages and attachments go in through the driver (executemany on SQLite, COPY on PostgreSQL);
the few thousand people, clients and services through SQLAlchemy's bulk insert, which applies
the models' defaults.
"""

import random
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, text
from werkzeug.security import generate_password_hash

from portal.extensions import db
from portal.models import (
    Business,
    Client,
    Feed,
    Pet,
    PreferredSitter,
    Role,
    ScheduledService,
    ServiceStatus,
    User,
)

PASSWORD = "bench-only-passphrase"
ADMIN_EMAIL = "admin@bench.example"
STAFF_EMAIL = "staff1@bench.example"
CLIENT_EMAIL_PATTERN = "client{}@bench.example"
PET_NAMES = ["Biscuit", "Luna", "Max", "Bella", "Charlie", "Daisy", "Milo", "Rosie", "Otis"]
MESSAGE_COLUMNS = ["id", "business_id", "client_id", "feed", "author_id", "text", "created_at",
                   "deleted_at", "deleted_by_id"]
BATCH = 100_000
WORDS = ["walked", "fed", "litter", "gate", "key", "leash", "happy", "treats", "vet", "water",
         "nap", "park", "rain", "home", "door", "thanks", "tomorrow", "morning", "evening",
         "pickup", "dropoff", "medication", "brushed", "played"]


@dataclass(frozen=True)
class Scale:
    clients: int = 5000
    staff: int = 40
    messages: int = 2_000_000
    heavy_clients: int = 3  # each with heavy_messages or a few more
    heavy_messages: int = 56_000  # a tenth goes to Private: 50,000+ in Conversation


FULL = Scale()
TINY = Scale(clients=60, staff=4, messages=6_000, heavy_clients=1, heavy_messages=1_500)


@dataclass(frozen=True)
class Dataset:
    """What the benchmark cases need to know about the data it built."""

    scale: Scale
    big_client_id: int  # the first heavy client
    small_client_id: int  # exactly 20 Conversation messages
    typical_client_id: int
    post_client_id: int  # where the posting case writes, away from the others
    deep_before_id: int  # a message id 80% of the way back in the big client's feed
    big_conversation_messages: int


def build(scale: Scale = FULL, seed: int = 7) -> Dataset:
    """Fills the (migrated, empty) database of the current app context."""
    rng = random.Random(seed)
    password_hash = generate_password_hash(PASSWORD, method="scrypt")
    business_id = _insert_business()
    team, staff_ids = _insert_team(business_id, scale, password_hash)
    client_ids = _insert_clients(business_id, scale, rng)
    client_logins = _insert_client_logins(business_id, client_ids, password_hash)
    _insert_services(business_id, client_ids, staff_ids, rng)
    counts = _message_counts(client_ids, scale, rng)
    authors = _Authors(team + staff_ids, client_logins, rng)
    summaries = _insert_messages(business_id, client_ids, counts, authors, rng)
    _insert_feed_summaries(business_id, summaries)
    _insert_read_markers(business_id, team[0], staff_ids[0], summaries, rng)
    _finish()
    return describe(scale)


def describe(scale: Scale = FULL) -> Dataset:
    """The clients and messages the cases use, read back from a database build() filled."""
    client_ids = list(db.session.scalars(text("SELECT id FROM clients ORDER BY id")))
    big = client_ids[0]
    conversation = _feed_ids(big, Feed.CONVERSATION)
    return Dataset(
        scale=scale,
        big_client_id=big,
        small_client_id=client_ids[scale.heavy_clients],
        typical_client_id=client_ids[len(client_ids) // 2],
        post_client_id=client_ids[-1],
        deep_before_id=conversation[len(conversation) // 5],
        big_conversation_messages=len(conversation),
    )


def _insert_business() -> int:
    business = Business(
        name="Bench Pet Care", time_zone="America/Chicago", private_messaging_enabled=True
    )
    db.session.add(business)
    db.session.commit()
    return business.id


def _person(business_id, role, email, name, password_hash, **extra) -> dict:
    return {"business_id": business_id, "role": role, "email": email, "name": name,
            "password_hash": password_hash, "time_zone": "America/Chicago", **extra}


def _insert_team(business_id: int, scale: Scale, password_hash: str):
    team = [
        _person(business_id, Role.ADMIN, ADMIN_EMAIL, "Ada Admin", password_hash),
        _person(business_id, Role.OFFICE_MANAGER, "office@bench.example", "Olive Office",
                password_hash, private_messages_access=True),
    ]
    staff = [
        _person(business_id, Role.STAFF, f"staff{n}@bench.example", f"Staff Member {n:02}",
                password_hash, phone="+1 312 555 0100")
        for n in range(1, scale.staff + 1)
    ]
    return _ids(User, team), _ids(User, staff)


def _ids(model, rows: list[dict]) -> list[int]:
    return list(db.session.scalars(insert(model).returning(model.id, sort_by_parameter_order=True),
                                   rows))


def _insert_clients(business_id: int, scale: Scale, rng: random.Random) -> list[int]:
    clients = [
        {"business_id": business_id, "name": f"Client {n:05} {rng.choice(PET_NAMES)}son",
         "email": CLIENT_EMAIL_PATTERN.format(n), "phone": "+1 312 555 0199",
         "address": f"{n} Bench Street"}
        for n in range(1, scale.clients + 1)
    ]
    client_ids = _ids(Client, clients)
    pets = [
        {"business_id": business_id, "client_id": client_id, "name": rng.choice(PET_NAMES),
         "species": rng.choice(["Dog", "Dog", "Cat"])}
        for client_id in client_ids for _ in range(rng.randint(1, 2))
    ]
    db.session.execute(insert(Pet), pets)
    return client_ids


def _insert_client_logins(business_id, client_ids, password_hash) -> list[int]:
    logins = [
        _person(business_id, Role.CLIENT, CLIENT_EMAIL_PATTERN.format(n), f"Client {n:05}",
                password_hash, client_id=client_id)
        for n, client_id in enumerate(client_ids, start=1)
    ]
    return _ids(User, logins)


def _insert_services(business_id, client_ids, staff_ids, rng) -> None:
    """Two services per client from a month ago to two weeks ahead, a third of clients with a
    preferred sitter: each staff member sees a hundred-odd clients, as a busy walker does."""
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    services, preferred = [], []
    for client_id in client_ids:
        for _ in range(2):
            starts = now + timedelta(hours=rng.randint(-30 * 24, 14 * 24))
            services.append({
                "business_id": business_id, "client_id": client_id,
                "staff_id": rng.choice(staff_ids), "title": "Dog walk", "starts_at": starts,
                "ends_at": starts + timedelta(minutes=30),
                "status": ServiceStatus.COMPLETED if starts < now else ServiceStatus.SCHEDULED,
            })
        if rng.random() < 0.3:
            preferred.append({"business_id": business_id, "client_id": client_id,
                              "staff_id": rng.choice(staff_ids)})
    db.session.execute(insert(ScheduledService), services)
    db.session.execute(insert(PreferredSitter), preferred)
    db.session.commit()


def _message_counts(client_ids, scale: Scale, rng: random.Random) -> dict[int, int]:
    """Heavy clients first, then one with 20 messages, the rest log-normal (most a few hundred,
    some thousands), summing to scale.messages."""
    heavy = {cid: scale.heavy_messages + n * 4_000
             for n, cid in enumerate(client_ids[:scale.heavy_clients])}
    small_id = client_ids[scale.heavy_clients]
    rest = client_ids[scale.heavy_clients + 1:]
    remaining = scale.messages - sum(heavy.values()) - 20
    weights = [rng.lognormvariate(0, 1) for _ in rest]
    factor = remaining / sum(weights)
    counts = {cid: max(1, int(weight * factor)) for cid, weight in zip(rest, weights, strict=True)}
    counts[rest[-1]] += remaining - sum(counts.values())
    return {**heavy, small_id: 20, **counts}


class _Authors:
    """Who wrote a message: the client's login a third of the time, else someone of the team."""

    def __init__(self, team_ids, client_logins, rng):
        self.team_ids, self.rng = team_ids, rng
        self.client_logins = client_logins

    def pick(self, client_index: int) -> tuple[int, bool]:
        if self.rng.random() < 0.35:
            return self.client_logins[client_index], True
        # Half of the business's messages come from the office (admin, office manager).
        team = self.team_ids[:2] if self.rng.random() < 0.5 else self.team_ids
        return self.rng.choice(team), False


def _insert_messages(business_id, client_ids, counts, authors, rng) -> dict:
    """All messages in time order over three years, clients interleaved; returns the feed
    summaries: (client_id, feed) -> (last id, its time, author, awaiting-reply-since)."""
    index_of = {cid: n for n, cid in enumerate(client_ids)}
    sequence = [cid for cid, count in counts.items() for _ in range(count)]
    rng.shuffle(sequence)
    start = datetime.now(UTC) - timedelta(days=3 * 365)
    step = timedelta(days=3 * 365) / max(len(sequence), 1)
    admin_id = authors.team_ids[0]
    small_id = next(cid for cid, count in counts.items() if count == 20)
    summaries: dict = {}
    messages, attachments = [], []
    for number, client_id in enumerate(sequence, start=1):
        if len(messages) == BATCH:
            _bulk("messages", MESSAGE_COLUMNS, messages)
            messages.clear()
        feed = Feed.PRIVATE if rng.random() < 0.1 and client_id != small_id else \
            Feed.CONVERSATION
        author_id, from_client = authors.pick(index_of[client_id])
        created_at = start + step * number
        deleted = rng.random() < 0.01
        body = None if deleted else " ".join(rng.choices(WORDS, k=rng.randint(4, 30))).capitalize()
        messages.append((number, business_id, client_id, feed.value, author_id, body,
                         created_at, created_at + timedelta(minutes=5) if deleted else None,
                         admin_id if deleted else None))
        if not deleted:
            if rng.random() < 0.05:
                attachments.append(_attachment(business_id, number, rng, created_at))
            _summarise(summaries, client_id, feed, number, created_at, author_id, from_client)
    _bulk("messages", MESSAGE_COLUMNS, messages)
    _bulk("attachments", ["id", "token", "business_id", "message_id", "position", "kind",
                          "original_name", "content_type", "size", "storage_key",
                          "thumbnail_key", "width", "height", "created_at"],
          [(n, *row) for n, row in enumerate(attachments, start=1)])
    return summaries


def _attachment(business_id, message_id, rng, created_at) -> tuple:
    key = f"{rng.getrandbits(160):040x}"
    if rng.random() < 0.7:
        return (f"b{message_id:046}", business_id, message_id, 0, "image", "IMG_2041.jpg",
                "image/jpeg", 180_000, key, f"{rng.getrandbits(160):040x}", 1600, 1200,
                created_at)
    return (f"b{message_id:046}", business_id, message_id, 0, "file", "vet-record.pdf",
            "application/pdf", 95_000, key, None, None, None, created_at)


def _summarise(summaries, client_id, feed, message_id, created_at, author_id, from_client):
    previous = summaries.get((client_id, feed))
    awaiting = None
    if from_client:
        awaiting = previous[3] if previous and previous[3] else created_at
    summaries[(client_id, feed)] = (message_id, created_at, author_id, awaiting)


def _insert_feed_summaries(business_id, summaries) -> None:
    _bulk("feed_summaries", ["client_id", "feed", "business_id", "last_message_id",
                             "last_message_at", "last_author_id", "awaiting_reply_since"],
          [(cid, feed.value, business_id, *summary)
           for (cid, feed), summary in summaries.items()])


def _insert_read_markers(business_id, admin_id, staff_id, summaries, rng) -> None:
    """The admin has read most feeds to the end and some partly; a staff member likewise."""
    markers = []
    for (client_id, feed), (last_id, *_rest) in summaries.items():
        for user_id in (admin_id, staff_id):
            if user_id == staff_id and feed == Feed.PRIVATE:
                continue
            if rng.random() < 0.9:
                read_to = last_id if rng.random() < 0.8 else max(1, last_id - rng.randint(1, 500))
                markers.append((user_id, client_id, feed.value, business_id, read_to))
    _bulk("read_markers", ["user_id", "client_id", "feed", "business_id", "last_read_id"],
          markers)


def _bulk(table: str, columns: list[str], rows: list[tuple]) -> None:
    """Straight through the driver: executemany on SQLite, COPY on PostgreSQL."""
    connection = db.session.connection()
    dialect = connection.dialect.name
    driver = connection.connection.driver_connection
    with closing(driver.cursor()) as cursor:
        if dialect == "sqlite":
            rows = [tuple(_sqlite_value(value) for value in row) for row in rows]
            marks = ", ".join("?" for _ in columns)
            cursor.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
                               rows)
        else:
            with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
    db.session.commit()


def _sqlite_value(value):
    # As SQLAlchemy's DateTime stores them on SQLite: naive UTC text.
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


def _feed_ids(client_id: int, feed: Feed) -> list[int]:
    return list(db.session.scalars(text(
        "SELECT id FROM messages WHERE client_id = :client AND feed = :feed ORDER BY id"
    ), {"client": client_id, "feed": feed.value}))


def _finish() -> None:
    """Sequences after explicit ids (PostgreSQL), and fresh planner statistics."""
    connection = db.session.connection()
    if connection.dialect.name == "postgresql":
        for table in ("messages", "attachments"):
            connection.execute(text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            ))
    db.session.commit()
    if connection.dialect.name == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as auto:
            auto.execute(text("VACUUM ANALYZE"))
    else:
        db.session.execute(text("ANALYZE"))
        db.session.commit()
