"""How the notification workers are doing: each reports itself every round (last claim, last
work, last error) and at its stop; the outboxes tell how much waits and since when. Read by the
business's Notifications page and `flask --app wsgi notifications health`."""

import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update

from portal.extensions import db
from portal.models import (
    AccountEmail,
    DeliveryStatus,
    DeliveryWorker,
    Notification,
    PhoneConfirmation,
    ScheduledMessage,
    utcnow,
)

# A worker that has not claimed for this long is not running: it claims every few seconds,
# but a round of a hundred emails to a slow mail server may take minutes.
SILENT_AFTER = timedelta(minutes=5)
# The rounds that found nothing are recorded at most this often: an idle worker does not
# write every two seconds.
IDLE_REPORT_EVERY = timedelta(seconds=15)
# Workers stopped (or silent: killed) stay listed this long.
KEEP_STOPPED = timedelta(days=7)
OUTBOXES = (Notification, AccountEmail, PhoneConfirmation, ScheduledMessage)


def started(worker_id: str) -> None:
    db.session.add(DeliveryWorker(id=worker_id, host=socket.gethostname()[:255], pid=os.getpid(),
                                  claimed=0))
    _forget_long_stopped()
    db.session.commit()


def _forget_long_stopped() -> None:
    last_heard = func.coalesce(DeliveryWorker.stopped_at, DeliveryWorker.last_claim_at,
                               DeliveryWorker.started_at)
    db.session.execute(DeliveryWorker.__table__.delete().where(
        last_heard < utcnow() - KEEP_STOPPED))


def round_done(worker_id: str, done: int, last_reported: datetime | None) -> datetime | None:
    """Records a round whose claims went through; returns when it was last written."""
    now = utcnow()
    if not done and last_reported and now - last_reported < IDLE_REPORT_EVERY:
        return last_reported
    values = {"last_claim_at": now}
    if done:
        values |= {"last_work_at": now, "claimed": DeliveryWorker.claimed + done}
    db.session.execute(update(DeliveryWorker).where(DeliveryWorker.id == worker_id)
                       .values(**values))
    db.session.commit()
    return now


def round_failed(worker_id: str, error: BaseException) -> None:
    db.session.rollback()
    said = (str(error).splitlines() or [""])[0]
    db.session.execute(update(DeliveryWorker).where(DeliveryWorker.id == worker_id).values(
        last_error=f"{type(error).__name__}: {said}"[:500], last_error_at=utcnow()))
    db.session.commit()


def stopped(worker_id: str) -> None:
    db.session.execute(update(DeliveryWorker).where(DeliveryWorker.id == worker_id)
                       .values(stopped_at=utcnow()))
    db.session.commit()


@dataclass(frozen=True)
class Queue:
    waiting: int  # due now, not yet claimed
    oldest_due_at: datetime | None
    retrying: int  # among them and later, rows that failed and wait to be tried again
    sending: int  # claimed by a worker now


@dataclass(frozen=True)
class Health:
    workers: list[DeliveryWorker]
    queue: Queue

    @property
    def running(self) -> list[DeliveryWorker]:
        return [worker for worker in self.workers if is_running(worker)]

    @property
    def healthy(self) -> bool:
        """Some worker claims, or nothing waits for one."""
        return bool(self.running) or not self.queue.waiting


def is_running(worker: DeliveryWorker) -> bool:
    last = worker.last_claim_at or worker.started_at
    return worker.stopped_at is None and utcnow() - last < SILENT_AFTER


def report(business_id: int | None = None) -> Health:
    """The workers, and the outboxes' queue: the business's notifications alone when given."""
    last_heard = func.coalesce(DeliveryWorker.stopped_at, DeliveryWorker.last_claim_at,
                               DeliveryWorker.started_at)
    workers = list(db.session.scalars(
        select(DeliveryWorker).where(last_heard > utcnow() - KEEP_STOPPED)
        .order_by(DeliveryWorker.started_at.desc())))
    models = (Notification,) if business_id is not None else OUTBOXES
    return Health(workers, _queue(models, business_id))


def _queue(models, business_id: int | None) -> Queue:
    now = utcnow()
    waiting, oldest, retrying, sending = 0, None, 0, 0
    for model in models:
        scope = (model.business_id == business_id,) if business_id is not None else ()
        if model is ScheduledMessage:
            scope += (ScheduledMessage.held.is_(False),)  # waits for the admin team instead
        row = db.session.execute(select(
            func.count().filter(model.status == DeliveryStatus.PENDING, model.due_at <= now),
            func.min(model.due_at).filter(model.status == DeliveryStatus.PENDING,
                                          model.due_at <= now),
            func.count().filter(model.status == DeliveryStatus.PENDING, model.attempts > 0),
            func.count().filter(model.status == DeliveryStatus.SENDING),
        ).where(model.status.in_((DeliveryStatus.PENDING, DeliveryStatus.SENDING)), *scope)).one()
        waiting, retrying, sending = waiting + row[0], retrying + row[2], sending + row[3]
        if row[1] is not None and (oldest is None or row[1] < oldest):
            oldest = row[1]
    return Queue(waiting, oldest, retrying, sending)
