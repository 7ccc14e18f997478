"""Where file bytes live: a folder on this machine, or an S3-compatible bucket (AWS S3, MinIO,
Cloudflare R2, Backblaze B2) shared by every host. Routes and services use this interface only.

Files are written once under a new random key and never changed: a replaced photo is a new key,
so no host ever reads a half-written or stale file.
"""

import base64
import hashlib
import os
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import urlsplit

from flask import Flask, current_app

_KEY = re.compile(r"[0-9a-f]{40}")


class StorageUnavailable(OSError):
    """The store did not answer, or refused: nothing was written."""


@dataclass(frozen=True)
class StoredFile:
    """A stored file opened for sending: its bytes as a stream (the caller closes it)."""

    stream: BinaryIO
    size: int


class Storage(Protocol):
    def save(self, data: bytes) -> str:
        """Stores the bytes under a new random key and returns the key."""

    def read(self, key: str) -> bytes:
        """The bytes; FileNotFoundError when there are none."""

    def open(self, key: str) -> StoredFile:
        """The bytes as a stream, without reading them all first; FileNotFoundError too."""

    def delete(self, key: str) -> None:
        """Removes the bytes; a missing key is not an error."""

    def stored_before(self, moment: datetime) -> Iterator[str]:
        """The keys of files stored before `moment` (UTC), for the sweeper."""

    def checksum(self, key: str) -> str | None:
        """The SHA-256 recorded for the file, hex; None when there is no such file."""

    def put(self, key: str, data: bytes) -> None:
        """Stores bytes under a key given (copying from another store keeps keys)."""


def check_key(key: str) -> str:
    """Only keys the portal made reach a path or an object name."""
    if not _KEY.fullmatch(key):
        raise ValueError("not a storage key")
    return key


def new_key() -> str:
    return secrets.token_hex(20)


