"""What the tests share besides fixtures: the test client, the database under test, reading and
changing rows behind the app's back, and the mail, SMS and push services played on loopback."""

import base64
import email
import functools
import hashlib
import ipaddress
import json
import os
import re
import secrets
import socket
import ssl
import threading
import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.policy import default as email_policy
from email.utils import make_msgid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BytesIO
from urllib.parse import parse_qs

import http_ece
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask.testing import FlaskClient
from itsdangerous import URLSafeTimedSerializer
from PIL import Image
from sqlalchemy import create_engine, event, func, make_url, select, text, update

from portal.extensions import db
from portal.models import (
    Business,
    Channel,
    Feed,
    Notification,
    PushSubscription,
    ScheduledService,
    ServiceStatus,
    User,
    utcnow,
)
from portal.notifications import worker
from portal.reply_addresses import ReplyToken, address_for
from portal.services import messages

PASSWORD = "correct horse battery"
NEW_PASSWORD = "Biscuit loves long walks"
BASE_URL = "https://portal.example"
VAPID_SUBJECT = "mailto:ops@happytails.example"


def png_bytes(size=(8, 8), colour="green") -> bytes:
    """A real, tiny photo for messages that need one."""
    output = BytesIO()
    Image.new("RGB", size, colour).save(output, "PNG")
    return output.getvalue()


# --- the database under test ----------------------------------------------------------------

