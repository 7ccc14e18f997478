"""The notification worker stops gracefully (SIGTERM: the delivery in hand finishes, the rest
of its claims are released), reports its health, and the admin team sees the backoff."""

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from portal.extensions import db
from portal.models import DeliveryStatus, DeliveryWorker, Role, utcnow
from portal.notifications import health, outbox, worker

from .helpers import deliver, make_due
from .test_notifications import rows

ROOT = Path(__file__).resolve().parent.parent


def workers(app) -> list[DeliveryWorker]:
    with app.app_context():
        found = list(db.session.scalars(select(DeliveryWorker)))
        for row in found:
            db.session.expunge(row)
        return found


@pytest.fixture
def six_waiting(app, make_user, household, make_message):
    """Six clients, each owed one email: six deliveries of their own."""
    people = [make_user(Role.CLIENT, client=household) for _ in range(6)]
    make_message(household, make_user(Role.ADMIN), "Rex is back home")
    make_due(app)
    return people


@pytest.mark.committed  # the worker runs in a thread, on connections of its own
def test_a_stopping_worker_finishes_the_email_in_hand_and_releases_the_rest(
    app, smtp, six_waiting
):
    stop = threading.Event()
    received = smtp.inbox.handle_DATA

    async def stop_after_the_first(server, session, envelope):
        stop.set()  # SIGTERM arrives while the first email is being sent
        return await received(server, session, envelope)

    smtp.inbox.handle_DATA = stop_after_the_first
    thread = threading.Thread(target=worker.work, args=(app, stop, 0.05))
    thread.start()
    thread.join(30)
    assert not thread.is_alive()
    statuses = [row.status for row in rows(app)]
    assert statuses.count(DeliveryStatus.SENT) == 1 and len(smtp.inbox.received) == 1
    # The rest are back in the outbox now, for any worker: not after the stale-claim time.
    assert statuses.count(DeliveryStatus.PENDING) == 5
    assert all(row.claimed_by is None for row in rows(app, status=DeliveryStatus.PENDING))
    [stopped] = workers(app)
    assert stopped.stopped_at is not None and stopped.claimed == 6
    smtp.inbox.handle_DATA = received
    deliver(app)
    delivered = smtp.inbox.recipients()
    assert sorted(delivered) == sorted(person.email for person in six_waiting)


@pytest.mark.committed  # a worker process of its own on the same database
def test_the_worker_command_stops_on_sigterm_and_says_it_stopped(app, database_url, tmp_path):
    environment = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": "x" * 40,
                   "UPLOAD_FOLDER": str(tmp_path)}
    output = tmp_path / "worker.log"
    with output.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "wsgi", "notifications", "work",
             "--interval", "0.2"], cwd=ROOT, env=environment, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while not any(row.last_claim_at for row in workers(app)):
            assert time.monotonic() < deadline and process.poll() is None, output.read_text()
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0
    finally:
        process.kill()
        process.wait()
    [stopped] = workers(app)
    assert stopped.stopped_at is not None and stopped.pid == process.pid


def test_health_says_when_nothing_delivers(app, runner, six_waiting):
    result = runner.invoke(args=["notifications", "health"])
    assert result.exit_code == 1
    assert "No notification worker has run yet." in result.output
    assert "Waiting: 6, the oldest due" in result.output
    assert "no worker has claimed for five minutes" in result.output


def test_health_lists_each_worker_and_its_last_claim(app, runner, six_waiting, smtp):
    with app.app_context():
        health.started("worker-a")
        health.round_done("worker-a", worker.run_once(app, "worker-a"), None)
        health.started("worker-b")
        db.session.execute(update(DeliveryWorker).where(DeliveryWorker.id == "worker-b")
                           .values(started_at=utcnow() - timedelta(hours=1),
                                   last_claim_at=utcnow() - timedelta(minutes=30)))
        db.session.commit()
    result = runner.invoke(args=["notifications", "health"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any(line.startswith("worker-a on ") and ": running; last claim" in line
               and "6 rows claimed" in line for line in lines)
    assert any(line.startswith("worker-b on ") and "not heard from; last claim 30 min ago"
               in line for line in lines)
    assert "Waiting: 0; being sent: 0; waiting to be tried again: 0." in result.output


def test_the_notifications_page_shows_the_backoff_and_whether_a_worker_runs(
    app, admin_browser, smtp, six_waiting
):
    smtp.stop()  # the mail server is down: each email fails, and waits to be tried again
    deliver(app)
    page = admin_browser.get("/settings/notifications").get_data(as_text=True)
    assert "No delivery worker is running, so notifications wait" in page
    assert "6 waiting to be tried again (below)." in page
    assert "Being tried again" in page and page.count('data-label="Next try"') == 6
    retried = rows(app)
    assert {row.attempts for row in retried} == {1}
    assert all(row.due_at > utcnow() for row in retried)
    make_due(app)
    page = admin_browser.get("/settings/notifications").get_data(as_text=True)
    assert "6 notifications due now, the oldest since" in page
    with app.app_context():
        health.started("worker-a")
        health.round_done("worker-a", 0, None)
    page = admin_browser.get("/settings/notifications").get_data(as_text=True)
    assert "Notifications are being delivered: 1 delivery worker running" in page


@pytest.mark.committed  # two workers, each with connections of its own
def test_a_slow_round_keeps_its_claims_from_being_taken_over(app, smtp, six_waiting):
    app.config["NOTIFICATION_STALE_CLAIM_SECONDS"] = 1
    took = smtp.inbox.handle_DATA

    async def slowly(server, session, envelope):
        await asyncio.sleep(0.4)  # six emails: a round well past the stale-claim time
        return await took(server, session, envelope)

    smtp.inbox.handle_DATA = slowly
    slow = threading.Thread(target=worker.run_once, args=(app, "slow-worker"))
    slow.start()
    time.sleep(1.6)
    with app.app_context():
        taken_over = outbox.claim("other-worker")
    slow.join(30)
    assert taken_over == []
    assert {row.status for row in rows(app)} == {DeliveryStatus.SENT}
    assert len(smtp.inbox.received) == 6
