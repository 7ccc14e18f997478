"""Removes stored files no row points at: what a failure left between storing bytes and
committing their row, or between committing a deletion and removing its bytes (both remove
their files themselves when they can; this is for when they could not).

Only files stored more than a day ago are looked at: a file stored a moment ago may belong to
a change that has not committed yet.
"""

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import exists, func, or_, select, union_all

from portal.extensions import db
from portal.models import (
    Attachment,
    Business,
    InboundMessage,
    Pet,
    SavedReplyFile,
    ScheduledMessageFile,
    utcnow,
)
from portal.storage import storage

# Every column that holds a storage key (tests/test_object_storage.py finds them all).
STORED_KEY_COLUMNS = (
    Attachment.storage_key, Attachment.thumbnail_key,
    ScheduledMessageFile.storage_key, ScheduledMessageFile.thumbnail_key,
    SavedReplyFile.storage_key, SavedReplyFile.thumbnail_key,
    Pet.photo_key, Business.logo_key, InboundMessage.raw_key,
)
GRACE = timedelta(days=1)
BATCH = 500
# The advisory lock the workers' sweeps take turns on (PostgreSQL): one sweeps at a time.
SWEEP_TURN = 0x7377656570  # "sweep"


@dataclass
class Swept:
    looked_at: int = 0
    removed: int = 0

    def summary(self) -> str:
        return (f"Looked at {self.looked_at} stored files older than a day; removed "
                f"{self.removed} that nothing refers to.")


class SweepRefused(Exception):
    """What the sweep found looks like another database's store: nothing was removed."""


# A store where most files belong to no row is not this database's (a staging DATABASE_URL
# beside the production STORAGE_URL): the sweep stops rather than empty it.
MOST_ORPHANED = 0.5
ENOUGH_TO_JUDGE = 50


def sweep(now: datetime | None = None, grace: timedelta = GRACE,
          stop: threading.Event | None = None) -> Swept:
    """Removes the old files no row holds, a batch at a time; stops between batches once
    `stop` is set. Raises SweepRefused, before removing anything more, when the store does
    not look like this database's."""
    swept = Swept()
    for keys in _batches(storage().stored_before((now or utcnow()) - grace), BATCH):
        held = referenced(keys)
        orphans = [key for key in keys if key not in held]
        db.session.commit()  # no snapshot held open while the store is listed and emptied
        looked_at, removing = swept.looked_at + len(keys), swept.removed + len(orphans)
        if orphans and (not _any_key_held() or (
                looked_at >= ENOUGH_TO_JUDGE and removing > looked_at * MOST_ORPHANED)):
            raise SweepRefused(
                f"{removing} of {looked_at} stored files looked at belong to no row: is "
                "DATABASE_URL the database of this STORAGE_URL? Nothing more was removed.")
        for key in orphans:
            storage().delete(key)
        swept.looked_at, swept.removed = looked_at, removing
        if stop is not None and stop.is_set():
            break
    return swept


def _any_key_held() -> bool:
    return bool(db.session.scalar(select(or_(*(
        exists().where(column.is_not(None)) for column in STORED_KEY_COLUMNS)))))


def sweep_unless_running(stop: threading.Event | None = None) -> Swept | None:
    """A sweep, unless another worker's is under way (then None). The lock is a session lock
    on a connection of its own, outside any transaction (nothing idles in one meanwhile): the
    sweep's own queries commit as they go."""
    if db.engine.dialect.name != "postgresql":
        return sweep(stop=stop)
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as turn:
        if not turn.scalar(select(func.pg_try_advisory_lock(SWEEP_TURN))):
            return None
        try:
            return sweep(stop=stop)
        finally:
            turn.scalar(select(func.pg_advisory_unlock(SWEEP_TURN)))


def referenced(keys: list[str]) -> set[str]:
    """Those of `keys` some row holds: one query."""
    return set(db.session.scalars(union_all(*(
        select(column.label("key")).where(column.in_(keys)) for column in STORED_KEY_COLUMNS
    ))))


def _batches(items: Iterable[str], size: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
