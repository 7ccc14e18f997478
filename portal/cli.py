"""Admin commands: flask --app wsgi create-user | seed-demo | notifications | mail | serve."""

import os
import signal
import sys
import threading
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy import select
from werkzeug.serving import run_simple

from portal import config, deployment, storage
from portal.extensions import db
from portal.inbound import imap, receiver
from portal.inbound.ingest import Outcome, ingest_email
from portal.models import Business, Feed, InboundOutcome, Role, User, utcnow
from portal.notifications import health, worker
from portal.reply_addresses import ReplyToken, address_for
from portal.services import accounts, demo, file_sweep

# Exit statuses an MTA's pipe understands (sysexits.h): Postfix bounces the message on 65 and
# keeps it to try again on 75.
EX_DATAERR = 65
# ... and on 67: a reply address the portal never gave out, from an address no login has.
EX_NOUSER = 67
EX_TEMPFAIL = 75
EX_CONFIG = 78


def register(app: Flask) -> None:
    app.cli.add_command(create_user)
    app.cli.add_command(seed_demo)
    app.cli.add_command(notifications)
    app.cli.add_command(mail)
    app.cli.add_command(serve)
    app.cli.add_command(storage_group)
    app.cli.add_command(check)


@click.command("create-user")
@click.option("--role", type=click.Choice([role.value for role in Role]), required=True)
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option("--business", "business_name", help="Created when it does not exist yet.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@with_appcontext
def create_user(role, email, name, business_name, password_stdin):
    """Create a login; this is how production gets its first admin."""
    role = Role(role)
    if role == Role.CLIENT:
        raise click.UsageError("Client logins are created from the client's profile.")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not 10 <= len(password) <= 256:
        raise click.BadParameter("must be 10 to 256 characters", param_hint="password")
    business = _business(business_name)
    try:
        user = accounts.create_user(
            business, role=role, email=email, name=name, password=password
        )
    except accounts.AccountError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"Created {user.role.label} {user.name} <{user.email}> in {business.name}.")


def _business(name: str | None) -> Business:
    businesses = list(db.session.scalars(select(Business).order_by(Business.id)))
    if name is None:
        if len(businesses) == 1:
            return businesses[0]
        raise click.UsageError("Name the business with --business.")
    business = next((b for b in businesses if b.name == name), None)
    if business is None:
        business = Business(name=name)
        db.session.add(business)
        db.session.commit()
    return business


@click.command("seed-demo")
@with_appcontext
def seed_demo():
    """Create the demo business once, then print its logins (safe to run again)."""
    created = demo.seed()
    click.echo("Demo data created." if created else "Demo data already present; kept as is.")
    click.echo(demo.logins_table())
    click.echo()
    click.echo(demo.assignments())


@click.group()
def notifications():
    """Deliver the notification outbox."""


@notifications.command("work")
@click.option("--once", is_flag=True, help="Deliver what is due now, then stop.")
@click.option("--interval", default=2.0, show_default=True, help="Seconds between polls.")
@with_appcontext
def work_command(once: bool, interval: float):
    """Run a delivery worker; several may run at once against PostgreSQL."""
    app = current_app._get_current_object()
    if once:
        total = 0
        while done := worker.run_once(app, "cli-once"):
            total += done
        click.echo(f"Delivered or settled {total} notifications.")
        return
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    click.echo("Delivering notifications; Ctrl+C to stop.")
    try:
        worker.work(app, stop, interval)
    except KeyboardInterrupt:
        stop.set()


