"""Replies taken from an IMAP mailbox: a real Dovecot on loopback (tests/mail_servers.py), into
which the tests APPEND what a client sent, and `flask mail fetch`."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select, text

from portal.extensions import db
from portal.inbound import imap
from portal.models import Feed, InboundMessage, InboundOutcome, Message

from .helpers import REPLY_DOMAIN, reply_address, reply_email
from .mail_servers import PASSWORD, USER

# The fetcher that waits in IDLE runs in a thread of its own: the data is committed.
pytestmark = pytest.mark.committed

TAKEN = {b"$PortalTaken", b"\\Seen"}
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def reply_to(app, dovecot, household_login):
    return reply_address(app, household_login)


def feed_texts(app, household) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(
            select(Message.text).where(Message.client_id == household.id,
                                       Message.feed == Feed.CONVERSATION).order_by(Message.id)))


def wait_for(condition, what: str, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {seconds} s")
        time.sleep(0.05)


def test_fetch_once_takes_each_new_reply_and_marks_it(app, runner, dovecot, household,
                                                     household_login, reply_to):
    dovecot.append(
        reply_email(household_login.email, reply_to, "Rex is limping a little.",
                    message_id="<one@mail.example>"),
        reply_email("stranger@elsewhere.example", reply_to, "Who is this?",
                    message_id="<two@mail.example>"),
    )
    result = runner.invoke(args=["mail", "fetch", "--once"])
    assert result.exit_code == 0, result.output
    assert result.output == "Took 2 messages (1 posted, 1 unmatched).\n"
    assert feed_texts(app, household) == ["Rex is limping a little."]
    assert dovecot.flags() == {b"<one@mail.example>": TAKEN, b"<two@mail.example>": TAKEN}
    # What is marked is not taken again; nothing is deleted.
    again = runner.invoke(args=["mail", "fetch", "--once"])
    assert again.output == "Took 0 messages.\n"
    assert len(dovecot.flags()) == 2


def test_what_no_business_would_see_is_left_unread_for_the_mailbox_owner(
    app, runner, dovecot, household, household_login, reply_to, make_business
):
    make_business("Other Paws")
    forged = f"reply+aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@{REPLY_DOMAIN}"
    dovecot.append(
        reply_email("stranger@elsewhere.example", forged, "Is this the dog walker?",
                    message_id="<forged@mail.example>"),
        reply_email(household_login.email, reply_to, "Rex ate well.",
                    message_id="<genuine@mail.example>"),
    )
    result = runner.invoke(args=["mail", "fetch", "--once"])
    assert result.output == "Took 2 messages (1 posted, 1 unmatched).\n"
    # Taken, so not read again; unread, so whoever reads the mailbox finds it.
    assert dovecot.flags() == {b"<forged@mail.example>": {b"$PortalTaken", b"$PortalUnplaced"},
                               b"<genuine@mail.example>": TAKEN}
    assert runner.invoke(args=["mail", "fetch", "--once"]).output == "Took 0 messages.\n"


def test_a_reply_read_in_a_mail_client_is_still_taken(app, dovecot, household,
                                                     household_login, reply_to):
    with dovecot.client() as client:
        client.append("INBOX", reply_email(household_login.email, reply_to, "Read already.",
                                           message_id="<seen@mail.example>"), flags=[b"\\Seen"])
    taken = imap.fetch_once(app, imap.MailboxSettings.from_config(app.config))
    assert [outcome.kind for outcome in taken.outcomes] == [InboundOutcome.POSTED]
    assert feed_texts(app, household) == ["Read already."]
    assert dovecot.flags() == {b"<seen@mail.example>": TAKEN}


def test_a_reply_not_taken_stays_unmarked_for_the_next_round(app, runner, dovecot, household,
                                                            household_login, reply_to):
    dovecot.append(reply_email(household_login.email, reply_to, "Back at 6.",
                               message_id="<later@mail.example>"))
    settings = imap.MailboxSettings.from_config(app.config)
    rename_inbound_table(app, "inbound_messages", "inbound_messages_away")
    try:
        failed = imap.fetch_once(app, settings)
        from_cron = runner.invoke(args=["mail", "fetch", "--once"])
    finally:
        rename_inbound_table(app, "inbound_messages_away", "inbound_messages")
    assert failed.outcomes == [] and len(failed.not_taken) == 1
    assert failed.summary() == "Took 0 messages; 1 not taken, left for the next round."
    assert from_cron.exit_code == 75 and from_cron.output == failed.summary() + "\n"
    # Not even \Seen: reading it did not mark it.
    assert dovecot.flags() == {b"<later@mail.example>": set()}
    assert imap.fetch_once(app, settings).summary() == "Took 1 message (1 posted)."
    assert feed_texts(app, household) == ["Back at 6."]


def test_a_reply_arriving_during_idle_is_taken_within_seconds(app, dovecot, household,
                                                             household_login, reply_to,
                                                             monkeypatch):
    settings = imap.MailboxSettings.from_config(app.config)
    stop = threading.Event()
    # Whether the fetcher is in IDLE at this moment.
    idling = threading.Event()
    idle, idle_done = imap.IMAPClient.idle, imap.IMAPClient.idle_done
    monkeypatch.setattr(imap.IMAPClient, "idle", lambda client: (idle(client), idling.set())[0])
    monkeypatch.setattr(imap.IMAPClient, "idle_done",
                        lambda client: (idling.clear(), idle_done(client))[1])
    fetcher = threading.Thread(target=imap.fetch_forever, args=(app, settings, stop))
    # There before the fetcher: its first search takes it.
    dovecot.append(reply_email(household_login.email, reply_to, "First."))
    fetcher.start()
    try:
        wait_for(lambda: feed_texts(app, household) == ["First."], "the first reply")
        # Idling now (the search every minute is far off); the next one is announced by the
        # server and taken at once.
        wait_for(idling.is_set, "IDLE")
        time.sleep(0.3)
        dovecot.append(reply_email(household_login.email, reply_to, "Second, while idle."))
        wait_for(lambda: len(feed_texts(app, household)) == 2, "the reply during IDLE",
                 seconds=5)
        # The server drops the connection: the fetcher connects again and goes on.
        dovecot.kick()
        dovecot.append(reply_email(household_login.email, reply_to, "After the drop."))
        wait_for(lambda: len(feed_texts(app, household)) == 3, "the reply after reconnecting")
    finally:
        stop.set()
        fetcher.join(timeout=10)
    assert not fetcher.is_alive(), "the fetcher did not stop"
    assert feed_texts(app, household) == ["First.", "Second, while idle.", "After the drop."]
    assert all(flags == TAKEN for flags in dovecot.flags().values())


def test_a_reply_arriving_while_the_last_is_marked_is_not_left_for_the_next_renewal(
    app, dovecot, household, household_login, reply_to, monkeypatch
):
    # The server announces it in its answer to the STORE that marks the last one taken, and
    # IDLE does not announce it again.
    mark_taken = imap.Mailbox.mark_taken
    arrivals = [reply_email(household_login.email, reply_to, "Came while marking.")]

    def mark_taken_as_mail_arrives(mailbox, uid, **options):
        if arrivals:
            dovecot.append(arrivals.pop())
        mark_taken(mailbox, uid, **options)

    monkeypatch.setattr(imap.Mailbox, "mark_taken", mark_taken_as_mail_arrives)
    stop = threading.Event()
    fetcher = threading.Thread(target=imap.fetch_forever,
                               args=(app, imap.MailboxSettings.from_config(app.config), stop))
    dovecot.append(reply_email(household_login.email, reply_to, "First."))
    fetcher.start()
    try:
        wait_for(lambda: len(feed_texts(app, household)) == 2, "the reply that came meanwhile",
                 seconds=10)
    finally:
        stop.set()
        fetcher.join(timeout=10)
    assert feed_texts(app, household) == ["First.", "Came while marking."]


def test_a_reply_not_taken_is_tried_again_without_waiting_for_new_mail(
        app, dovecot, household, household_login, reply_to, caplog, monkeypatch):
    # The migrations' logging set-up (alembic's fileConfig) turned off the loggers there were.
    monkeypatch.setattr(imap.log, "disabled", False)
    settings = imap.MailboxSettings.from_config(app.config)
    rename_inbound_table(app, "inbound_messages", "inbound_messages_away")
    stop = threading.Event()
    fetcher = threading.Thread(target=imap.fetch_forever, args=(app, settings, stop),
                               kwargs={"poll_seconds": 0.5})
    try:
        dovecot.append(reply_email(household_login.email, reply_to, "Retried."))
        fetcher.start()
        wait_for(lambda: "was not taken; it comes again next round" in caplog.text,
                 "a failed round")
    finally:
        rename_inbound_table(app, "inbound_messages_away", "inbound_messages")
    try:
        # No new mail comes; the fetcher, idling, tries the one it left again.
        wait_for(lambda: feed_texts(app, household) == ["Retried."], "the retry", seconds=5)
    finally:
        stop.set()
        fetcher.join(timeout=10)


def rename_inbound_table(app, name: str, new_name: str) -> None:
    with app.app_context():
        db.session.execute(text(f"ALTER TABLE {name} RENAME TO {new_name}"))
        db.session.commit()


def test_mail_fetch_command_takes_replies_until_sigterm(app, dovecot, database_url, household,
                                                       household_login, reply_to):
    environment = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": "test-only-secret",
                   "REPLY_DOMAIN": REPLY_DOMAIN, "MAIL_SERVER": "", "PORTAL_ENV": "development",
                   "PYTHONUNBUFFERED": "1", "IMAP_HOST": "127.0.0.1",
                   "IMAP_PORT": str(dovecot.port), "IMAP_SSL": "0", "IMAP_USER": USER,
                   "IMAP_PASSWORD": PASSWORD, "IMAP_POLL_SECONDS": "2"}
    process = subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "mail", "fetch"],
                               cwd=ROOT, env=environment, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        assert process.stdout.readline() == (
            f"Fetching replies from {USER} at 127.0.0.1:{dovecot.port}, folder INBOX; "
            "Ctrl+C to stop.\n")
        dovecot.append(reply_email(household_login.email, reply_to, "Fetched by the command."))
        wait_for(lambda: feed_texts(app, household) == ["Fetched by the command."],
                 "the reply")
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0]
    assert process.returncode == 0, output


def test_idle_is_renewed_before_the_server_gives_up_on_it(app, dovecot, household,
                                                         household_login, reply_to):
    settings = imap.MailboxSettings.from_config(app.config)
    stop = threading.Event()
    with imap.Mailbox(settings) as mailbox:
        started = time.monotonic()
        mailbox.wait_for_mail(stop, renew_seconds=1.5)
        assert 1.4 < time.monotonic() - started < 4
        # Still logged in and usable after leaving IDLE.
        assert mailbox.untaken() == []


def test_without_idle_the_mailbox_is_polled(app, dovecot, household, household_login,
                                           reply_to):
    dovecot.stop()
    dovecot.capabilities = "IMAP4rev1 LITERAL+ UIDPLUS"
    dovecot.start()
    settings = imap.MailboxSettings.from_config(app.config)
    stop = threading.Event()
    with imap.Mailbox(settings) as mailbox:
        assert not mailbox.client.has_capability("IDLE")
        started = time.monotonic()
        mailbox.wait_for_mail(stop, poll_seconds=0.5)
        assert 0.4 < time.monotonic() - started < 2
    fetcher = threading.Thread(target=imap.fetch_forever, args=(app, settings, stop),
                               kwargs={"poll_seconds": 0.5})
    fetcher.start()
    try:
        dovecot.append(reply_email(household_login.email, reply_to, "Polled."))
        wait_for(lambda: feed_texts(app, household) == ["Polled."], "the polled reply")
    finally:
        stop.set()
        fetcher.join(timeout=10)


def test_mail_fetch_says_which_setting_is_missing(app, runner):
    app.config.update(IMAP_HOST=None, IMAP_USER=None, IMAP_PASSWORD=None)
    result = runner.invoke(args=["mail", "fetch", "--once"])
    assert result.exit_code == 78
    assert "IMAP_HOST and IMAP_USER and IMAP_PASSWORD are not set" in result.output
    app.config.update(IMAP_HOST="imap.example", IMAP_USER="replies@example.com")
    result = runner.invoke(args=["mail", "fetch"])
    assert result.exit_code == 78 and "Error: IMAP_PASSWORD is not set" in result.output


def test_mail_fetch_once_with_a_wrong_password_fails_to_be_run_again(app, runner, dovecot):
    app.config["IMAP_PASSWORD"] = "not the password"
    result = runner.invoke(args=["mail", "fetch", "--once"])
    assert result.exit_code == 75
    assert f"The mailbox replies at 127.0.0.1:{dovecot.port}, folder INBOX:" in result.output
    assert count_inbound(app) == 0


def count_inbound(app) -> int:
    with app.app_context():
        return len(db.session.scalars(select(InboundMessage)).all())


def test_a_server_without_keywords_is_marked_with_seen():
    assert imap.marking_for((b"\\Seen", b"\\Deleted", b"\\*")) is imap.BY_KEYWORD
    assert imap.marking_for((b"\\Seen", b"$PortalTaken")) is imap.BY_KEYWORD
    assert imap.marking_for((b"\\Seen", b"\\Deleted", b"$MDNSent")) is imap.BY_SEEN
