"""Files in an S3-compatible bucket: the backend against a real S3 protocol server on loopback
(moto's server mode), downloads still behind the policy, deletion, the sweeper of orphans, the
copy from a folder into a bucket, and a store that cannot be reached."""

import hashlib
from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import func, inspect, select

from portal import storage as storage_module
from portal.extensions import db
from portal.models import (
    Attachment,
    AttachmentKind,
    Client,
    DeliveryStatus,
    Feed,
    InboundMessage,
    InboundOutcome,
    Message,
    Pet,
    ScheduledMessage,
    User,
    utcnow,
)
from portal.notifications import health, outbox, worker
from portal.services import file_sweep, send_later
from portal.services.uploads import Upload, prepare
from portal.storage import LocalStorage, S3Storage, StorageUnavailable, storage

from .helpers import deliver, free_port
from .test_attachments import attachments, encoded, message_count, pdf, send, two_tone
from .test_client_records import first_pet, load, photo_post, png_bytes
from .test_unmatched_replies import queued_reply, row, token_for

PHOTO = ("walk.png", encoded(two_tone(), "PNG"))


@pytest.fixture(params=["folder", "bucket"])
def any_store(request, tmp_path, s3_server):
    if request.param == "folder":
        return LocalStorage(tmp_path / "files")
    settings = s3_server.settings(s3_server.new_bucket(), prefix="some/prefix")
    return storage_module.from_config(settings, str(tmp_path))


def test_each_store_keeps_reads_and_removes_bytes(any_store):
    key = any_store.save(b"rex's photo")
    assert any_store.read(key) == b"rex's photo"
    opened = any_store.open(key)
    with opened.stream:
        assert (opened.stream.read(), opened.size) == (b"rex's photo", 11)
    assert any_store.checksum(key) == hashlib.sha256(b"rex's photo").hexdigest()
    later = utcnow() + timedelta(minutes=5)
    assert list(any_store.stored_before(later)) == [key]
    assert list(any_store.stored_before(utcnow() - timedelta(minutes=5))) == []
    any_store.delete(key)
    any_store.delete(key)  # already gone: not an error
    for missing in (lambda: any_store.read(key), lambda: any_store.open(key)):
        with pytest.raises(FileNotFoundError):
            missing()
    assert any_store.checksum(key) is None
    # Only keys the portal makes reach a path or an object name.
    for hostile in ("../../etc/passwd", "ab/../../x", ""):
        with pytest.raises(ValueError):
            any_store.read(hostile)


def test_a_bucket_keeps_the_folders_layout_under_its_prefix(app, s3_server, tmp_path):
    bucket = s3_server.new_bucket()
    store = storage_module.from_config(s3_server.settings(bucket, prefix="portal/files"),
                                       str(tmp_path))
    key = store.save(b"bytes")
    assert s3_server.object_names(bucket) == [f"portal/files/{key[:2]}/{key}"]
    head = s3_server.client().head_object(Bucket=bucket, Key=f"portal/files/{key[:2]}/{key}")
    assert head["Metadata"]["sha256"] == hashlib.sha256(b"bytes").hexdigest()


def test_a_bad_storage_url_is_refused(tmp_path):
    for url in ("s3:///no-bucket", "https://bucket/prefix", "bucket/prefix"):
        with pytest.raises(ValueError, match="s3://bucket/prefix"):
            S3Storage(url)


def test_files_in_a_bucket_are_served_only_through_the_policy(
    app, bucket_storage, s3_server, admin_browser, logged_in, unassigned_staff, household
):
    send(admin_browser, household, [PHOTO, ("notes.pdf", pdf())], text="Walk done")
    photo, document = attachments(app)
    names = s3_server.object_names(bucket_storage)
    assert len(names) == 3 and all(name.startswith("attachments/") for name in names)
    whole = admin_browser.get(f"/files/{photo.token}")
    assert whole.status_code == 200 and whole.mimetype == "image/png"
    assert whole.data == app.extensions["storage"].read(photo.storage_key)
    assert whole.headers["Cache-Control"] == "no-store"
    assert whole.headers["X-Content-Type-Options"] == "nosniff"
    assert whole.headers["Content-Length"] == str(len(whole.data))
    thumbnail = admin_browser.get(f"/files/{photo.token}/thumbnail")
    assert thumbnail.status_code == 200 and thumbnail.mimetype == "image/webp"
    download = admin_browser.get(f"/files/{document.token}")
    sent = app.extensions["storage"].read(document.storage_key)
    assert download.status_code == 200 and download.data == sent and sent.startswith(b"%PDF")
    assert download.headers["Content-Disposition"].startswith("attachment")
    # An interrupted download resumes where it stopped, from the bucket too.
    rest = admin_browser.get(f"/files/{document.token}", headers={"Range": "bytes=100-"})
    assert rest.status_code == 206 and rest.data == sent[100:]
    # The bytes never leave the portal by another way: no redirect to the bucket.
    assert all(s3_server.endpoint not in value for value in whole.headers.values())
    sitter = logged_in(unassigned_staff)
    for url in (f"/files/{photo.token}", f"/files/{photo.token}/thumbnail",
                f"/files/{document.token}"):
        assert sitter.get(url).status_code == 404