def worker_database_url(url: str | None) -> str | None:
    """PORTAL_TEST_DATABASE_URL as this process uses it: each pytest-xdist worker has a database
    of its own beside it (<name>_gw0, <name>_gw1, ...), so workers never meet in one."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not url or not worker:
        return url
    own = make_url(url)
    return own.set(database=f"{own.database}_{worker}").render_as_string(hide_password=False)


POSTGRES_URL = worker_database_url(os.environ.get("PORTAL_TEST_DATABASE_URL"))


# --- the test client ------------------------------------------------------------------------

class PortalClient(FlaskClient):
    """A browser stand-in: knows its CSRF token and can speak htmx."""

    def open(self, *args, buffered=True, **kwargs):
        # Read whole responses, so a served file is closed before the test goes on.
        return super().open(*args, buffered=buffered, **kwargs)

    def csrf_token(self) -> str:
        """The token this browser's pages carry, made as Flask-WTF's generate_csrf makes it (a
        random token kept in the session, sent signed) without asking for a page."""
        app = self.application
        field = app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
        with self.session_transaction() as session:
            raw = session.setdefault(field, hashlib.sha1(os.urandom(64)).hexdigest())
        secret = app.config.get("WTF_CSRF_SECRET_KEY") or app.secret_key
        return URLSafeTimedSerializer(secret, salt="wtf-csrf-token").dumps(raw)

    def page_csrf_token(self, url: str = "/") -> str:
        """The token as a page hands it to htmx, for tests of CSRF itself."""
        page = self.get(url, follow_redirects=True).get_data(as_text=True)
        return re.search(r'"X-CSRFToken": "([^"]+)"', page).group(1)

    def htmx(self, method: str, url: str, **kwargs):
        headers = {"HX-Request": "true", **kwargs.pop("headers", {})}
        if method.upper() != "GET":
            headers.setdefault("X-CSRFToken", self.csrf_token())
        return self.open(url, method=method.upper(), headers=headers, **kwargs)

    def submit(self, url: str, data: dict | None = None, **kwargs):
        """A plain form post, as a browser without JavaScript sends it."""
        return self.post(url, data={"csrf_token": self.csrf_token(), **(data or {})}, **kwargs)

    def login(self, user, password: str = PASSWORD, remember: bool = False):
        response = self.submit(
            "/login",
            {"email": user.email, "password": password, "remember": "y" if remember else ""},
        )
        assert response.status_code == 302, response.get_data(as_text=True)
        return response


# --- changing and reading rows behind the app's back, each in an app context of its own ---

def update_row(app, model, row_id, **columns) -> None:
    """Sets columns of one row and commits, as another request would."""
    with app.app_context():
        row = db.session.get(model, row_id)
        for name, value in columns.items():
            setattr(row, name, value)
        db.session.commit()


def set_private_messaging(app, business: Business, enabled: bool) -> None:
    update_row(app, Business, business.id, private_messaging_enabled=enabled)


def grant_private_access(app, user, granted: bool = True) -> None:
    update_row(app, User, user.id, private_messages_access=granted)


def every_row(app) -> dict[str, list[dict]]:
    """Every row of every table, by table name, as the driver returns them: the access matrix
    takes two of these around every write, and without SQLAlchemy's compiling and typing a
    snapshot costs a sixth of the time."""
    with app.app_context():
        cursor = db.session.connection().connection.driver_connection.cursor()
        try:
            return {table: _rows(cursor, query) for table, query in _every_row_queries()}
        finally:
            cursor.close()


def _quoted(columns) -> str:
    return ", ".join(f'"{column.name}"' for column in columns)


def _rows(cursor, query: str) -> list[dict]:
    cursor.execute(query)
    columns = [column[0] for column in cursor.description]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


@functools.cache
def _every_row_queries() -> list[tuple[str, str]]:
    return [
        # Columns by name: a plan PostgreSQL prepared for `*` fails if a migration test leaves
        # the table's columns in another order.
        (table.name, f'SELECT {_quoted(table.columns)} FROM "{table.name}" '
                     f"ORDER BY {_quoted(table.primary_key)}")
        for table in db.metadata.sorted_tables
    ]


def count_rows(app, model, *where) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model).where(*where))


# The savepoints that stand for the app's transactions inside a test's own (conftest.py): the
# app does not send them outside tests.
_TEST_SAVEPOINTS = re.compile(r"(SAVEPOINT|RELEASE SAVEPOINT|ROLLBACK TO SAVEPOINT) \w+$")


def drop_connections_of(app, database_url):
    """Ends the app's connection on the server's side, as a restart or an idle timeout does."""
    with app.app_context(), db.engine.connect() as connection:
        backend = connection.scalar(text("SELECT pg_backend_pid()"))
    server = create_engine(database_url)
    with server.connect() as connection:
        assert connection.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
    server.dispose()


@contextmanager
def record_sql(app):
    """Collects (statement, parameters) of every statement the database runs inside the block."""
    statements = []

    def listener(connection, cursor, statement, parameters, context, executemany):
        if not _TEST_SAVEPOINTS.match(statement):
            statements.append((statement, parameters))

    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            yield statements
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)


def count_queries(app, browser, url):
    with record_sql(app) as statements:
        assert browser.get(url).status_code == 200
    return len(statements)


# --- the outbox, and the mail and SMS services on loopback ------------------------------------

def deliver(app) -> int:
    total = 0
    while done := worker.run_once(app, "test-worker"):
        total += done
    return total


def make_due(app):
    with app.app_context():
        db.session.execute(update(Notification).values(due_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Inbox:
    """An aiosmtpd handler that keeps what it receives; can refuse recipients."""

    def __init__(self):
        self.received: list[tuple[list[str], email.message.EmailMessage]] = []
        self.refuse_with: str | None = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refuse_with:
            return self.refuse_with
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email_policy)
        # What the mailbox's server writes on delivery: the envelope sender (MAIL FROM).
        message["Return-Path"] = f"<{envelope.mail_from}>"
        self.received.append((list(envelope.rcpt_tos), message))
        return "250 Message accepted"

    def to(self, address: str) -> list:
        return [message for rcpt, message in self.received if address in rcpt]

    def recipients(self) -> list[str]:
        return sorted(address for rcpt, _ in self.received for address in rcpt)


class SmtpServer:
    def __init__(self, port: int):
        self.inbox = Inbox()
        self.port = port
        self.controller = None

    def start(self):
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self):
        if self.controller:
            self.controller.stop()
            self.controller = None


@contextmanager
def smtp_mailbox(app, base_url: str = BASE_URL):
    """A real SMTP server on loopback that the worker delivers to."""
    server = SmtpServer(free_port())
    server.start()
    app.config.update(
        MAIL_TRANSPORT="smtp", MAIL_SERVER="127.0.0.1", MAIL_PORT=server.port,
        MAIL_SUPPRESS_SEND=False, MAIL_DEFAULT_SENDER="portal@happytails.example",
        NOTIFICATION_DELAY_SECONDS=0, PORTAL_BASE_URL=base_url,
    )
    mail = app.extensions["mail"]
    mail.server, mail.port, mail.suppress = "127.0.0.1", server.port, False
    try:
        yield server
    finally:
        server.stop()


def text_of(message) -> str:
    return message.get_body(("plain",)).get_content()


def link_in(message, path: str) -> str:
    """The link of the email, as a path the test client can open."""
    for part in (text_of(message), message.get_body(("html",)).get_content()):
        assert f"{BASE_URL}{path}" in part
    return re.search(rf"{re.escape(BASE_URL)}({re.escape(path)}[\w.-]+)", text_of(message))[1]


# --- replies coming in ---------------------------------------------------------------------

REPLY_DOMAIN = "replies.happytails.example"


def reply_address(app, login, feed: Feed = Feed.CONVERSATION) -> str:
    """The reply address a notification email to `login` about their client's feed carries."""
    with app.app_context():
        return address_for(ReplyToken(login.business_id, login.client_id, feed, login.id))