@notifications.command("health")
@with_appcontext
def health_command():
    """The workers (running, stopped, silent) and what waits for them; exits 1 when something
    waits and no worker has claimed for five minutes (for a monitor to run)."""
    report = health.report()
    now = utcnow()
    if not report.workers:
        click.echo("No notification worker has run yet.")
    for row in report.workers:
        state = ("running" if health.is_running(row) else
                 f"stopped {_ago(now, row.stopped_at)}" if row.stopped_at else "not heard from")
        click.echo(f"{row.id} on {row.host} (pid {row.pid}): {state}; last claim "
                   f"{_ago(now, row.last_claim_at)}, last work {_ago(now, row.last_work_at)}, "
                   f"{row.claimed} rows claimed since {row.started_at:%Y-%m-%d %H:%M} UTC")
        if row.last_error:
            click.echo(f"  last error {_ago(now, row.last_error_at)}: {row.last_error}")
    queue = report.queue
    oldest = f", the oldest due {_ago(now, queue.oldest_due_at)}" if queue.oldest_due_at else ""
    click.echo(f"Waiting: {queue.waiting}{oldest}; being sent: {queue.sending}; "
               f"waiting to be tried again: {queue.retrying}.")
    if not report.healthy:
        click.echo("Not delivering: rows are due and no worker has claimed for five minutes.",
                   err=True)
        click.get_current_context().exit(1)


def _ago(now, moment) -> str:
    if moment is None:
        return "never"
    seconds = int((now - moment).total_seconds())
    if seconds < 120:
        return f"{seconds} s ago"
    return f"{seconds // 60} min ago" if seconds < 7200 else f"{seconds // 3600} h ago"


