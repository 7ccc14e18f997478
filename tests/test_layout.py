"""The scaled-out shape, proven with faults: two gunicorn servers behind nginx (TLS), three
notification workers, PostgreSQL, Redis and a bucket, each a process of its own, started as
README.md's "Several hosts" says (tests/layout.py reads it). The tests run in order on one
layout; each leaves it whole for the next."""

import asyncio
import os
import re
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import func, select

from portal.models import Attachment, DeliveryStatus, Message, Notification, User

from .helpers import POSTGRES_URL, SmtpServer, free_port, png_bytes
from .layout import Browser, Layout, layout_missing, read, seed
from .object_store import S3Server

# CI (PORTAL_TEST_REQUIRE_LAYOUT=1) fails rather than skips when a part is missing.
REQUIRED = os.environ.get("PORTAL_TEST_REQUIRE_LAYOUT") == "1"
pytestmark = [
    pytest.mark.layout,
    pytest.mark.skipif(not POSTGRES_URL and not REQUIRED,
                       reason="several hosts share a PostgreSQL database"),
    pytest.mark.skipif(bool(layout_missing()) and not REQUIRED, reason=layout_missing() or ""),
]

HOUSEHOLDS = 50
MESSAGES = 5000
STALE_CLAIM_SECONDS = 10
MESSAGE_ID = re.compile(r"<([^@>]+)@")


@pytest.fixture(scope="module")
def layout():
    smtp, s3 = SmtpServer(free_port()), S3Server()
    smtp.start()
    s3.start()
    layout = Layout(smtp.port, s3.settings(s3.new_bucket()), extra={
        "NOTIFICATION_DELAY_SECONDS": "0",
        "THROTTLE_MESSAGES_PER_USER": "100000 per minute",
        "THROTTLE_FILES_PER_USER": "100000 per minute",
        "NOTIFICATION_STALE_CLAIM_SECONDS": str(STALE_CLAIM_SECONDS),
        "NOTIFICATION_RETRY_SECONDS": "1",
        "NOTIFICATION_RETRY_MAX_SECONDS": "5",
        "NOTIFICATION_MAX_ATTEMPTS": "50",
    })
    layout.smtp, layout.s3 = smtp, s3
    try:
        layout.start()
        layout.households = seed(layout, HOUSEHOLDS)
        layout.serve()
        yield layout
    finally:
        layout.stop()
        smtp.stop()
        s3.stop()


def _post_many(layout: Layout, count: int, label: str, threads: int = 16) -> list[int]:
    browsers = [Browser(layout) for _ in range(min(threads, 8))]
    households = sorted(layout.households)

    def post(n: int) -> int:
        try:
            return browsers[n % len(browsers)].post_message(households[n % HOUSEHOLDS],
                                                            f"{label} {n}").status_code
        except requests.RequestException:
            return 0

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(post, range(count)))


def _statuses(layout: Layout) -> Counter:
    return Counter(dict(read(layout, select(Notification.status, func.count())
                               .group_by(Notification.status))))


def _wait_until_sent(layout: Layout, seconds: float = 240) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        statuses = _statuses(layout)
        if set(statuses) == {DeliveryStatus.SENT}:
            return
        time.sleep(0.5)
    raise AssertionError(f"not all sent within {seconds} s: {statuses}")


def _received_ids(layout: Layout) -> Counter:
    return Counter(MESSAGE_ID.match(message["Message-ID"])[1]
                   for _, message in layout.smtp.inbox.received)


def _sent_rows(layout: Layout):
    return read(layout, select(Notification.message_id, Notification.status,
                                Notification.provider_id, User.email, User.client_id)
                 .join(User, Notification.recipient_id == User.id))


def test_messages_posted_through_both_servers_notify_each_person_once(layout):
    statuses = _post_many(layout, MESSAGES, "Walk report")
    assert statuses.count(302) == MESSAGES, Counter(statuses)
    # Both servers took a share of the posts (nginx's log names the upstream of each).
    served = Counter(line.split()[0] for line in layout.access_log().splitlines()
                     if " POST /clients/" in line)
    assert set(served) == {f"127.0.0.1:{port}" for port in layout.web_ports}
    assert min(served.values()) > MESSAGES // 4, served
    _wait_until_sent(layout)
    rows = _sent_rows(layout)
    # Exactly the right rows: one email for each message, to its own household's login.
    assert len(rows) == MESSAGES and len({row.message_id for row in rows}) == MESSAGES
    assert all(layout.households[row.client_id] == row.email for row in rows)
    # Each email delivered once: every Message-ID the SMTP server took is one the rows hold,
    # taken once, and every row's email arrived.
    received = _received_ids(layout)
    assert max(received.values()) == 1
    assert set(received) == {row.provider_id for row in rows}
    recipients = Counter(address for rcpt, _ in layout.smtp.inbox.received for address in rcpt)
    assert set(recipients) <= set(layout.households.values())


