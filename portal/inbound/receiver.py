"""The receiver: the business's mail server delivers replies here, over SMTP or LMTP.

`flask --app wsgi mail receive` runs it (and `make run`, in-process). It accepts recipients on
the reply domain only, takes each message whole (up to INBOUND_MAX_BYTES) and hands it to
`ingest_email` once per recipient, in a worker thread: ingest is synchronous and talks to the
database, and the event loop keeps serving other sessions meanwhile. A recipient given twice
(in any case) is taken once: it is answered 250 again, and over LMTP its answer after DATA is
the first one's.

Every outcome ingest records is an answer of 250 (the message is taken, whatever became of it),
except what nobody at any business would see (unreadable, or for a reply address the portal
never gave out from an address no login has): that is refused with 550, so the sender's own
server tells them it was not delivered. When ingest raised (the database is down, say) the
answer is 451, so that the sending server tries again later. Over LMTP each recipient gets an
answer of its own.
"""

import asyncio
import logging
import socket
from concurrent.futures import ThreadPoolExecutor

from aiosmtpd.controller import Controller
from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP
from flask import Flask

from portal.inbound.ingest import ingest_email
from portal.reply_addresses import is_reply_address

log = logging.getLogger(__name__)

# Sessions at once; one more is told 421 and its server comes back later. Each may hold a
# message of up to INBOUND_MAX_BYTES in memory.
MAX_SESSIONS = 20
# Messages ingested at once (each holds a database connection).
INGEST_THREADS = 4
# Seconds a client may stay silent before the session is closed (RFC 5321 asks for 5 minutes).
SESSION_TIMEOUT = 300
# Recipients per message (RFC 5321 asks a server to take at least 100).
MAX_RECIPIENTS = 100

RECIPIENT_OK = "250 2.1.5 OK"
TAKEN = "250 2.0.0 Message taken"
RETURNED = "550 5.1.1 Not delivered: {reason}"
TRY_LATER = "451 4.3.0 Message not taken this time; try again later"
NOT_OURS = "550 5.1.1 No such reply address here"
TOO_MANY_RECIPIENTS = "452 4.5.3 Too many recipients"
TOO_BUSY = "421 4.3.2 Too many connections; try again later"


class ReplyHandler:
    """The aiosmtpd handler: which recipients are taken, and what each delivery became."""

    def __init__(self, app: Flask, *, lmtp: bool = False, max_sessions: int = MAX_SESSIONS):
        self.app = app
        self.lmtp = lmtp
        self.max_sessions = max_sessions
        self.open_sessions = 0  # changed on the event loop's thread only
        self.executor = ThreadPoolExecutor(INGEST_THREADS, thread_name_prefix="mail-ingest")

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        accepted = _accepted(envelope)
        if len(accepted) >= MAX_RECIPIENTS:
            return TOO_MANY_RECIPIENTS
        if address.lower() in (recipient.lower() for recipient in envelope.rcpt_tos):
            accepted.append(address.lower())
            return RECIPIENT_OK
        with self.app.app_context():
            ours = is_reply_address(address)
        if not ours:
            return NOT_OURS
        envelope.rcpt_tos.append(address)
        accepted.append(address.lower())
        return RECIPIENT_OK

    async def handle_DATA(self, server, session, envelope):
        loop = asyncio.get_running_loop()
        answers = [
            await loop.run_in_executor(self.executor, self.ingest, envelope.original_content,
                                       recipient)
            for recipient in envelope.rcpt_tos
        ]
        if self.lmtp:
            # One line per RCPT answered 250, in their order (RFC 2033 section 4.2).
            by_recipient = dict(zip(
                (recipient.lower() for recipient in envelope.rcpt_tos), answers, strict=True))
            return "\r\n".join(by_recipient[address] for address in _accepted(envelope))
        # SMTP has one answer for all: any recipient not taken makes the whole message come
        # again, and a second delivery to the recipients already taken changes nothing. It
        # goes back to its sender only when no recipient took it.
        if TRY_LATER in answers:
            return TRY_LATER
        return TAKEN if TAKEN in answers else answers[0]

    def ingest(self, raw: bytes, recipient: str) -> str:
        """Runs in a worker thread, in an app context of its own."""
        try:
            with self.app.app_context():
                outcome = ingest_email(raw, recipient)
        except Exception:
            log.exception("a message to %s was not taken; its server will try again", recipient)
            return TRY_LATER
        log.info("a message to %s: %s%s %s", recipient, outcome.kind,
                 " (again)" if outcome.duplicate else "", outcome.reason)
        if outcome.returned_to_sender:
            return RETURNED.format(reason=_one_line(outcome.reason))
        return TAKEN


def _accepted(envelope) -> list[str]:
    """Every RCPT answered 250 in this transaction, repeats included, in lower case."""
    if not hasattr(envelope, "accepted_rcpts"):
        envelope.accepted_rcpts = []
    return envelope.accepted_rcpts


def _one_line(reason: str) -> str:
    """An SMTP reply is one line of printable ASCII."""
    printable = "".join(char if " " <= char <= "~" else "?" for char in reason)
    return " ".join(printable.split())[:200] or "no reason given"


class _SessionLimit:
    """Counts open sessions; one beyond the handler's limit is answered 421 and closed, before
    its greeting (RFC 5321 section 3.1)."""

    async def _handle_client(self):
        handler = self.event_handler
        if handler.open_sessions >= handler.max_sessions:
            await self.push(TOO_BUSY)
            self.transport.close()
            return
        handler.open_sessions += 1
        try:
            await super()._handle_client()
        finally:
            handler.open_sessions -= 1


class SmtpSession(_SessionLimit, SMTP):
    pass


class LmtpSession(_SessionLimit, LMTP):
    pass


class Receiver(Controller):
    """The receiver on host:port, serving from a thread of its own: start() and stop()."""

    def __init__(self, app: Flask, host: str, port: int, *, lmtp: bool = False,
                 max_sessions: int = MAX_SESSIONS):
        self.lmtp = lmtp
        super().__init__(
            ReplyHandler(app, lmtp=lmtp, max_sessions=max_sessions),
            hostname=host, port=port,
            server_hostname=socket.gethostname(), ident="portal replies",
            data_size_limit=app.config["INBOUND_MAX_BYTES"], timeout=SESSION_TIMEOUT,
        )

    def start(self) -> None:
        """Listens, then serves. Raises OSError at once when the port is taken."""
        family = socket.AF_INET6 if ":" in self.hostname else socket.AF_INET
        try:
            self._listening = socket.create_server((self.hostname, self.port), family=family)
        except OSError:
            self.loop.close()
            raise
        super().start()

    def _create_server(self):
        return self.loop.create_server(self._factory_invoker, sock=self._listening)

    def factory(self):
        session = LmtpSession if self.lmtp else SmtpSession
        return session(self.handler, **self.SMTP_kwargs)

    @property
    def protocol(self) -> str:
        return "LMTP" if self.lmtp else "SMTP"

    def stop(self, no_assert: bool = False):
        super().stop(no_assert)
        # Lets a message being ingested finish its commit.
        self.handler.executor.shutdown(wait=True)


def start_in_process(app: Flask) -> Receiver:
    """For `make run`: the receiver on MAIL_RECEIVE_HOST:MAIL_RECEIVE_PORT, in a thread of the
    development server. Raises OSError when the port is taken."""
    receiver = Receiver(app, app.config["MAIL_RECEIVE_HOST"], app.config["MAIL_RECEIVE_PORT"])
    receiver.start()
    return receiver
