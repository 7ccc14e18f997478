"""Replies over a real SMTP or LMTP conversation with the receiver (smtplib against aiosmtpd on
loopback), and `flask mail receive | ingest`."""

import os
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select, text

from portal.extensions import db
from portal.inbound.receiver import Receiver, ReplyHandler
from portal.models import Feed, InboundMessage, InboundOutcome, Message

from .helpers import REPLY_DOMAIN, count_rows, free_port, reply_address, reply_email

# The receiver ingests in threads of its own: what it reads and writes is committed.
pytestmark = pytest.mark.committed

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def reply_to(app, household_login):
    app.config["REPLY_DOMAIN"] = REPLY_DOMAIN
    return reply_address(app, household_login)


def feed_texts(app, household, feed=Feed.CONVERSATION) -> list[tuple[str, str | None]]:
    with app.app_context():
        return [(message.text, message.via) for message in db.session.scalars(
            select(Message).where(Message.client_id == household.id, Message.feed == feed)
            .order_by(Message.id))]


def inbound_rows(app) -> list[tuple[InboundOutcome, str | None]]:
    with app.app_context():
        return [(row.outcome, row.reason) for row in db.session.scalars(
            select(InboundMessage).order_by(InboundMessage.id))]


def send(port: int, sender: str, recipients: list[str], raw: bytes) -> list[tuple[int, bytes]]:
    """A whole SMTP conversation, without SIZE: the answers to each RCPT and to DATA."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        smtp.ehlo("mx.example")
        assert smtp.mail(sender)[0] == 250
        answers = [smtp.rcpt(recipient) for recipient in recipients]
        if any(code == 250 for code, _ in answers):
            answers.append(smtp.data(raw))
        return answers


def test_reply_over_smtp_lands_in_the_clients_conversation(app, reply_receiver, household,
                                                           household_login, reply_to):
    raw = reply_email(household_login.email, reply_to, "The gate code changed to 4321.")
    answers = send(reply_receiver.port, household_login.email, [reply_to], raw)
    assert answers == [(250, b"2.1.5 OK"), (250, b"2.0.0 Message taken")]
    assert feed_texts(app, household) == [("The gate code changed to 4321.", "email")]
    assert inbound_rows(app) == [(InboundOutcome.POSTED, None)]
    # The same message delivered again (its server did not hear the answer) is taken once.
    assert send(reply_receiver.port, household_login.email, [reply_to], raw)[-1][0] == 250
    assert len(feed_texts(app, household)) == 1 and count_rows(app, InboundMessage) == 1


def test_recipient_outside_the_reply_domain_is_refused(app, reply_receiver, household_login,
                                                      reply_to):
    answers = send(reply_receiver.port, household_login.email,
                   ["office@happytails.example", f"reply+x@{REPLY_DOMAIN}.evil.example"],
                   b"never sent")
    assert [code for code, _ in answers] == [550, 550]
    assert answers[0][1].startswith(b"5.1.1")
    assert count_rows(app, InboundMessage) == 0


def test_lmtp_answers_for_each_recipient(app, household, household_login, make_user, reply_to):
    app.config["REPLY_DOMAIN"] = REPLY_DOMAIN
    forged = f"reply+aaaaaaaaaaaaaaaaaaaaaaaaaaaa@{REPLY_DOMAIN}"
    receiver = Receiver(app, "127.0.0.1", free_port(), lmtp=True)
    receiver.start()
    try:
        with smtplib.LMTP("127.0.0.1", receiver.port, timeout=30) as lmtp:
            assert lmtp.docmd("EHLO", "mx.example")[0] == 500  # LMTP greets with LHLO
            assert lmtp.ehlo("mx.example")[0] == 250  # which smtplib.LMTP sends
            assert lmtp.mail(household_login.email)[0] == 250
            assert lmtp.rcpt(reply_to)[0] == 250
            assert lmtp.rcpt(forged)[0] == 250
            raw = reply_email(household_login.email, reply_to, "Rex ate his breakfast.")
            first = lmtp.data(raw)
            second = lmtp.getreply()
    finally:
        receiver.stop()
    assert first == (250, b"2.0.0 Message taken") and second == (250, b"2.0.0 Message taken")
    assert feed_texts(app, household) == [("Rex ate his breakfast.", "email")]
    # The forged address: kept for the admin team, not lost and not posted.
    assert sorted(outcome for outcome, _ in inbound_rows(app)) == [
        InboundOutcome.POSTED, InboundOutcome.UNMATCHED]


def test_sixty_megabytes_are_refused_and_the_next_message_is_taken(app, reply_receiver,
                                                                   household, household_login,
                                                                   reply_to):
    line = b"x" * 998 + b"\r\n"
    huge = reply_email(household_login.email, reply_to, "big") + line * (60 * 1024 * 1024 // 1000)
    # Declared in advance (SIZE), refused before any of it is sent...
    with smtplib.SMTP("127.0.0.1", reply_receiver.port, timeout=60) as smtp:
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            smtp.sendmail(household_login.email, [reply_to], huge)
        assert refused.value.smtp_code == 552
    # ...and undeclared, read to its end and refused then.
    answers = send(reply_receiver.port, household_login.email, [reply_to], huge)
    assert answers[-1][0] == 552
    assert count_rows(app, InboundMessage) == 0
    raw = reply_email(household_login.email, reply_to, "Sorry, that photo was too big.")
    assert send(reply_receiver.port, household_login.email, [reply_to], raw)[-1][0] == 250
    assert feed_texts(app, household) == [("Sorry, that photo was too big.", "email")]


def test_malformed_mime_is_taken_and_recorded(app, reply_receiver, household, household_login,
                                              reply_to):
    broken = (
        f"From: {household_login.email}\r\nTo: {reply_to}\r\nMessage-ID: <broken@mail.example>\r\n"
        "Content-Type: multipart/mixed; boundary=\"never-used\"\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n"
        "--wrong\r\nContent-Type: image/heic\r\n\r\n@@@not base64@@@\r\n"
    ).encode() + bytes(range(256))
    answers = send(reply_receiver.port, household_login.email, [reply_to], broken)
    assert answers[-1] == (250, b"2.0.0 Message taken")
    assert count_rows(app, InboundMessage) == 1
    # Not readable as an email at all: refused with the reason, and the receiver goes on.
    # Nobody would see it: the sender's server is told it was not delivered.
    not_an_email = b"\x00\x01\x02 this is no email\r\n"
    code, answer = send(reply_receiver.port, household_login.email, [reply_to], not_an_email)[-1]
    assert (code, answer.decode()) == (550, "5.1.1 Not delivered: Not an email the portal can "
                                            "read: no headers")
    assert inbound_rows(app)[-1][0] == InboundOutcome.REFUSED
    raw = reply_email(household_login.email, reply_to, "Still here.")
    assert send(reply_receiver.port, household_login.email, [reply_to], raw)[-1][0] == 250
    assert ("Still here.", "email") in feed_texts(app, household)


def test_a_forged_address_from_a_stranger_is_queued_for_the_only_business(
    app, reply_receiver, household
):
    forged = f"reply+aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@{REPLY_DOMAIN}"
    raw = reply_email("stranger@elsewhere.example", forged, "Is this the dog walker?")
    assert send(reply_receiver.port, "stranger@elsewhere.example", [forged], raw)[-1] == (
        250, b"2.0.0 Message taken")
    with app.app_context():
        row = db.session.scalars(select(InboundMessage)).one()
        assert (row.outcome, row.business_id) == (InboundOutcome.UNMATCHED,
                                                  household.business_id)


def test_what_no_business_would_see_goes_back_to_its_sender(app, reply_receiver, household,
                                                           household_login, reply_to,
                                                           make_business):
    make_business("Other Paws")
    forged = f"reply+aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@{REPLY_DOMAIN}"
    raw = reply_email("stranger@elsewhere.example", forged, "Is this the dog walker?")
    code, answer = send(reply_receiver.port, "stranger@elsewhere.example", [forged], raw)[-1]
    assert (code, answer.decode()) == (550, "5.1.1 Not delivered: The reply address is not one "
                                            "the portal gave out.")
    assert inbound_rows(app) == [(InboundOutcome.UNMATCHED,
                                  "The reply address is not one the portal gave out.")]
    # Beside a genuine address in one SMTP transaction, the message is taken: the genuine
    # recipient has it, and the forged one stays recorded.
    both = reply_email(household_login.email, reply_to, "Gate code is 4821.")
    assert send(reply_receiver.port, household_login.email, [forged, reply_to], both)[-1] == (
        250, b"2.0.0 Message taken")
    assert feed_texts(app, household) == [("Gate code is 4821.", "email")]


def test_database_failure_answers_451_and_the_receiver_goes_on(app, reply_receiver, household,
                                                               household_login, reply_to):
    raw = reply_email(household_login.email, reply_to, "Can you come at 3?")
    with app.app_context():
        db.session.execute(text("ALTER TABLE inbound_messages RENAME TO inbound_messages_away"))
        db.session.commit()
    try:
        answers = send(reply_receiver.port, household_login.email, [reply_to], raw)
        assert answers[-1] == (451, b"4.3.0 Message not taken this time; try again later")
    finally:
        with app.app_context():
            db.session.execute(
                text("ALTER TABLE inbound_messages_away RENAME TO inbound_messages"))
            db.session.commit()
    assert feed_texts(app, household) == []
    # The sender's server tries again: the receiver is still there, and now takes it.
    assert send(reply_receiver.port, household_login.email, [reply_to], raw)[-1][0] == 250
    assert feed_texts(app, household) == [("Can you come at 3?", "email")]


def test_sessions_beyond_the_limit_are_told_to_come_back(app):
    app.config["REPLY_DOMAIN"] = REPLY_DOMAIN
    receiver = Receiver(app, "127.0.0.1", free_port(), max_sessions=1)
    receiver.start()
    try:
        with smtplib.SMTP("127.0.0.1", receiver.port, timeout=10) as first:
            with pytest.raises(smtplib.SMTPConnectError) as refused:
                smtplib.SMTP("127.0.0.1", receiver.port, timeout=10)
            assert refused.value.smtp_code == 421
            assert first.noop()[0] == 250
        # Once the first session ends, the next is served.
        with smtplib.SMTP("127.0.0.1", receiver.port, timeout=10) as later:
            assert later.noop()[0] == 250
    finally:
        receiver.stop()


# --- flask mail receive | ingest --------------------------------------------------------------

def test_mail_receive_command_takes_replies_until_sigterm(app, database_url, household,
                                                         household_login, reply_to):
    port = free_port()
    environment = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": "test-only-secret",
                   "REPLY_DOMAIN": REPLY_DOMAIN, "MAIL_SERVER": "", "PORTAL_ENV": "development",
                   "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "flask", "--app", "wsgi", "mail", "receive",
               "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        started = process.stdout.readline()
        assert f"Receiving replies to *@{REPLY_DOMAIN} over SMTP on 127.0.0.1:{port}" in started
        raw = reply_email(household_login.email, reply_to, "Sent to the command.")
        assert send(port, household_login.email, [reply_to], raw)[-1][0] == 250
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0]
    assert process.returncode == 0, output
    assert feed_texts(app, household) == [("Sent to the command.", "email")]


def test_mail_receive_needs_a_reply_domain(app, runner):
    app.config["REPLY_DOMAIN"] = None
    result = runner.invoke(args=["mail", "receive", "--port", str(free_port())])
    assert result.exit_code == 78 and "REPLY_DOMAIN is not set" in result.output


def test_mail_ingest_says_what_became_of_the_message(app, runner, household, household_login,
                                                     reply_to):
    raw = reply_email(household_login.email, reply_to, "Piped in by the MTA.")
    result = runner.invoke(args=["mail", "ingest", "--recipient", reply_to], input=raw)
    assert result.exit_code == 0, result.output
    message_id, inbound_id = feed_ids(app)
    assert result.output == f"posted (message {message_id}, inbound {inbound_id})\n"
    again = runner.invoke(args=["mail", "ingest"], input=raw)
    assert again.exit_code == 0
    assert again.output.startswith("duplicate (posted before)")
    assert feed_texts(app, household) == [("Piped in by the MTA.", "email")]
    # Without a recipient, the reply address is found in the headers; from someone else, the
    # reply waits for the admin team, and the MTA is told it was taken.
    stranger = reply_email("someone@elsewhere.example", reply_to, "Hi")
    queued = runner.invoke(args=["mail", "ingest"], input=stranger)
    assert queued.exit_code == 0 and queued.output.startswith("unmatched: Sent from")


def feed_ids(app) -> tuple[int, int]:
    with app.app_context():
        row = db.session.scalars(select(InboundMessage)).one()
        return row.message_id, row.id


def test_mail_ingest_exit_statuses_tell_the_mta_to_bounce_or_retry(app, runner, make_app,
                                                                  reply_to, household_login,
                                                                  make_business, tmp_path):
    unreadable = runner.invoke(args=["mail", "ingest"], input=b"\x00 no headers at all\r\n")
    assert unreadable.exit_code == 65
    assert unreadable.output.startswith("refused: Not an email the portal can read")
    # A reply address the portal never gave out, from an address no login has, with more than
    # one business here: nobody's to read, so the MTA returns it to its sender.
    make_business("Other Paws")
    forged = f"reply+aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@{REPLY_DOMAIN}"
    stranger = runner.invoke(args=["mail", "ingest", "--recipient", forged],
                             input=reply_email("stranger@elsewhere.example", forged, "Hi?"))
    assert stranger.exit_code == 67
    assert stranger.output.startswith("unmatched: The reply address is not one the portal")
    # The database is down: the MTA keeps the message and tries again.
    down = make_app(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path}/missing/portal.sqlite3",
                    REPLY_DOMAIN=REPLY_DOMAIN)
    raw = reply_email(household_login.email, reply_to, "Hello?")
    result = down.test_cli_runner().invoke(args=["mail", "ingest"], input=raw)
    assert result.exit_code == 75
    assert result.output == ("Not taken, try again later: OperationalError: (sqlite3."
                             "OperationalError) unable to open database file\n")


# --- make run ----------------------------------------------------------------------------------

@pytest.fixture
def serve_without_serving(monkeypatch):
    """`flask serve` as far as its announcements: no web server, no worker; the receivers it
    starts are stopped after the test."""
    from portal import cli

    started = []
    start = cli.receiver.start_in_process
    monkeypatch.setattr(cli.worker, "start_in_process", lambda app: None)
    monkeypatch.setattr(cli, "run_simple", lambda *args, **options: None)
    monkeypatch.setattr(cli.receiver, "start_in_process",
                        lambda app: started.append(start(app)) or started[-1])
    yield
    for receiver in started:
        receiver.stop()


def test_make_run_receives_replies_and_prints_how_to_send_one(app, runner, household,
                                                             household_login,
                                                             serve_without_serving):
    port = free_port()
    app.config.update(REPLY_DOMAIN=REPLY_DOMAIN, MAIL_RECEIVE_PORT=port)
    result = runner.invoke(args=["serve", "--port", "5998"])
    assert result.exit_code == 0, result.output
    assert (f"Replies to *@{REPLY_DOMAIN} are received over SMTP on 127.0.0.1:{port}"
            in result.output)
    example = result.output.split("To answer as a client: ", 1)[1].strip()
    subprocess.run(example, shell=True, check=True, timeout=30)
    assert feed_texts(app, household) == [("Replying by email: the gate code is 4321.", "email")]


def test_make_run_says_when_the_reply_port_is_taken(app, runner, serve_without_serving):
    port = free_port()
    app.config.update(REPLY_DOMAIN=REPLY_DOMAIN, MAIL_RECEIVE_PORT=port)
    with socket.create_server(("127.0.0.1", port)):
        result = runner.invoke(args=["serve", "--port", "5998"])
    assert result.exit_code == 0, result.output
    assert f"Replies are not received: 127.0.0.1:{port} is taken" in result.output


@pytest.fixture
def ingested(monkeypatch) -> list[str]:
    """The recipients the receiver hands a message to ingest for (ingest itself runs)."""
    recipients = []
    ingest = ReplyHandler.ingest

    def recording(handler, raw, recipient):
        recipients.append(recipient)
        return ingest(handler, raw, recipient)

    monkeypatch.setattr(ReplyHandler, "ingest", recording)
    return recipients


def test_a_recipient_given_twice_is_ingested_once(app, reply_receiver, household,
                                                 household_login, reply_to, ingested):
    raw = reply_email(household_login.email, reply_to, "Rex ate his breakfast.")
    answers = send(reply_receiver.port, household_login.email,
                   [reply_to, reply_to.upper(), reply_to], raw)
    assert answers == [(250, b"2.1.5 OK")] * 3 + [(250, b"2.0.0 Message taken")]
    assert ingested == [reply_to]
    assert feed_texts(app, household) == [("Rex ate his breakfast.", "email")]


def test_lmtp_answers_a_repeated_recipient_with_its_first_answer(app, household, household_login,
                                                                 reply_to, ingested):
    receiver = Receiver(app, "127.0.0.1", free_port(), lmtp=True)
    receiver.start()
    try:
        with smtplib.LMTP("127.0.0.1", receiver.port, timeout=30) as lmtp:
            lmtp.ehlo("mx.example")
            assert lmtp.mail(household_login.email)[0] == 250
            assert lmtp.rcpt(reply_to)[0] == 250
            assert lmtp.rcpt(reply_to.upper())[0] == 250
            first = lmtp.data(reply_email(household_login.email, reply_to, "Rex is fine."))
            second = lmtp.getreply()
    finally:
        receiver.stop()
    assert first == second == (250, b"2.0.0 Message taken")
    assert ingested == [reply_to]
    assert feed_texts(app, household) == [("Rex is fine.", "email")]


def test_other_sessions_are_served_while_a_hostile_message_is_ingested(
        app, reply_receiver, household, household_login, reply_to):
    head = reply_email(household_login.email, reply_to, "Hello.").split(b"\r\n\r\n")[0]
    hostile = [
        # 75 s in mail-parser-reply, holding the interpreter, before blank runs were collapsed.
        head + b"\r\n\r\n" + b"\r\n" * 32_000 + b"Hello.\r\n",
        # Minutes in the link tracking and html2text before HTML was capped.
        head.replace(b"text/plain", b"text/html") + b"\r\n\r\n"
        + b"<a href='http://x.example/'>yy\r\n" * 16_000 + b"<tr><td>a</td></tr>\r\n" * 500_000,
    ]
    answers = []
    sender = threading.Thread(target=lambda: answers.extend(
        send(reply_receiver.port, household_login.email, [reply_to],
             raw.replace(b"Message-ID: <", f"Message-ID: <{number}.".encode()))[-1][0]
        for number, raw in enumerate(hostile)))
    sender.start()
    waits = []
    while sender.is_alive() or not waits:
        started = time.monotonic()
        with smtplib.SMTP("127.0.0.1", reply_receiver.port, timeout=120) as other:
            assert other.noop()[0] == 250
        waits.append(time.monotonic() - started)
    sender.join()
    assert answers == [250, 250]
    assert max(waits) < 2