def reply_email(sender: str, to: str, text: str, message_id: str | None = None) -> bytes:
    """A plain reply, as a mail program sends it (lines end in CRLF, as over SMTP)."""
    reply = EmailMessage()
    reply["From"] = sender
    reply["To"] = to
    reply["Subject"] = "Re: New message from Happy Tails"
    reply["Message-ID"] = message_id or make_msgid(domain="mail.example")
    reply.set_content(text)
    return reply.as_bytes(policy=SMTP)


class TwilioStandIn(BaseHTTPRequestHandler):
    """Twilio's API on loopback. Takes texts (recorded in `requests`; answered with the message's
    id, SM1, SM2, …, or with the status in `answer`), and serves MMS media: `media` maps a path
    to (content type, bytes), to a status, or to ("redirect", location), given only to the
    account's credentials (`ACCOUNT`); `fetched` lists the paths asked for."""

    ACCOUNT = ("AC123", "secret")
    requests: list = []
    media: dict = {}
    fetched: list = []
    answer: int = 201

    @classmethod
    def reset(cls):
        cls.requests, cls.media, cls.fetched, cls.answer = [], {}, [], 201

    def do_POST(self):
        length = int(self.headers["Content-Length"])
        TwilioStandIn.requests.append((self.path, parse_qs(self.rfile.read(length).decode())))
        if TwilioStandIn.answer != 201:
            self._answer(TwilioStandIn.answer, "application/json",
                         b'{"code": 20500, "message": "refused", "status": %d}'
                         % TwilioStandIn.answer)
            return
        # Twilio's answer: the message's id and its first status.
        sid = f"SM{len(TwilioStandIn.requests)}"
        self._answer(201, "application/json", f'{{"sid": "{sid}", "status": "queued"}}'.encode())

    def do_GET(self):
        TwilioStandIn.fetched.append(self.path)
        expected = "Basic " + base64.b64encode(":".join(self.ACCOUNT).encode()).decode()
        served = TwilioStandIn.media.get(self.path, 404)
        if self.path.startswith("/2010-04-01/") and self.headers.get("Authorization") != expected:
            self._answer(401, "text/plain", b"authenticate")
        elif isinstance(served, int):
            self._answer(served, "text/plain", b"")
        elif served[0] == "redirect":
            self.send_response(307)
            self.send_header("Location", served[1])
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self._answer(200, *served)

    def _answer(self, status: int, content_type: str, body: bytes):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


# --- web push: keys, devices, the push service on loopback ------------------------------------

def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_key_pair() -> tuple[str, str]:
    """A VAPID key pair as the portal keeps it: PEM private key, base64url public point."""
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    public = b64url(key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint))
    return pem, public


class PushService:
    """Plays a push service on 127.0.0.1: records every request; answers 201, or what
    `answers` says for a path (a status, "hang" to outlast the sender's timeout, or
    "redirect" to send the request on to /elsewhere). Over TLS when given an SSL context."""

    def __init__(self, tls: ssl.SSLContext | None = None):
        self.requests: list[dict] = []
        self.answers: dict[str, int | str] = {}
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {name.lower(): value for name, value in self.headers.items()}
                service.requests.append({"path": self.path, "body": body, "headers": headers})
                answer = service.answers.get(self.path, 201)
                if answer == "hang":
                    time.sleep(1.5)
                    answer = 201
                if answer == "redirect":
                    self.send_response(307)
                    self.send_header("Location", "/elsewhere")
                else:
                    self.send_response(answer)
                self.send_header("Content-Length", "0")
                if answer == 201:
                    self.send_header("Location", f"{self.path}/messages/1")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.origin = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def to(self, device: "Device") -> list[dict]:
        return [request for request in self.requests if request["path"] == device.path]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class Device:
    """A browser's push subscription: its own ECDH key pair and 16-byte auth secret."""

    def __init__(self, service: PushService | None, name: str, endpoint: str | None = None):
        self.path = f"/push/v1/{name}-{secrets.token_hex(4)}"
        self.endpoint = endpoint or service.origin + self.path
        self.private_key = ec.generate_private_key(ec.SECP256R1())
        self.auth_secret = os.urandom(16)

    def subscription(self) -> dict:
        """What PushSubscription.toJSON() gives in a browser."""
        public = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        return {"endpoint": self.endpoint, "expirationTime": None,
                "keys": {"p256dh": b64url(public), "auth": b64url(self.auth_secret)}}

    def decrypt(self, request: dict) -> dict:
        assert request["headers"]["content-encoding"] == "aes128gcm"
        plain = http_ece.decrypt(request["body"], private_key=self.private_key,
                                 auth_secret=self.auth_secret, version="aes128gcm")
        return json.loads(plain)


