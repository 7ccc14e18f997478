"""Removes stored files no row points at: what a failure left between storing bytes and
committing their row, or between committing a deletion and removing its bytes (both remove
their files themselves when they can; this is for when they could not).

Only files stored more than a day ago are looked at: a file stored a moment ago may belong to
a change that has not committed yet.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, union_all

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


def sweep(now: datetime | None = None, grace: timedelta = GRACE) -> Swept:
    swept = Swept()
    for keys in _batches(storage().stored_before((now or utcnow()) - grace), BATCH):
        swept.looked_at += len(keys)
        kept = referenced(keys)
        db.session.commit()  # no snapshot held open while the store is listed and emptied
        for key in keys:
            if key not in kept:
                storage().delete(key)
                swept.removed += 1
    return swept


def sweep_unless_running() -> Swept | None:
    """A sweep, unless another worker's is under way (then None). The lock is held on a
    connection of its own: the sweep's own queries commit as they go."""
    if db.engine.dialect.name != "postgresql":
        return sweep()
    with db.engine.connect() as turn:
        if not turn.scalar(select(func.pg_try_advisory_lock(SWEEP_TURN))):
            return None
        try:
            return sweep()
        finally:
            turn.scalar(select(func.pg_advisory_unlock(SWEEP_TURN)))
            turn.commit()


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