def test_deleting_a_message_deletes_its_objects(app, bucket_storage, s3_server, admin_browser,
                                                 household):
    send(admin_browser, household, [PHOTO, ("notes.pdf", pdf())])
    assert len(s3_server.object_names(bucket_storage)) == 3
    with app.app_context():
        message_id = db.session.scalar(select(Message.id))
    admin_browser.htmx("POST", f"/messages/{message_id}/delete")
    assert attachments(app) == [] and s3_server.object_names(bucket_storage) == []


@pytest.fixture
def unreachable_store(app):
    """A bucket whose server does not answer: nothing listens on its port."""
    app.config.update({"STORAGE_URL": "s3://gone/files",
                       "STORAGE_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
                       "STORAGE_ACCESS_KEY_ID": "key", "STORAGE_SECRET_ACCESS_KEY": "secret",
                       "STORAGE_REGION": "us-east-1", "STORAGE_TIMEOUT_SECONDS": 1})
    storage_module.init_app(app)


def test_a_post_with_files_fails_cleanly_when_the_store_is_unreachable(
    app, unreachable_store, admin_browser, household
):
    answer = send(admin_browser, household, [PHOTO], text="Rex had a great walk")
    assert answer.status_code == 200  # htmx swaps the composer back, with the reason
    page = answer.get_data(as_text=True)
    assert "could not store files just now" in page and "Rex had a great walk" in page
    assert message_count(app) == 0 and attachments(app) == []
    plain = send(admin_browser, household, [PHOTO], text="Rex had a great walk", htmx=False)
    assert plain.status_code == 503 and "could not store files" in plain.get_data(as_text=True)
    assert message_count(app) == 0
    # Text alone needs no store: it goes.
    assert send(admin_browser, household, [], text="Back at 5").status_code == 200
    assert message_count(app) == 1


def test_a_store_that_fails_halfway_leaves_no_half_written_message(
    app, bucket_storage, s3_server, admin_browser, household, monkeypatch
):
    real_put, calls = S3Storage.put, []

    def put_then_fail(self, key, data):
        calls.append(key)
        if len(calls) == 2:
            raise StorageUnavailable("the store did not answer")
        real_put(self, key, data)

    monkeypatch.setattr(S3Storage, "put", put_then_fail)
    send(admin_browser, household, [PHOTO, ("notes.pdf", pdf())], text="Two files")
    assert message_count(app) == 0 and attachments(app) == []
    assert s3_server.object_names(bucket_storage) == []  # the first file was removed again


