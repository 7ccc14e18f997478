"""Fixtures: the app and its database, a test client that knows CSRF, factories and roles, and
the mail, SMS and push services on loopback.

One app serves every test of the session (of each pytest-xdist worker), on a database migrated
once: SQLite, or PostgreSQL when PORTAL_TEST_DATABASE_URL is set. Each test runs in a transaction
rolled back at its end; its settings, upload folder and throttle counters are its own.

Tests whose data other connections must see (threads, a live server, a second app, row locks)
are marked `committed`: they get an app of their own on a clean database, which they commit to.
"""

import copy
import functools
import os
import shutil
import socket
import threading
from contextlib import contextmanager
from datetime import timedelta
from http.server import ThreadingHTTPServer

import pytest
from flask_migrate import upgrade
from sqlalchemy import create_engine, event, make_url, text

from portal import create_app, storage
from portal.extensions import db
from portal.inbound.receiver import Receiver
from portal.models import Business, Client, Feed, Message, Role, ScheduledService, utcnow
from portal.services import accounts, clients, messages, passwords
from portal.services.uploads import Upload

from .helpers import (
    BASE_URL,
    PASSWORD,
    POSTGRES_URL,
    REPLY_DOMAIN,
    VAPID_SUBJECT,
    FakeDns,
    PortalClient,
    TwilioStandIn,
    free_port,
    new_key_pair,
    smtp_mailbox,
)
from .mail_servers import Dovecot, dovecot_missing
from .object_store import S3Server

# zxcvbn judges a password the same way every time; the suite's thousands of users share one
# password, judged once instead of in every fixture that makes a user (3 ms each).
passwords.is_common = functools.cache(passwords.is_common)


def pytest_collection_modifyitems(items):
    """A live server and a second app read through connections of their own: the tests that
    use them work on committed data."""
    for item in items:
        if not {"live_server", "make_app"}.isdisjoint(item.fixturenames):
            item.add_marker(pytest.mark.committed)


def _config(database_url: str, upload_folder=None) -> dict:
    return {
        "UPLOAD_FOLDER": upload_folder,
        "TESTING": True,
        "SECRET_KEY": "test-only-secret",
        "SQLALCHEMY_DATABASE_URI": database_url,
        # A hash of one round keeps the suite's thousands of logins cheap; production uses
        # scrypt at its default cost (tests/test_accounts.py).
        "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1",
        "MAIL_SUPPRESS_SEND": True,
    }


def _migrate(database_url: str) -> None:
    app = create_app(_config(database_url))
    with app.app_context():
        upgrade()
        db.engine.dispose()


def _create_database_if_missing(url: str) -> None:
    """A worker's own database is made on first use, through the server's maintenance one."""
    name = make_url(url).database
    engine = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        exists = connection.scalar(text("SELECT 1 FROM pg_database WHERE datname = :name"),
                                   {"name": name})
        if not exists:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()


@pytest.fixture(scope="session")
def database_template(tmp_path_factory):
    """Migrations run once per test session; each test then starts from that empty schema."""
    if POSTGRES_URL:
        _create_database_if_missing(POSTGRES_URL)
        engine = create_engine(POSTGRES_URL)
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
        engine.dispose()
        _migrate(POSTGRES_URL)
        return POSTGRES_URL
    path = tmp_path_factory.mktemp("db") / "template.sqlite3"
    _migrate(f"sqlite:///{path}")
    return path


# --- one app for the session, each test rolled back ------------------------------------------

def _begin_sqlite_transactions_explicitly(engine) -> None:
    """pysqlite (before Python 3.12) opens transactions late and on its own terms, so the app's
    SAVEPOINTs would not nest inside the test's transaction. SQLAlchemy's documented remedy: no
    implicit transactions, and a BEGIN of our own whenever SQLAlchemy begins one."""

    @event.listens_for(engine, "connect")
    def no_implicit_transactions(dbapi_connection, connection_record):
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def begin(connection):
        connection.exec_driver_sql("BEGIN")


