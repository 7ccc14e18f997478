"""The IMAP fetcher: for a business whose replies arrive in a mailbox rather than at a receiver.

`flask --app wsgi mail fetch` logs in to IMAP_HOST as IMAP_USER, selects IMAP_FOLDER and hands
every message not yet taken to `ingest_email`, then waits: in IDLE where the server offers it
(renewed within 29 minutes, as RFC 2177 asks), otherwise polling every minute. A lost connection
is opened again, waiting longer after each failure.

What has been taken is marked with the keyword $PortalTaken (and \\Seen, so it looks read in a
mail client), never deleted. The keyword, not \\Seen, decides: a person reading the mailbox in
their mail client marks messages seen, and the portal still takes them. A message is marked
only after ingest returned; one it raised on stays unmarked and comes again next round (and a
message taken twice, say when the connection dropped before the mark, is recorded once). Where
the server keeps no keywords of ours (its PERMANENTFLAGS lack \\*), \\Seen is the mark instead:
then a message someone read in a mail client before the portal took it is not taken.
"""

import logging
import threading
import time
from collections import Counter
from contextlib import suppress
from dataclasses import dataclass, field

from flask import Flask
from imapclient import IMAPClient, SocketTimeout
from imapclient.exceptions import IMAPClientError

from portal.inbound.ingest import Outcome, ingest_email

log = logging.getLogger(__name__)

TAKEN_KEYWORD = "$PortalTaken"
# What nobody at any business would see (unreadable, or for a reply address the portal never
# gave out from an address no login has) is taken but left unread, with this keyword: the
# mailbox's owner finds it there, where a mail server would have returned it to its sender.
UNPLACED_KEYWORD = "$PortalUnplaced"
SEEN = r"\Seen"
# IDLE is renewed before the 30 minutes after which a server may drop a silent client.
IDLE_RENEW_SECONDS = 28 * 60
# The folder is searched again at least this often, IDLE or not (IMAP_POLL_SECONDS): a
# server's IDLE can miss a message that arrives just as IDLE starts (Dovecot 2.3 did, about
# one time in ten in tests), and that message must not wait for the next one.
POLL_SECONDS = 60
# How often IDLE looks up from the socket to see whether it was asked to stop.
IDLE_CHECK_SECONDS = 1.0
FIRST_RETRY_SECONDS = 1
MAX_RETRY_SECONDS = 5 * 60
CONNECT_TIMEOUT = 15
READ_TIMEOUT = 120

# What a lost or refused connection raises: socket and TLS errors, and imaplib's (abort, and
# a NO or BAD answer, a failed login among them).
CONNECTION_ERRORS = (OSError, IMAPClientError)


class MailboxNotConfigured(RuntimeError):
    """Says which setting is missing."""


@dataclass(frozen=True)
class MailboxSettings:
    host: str
    port: int
    ssl: bool
    user: str
    password: str
    folder: str

    @classmethod
    def from_config(cls, config) -> "MailboxSettings":
        missing = [name for name in ("IMAP_HOST", "IMAP_USER", "IMAP_PASSWORD")
                   if not config.get(name)]
        if missing:
            raise MailboxNotConfigured(
                f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set: "
                "`mail fetch` reads the mailbox at IMAP_HOST (port IMAP_PORT) as IMAP_USER "
                "with IMAP_PASSWORD"
            )
        return cls(config["IMAP_HOST"], config["IMAP_PORT"], config["IMAP_SSL"],
                   config["IMAP_USER"], config["IMAP_PASSWORD"], config["IMAP_FOLDER"])

    def __str__(self) -> str:
        return f"{self.user} at {self.host}:{self.port}, folder {self.folder}"


@dataclass(frozen=True)
class Marking:
    """How a message not taken yet is found, and what marks it taken."""

    untaken: tuple
    flags: tuple[str, ...]


BY_KEYWORD = Marking(("NOT", "KEYWORD", TAKEN_KEYWORD), (TAKEN_KEYWORD, SEEN))
BY_SEEN = Marking(("UNSEEN",), (SEEN,))


def marking_for(permanent_flags) -> Marking:
    """The keyword where the folder keeps new keywords (\\* among its PERMANENTFLAGS)."""
    flags = {(flag if isinstance(flag, bytes) else flag.encode()).lower()
             for flag in permanent_flags}
    if b"\\*" in flags or TAKEN_KEYWORD.lower().encode() in flags:
        return BY_KEYWORD
    return BY_SEEN


@dataclass
class Round:
    """What one pass over the folder took, and what it left for the next."""

    outcomes: list[Outcome] = field(default_factory=list)
    not_taken: list[int] = field(default_factory=list)  # UIDs ingest raised on

    def summary(self) -> str:
        kinds = Counter(
            "again" if outcome.duplicate else str(outcome.kind) for outcome in self.outcomes
        )
        said = f"Took {len(self.outcomes)} message{'' if len(self.outcomes) == 1 else 's'}"
        if kinds:
            said += " (" + ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items()))
            said += ")"
        if self.not_taken:
            said += f"; {len(self.not_taken)} not taken, left for the next round"
        return said + "."