def _aware(moment: datetime) -> datetime:
    """The portal keeps UTC without a zone; the stores answer with one."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class LocalStorage:
    """Files under a folder outside static/, fanned out by key prefix. One host only: for
    several, use a bucket (STORAGE_URL)."""

    def __init__(self, root: Path):
        self.root = root

    def __str__(self) -> str:
        return f"the folder {self.root}"

    def _file(self, key: str) -> Path:
        return self.root / check_key(key)[:2] / key

    def save(self, data: bytes) -> str:
        key = new_key()
        self.put(key, data)
        return key

    def put(self, key: str, data: bytes) -> None:
        target = self._file(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(f".{secrets.token_hex(4)}.part")
        try:
            partial.write_bytes(data)
            os.replace(partial, target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise

    def read(self, key: str) -> bytes:
        return self._file(key).read_bytes()

    def open(self, key: str) -> StoredFile:
        stream = self._file(key).open("rb")
        return StoredFile(stream, os.fstat(stream.fileno()).st_size)

    def delete(self, key: str) -> None:
        self._file(key).unlink(missing_ok=True)

    def checksum(self, key: str) -> str | None:
        try:
            return sha256(self.read(key))
        except FileNotFoundError:
            return None

    def stored_before(self, moment: datetime) -> Iterator[str]:
        cutoff = _aware(moment).timestamp()
        for path in self.root.glob("*/*"):
            try:
                old = path.stat().st_mtime < cutoff
            except FileNotFoundError:
                continue  # removed meanwhile
            if _KEY.fullmatch(path.name) and old:
                yield path.name

    def keys(self) -> list[str]:
        return sorted(path.name for path in self.root.glob("*/*") if _KEY.fullmatch(path.name))


class S3Storage:
    """Objects in a bucket, named prefix/ab/abcdef…: the same layout as the folder, so that
    `flask --app wsgi storage copy` keeps every key. Each object carries the SHA-256 of its
    bytes, and the store checks each upload against its MD5 (Content-MD5): a file damaged on
    the way is refused, not kept."""

    def __init__(self, url: str, *, endpoint_url: str | None = None, region: str | None = None,
                 access_key_id: str | None = None, secret_access_key: str | None = None,
                 session_token: str | None = None, timeout_seconds: float = 5):
        import boto3
        from botocore.config import Config

        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise ValueError(f"STORAGE_URL must look like s3://bucket/prefix (it is {url!r})")
        self.bucket, self.prefix = parts.netloc, parts.path.strip("/")
        self.endpoint_url = endpoint_url
        self.client = boto3.session.Session().client(
            "s3", endpoint_url=endpoint_url, region_name=region,
            aws_access_key_id=access_key_id, aws_secret_access_key=secret_access_key,
            aws_session_token=session_token,
            config=Config(
                # A store that does not answer fails the request in seconds, well inside a
                # web worker's own timeout (gunicorn's 30 s): two tries of connect and read.
                connect_timeout=timeout_seconds, read_timeout=timeout_seconds * 2,
                retries={"mode": "standard", "max_attempts": 2},
                # MinIO, R2 and B2 are reached by path under their own endpoint.
                s3={"addressing_style": "path" if endpoint_url else "auto"},
                # The checksums newer SDKs add by default are not understood by every
                # S3-compatible store; Content-MD5 is, and is what we send.
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                # A web process serves many requests at once; so does the copy command.
                max_pool_connections=32,
            ),
        )

    def __str__(self) -> str:
        where = f" at {self.endpoint_url}" if self.endpoint_url else ""
        return f"the bucket s3://{self.bucket}/{self.prefix}{where}"

    def _name(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key[:2]}/{key}" if self.prefix else f"{key[:2]}/{key}"

    def save(self, data: bytes) -> str:
        key = new_key()
        self.put(key, data)
        return key

    def put(self, key: str, data: bytes) -> None:
        digest = base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()
        with self._errors():
            self.client.put_object(
                Bucket=self.bucket, Key=self._name(key), Body=data, ContentMD5=digest,
                ContentType="application/octet-stream", Metadata={"sha256": sha256(data)},
            )

    def read(self, key: str) -> bytes:
        stored = self.open(key)
        with stored.stream, self._errors():
            return stored.stream.read()

    def open(self, key: str) -> StoredFile:
        with self._errors():
            answer = self.client.get_object(Bucket=self.bucket, Key=self._name(key))
        return StoredFile(answer["Body"], answer["ContentLength"])

    def delete(self, key: str) -> None:
        with self._errors():
            self.client.delete_object(Bucket=self.bucket, Key=self._name(key))

    def checksum(self, key: str) -> str | None:
        try:
            with self._errors():
                head = self.client.head_object(Bucket=self.bucket, Key=self._name(key))
        except FileNotFoundError:
            return None
        return head.get("Metadata", {}).get("sha256")

    def stored_before(self, moment: datetime) -> Iterator[str]:
        cutoff = _aware(moment)
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=f"{self.prefix}/" if self.prefix else "")
        with self._errors():
            for page in pages:
                for item in page.get("Contents", []):
                    key = item["Key"].rsplit("/", 1)[-1]
                    if (_KEY.fullmatch(key) and item["Key"] == self._name(key)
                            and item["LastModified"] < cutoff):
                        yield key

    def _errors(self):
        return _S3Errors()


class _S3Errors:
    """A missing object is FileNotFoundError, as on disk; a store that cannot be reached or
    refuses (credentials, a missing bucket) is StorageUnavailable."""

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        from botocore.exceptions import BotoCoreError, ClientError

        if isinstance(error, ClientError):
            code = error.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404", "NotFound"):
                raise FileNotFoundError(str(error)) from error
            raise StorageUnavailable(f"the store refused: {code or error}") from error
        if isinstance(error, BotoCoreError):
            raise StorageUnavailable(f"the store did not answer: {error}") from error
        return False


def forget(key: str) -> None:
    """Removes a file whose row is gone for good (committed): a store that fails now leaves it
    to the sweeper rather than fail what was already done."""
    try:
        storage().delete(key)
    except OSError:
        current_app.logger.exception("Could not remove stored file %s", key)


def from_config(settings: dict, instance_path: str) -> Storage:
    if url := settings.get("STORAGE_URL"):
        return S3Storage(
            url, endpoint_url=settings.get("STORAGE_ENDPOINT_URL"),
            region=settings.get("STORAGE_REGION"),
            access_key_id=settings.get("STORAGE_ACCESS_KEY_ID"),
            secret_access_key=settings.get("STORAGE_SECRET_ACCESS_KEY"),
            session_token=settings.get("STORAGE_SESSION_TOKEN"),
            timeout_seconds=settings.get("STORAGE_TIMEOUT_SECONDS", 5),
        )
    return LocalStorage(Path(settings.get("UPLOAD_FOLDER") or Path(instance_path) / "uploads"))


def init_app(app: Flask) -> None:
    app.extensions["storage"] = from_config(app.config, app.instance_path)


def storage() -> Storage:
    return current_app.extensions["storage"]


@dataclass
class Copied:
    copied: int = 0
    already_there: int = 0
    failed: list[str] | None = None
    not_wanted: int = 0  # no row refers to them (deleted since), or gone meanwhile

    def summary(self) -> str:
        said = f"Copied {self.copied} files; {self.already_there} were there already."
        if self.not_wanted:
            said += f" {self.not_wanted} that nothing refers to were left behind."
        if self.failed:
            said += (f" {len(self.failed)} did not match their checksum after copying "
                     f"(run the command again): {', '.join(self.failed[:5])}")
        return said


def copy_all(source: LocalStorage, target: Storage, wanted, threads: int = 8) -> Copied:
    """Copies the files of a folder that rows refer to (`wanted`: those of a list of keys) into
    another store under the same key, so no row changes. Resumable: a file already there with
    the same SHA-256 is skipped. Each copy is read back and its SHA-256 compared with the
    original's."""
    from concurrent.futures import ThreadPoolExecutor

    result = Copied(failed=[])
    keys = source.keys()
    held = set().union(*(wanted(keys[start:start + 500])
                         for start in range(0, len(keys), 500)))
    result.not_wanted = len(keys) - len(held)
    with ThreadPoolExecutor(threads) as pool:
        for key, outcome in pool.map(lambda key: (key, _copy_one(source, target, key)),
                                     [key for key in keys if key in held]):
            if outcome == "copied":
                result.copied += 1
            elif outcome == "there":
                result.already_there += 1
            elif outcome == "gone":
                result.not_wanted += 1
            else:
                result.failed.append(key)
    return result


def _copy_one(source: LocalStorage, target: Storage, key: str) -> str:
    try:
        data = source.read(key)
    except FileNotFoundError:
        return "gone"  # its message deleted meanwhile
    digest = sha256(data)
    if target.checksum(key) == digest:
        return "there"
    target.put(key, data)
    return "copied" if sha256(target.read(key)) == digest else "failed"
