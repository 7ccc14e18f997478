"""A row's own file (a pet's photo, the business's logo), replaced with the row: the new file is
saved first and removed again if the change fails; the old one is deleted only once the change
is committed."""

from collections.abc import Iterator
from contextlib import contextmanager

from portal.extensions import db
from portal.storage import forget, storage


class FileSwap:
    """What a change did to the row's file: save() a new one, or remove() it."""

    def __init__(self, old_key: str | None):
        self.old_key, self.new_key, self.dropped = old_key, None, False

    def save(self, data: bytes) -> str:
        self.new_key = storage().save(data)
        self.dropped = True
        return self.new_key

    def remove(self) -> None:
        self.dropped = True


@contextmanager
def replacing(old_key: str | None) -> Iterator[FileSwap]:
    """Around a change that commits: if anything in it fails, the session is rolled back and a
    file saved in it deleted; once it went through, the file it replaced or removed is."""
    swap = FileSwap(old_key)
    try:
        yield swap
    except BaseException:
        db.session.rollback()
        if swap.new_key:
            forget(swap.new_key)
        raise
    if swap.dropped and old_key:
        forget(old_key)