@notifications.command("vapid-keys")
@with_appcontext
def vapid_keys_command():
    """Create the key pair web push is signed with, in instance/ (once; kept after that)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from portal.notifications.push import b64url

    instance = Path(current_app.instance_path)
    private_file = instance / config.VAPID_PRIVATE_KEY_FILE
    public_file = instance / config.VAPID_PUBLIC_KEY_FILE
    if os.environ.get("VAPID_PRIVATE_KEY"):
        click.echo("Note: VAPID_PRIVATE_KEY is set in the environment; it takes precedence "
                   "over the files in instance/.")
    if private_file.exists():
        click.echo(f"VAPID keys already exist in {private_file}; kept as is "
                   "(new keys would switch off every device that enabled notifications).")
        if public_file.exists():
            click.echo(f"Public key: {public_file.read_text().strip()}")
        return
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    public = b64url(key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint))
    instance.mkdir(parents=True, exist_ok=True)
    # Created 0600 from the start, and never over a file that appeared meanwhile.
    descriptor = os.open(private_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as output:
        output.write(pem)
    public_file.write_text(public + "\n")
    click.echo(f"Wrote {private_file} (private, mode 0600) and {public_file}.")
    click.echo(f"Public key: {public}")
    click.echo("Restart the portal to turn web push on.")


class SettingMissing(click.ClickException):
    exit_code = EX_CONFIG


@click.group()
def mail():
    """Take in replies: the receiver, an IMAP mailbox, or one message on standard input."""


@mail.command("receive")
@click.option("--host", help="Address to listen on.  [default: MAIL_RECEIVE_HOST]")
@click.option("--port", type=click.IntRange(1, 65535),
              help="Port to listen on.  [default: MAIL_RECEIVE_PORT]")
@click.option("--lmtp", is_flag=True, help="Speak LMTP (for an MTA's lmtp transport).")
@with_appcontext
def receive_command(host: str | None, port: int | None, lmtp: bool):
    """Receive replies over SMTP or LMTP, as the reply domain's MX or an MTA's transport."""
    app = current_app._get_current_object()
    if not app.config.get("REPLY_DOMAIN"):
        raise SettingMissing("REPLY_DOMAIN is not set: the receiver takes mail for the reply "
                             "domain only")
    host = host or app.config["MAIL_RECEIVE_HOST"]
    port = port or app.config["MAIL_RECEIVE_PORT"]
    server = receiver.Receiver(app, host, port, lmtp=lmtp)
    stop = _stop_on_sigterm()
    try:
        server.start()
    except OSError as error:
        raise click.ClickException(f"Cannot listen on {host}:{port}: {error}") from error
    click.echo(f"Receiving replies to *@{app.config['REPLY_DOMAIN']} over {server.protocol} "
               f"on {host}:{port}; Ctrl+C to stop.")
    try:
        _wait(stop)
    finally:
        server.stop()


@mail.command("fetch")
@click.option("--once", is_flag=True, help="Take what is in the mailbox now, then stop.")
@with_appcontext
def fetch_command(once: bool):
    """Take replies from the IMAP mailbox (IMAP_HOST, IMAP_USER, IMAP_PASSWORD, IMAP_FOLDER)."""
    app = current_app._get_current_object()
    try:
        settings = imap.MailboxSettings.from_config(app.config)
    except imap.MailboxNotConfigured as error:
        raise SettingMissing(str(error)) from error
    if once:
        try:
            taken = imap.fetch_once(app, settings)
        except imap.CONNECTION_ERRORS as error:
            click.echo(f"The mailbox {settings}: {error}", err=True)
            click.get_current_context().exit(EX_TEMPFAIL)
        click.echo(taken.summary())
        if taken.not_taken:
            # A cron job that runs it hears that something is wrong (the database, say).
            click.get_current_context().exit(EX_TEMPFAIL)
        return
    stop = _stop_on_sigterm()
    click.echo(f"Fetching replies from {settings}; Ctrl+C to stop.")
    fetcher = threading.Thread(target=imap.fetch_forever, args=(app, settings, stop),
                               kwargs={"poll_seconds": app.config["IMAP_POLL_SECONDS"]},
                               name="mail-fetch")
    fetcher.start()
    try:
        _wait(stop)
    finally:
        stop.set()
        fetcher.join()


@mail.command("ingest")
@click.option("--recipient", help="The address it was delivered to (Postfix pipe: ${recipient}).")
@with_appcontext
def ingest_command(recipient: str | None):
    """Take one message from standard input (an MTA's pipe, or support).

    Exits 0 when it was taken, 65 when it cannot be read, 67 when nobody at any business
    would see it (a reply address the portal never gave out, from an address no login has),
    75 when it should come again. On 65 and 67 the MTA returns it to the sender.
    """
    raw = sys.stdin.buffer.read()
    try:
        outcome = ingest_email(raw, recipient)
    except Exception as error:
        # One line: an MTA may quote it to the sender, so no SQL and no traceback.
        first_line = (str(error).splitlines() or [""])[0][:200]
        click.echo(f"Not taken, try again later: {type(error).__name__}: {first_line}",
                   err=True)
        click.get_current_context().exit(EX_TEMPFAIL)
    click.echo(describe(outcome))
    if outcome.kind == InboundOutcome.REFUSED:
        click.get_current_context().exit(EX_DATAERR)
    if outcome.returned_to_sender:
        click.get_current_context().exit(EX_NOUSER)


def describe(outcome: Outcome) -> str:
    """One line: what became of a message."""
    said = str(outcome.kind)
    if outcome.duplicate:
        said = f"duplicate ({said} before)"
    if outcome.reason:
        said += f": {outcome.reason}"
    ids = [f"message {outcome.message_id}"] if outcome.message_id else []
    ids += [f"inbound {outcome.inbound_id}"] if outcome.inbound_id else []
    return said + (f" ({', '.join(ids)})" if ids else "")


def _stop_on_sigterm() -> threading.Event:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    return stop


def _wait(stop: threading.Event) -> None:
    """Returns once `stop` is set (SIGTERM), or on Ctrl+C."""
    try:
        while not stop.wait(1):
            pass
    except KeyboardInterrupt:
        stop.set()


@click.command("check")
@with_appcontext
def check():
    """Check this host's configuration: the database (reachable, migrated), Redis, the file
    store (written, read back, removed), production settings, mail and web push keys.
    Exits 1 when anything is wrong, each problem on a line of its own."""
    findings = deployment.check(current_app._get_current_object())
    for finding in findings:
        click.echo(finding.line())
    if not all(finding.ok for finding in findings):
        click.echo("Not ready: fix what FAIL says, then run this again.", err=True)
        click.get_current_context().exit(1)
    click.echo("Ready.")


@click.group("storage")
def storage_group():
    """Where files are stored: copy them into a bucket, remove what nothing refers to."""


@storage_group.command("copy")
@click.option("--from", "folder", required=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The folder the portal kept files in (instance/uploads).")
@with_appcontext
def copy_command(folder: Path):
    """Copy the files of a folder into the configured store (STORAGE_URL), keeping their keys.

    Safe to stop and run again: what is already there with the same checksum is skipped, and
    every copy is read back and checked."""
    target = storage.storage()
    if isinstance(target, storage.LocalStorage) and target.root.resolve() == folder.resolve():
        raise click.UsageError("That folder is the configured store: set STORAGE_URL first.")
    click.echo(f"Copying {folder} into {target}…")
    try:
        result = storage.copy_all(storage.LocalStorage(folder), target, file_sweep.referenced)
    except storage.StorageUnavailable as error:
        raise click.ClickException(f"{error}; run the command again to go on.") from error
    click.echo(result.summary())
    if result.failed:
        click.get_current_context().exit(1)


@storage_group.command("sweep")
@with_appcontext
def sweep_command():
    """Remove stored files older than a day that no message, photo or logo refers to."""
    try:
        click.echo(file_sweep.sweep().summary())
    except file_sweep.SweepRefused as error:
        raise click.ClickException(str(error)) from error


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True)
@with_appcontext
def serve(host: str, port: int):
    """Development server with the notification worker in the same process."""
    app = current_app._get_current_object()
    if not app.config["PORTAL_BASE_URL_GIVEN"]:
        # Links in emails and texts lead here. Listening on every address, this machine's
        # own address is the one sure to answer.
        shown_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        if ":" in shown_host:  # an IPv6 address goes in brackets in a URL
            shown_host = f"[{shown_host}]"
        app.config["PORTAL_BASE_URL"] = f"http://{shown_host}:{port}"
    worker.start_in_process(app)
    click.echo(f"Serving on http://{host}:{port} with the notification worker running; links "
               f"in emails and texts point at {app.config['PORTAL_BASE_URL']}.")
    _receive_replies_in_process(app)
    # app.run() refuses to run under the flask command; Werkzeug's server is what it would use.
    run_simple(host, port, app, use_reloader=False, use_debugger=False, threaded=True)


def _receive_replies_in_process(app: Flask) -> None:
    """`make run` takes replies too: the receiver in a thread, and how to send it one."""
    if not app.config.get("REPLY_DOMAIN"):
        return
    host, port = app.config["MAIL_RECEIVE_HOST"], app.config["MAIL_RECEIVE_PORT"]
    try:
        receiver.start_in_process(app)
    except OSError as error:
        click.echo(f"Replies are not received: {host}:{port} is taken ({error}); set "
                   "MAIL_RECEIVE_PORT to another port.")
        return
    click.echo(f"Replies to *@{app.config['REPLY_DOMAIN']} are received over SMTP on "
               f"{host}:{port}; each email printed here carries its recipient's in Reply-To.")
    if example := _reply_example(host, port):
        click.echo(f"To answer as a client: {example}")


def _reply_example(host: str, port: int) -> str | None:
    """A command that sends a reply from the first client login into their Conversation."""
    client_login = db.session.scalar(
        select(User).where(User.role == Role.CLIENT, User.active, User.client_id.is_not(None))
        .order_by(User.id).limit(1)
    )
    if client_login is None:
        return None
    to = address_for(ReplyToken(client_login.business_id, client_login.client_id,
                                Feed.CONVERSATION, client_login.id))
    message = (f"From: {client_login.email}\\r\\nTo: {to}\\r\\nSubject: Re: your visit\\r\\n"
               "\\r\\nReplying by email: the gate code is 4321.\\r\\n")
    return (f"python3 -c \"import smtplib; smtplib.SMTP('{host}', {port}).sendmail("
            f"'{client_login.email}', '{to}', '{message}')\"")