def _sessions_use_a_given_bind() -> None:
    """Flask-SQLAlchemy's sessions choose the app's engine even when given a bind; these take
    the connection a test gives them, and choose as before otherwise."""
    sessions = db.session.session_factory
    choose_engine = sessions.class_.get_bind

    def get_bind(session, *args, **kwargs):
        if session.bind is not None:
            return session.bind
        return choose_engine(session, *args, **kwargs)

    sessions.class_.get_bind = get_bind


@pytest.fixture(scope="session")
def shared_app(database_template, tmp_path_factory):
    """The app of every test not marked committed, on a database nothing is committed to."""
    if POSTGRES_URL:
        database_url = POSTGRES_URL
    else:
        path = tmp_path_factory.mktemp("shared") / "portal.sqlite3"
        shutil.copy(database_template, path)
        database_url = f"sqlite:///{path}"
    app = create_app(_config(database_url))
    app.test_client_class = PortalClient
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            _begin_sqlite_transactions_explicitly(db.engine)
    _sessions_use_a_given_bind()
    yield app
    with app.app_context():
        db.engine.dispose()


@contextmanager
def _isolated(app, upload_folder):
    """What a test changes in the shared app is put back: its settings and extensions (the mail
    settings among them), and the throttle's counters. Its uploads go to a folder of its own."""
    settings = copy.deepcopy(dict(app.config))
    extensions = dict(app.extensions)
    mail = dict(vars(app.extensions["mail"]))
    app.config["UPLOAD_FOLDER"] = upload_folder
    storage.init_app(app)
    try:
        yield
    finally:
        app.config.clear()
        app.config.update(settings)
        app.extensions.clear()
        app.extensions.update(extensions)
        vars(app.extensions["mail"]).update(mail)
        app.extensions["throttle"].storage.reset()


@contextmanager
def _rolled_back(app):
    """Every session of the test joins one transaction of one connection, rolled back at the
    end; the app's commits and rollbacks become savepoints (SQLAlchemy: "Joining a Session into
    an External Transaction")."""
    with app.app_context():
        connection = db.engine.connect()
    transaction = connection.begin()
    sessions = db.session.session_factory
    options = dict(sessions.kw)
    sessions.configure(bind=connection, join_transaction_mode="create_savepoint")
    try:
        yield
    finally:
        sessions.kw.clear()
        sessions.kw.update(options)
        transaction.rollback()
        connection.close()


# --- committed tests: an app of their own on a clean database --------------------------------

@pytest.fixture
def database_url(database_template, tmp_path):
    """A committed test's database: a copy of the SQLite template, or PostgreSQL's, emptied
    after the test."""
    if POSTGRES_URL:
        yield POSTGRES_URL
        tables = ", ".join(
            f'"{table.name}"' for table in db.metadata.sorted_tables
        )
        engine = create_engine(POSTGRES_URL)
        with engine.begin() as connection:
            connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        engine.dispose()
    else:
        path = tmp_path / "portal.sqlite3"
        shutil.copy(database_template, path)
        yield f"sqlite:///{path}"


def _new_app(database_url: str, upload_folder, **settings):
    app = create_app({**_config(database_url, upload_folder), **settings})
    app.test_client_class = PortalClient
    return app


def _close(app) -> None:
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def app(request, tmp_path):
    """The session's app, rolled back after the test; a new app for a committed test."""
    if request.node.get_closest_marker("committed"):
        app = _new_app(request.getfixturevalue("database_url"), tmp_path / "uploads")
        yield app
        _close(app)
        return
    app = request.getfixturevalue("shared_app")
    with _isolated(app, tmp_path / "uploads"), _rolled_back(app):
        yield app


@pytest.fixture
def make_app(database_url, tmp_path):
    """More apps on the test's database (one per gunicorn worker, say), each with its own
    settings; their connections are closed at the end, not left to the garbage collector."""
    made = []

    def make(**settings):
        app = _new_app(database_url, tmp_path / "uploads", **settings)
        made.append(app)
        return app

    yield make
    for app in made:
        _close(app)


@pytest.fixture
def client(app) -> PortalClient:
    return app.test_client()


@pytest.fixture
def new_client(app):
    """More browsers, for tests with several people at once."""
    return app.test_client


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


def _detached(app, make):
    """Runs `make` in its own app context, like a request; returns its row, columns loaded."""
    with app.app_context():
        row = make()
        db.session.refresh(row)
        db.session.expunge(row)
        return row


