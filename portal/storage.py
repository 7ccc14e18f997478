"""Where attachment bytes live. Routes and services use this interface only, so an
S3-compatible backend can replace the local disk without touching them."""

import os
import re
import secrets
from pathlib import Path
from typing import Protocol

from flask import Flask, current_app

_KEY = re.compile(r"[0-9a-f]{40}")


class Storage(Protocol):
    def save(self, data: bytes) -> str:
        """Stores the bytes under a new random key and returns the key."""

    def read(self, key: str) -> bytes: ...

    def path(self, key: str) -> Path | None:
        """A local path for efficient sending, where the backend has one."""

    def delete(self, key: str) -> None:
        """Removes the bytes; a missing key is not an error."""


class LocalStorage:
    """Files under a folder outside static/, fanned out by key prefix."""

    def __init__(self, root: Path):
        self.root = root

    def _file(self, key: str) -> Path:
        if not _KEY.fullmatch(key):
            raise ValueError("not a storage key")
        return self.root / key[:2] / key

    def save(self, data: bytes) -> str:
        key = secrets.token_hex(20)
        target = self._file(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".part")
        partial.write_bytes(data)
        os.replace(partial, target)
        return key

    def read(self, key: str) -> bytes:
        return self._file(key).read_bytes()

    def path(self, key: str) -> Path | None:
        return self._file(key)

    def delete(self, key: str) -> None:
        self._file(key).unlink(missing_ok=True)

    def keys(self) -> list[str]:
        return sorted(path.name for path in self.root.glob("*/*") if path.suffix != ".part")


def init_app(app: Flask) -> None:
    root = Path(app.config.get("UPLOAD_FOLDER") or Path(app.instance_path) / "uploads")
    app.extensions["storage"] = LocalStorage(root)


def storage() -> Storage:
    return current_app.extensions["storage"]