def test_a_worker_killed_mid_delivery_has_its_claims_taken_over(layout):
    before = _received_ids(layout)
    took = layout.smtp.inbox.handle_DATA

    async def slowly(server, session, envelope):
        await asyncio.sleep(0.05)  # a slow SMTP server: deliveries are under way for a while
        return await took(server, session, envelope)

    layout.smtp.inbox.handle_DATA = slowly
    try:
        assert Counter(_post_many(layout, 400, "Evening walk")) == {302: 400}
        victim = _a_worker_with_claims(layout)
        victim.kill()
        held = {row.id: row.claimed_by for row in read(layout, select(
            Notification.id, Notification.claimed_by).where(
                Notification.status == DeliveryStatus.SENDING,
                Notification.claimed_by.contains(f"-{victim.pid}-")))}
        assert held
        layout.start_worker()  # the host comes back; the dead one's claims wait for the stale time
        _wait_until_sent(layout)
    finally:
        layout.smtp.inbox.handle_DATA = took
    # What the killed worker held was taken over by the others and delivered.
    finished_by = dict(read(layout, select(Notification.id, Notification.claimed_by)
                            .where(Notification.id.in_(held))))
    assert all(finished_by[row] != held[row] for row in held)
    received = _received_ids(layout) - before
    rows = _sent_rows(layout)
    assert len(rows) == MESSAGES + 400
    recorded = {row.provider_id for row in rows}
    # Every row's email arrived, once.
    assert recorded <= set(received) | set(before) and max(received.values()) == 1
    # At least once, as the README says: the one email the killed worker may have been handing
    # over when it died arrived, and its rows were sent again by another worker (a new email).
    assert len(set(received) - recorded) <= 1


def _a_worker_with_claims(layout: Layout, seconds: float = 30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        claimers = {row[0] for row in read(layout, select(Notification.claimed_by).where(
            Notification.status == DeliveryStatus.SENDING))}
        for process in layout.workers:
            if process.running() and any(f"-{process.pid}-" in (claimer or "")
                                         for claimer in claimers):
                return process
        time.sleep(0.05)
    raise AssertionError("no worker was seen delivering")


def test_the_smtp_server_down_for_a_minute_loses_nothing(layout):
    before = _received_ids(layout)
    layout.smtp.stop()
    try:
        assert Counter(_post_many(layout, 30, "Rainy day", threads=4)) == {302: 30}
        down_until = time.monotonic() + 60
        admin = Browser(layout)
        while time.monotonic() < down_until:
            time.sleep(5)
            page = admin.request("GET", "/settings/notifications").text
        # The backoff shows on the Notifications page: each is tried again, with its next try.
        assert "Being tried again" in page and page.count('data-label="Next try"') == 30
        assert "SMTP unavailable" in page
        retried = read(layout, select(Notification.attempts).where(
            Notification.status == DeliveryStatus.PENDING))
        assert len(retried) == 30 and min(row[0] for row in retried) >= 3
    finally:
        layout.smtp.start()
    _wait_until_sent(layout, seconds=60)
    received = _received_ids(layout) - before
    assert len(received) == 30 and max(received.values()) == 1
    assert "Being tried again" not in Browser(layout).request(
        "GET", "/settings/notifications").text


def test_postgresql_restarted_under_load_fails_requests_cleanly_and_recovers(layout):
    messages_before = read(layout, select(func.count(Message.id)))[0][0]
    stop, statuses = threading.Event(), Counter()
    browsers = [Browser(layout) for _ in range(4)]
    households = sorted(layout.households)

    def keep_posting(browser: Browser) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            try:
                status = browser.post_message(households[n % HOUSEHOLDS], f"Load {n}").status_code
            except requests.RequestException:
                status = 0
            statuses[status] += 1

    threads = [threading.Thread(target=keep_posting, args=(browser,)) for browser in browsers]
    for thread in threads:
        thread.start()
    time.sleep(2)
    layout.postgres.restart()
    time.sleep(3)
    stop.set()
    for thread in threads:
        thread.join()
    # Requests caught by the restart failed cleanly (503, "Please try again"), none with a 500
    # or a dropped connection, and the same web processes serve again: no restart.
    assert set(statuses) <= {302, 503}, statuses
    assert statuses[503] >= 1 and statuses[302] >= 10, statuses
    assert all(process.running() for process in layout.web)
    assert Browser(layout).post_message(households[0], "After the restart").status_code == 302
    # A message and its notifications were written together, or neither.
    messages = read(layout, select(func.count(Message.id)))[0][0] - messages_before
    assert statuses[302] + 1 <= messages <= statuses[302] + 1 + statuses[503]
    _wait_until_sent(layout)
    assert len(_sent_rows(layout)) == messages_before + messages


def test_with_redis_gone_logins_and_posts_keep_working(layout):
    layout.redis.stop()
    try:
        browser = Browser(layout)  # logs in: the login throttle lets it through
        assert browser.post_message(sorted(layout.households)[0], "Redis is down").status_code \
            == 302
        assert browser.request("GET", "/clients").status_code == 200
        assert any("Throttle storage unavailable: letting the request through" in process.output()
                   for process in layout.web)
    finally:
        layout.redis.start()


def test_with_the_bucket_unreachable_a_post_with_files_fails_cleanly(layout):
    household = sorted(layout.households)[1]
    messages_before = read(layout, select(func.count(Message.id)))[0][0]
    layout.s3.stop()
    try:
        browser = Browser(layout)
        refused = browser.post_message(household, "Photo of Rex", [("rex.png", png_bytes())])
        assert refused.status_code == 503
        assert "could not store files just now" in refused.text
        assert read(layout, select(func.count(Message.id)))[0][0] == messages_before
        assert browser.post_message(household, "Text alone").status_code == 302
    finally:
        layout.s3.start()  # a new server, empty: the layout's bucket is made again
        layout.s3.new_bucket(layout.s3_settings["STORAGE_URL"].split("/")[2])
    sent = browser.post_message(household, "Photo of Rex", [("rex.png", png_bytes())])
    assert sent.status_code == 302
    assert read(layout, select(func.count(Attachment.id)))[0][0] == 1
