"""Visit reports: Start visit and End visit record when the staff member arrived and left, and
the report (the business's checklist, a note, photos) is a message of the client's
Conversation feed, tied to the visit: posted through messages.post_message, the one sending
path, so it is told as any message is. One report per visit; a second changes the first.
"""

import json
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from portal import policy
from portal.extensions import db
from portal.models import (
    VIA_REPORT,
    Attachment,
    Business,
    Client,
    DeliveryStatus,
    Feed,
    ScheduledMessage,
    ScheduledService,
    ServiceStatus,
    User,
    VisitReport,
    utcnow,
)
from portal.report_cards import ANSWER_LABELS
from portal.services import audit, messages, send_later
from portal.services.uploads import PreparedFile

DEFAULT_CHECKLIST = ("Walked", "Fed", "Water", "Medication given", "Pee", "Poo")
# A checklist answer, as the form sends it and as the card words it.
ANSWERS = ANSWER_LABELS
MAX_ITEMS, MAX_ITEM_LENGTH = 20, 40
# A visit may be started this long before its time (the sitter is early).
EARLY_START = timedelta(hours=2)


class VisitRefused(ValueError):
    """Why the visit cannot be started, ended or reported now: in words for the person."""


def checklist_of(business: Business) -> list[str]:
    """The business's checklist: the portal's until it keeps one (which may be empty)."""
    if business.visit_checklist is None:
        return list(DEFAULT_CHECKLIST)
    return list(business.visit_checklist)


def checked_checklist(lines: str) -> list[str]:
    """The Settings form's checklist (one item per line): cleaned, duplicates dropped;
    VisitRefused for too many or too long items."""
    items: list[str] = []
    for line in lines.splitlines():
        item = " ".join(line.split())
        if item and item.casefold() not in {known.casefold() for known in items}:
            items.append(item)
    if len(items) > MAX_ITEMS:
        raise VisitRefused(f"Keep the checklist to {MAX_ITEMS} items.")
    if long := next((item for item in items if len(item) > MAX_ITEM_LENGTH), None):
        raise VisitRefused(f"“{long[:MAX_ITEM_LENGTH]}…” is too long: keep each item under "
                           f"{MAX_ITEM_LENGTH} characters.")
    return items


# --- start and end ------------------------------------------------------------------------------

def start(actor: User, service: ScheduledService, latitude: float | None = None,
          longitude: float | None = None) -> None:
    """Records the arrival; started already, nothing changes. Where the phone was is kept
    only while the business records it."""
    _refuse_unless_open(service)
    if service.started_at is not None:
        return
    now = utcnow()
    if now < service.starts_at - EARLY_START:
        raise VisitRefused("This visit is not due yet: start it when you arrive.")
    service.started_at = now
    if actor.business.record_visit_location and _is_place(latitude, longitude):
        service.start_latitude, service.start_longitude = latitude, longitude
    _refresh_card(service)
    audit.record(service.business_id, actor, "visit.started", "service", service.id,
                 client_id=service.client_id, title=service.title)
    db.session.commit()


def end(actor: User, service: ScheduledService, commit: bool = True) -> None:
    """Records the departure; ended already, nothing changes. Without `commit` it goes with
    the caller's next commit (End visit and send report: the report's, or neither)."""
    _refuse_unless_open(service)
    if service.started_at is None:
        raise VisitRefused("Start the visit before ending it.")
    if service.ended_at is not None:
        return
    now = utcnow()
    if now < service.started_at:
        raise VisitRefused("A visit cannot end before it started.")
    service.ended_at = now
    _refresh_card(service)
    audit.record(service.business_id, actor, "visit.ended", "service", service.id,
                 client_id=service.client_id, title=service.title)
    if commit:
        db.session.commit()


def _refuse_unless_open(service: ScheduledService) -> None:
    if service.status == ServiceStatus.CANCELLED:
        raise VisitRefused("This visit was cancelled.")


def _is_place(latitude, longitude) -> bool:
    return (isinstance(latitude, float) and isinstance(longitude, float)
            and -90 <= latitude <= 90 and -180 <= longitude <= 180)


# --- the report -------------------------------------------------------------------------------

def report_of(service: ScheduledService) -> VisitReport | None:
    return db.session.scalar(select(VisitReport).where(VisitReport.service_id == service.id))