def test_a_pet_photo_is_kept_in_the_bucket_and_served_with_a_version(
    app, bucket_storage, s3_server, admin_browser, household
):
    pet = first_pet(app, household)
    saved = photo_post(admin_browser, household, pet, photo=("rex.png", png_bytes((40, 30))))
    assert saved.status_code == 302
    key = load(app, Pet, pet.id).photo_key
    assert s3_server.object_names(bucket_storage) == [f"attachments/{key[:2]}/{key}"]
    url = f"/clients/{household.id}/pets/{pet.id}/photo"
    served = admin_browser.get(url)
    assert served.status_code == 200 and served.data[:4] == b"RIFF"
    assert served.headers["Content-Length"] == str(len(served.data))
    assert key not in served.headers["ETag"]  # a digest of it: the key never leaves the portal
    again = admin_browser.get(url, headers={"If-None-Match": served.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""


def test_other_pages_that_store_files_answer_503_and_change_nothing(
    app, unreachable_store, admin_browser, household
):
    pet = first_pet(app, household)
    answer = photo_post(admin_browser, household, pet, {"breed": "Pug"},
                        photo=("rex.png", png_bytes((40, 30))))
    assert answer.status_code == 503
    assert "could not reach its file store" in answer.get_data(as_text=True)
    unchanged = load(app, Pet, pet.id)
    assert unchanged.photo_key is None and unchanged.breed != "Pug"


# --- the sweeper -------------------------------------------------------------------------

def test_stored_key_columns_are_all_known_to_the_sweeper(app):
    """A column holding storage keys that the sweeper did not know would lose its files."""
    not_files = {"send_key", "dedupe_key", "key", "token_key"}
    known = {(column.class_.__tablename__, column.key)
             for column in file_sweep.STORED_KEY_COLUMNS}
    found = set()
    for mapper in db.Model.registry.mappers:
        for column in inspect(mapper.class_).columns:
            if column.key.endswith("_key") and column.key not in not_files:
                found.add((mapper.class_.__tablename__, column.key))
    assert found == known


def test_the_sweeper_removes_only_old_files_nothing_refers_to(
    app, bucket_storage, s3_server, admin_browser, household
):
    send(admin_browser, household, [PHOTO])
    with app.app_context():
        orphan = storage().save(b"left behind by a failed change")
        kept = {row.storage_key for row in db.session.scalars(select(Attachment))}
        # A file of a change not yet committed is younger than a day: never removed.
        assert file_sweep.sweep().removed == 0
        with time_machine.travel(utcnow() + timedelta(days=1, minutes=5), tick=True):
            swept = file_sweep.sweep()
    assert (swept.looked_at, swept.removed) == (3, 1)
    names = s3_server.object_names(bucket_storage)
    assert len(names) == 2 and not any(name.endswith(orphan) for name in names)
    assert any(name.endswith(key) for key in kept for name in names)


def test_the_sweep_command(app, runner, admin_browser, household):
    send(admin_browser, household, [PHOTO])
    with app.app_context():
        storage().save(b"orphan")
    with time_machine.travel(utcnow() + timedelta(days=2), tick=True):
        result = runner.invoke(args=["storage", "sweep"])
    assert result.exit_code == 0, result.output
    assert "Looked at 3 stored files older than a day; removed 1" in result.output
    assert len(app.extensions["storage"].keys()) == 2


@pytest.mark.parametrize("rows", ["none", "few"])
def test_a_store_that_is_not_this_databases_is_left_alone(app, runner, admin_browser,
                                                          household, rows):
    """A staging DATABASE_URL beside the production bucket: most files belong to no row."""
    if rows == "few":
        send(admin_browser, household, [PHOTO])
    with app.app_context():
        for n in range(3 if rows == "none" else 60):
            storage().save(f"another database's file {n}".encode())
    before = app.extensions["storage"].keys()
    with time_machine.travel(utcnow() + timedelta(days=2), tick=True):
        result = runner.invoke(args=["storage", "sweep"])
    assert result.exit_code == 1
    assert "is DATABASE_URL the database of this STORAGE_URL? Nothing more was removed." in (
        result.output)
    assert app.extensions["storage"].keys() == before


# --- copying a folder into a bucket ---------------------------------------------------------

@pytest.fixture
def old_folder(app, tmp_path, make_message, admin, household):
    """The folder files were kept in before the bucket: each a message's attachment, but one
    whose message was deleted since (nothing refers to it)."""
    folder = LocalStorage(tmp_path / "old-uploads")
    message = make_message(household, admin, "Walk photos")
    with app.app_context():
        for n in range(7):
            key = folder.save(f"file {n}".encode() * 100)
            if n < 6:
                db.session.add(Attachment(
                    business_id=household.business_id, message_id=message.id, position=n,
                    kind=AttachmentKind.FILE, original_name=f"file{n}.txt",
                    content_type="text/plain", size=700, storage_key=key))
        db.session.commit()
        folder.keys_held = [key for key, in db.session.execute(
            select(Attachment.storage_key).order_by(Attachment.position))]
    return folder


def test_copying_a_folder_into_a_bucket_is_verified_and_resumable(
    app, bucket_storage, s3_server, runner, old_folder, monkeypatch
):
    folder, keys = old_folder, old_folder.keys_held
    real_put, calls = S3Storage.put, []

    def put_then_stop(self, key, data):
        calls.append(key)
        if len(calls) > 3:
            raise StorageUnavailable("the store did not answer")
        real_put(self, key, data)

    monkeypatch.setattr(S3Storage, "put", put_then_stop)
    stopped = runner.invoke(args=["storage", "copy", "--from", str(folder.root)])
    assert stopped.exit_code == 1 and "run the command again" in stopped.output
    monkeypatch.undo()
    resumed = runner.invoke(args=["storage", "copy", "--from", str(folder.root)])
    assert resumed.exit_code == 0, resumed.output
    assert ("Copied 3 files; 3 were there already. 1 that nothing refers to were left "
            "behind.") in resumed.output
    stored = app.extensions["storage"]
    assert all(stored.read(key) == folder.read(key) for key in keys)
    assert len(s3_server.object_names(bucket_storage)) == 6
    # A copy damaged since is found by its checksum and copied again.
    damaged = f"attachments/{keys[0][:2]}/{keys[0]}"
    s3_server.client().put_object(Bucket=bucket_storage, Key=damaged, Body=b"damaged",
                                  Metadata={"sha256": hashlib.sha256(b"damaged").hexdigest()})
    again = runner.invoke(args=["storage", "copy", "--from", str(folder.root)])
    assert "Copied 1 files; 5 were there already." in again.output
    assert stored.read(keys[0]) == folder.read(keys[0])


def test_a_copy_that_does_not_read_back_the_same_is_reported(
    app, bucket_storage, runner, old_folder, monkeypatch
):
    monkeypatch.setattr(S3Storage, "read", lambda self, key: b"changed on the way")
    result = runner.invoke(args=["storage", "copy", "--from", str(old_folder.root)])
    assert result.exit_code == 1
    assert "6 did not match their checksum after copying (run the command again): " in (
        result.output)


def test_copying_a_folder_onto_itself_is_refused(app, runner):
    folder = app.extensions["storage"].root
    folder.mkdir(parents=True)
    result = runner.invoke(args=["storage", "copy", "--from", str(folder)])
    assert result.exit_code == 2 and "set STORAGE_URL first" in result.output


def test_workers_sweep_one_at_a_time(app):
    with app.app_context():
        assert file_sweep.sweep_unless_running() == file_sweep.Swept(0, 0)
        if db.engine.dialect.name != "postgresql":
            return  # SQLite: one process, one worker
        with db.engine.connect() as other_worker:
            other_worker.scalar(select(func.pg_advisory_lock(file_sweep.SWEEP_TURN)))
            assert file_sweep.sweep_unless_running() is None
            other_worker.scalar(select(func.pg_advisory_unlock(file_sweep.SWEEP_TURN)))
        assert file_sweep.sweep_unless_running() == file_sweep.Swept(0, 0)


# --- the store away while the worker posts, or while a reply is filed ---------------------------

def test_a_scheduled_message_with_a_file_waits_out_a_store_outage(app, admin, household,
                                                                   s3_server):
    bucket = s3_server.new_bucket()
    app.config.update(s3_server.settings(bucket))
    storage_module.init_app(app)
    with app.app_context():
        photo = prepare(Upload("rex.png", png_bytes((30, 20))), max_bytes=10**6,
                        max_pixels=10**6)
        scheduled = send_later.schedule(
            db.session.get(User, admin.id), db.session.get(Client, household.id),
            Feed.CONVERSATION, "Rex's photo", utcnow() + timedelta(minutes=5), files=[photo])
        scheduled_id = scheduled.id
    later = utcnow() + timedelta(minutes=6)
    app.config["STORAGE_ENDPOINT_URL"] = f"http://127.0.0.1:{free_port()}"  # the store goes away
    app.config["STORAGE_TIMEOUT_SECONDS"] = 1
    storage_module.init_app(app)
    with time_machine.travel(later, tick=True):
        for _ in range(3):  # rounds fail while it is away; no try is counted
            with pytest.raises(StorageUnavailable):
                worker.run_once(app, "worker-a")
            with app.app_context():
                outbox.release("worker-a", health.OUTBOXES)
        with app.app_context():
            waiting = db.session.get(ScheduledMessage, scheduled_id)
            assert (waiting.status, waiting.attempts, len(waiting.files)) == (
                DeliveryStatus.PENDING, 0, 1)
        app.config.update(s3_server.settings(bucket))  # back
        storage_module.init_app(app)
        deliver(app)
    with app.app_context():
        posted = db.session.scalar(select(Message).where(Message.text == "Rex's photo"))
        assert posted is not None
        assert db.session.scalar(select(func.count(Attachment.id)).where(
            Attachment.message_id == posted.id)) == 1


def test_filing_a_reply_while_the_store_is_away_changes_nothing(
    app, admin_browser, household, household_login, unreachable_store_after
):
    reply = queued_reply(app, token_for(household_login, household), "stranger@example.org",
                         files=[("rex.png", png_bytes((30, 20)))])
    unreachable_store_after()
    answer = admin_browser.submit(f"/settings/unmatched-replies/{reply.id}/file",
                                  data={"client_id": household.id, "feed": "conversation"})
    assert answer.status_code == 503
    kept = row(app, InboundMessage, reply.id)
    assert (kept.outcome, kept.raw_key, kept.message_id) == (
        InboundOutcome.UNMATCHED, reply.raw_key, None)
    assert message_count(app) == 0


@pytest.fixture
def unreachable_store_after(app):
    def go_away():
        app.config.update({"STORAGE_URL": "s3://gone/files",
                           "STORAGE_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
                           "STORAGE_ACCESS_KEY_ID": "key", "STORAGE_SECRET_ACCESS_KEY": "s",
                           "STORAGE_REGION": "us-east-1", "STORAGE_TIMEOUT_SECONDS": 1})
        storage_module.init_app(app)
    return go_away