class Mailbox:
    """One logged-in connection with the folder selected."""

    def __init__(self, settings: MailboxSettings):
        self.settings = settings
        self.client = IMAPClient(settings.host, port=settings.port, ssl=settings.ssl,
                                 timeout=SocketTimeout(CONNECT_TIMEOUT, READ_TIMEOUT))
        try:
            if not settings.ssl and self.client.has_capability("STARTTLS"):
                self.client.starttls()
            self.client.login(settings.user, settings.password)
            selected = self.client.select_folder(settings.folder)
        except BaseException:
            self.client.shutdown()
            raise
        self.marking = marking_for(selected.get(b"PERMANENTFLAGS", ()))
        self.announced_new_mail()  # the count SELECT gave is no news
        if self.marking is BY_SEEN:
            log.warning("%s keeps no keywords: messages are marked taken with \\Seen, so one "
                        "read in a mail client before the portal takes it is left", settings)

    def __enter__(self) -> "Mailbox":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.client.logout()
        except CONNECTION_ERRORS:
            with suppress(OSError):  # already gone
                self.client.shutdown()

    def untaken(self) -> list[int]:
        return sorted(self.client.search(list(self.marking.untaken)))

    def raw(self, uid: int) -> bytes | None:
        """The whole message, read without marking it \\Seen; None once it is gone."""
        found = self.client.fetch([uid], ["BODY.PEEK[]"]).get(uid)
        return found.get(b"BODY[]") if found else None

    def announced_new_mail(self) -> bool:
        """Whether the server told of new mail (EXISTS, RECENT) in its answer to one of our
        commands since this was last asked. A message that arrives during a SEARCH or a STORE
        is announced there, and IDLE does not announce it again: without this look it would
        wait for the next message or IDLE's renewal. (imaplib, under imapclient, keeps the
        untagged answers of every command by type.)"""
        untagged = self.client._imap.untagged_responses
        return any([untagged.pop(kind, None) for kind in ("EXISTS", "RECENT")])

    def mark_taken(self, uid: int, *, unplaced: bool = False) -> None:
        flags = list(self.marking.flags)
        if unplaced and self.marking is BY_KEYWORD:
            flags = [TAKEN_KEYWORD, UNPLACED_KEYWORD]
        self.client.add_flags([uid], flags, silent=True)

    def wait_for_mail(self, stop: threading.Event, *, poll_seconds: float = POLL_SECONDS,
                      renew_seconds: float = IDLE_RENEW_SECONDS) -> None:
        """Returns when new mail may have come, when IDLE is due for renewal, or on stop."""
        if not self.client.has_capability("IDLE"):
            stop.wait(poll_seconds)
            return
        if self.announced_new_mail():
            return
        self.client.idle()
        started = time.monotonic()
        try:
            while not stop.is_set() and time.monotonic() - started < renew_seconds:
                asked = time.monotonic()
                responses = self.client.idle_check(timeout=IDLE_CHECK_SECONDS)
                if any(_ends_idle(response) for response in responses):
                    return
                # Nothing to read, yet back before the timeout: imapclient says so for a
                # connection the server closed. Leaving IDLE finds out (and raises if so).
                if not responses and time.monotonic() - asked < IDLE_CHECK_SECONDS / 2:
                    return
        finally:
            self.client.idle_done()


def _ends_idle(response) -> bool:
    """New mail (EXISTS, RECENT), or the server saying goodbye (BYE)."""
    return (len(response) > 1 and response[1] in (b"EXISTS", b"RECENT")) or (
        bool(response) and response[0] == b"BYE")


def take_new(app: Flask, mailbox: Mailbox) -> Round:
    """One pass: ingests every message not taken yet, oldest first, and marks it taken."""
    done = Round()
    mailbox.announced_new_mail()  # what came before this round's search is in it
    for uid in mailbox.untaken():
        raw = mailbox.raw(uid)
        if raw is None:
            continue
        try:
            with app.app_context():
                outcome = ingest_email(raw)
        except Exception:
            log.exception("message %s in %s was not taken; it comes again next round", uid,
                          mailbox.settings)
            done.not_taken.append(uid)
            continue
        mailbox.mark_taken(uid, unplaced=outcome.returned_to_sender)
        done.outcomes.append(outcome)
    return done


def fetch_once(app: Flask, settings: MailboxSettings) -> Round:
    """Connects, takes what is new, logs out. Raises CONNECTION_ERRORS."""
    with Mailbox(settings) as mailbox:
        return take_new(app, mailbox)


def fetch_forever(app: Flask, settings: MailboxSettings, stop: threading.Event, *,
                  poll_seconds: float = POLL_SECONDS,
                  renew_seconds: float = IDLE_RENEW_SECONDS) -> None:
    """Takes new mail as it comes until `stop` is set, connecting again after a failure."""
    retry_in = FIRST_RETRY_SECONDS
    while not stop.is_set():
        try:
            with Mailbox(settings) as mailbox:
                log.info("fetching replies from %s", settings)
                retry_in = FIRST_RETRY_SECONDS
                while not stop.is_set():
                    taken = take_new(app, mailbox)
                    if taken.outcomes or taken.not_taken:
                        log.info("%s: %s", settings, taken.summary())
                    # What was left is tried again within a poll's time, new mail or not.
                    mailbox.wait_for_mail(stop, poll_seconds=poll_seconds,
                                          renew_seconds=min(renew_seconds, poll_seconds))
        except CONNECTION_ERRORS as error:
            log.warning("the mailbox %s: %s; connecting again in %s s", settings, error,
                        retry_in)
            stop.wait(retry_in)
            retry_in = min(retry_in * 2, MAX_RETRY_SECONDS)