@pytest.fixture
def make_business(app):
    count = 0

    def make(name: str | None = None, **settings) -> Business:
        nonlocal count
        count += 1

        def create():
            business = Business(name=name or f"Business {count}", **settings)
            db.session.add(business)
            db.session.commit()
            return business

        return _detached(app, create)

    return make


@pytest.fixture
def business(make_business) -> Business:
    return make_business("Happy Tails")


@pytest.fixture
def make_user(app, business):
    count = 0

    def make(role: Role = Role.STAFF, *, business: Business = business, client=None,
             name: str | None = None, **fields):
        nonlocal count
        count += 1

        def create():
            owner = db.session.get(Business, business.id)
            user = accounts.create_user(
                owner, role=role, email=f"{role.value}{count}@b{business.id}.example",
                name=name or f"{role.label} {count}", password=PASSWORD,
                client_id=client.id if client else None,
            )
            for key, value in fields.items():
                setattr(user, key, value)
            if fields.get("phone") and "phone_confirmed_at" not in fields:
                # People made with a phone confirmed it (tests of confirming say otherwise).
                user.phone_confirmed_at = utcnow()
            db.session.commit()
            return user

        return _detached(app, create)

    return make


@pytest.fixture
def make_client(app, business):
    count = 0

    def make(*, business: Business = business, name: str | None = None) -> Client:
        nonlocal count
        count += 1
        return _detached(app, lambda: clients.create_client(
            db.session.get(Business, business.id), None, name=name or f"Household {count}",
            pets=[("Rex", "Dog")],
        ))

    return make


@pytest.fixture
def make_message(app):
    def make(client: Client, author, text="Hello", feed=Feed.CONVERSATION, files=()) -> Message:
        """files: (name, bytes) pairs, prepared as an upload would be."""

        def create():
            prepared = messages.prepare_uploads(
                [Upload(name, data) for name, data in files],
                messages.UploadLimits.from_config(app.config),
            )
            return messages.post_message(
                db.session.get(type(author), author.id), db.session.get(Client, client.id),
                feed, text, prepared,
            )

        return _detached(app, create)

    return make


@pytest.fixture
def make_service(app):
    def make(client: Client, staff, *, days_from_now: float = 1, status=None) -> ScheduledService:
        def create():
            starts_at = utcnow() + timedelta(days=days_from_now)
            service = clients.schedule_service(
                None, db.session.get(Client, client.id), db.session.get(type(staff), staff.id),
                title="Dog walk", starts_at=starts_at, ends_at=starts_at + timedelta(minutes=30),
            )
            if status is not None:
                service.status = status
                db.session.commit()
            return service

        return _detached(app, create)

    return make


@pytest.fixture
def make_preferred_sitter(app):
    def make(client: Client, staff) -> None:
        with app.app_context():
            clients.add_preferred_sitter(
                None, db.session.get(Client, client.id), db.session.get(type(staff), staff.id)
            )

    return make


# --- the cast: one business with a client and everyone around it, and a stranger business ---

@pytest.fixture
def household(make_client):
    return make_client(name="The Rivera Household")


@pytest.fixture
def other_household(make_client):
    return make_client(name="The Okafor Household")


@pytest.fixture
def admin(make_user):
    return make_user(Role.ADMIN, name="Alice Admin")


@pytest.fixture
def office_manager(make_user):
    return make_user(Role.OFFICE_MANAGER, name="Oscar Office")


@pytest.fixture
def office_manager_private(make_user):
    """An office manager the admin has given access to private messages."""
    return make_user(Role.OFFICE_MANAGER, name="Olga Office", private_messages_access=True)


@pytest.fixture
def assigned_staff(make_user, make_service, household):
    staff = make_user(Role.STAFF, name="Sam Sitter")
    make_service(household, staff, days_from_now=1)
    return staff


@pytest.fixture
def preferred_sitter(make_user, make_preferred_sitter, household):
    staff = make_user(Role.STAFF, name="Pat Preferred")
    make_preferred_sitter(household, staff)
    return staff


@pytest.fixture
def unassigned_staff(make_user):
    return make_user(Role.STAFF, name="Uma Unassigned")


