"""A staff member's schedule as an iCalendar file, for a phone calendar to subscribe to.

A phone calendar is synced to its maker's servers, so the file holds what a sitter needs to
find the visit and no more: when, where, which household, and the entry instructions. Never a
message, a note, or the gate code ("Gate code: in the portal"). A visit beyond the staff
access window (its client's page not open to the sitter yet) has neither location nor entry
instructions, only when they open; the feed refreshes hourly and fills them in then.
"""

from datetime import datetime, timedelta

from icalendar import Calendar, Event

from portal.clock import EN_DASH
from portal.models import ServiceStatus, User, utcnow
from portal.staff.visits import Visit, calendar_visits

GATE_CODE_NOTE = "Gate code: in the portal"
DETAILS_CLOSED_NOTE = "Details: not open to you"


def uid(visit_id: int, business_id: int) -> str:
    """The same for a visit whatever else changes about it (time, staff, status)."""
    return f"visit-{visit_id}-business-{business_id}@pet-portal"


def _event(visit: Visit, staff: User, stamp: datetime) -> Event:
    event = Event()
    event.add("uid", uid(visit.id, staff.business_id))
    event.add("dtstamp", stamp)
    event.add("dtstart", visit.starts_at)
    event.add("dtend", visit.ends_at)
    event.add("summary", f"{visit.title} {EN_DASH} {visit.client_name}")
    if visit.address:
        event.add("location", visit.address)
    description = []
    if not visit.details:  # the client's page is not open to the staff member yet
        description.append(f"Details open {visit.details_open}" if visit.details_open
                           else DETAILS_CLOSED_NOTE)
    if visit.entry_instructions:
        description.append(f"Entry: {visit.entry_instructions}")
    if visit.gate_code:
        description.append(GATE_CODE_NOTE)
    if description:
        event.add("description", "\n".join(description))
    cancelled = visit.status == ServiceStatus.CANCELLED
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    # Each change of the visit (new times, cancelled) counts one more revision.
    event.add("sequence", visit.revision)
    if visit.updated_at is not None:
        event.add("last-modified", visit.updated_at)
    event.add("transp", "OPAQUE")
    return event


def build(staff: User, now: datetime | None = None) -> bytes:
    now = now or utcnow()
    calendar = Calendar()
    calendar.add("prodid", "-//Pet-care portal//Schedule//EN")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", f"{staff.business.name} visits")
    calendar.add("x-wr-timezone", staff.business.time_zone)
    # Subscribed calendars refresh about hourly when the file asks them to.
    calendar.add("refresh-interval", timedelta(hours=1), parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", "PT1H")
    for visit in calendar_visits(staff, now):
        calendar.add_component(_event(visit, staff, now))
    return calendar.to_ical()
