"""A household's past visits with their reports, newest first: one statement per page (the
visit, who came, the report's card and note), one for the page's photos, keyset paged on
(starts_at, id) so that a household with years of walks pages as fast as a new one."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, or_, select

from portal import policy
from portal.clock import zone
from portal.extensions import db
from portal.models import (
    Client,
    Message,
    ScheduledService,
    User,
    VisitReport,
    utcnow,
)
from portal.notifications.notices import photo_tokens
from portal.report_cards import ReportCard
from portal.urls import as_id

PAGE_SIZE = 20


@dataclass(frozen=True, slots=True)
class PastVisit:
    id: int
    title: str
    starts_at: datetime
    ends_at: datetime
    who: str | None  # the first name of who came
    card: ReportCard | None
    note: str | None
    message_id: int | None
    photos: tuple[str, ...]  # attachment tokens


@dataclass(frozen=True, slots=True)
class VisitsPage:
    visits: list[PastVisit]
    # The keyset of the next page ("<iso time>_<id>"), or None at the end.
    next_before: str | None


def load(client: Client, viewer: User, before: tuple[datetime, int] | None = None,
         limit: int | None = None) -> VisitsPage:
    limit = limit or PAGE_SIZE
    query = (
        select(ScheduledService.id, ScheduledService.title, ScheduledService.starts_at,
               ScheduledService.ends_at, User.name.label("staff_name"),
               VisitReport.card, Message.id.label("message_id"), Message.text)
        .outerjoin(User, User.id == ScheduledService.staff_id)
        .outerjoin(VisitReport, VisitReport.service_id == ScheduledService.id)
        .outerjoin(Message, and_(Message.id == VisitReport.message_id,
                                 Message.deleted_at.is_(None)))
        .where(policy.household_visits_clause(client.id),
               ScheduledService.starts_at <= utcnow())
        .order_by(ScheduledService.starts_at.desc(), ScheduledService.id.desc())
        .limit(limit + 1)
    )
    if before is not None:
        at, visit_id = before
        query = query.where(or_(
            ScheduledService.starts_at < at,
            and_(ScheduledService.starts_at == at, ScheduledService.id < visit_id)))
    rows = db.session.execute(query).all()
    more, rows = len(rows) > limit, rows[:limit]
    photos = photo_tokens([row.message_id for row in rows if row.message_id])
    time_zone = zone(viewer.time_zone)
    visits = [
        PastVisit(
            row.id, row.title, row.starts_at, row.ends_at,
            row.staff_name.split()[0] if row.staff_name else None,
            ReportCard.of(row.card, time_zone) if row.card and row.message_id else None,
            row.text if row.message_id else None, row.message_id,
            photos.get(row.message_id, ()),
        )
        for row in rows
    ]
    last = rows[-1] if more else None
    return VisitsPage(visits, f"{last.starts_at.isoformat()}_{last.id}" if last else None)


@dataclass(frozen=True, slots=True)
class Answer:
    id: int
    author_name: str
    text: str | None
    created_at: datetime


ANSWERS_SHOWN = 200


def answers(report: VisitReport) -> list[Answer]:
    """The answers to a report, oldest first (deleted ones left out): one query."""
    return [Answer(*row) for row in db.session.execute(
        select(Message.id, User.name, Message.text, Message.created_at)
        .join(User, User.id == Message.author_id)
        .where(Message.reply_to_id == report.message_id, Message.client_id == report.client_id,
               Message.deleted_at.is_(None))
        .order_by(Message.id).limit(ANSWERS_SHOWN)
    )]


def report_photos(message_id: int) -> tuple[str, ...]:
    return photo_tokens([message_id]).get(message_id, ())


def parse_before(value: str | None) -> tuple[datetime, int] | None:
    """The keyset a "More" link carries, or None for anything else (the first page)."""
    at, _, visit_id = (value or "").rpartition("_")
    try:
        moment, visit_id = datetime.fromisoformat(at), as_id(visit_id)
    except ValueError:
        return None
    return (moment, visit_id) if moment.tzinfo is not None else None