def enable(browser, device: Device, **kwargs):
    """What push.js does: POST the subscription as JSON with the CSRF header."""
    return browser.post("/push/subscriptions", json=device.subscription(),
                        headers={"X-CSRFToken": browser.csrf_token()}, **kwargs)


def store(app, user, *endpoints: str) -> None:
    """Subscriptions written straight into the database, as rows saved before the portal's
    present rules may hold them."""
    with app.app_context():
        for endpoint in endpoints:
            keys = Device(None, "stored", endpoint).subscription()["keys"]
            db.session.add(PushSubscription(user_id=user.id, business_id=user.business_id,
                                            endpoint=endpoint, **keys))
        db.session.commit()


class FakeDns:
    """Answers for names (DNS cannot be asked for real here): `answers[name]` is a list of
    addresses, or several lists given one lookup after another (the last one repeats).
    Addresses written as such are resolved as usual; `lookups` lists the names asked."""

    def __init__(self, real):
        self.real = real
        self.answers: dict[str, list] = {}
        self.lookups: list[str] = []

    def getaddrinfo(self, host, port, family=0, type=0, proto=0, flags=0):
        try:
            ipaddress.ip_address(host)
            return self.real(host, port, family, type, proto, flags)
        except ValueError:
            pass
        self.lookups.append(host)
        answers = self.answers.get(host)
        if not answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        if isinstance(answers[0], list):
            answers = answers.pop(0) if len(answers) > 1 else answers[0]
        return [(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM, 6,
                 "", (address, port, 0, 0) if ":" in address else (address, port))
                for address in answers]


def post(browser, household, text: str, feed: str = "conversation"):
    response = browser.submit(f"/clients/{household.id}/feeds/{feed}/messages", {"text": text})
    assert response.status_code == 302, response.get_data(as_text=True)


def push_rows(app, **where) -> list[Notification]:
    with app.app_context():
        query = select(Notification).where(Notification.channel == Channel.PUSH)
        for name, value in where.items():
            query = query.where(getattr(Notification, name) == value)
        found = list(db.session.scalars(query.order_by(Notification.id)))
        for row in found:
            db.session.expunge(row)
        return found


def subscriptions(app) -> list[tuple[int, str]]:
    with app.app_context():
        return [tuple(row) for row in db.session.execute(
            select(PushSubscription.user_id, PushSubscription.endpoint)
            .order_by(PushSubscription.id))]


def confirmed_phone(number: str) -> dict:
    """Columns for update_row: a phone its owner confirmed with a code, so texts go to it."""
    return {"phone": number, "phone_confirmed_at": utcnow()}


def insert_visit(app, client, staff, *, starts_at, ends_at, title="Walk", status=None):
    """A visit row as it stands, written directly (no schedule rules): detached, for tests that
    need visits at given moments."""
    with app.app_context():
        visit = ScheduledService(
            business_id=client.business_id, client_id=client.id,
            staff_id=staff.id if staff else None, title=title, starts_at=starts_at,
            ends_at=ends_at, status=status or ServiceStatus.SCHEDULED,
        )
        db.session.add(visit)
        db.session.commit()
        db.session.refresh(visit)
        db.session.expunge(visit)
        return visit


def storing_fails_on_the_second(monkeypatch) -> None:
    """The second file stored (messages.store_prepared) fails, as a full disk would: for the
    tests that nothing of a half-stored change is left behind."""
    real_store, stored = messages.store_prepared, []

    def fails_on_the_second(prepared, written):
        if stored:
            raise OSError("disk full")
        stored.append(real_store(prepared, written))
        return stored[-1]

    monkeypatch.setattr(messages, "store_prepared", fails_on_the_second)


def certificate_for(name: str, folder) -> tuple[str, str]:
    """A self-signed certificate for `name` (a host name or an IP address) and its key: the
    files' paths."""
    try:
        alternative = x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        alternative = x509.DNSName(name)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([alternative]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_file), str(key_file)