@pytest.fixture
def household_login(make_user, household):
    return make_user(Role.CLIENT, client=household, name="Carla Client")


@pytest.fixture
def other_household_login(make_user, other_household):
    return make_user(Role.CLIENT, client=other_household, name="Dan Dogowner")


@pytest.fixture
def stranger_business(make_business):
    return make_business("Rival Walkers")


@pytest.fixture
def stranger_admin(make_user, stranger_business):
    return make_user(Role.ADMIN, business=stranger_business, name="Rita Rival")


@pytest.fixture
def logged_in(new_client):
    """A fresh browser logged in as the given user."""

    def login(user) -> PortalClient:
        browser = new_client()
        browser.login(user)
        return browser

    return login


@pytest.fixture
def admin_browser(logged_in, admin):
    return logged_in(admin)


# --- the mail, SMS and push services on loopback ---------------------------------------------

@pytest.fixture
def smtp(app):
    """A real SMTP server on loopback that the worker delivers to."""
    with smtp_mailbox(app) as server:
        yield server


@pytest.fixture
def twilio(app):
    """The loopback stand-in for the SMS provider; the requests it received."""
    TwilioStandIn.reset()
    server = ThreadingHTTPServer(("127.0.0.1", 0), TwilioStandIn)
    # A short poll interval keeps shutdown() from idling half a second per test.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    app.config.update(
        SMS_PROVIDER="twilio", TWILIO_ACCOUNT_SID="AC123", TWILIO_AUTH_TOKEN="secret",
        TWILIO_FROM_NUMBER="+15550001111",
        TWILIO_API_BASE=f"http://127.0.0.1:{server.server_address[1]}",
    )
    yield TwilioStandIn.requests
    server.shutdown()
    server.server_close()


@pytest.fixture
def vapid(app):
    private, public = new_key_pair()
    app.config.update(
        VAPID_PRIVATE_KEY=private, VAPID_PUBLIC_KEY=public, VAPID_SUBJECT=VAPID_SUBJECT,
        NOTIFICATION_DELAY_SECONDS=0, PORTAL_BASE_URL=BASE_URL,
    )
    return public


@pytest.fixture
def dns(monkeypatch):
    """Names resolve only as the test says: never through real DNS."""
    fake = FakeDns(socket.getaddrinfo)
    monkeypatch.setattr(socket, "getaddrinfo", fake.getaddrinfo)
    return fake


@pytest.fixture
def connections(monkeypatch):
    """Every address a socket tried to connect to; none is reached (the connection is
    refused), so nothing leaves this machine."""
    tried = []

    def connect(sock, address):
        tried.append(address[:2])
        raise ConnectionRefusedError("refused in the tests")

    monkeypatch.setattr(socket.socket, "connect", connect)
    return tried


# --- replies coming in: the receiver, and a mailbox to fetch from ----------------------------

@pytest.fixture
def reply_receiver(app):
    """The portal's SMTP receiver on a free loopback port, for the test's app; its ingest
    runs in other threads, so the test's data must be committed."""
    app.config["REPLY_DOMAIN"] = REPLY_DOMAIN
    receiver = Receiver(app, "127.0.0.1", free_port())
    receiver.start()
    yield receiver
    receiver.stop()


@pytest.fixture
def dovecot(app):
    """A private Dovecot on loopback with one empty mailbox, which the app fetches from.
    Skipped where Dovecot is missing, unless PORTAL_TEST_REQUIRE_DOVECOT is set (.ci/run)."""
    if reason := dovecot_missing():
        if os.environ.get("PORTAL_TEST_REQUIRE_DOVECOT"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    server = Dovecot()
    try:
        server.start()
        app.config.update(server.settings, REPLY_DOMAIN=REPLY_DOMAIN)
        yield server
    finally:
        server.remove()


@pytest.fixture(scope="session")
def s3_server():
    """An S3 protocol server on loopback (moto's server mode) for the session."""
    server = S3Server()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def bucket_storage(app, s3_server):
    """The app's files in a new bucket of the loopback S3 server: the bucket's name."""
    bucket = s3_server.new_bucket()
    app.config.update(s3_server.settings(bucket))
    storage.init_app(app)
    return bucket