def file(author: User, service: ScheduledService, answers: dict[str, str], note: str,
         files: list[PreparedFile] = (), send_key: str | None = None) -> VisitReport:
    """Posts the visit's report, or changes the one filed before (its answers and note; new
    photos are added). Refused for a cancelled visit and one not begun."""
    _refuse_unless_open(service)
    if service.starts_at > utcnow() and service.started_at is None:
        raise VisitRefused("This visit has not begun: report on it once you are there.")
    checklist = [[item, answers.get(item, "na")] for item in checklist_of(author.business)]
    report = report_of(service)
    posted = (report is not None and report.message is not None
              and not report.message.is_deleted)
    if policy.needs_approval(author):
        return _hold(author, service, report, posted, checklist, note, files, send_key)
    if posted:
        if send_key and report.send_key == send_key:
            return report  # this very change, sent again
        return _change(author, report, checklist, note, files, send_key)
    client = db.session.get(Client, service.client_id)
    report = report or VisitReport(business_id=service.business_id, client_id=client.id,
                                   service_id=service.id, author_id=author.id)
    report.checklist, report.author_id, report.updated_at = checklist, author.id, utcnow()
    report.card, report.send_key = card_json(service, checklist), send_key
    try:
        messages.post_message(author, client, Feed.CONVERSATION, note, files,
                              send_key=send_key, via=VIA_REPORT, origin=report)
    except IntegrityError:
        # Another report of the visit came first (a second phone): this one changes it.
        report = report_of(service)
        if report is None or report.message is None:
            raise
        return _change(author, report, checklist, note, files, send_key)
    return report


def _hold(author: User, service: ScheduledService, report: VisitReport | None, posted: bool,
          checklist: list, note: str, files: list[PreparedFile],
          send_key: str | None) -> VisitReport:
    """The report of someone whose messages need approval: its note and photos wait, held,
    as any message of theirs (services.send_later); approved, it is posted as the report."""
    if posted:
        raise VisitRefused("This visit's report was sent already. Your messages need approval: "
                           "ask the office to change it.")
    if report is not None and db.session.scalar(select(ScheduledMessage.id).where(
            ScheduledMessage.visit_report_id == report.id,
            ScheduledMessage.status == DeliveryStatus.PENDING)):
        raise VisitRefused("Your report awaits approval already: change it under the "
                           "client's feed while it waits.")
    client = db.session.get(Client, service.client_id)
    report = report or VisitReport(business_id=service.business_id, client_id=client.id,
                                   service_id=service.id, author_id=author.id)
    report.checklist, report.author_id, report.updated_at = checklist, author.id, utcnow()
    report.card, report.send_key = card_json(service, checklist), send_key
    send_later.hold(author, client, Feed.CONVERSATION, note, files, send_key=send_key,
                    visit_report=report)
    return report


def _change(author: User, report: VisitReport, checklist: list, note: str,
            files: list[PreparedFile], send_key: str | None) -> VisitReport:
    most = current_app.config["UPLOAD_MAX_FILES"]
    if files and count_files(report.message) + len(files) > most:
        raise VisitRefused(f"A report carries at most {most} photos, as a message does: this "
                           "one has enough already.")
    report.checklist, report.updated_at, report.send_key = checklist, utcnow(), send_key
    report.card = card_json(report.service, checklist)
    report.message.text = note
    audit.record(report.business_id, author, "visit_report.changed", "message",
                 report.message_id, client_id=report.client_id,
                 feed=Feed.CONVERSATION.value, photos_added=len(files))
    messages.attach_more(report.message, files)  # commits, with the change
    return report


def count_files(message) -> int:
    return db.session.scalar(select(func.count()).select_from(Attachment)
                             .where(Attachment.message_id == message.id))


def edit_note(actor: User, report: VisitReport, note: str) -> None:
    """The admin team's change to a report's note, audited (the words are not recorded)."""
    report.message.text, report.updated_at = note, utcnow()
    audit.record(report.business_id, actor, "visit_report.note_changed", "message",
                 report.message_id, client_id=report.client_id,
                 feed=Feed.CONVERSATION.value, author_id=report.author_id)
    db.session.commit()


# --- what the card shows ----------------------------------------------------------------------

def card_json(service: ScheduledService, checklist: list) -> str:
    return json.dumps({
        "title": service.title,
        "started_at": _iso(service.started_at),
        "ended_at": _iso(service.ended_at),
        "checklist": checklist,
    }, separators=(",", ":"), sort_keys=True)


def _refresh_card(service: ScheduledService) -> None:
    """Arrival and departure change the card of a report filed already."""
    if (report := report_of(service)) is not None:
        report.card = card_json(service, report.checklist)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None

