"""The feed component: one renderer for every feed, on every page that shows one."""

from datetime import timedelta
from functools import lru_cache
from typing import NamedTuple

from flask import current_app, g, render_template
from flask_login import current_user
from sqlalchemy import and_, bindparam, select
from sqlalchemy.orm import joinedload

from portal import policy, unread
from portal.driver_reads import DriverRead
from portal.feed_component import query
from portal.forms import MessageForm
from portal.fragments import wants_fragment
from portal.models import (
    Client,
    Feed,
    Message,
    ScheduledService,
    ServiceSeries,
    ServiceStatus,
    User,
    VisitReport,
    utcnow,
)
from portal.services import composers, feed_activity, schedule, send_later
from portal.urls import moment_token

SERVICES_SHOWN = 20
# Pages show the household's pets: load them with the client, in the same query; the whole
# client page also its logins.
WITH_PETS = joinedload(Client.pets)
WITH_PETS_AND_LOGINS = (joinedload(Client.pets), joinedload(Client.logins))


def page_options() -> tuple:
    """What to load with the client for render_client_page: a fragment (a feed, or earlier
    messages) shows neither pets nor logins."""
    return () if wants_fragment() else WITH_PETS_AND_LOGINS


def _blank_form() -> MessageForm:
    """An empty composer's form, only shown: it carries the page's CSRF token (csrf_token() in
    the template), so it makes none of its own (half of the form's cost). Sends are checked
    by the form the route builds from what was posted."""
    return MessageForm(formdata=None, meta={"csrf": False})


def composer_context(client: Client, feed: Feed, form=None, token: str | None = None,
                     roster=None) -> dict:
    """Just what the composer shows: after a send, not a whole feed page. `token` keeps the
    page's composer token (its tabs' pings name it); without one the composer gets a new one.
    `roster`: the staff who see the feed, when already read."""
    return {
        "client": client,
        "feed": feed,
        "form": form or _blank_form(),
        "audience": policy.feed_audience(current_user, client, feed, roster),
        "composer_token": token if composers.is_token(token) else composers.new_token(),
        "send_key": composers.new_token(),
    }


def feed_context(
    client: Client, feed: Feed, *, before: int | None = None, form=None, with_roster=False
) -> dict:
    """The feed's context; `with_roster` brings the client's staff roster in it too (as the
    composer's audience line does for a feed that staff see)."""
    page = query.load_page(
        client, feed, current_user, before=before, limit=current_app.config["FEED_PAGE_SIZE"]
    )
    feeds = policy.visible_feeds(current_user, client)
    # The newest messages are on show (not an earlier page): the feed is read up to them.
    shown_up_to = page.newest_id if before is None else None
    opened = unread.open_feed(
        current_user, client, feed, feeds, shown_up_to,
        with_roster=with_roster or policy.audience_names_staff(feed),
    )
    roster = opened.roster
    g.unread_total = opened.total  # the navigation badge, already counted
    return {
        "client": client,
        "feed": feed,
        "feeds": feeds,
        "unread": opened.unread,
        "read_up_to": shown_up_to if opened.needs_marking else None,
        "page": page,
        "paged": before is not None,
        "form": form or _blank_form(),
        "audience": policy.feed_audience(current_user, client, feed, roster),
        "roster": roster,
        "since": moment_token(utcnow()),
        "composer_token": composers.new_token(),
        "send_key": composers.new_token(),
        "scheduled": send_later.waiting(current_user, client, feed),
    }


def render_client_page(client: Client, feed: Feed, *, before: int | None = None, form=None):
    """The client's page with one feed open: the whole page, or just the feed for htmx (and the
    navigation's unread badge, out of band). Opening the feed marks it read."""
    if wants_fragment():
        context = feed_context(client, feed, before=before)
        html = render_template("feeds/_feed.html", **context) + render_template(
            "_nav_unread.html", oob=True
        )
    elif policy.sees_client_profile(current_user):
        context = feed_context(client, feed, before=before, form=form, with_roster=True)
        html = render_template(
            "clients/profile.html", **context, **_profile_context(client, context["roster"])
        )
    else:
        context = feed_context(client, feed, before=before, form=form)
        html = render_template("clients/portal.html", **context,
                               upcoming_visits=upcoming_visits(client))
    # After rendering: a page that fails to render marks nothing read.
    if context["read_up_to"] is not None:
        feed_activity.mark_read(current_user, client, feed, context["read_up_to"])
    return html


_CLIENT_SERVICES = (
    select(
        ScheduledService.id, ScheduledService.title, ScheduledService.starts_at,
        ScheduledService.ends_at, ScheduledService.status, ScheduledService.series_id,
        ScheduledService.staff_id, User.name.label("staff_name"),
        ServiceSeries.rule.label("series_rule"), ScheduledService.started_at,
        ScheduledService.ended_at, Message.id.label("report_message_id"),
    )
    # Unassigned visits (no staff member) are listed too, for the admin team.
    .outerjoin(User, User.id == ScheduledService.staff_id)
    .outerjoin(ServiceSeries, ServiceSeries.id == ScheduledService.series_id)
    # Its report, when filed (and not deleted): listed under the visit.
    .outerjoin(VisitReport, VisitReport.service_id == ScheduledService.id)
    .outerjoin(Message, and_(Message.id == VisitReport.message_id, Message.deleted_at.is_(None)))
    .where(
        ScheduledService.client_id == bindparam("client_id"),
        ScheduledService.ends_at >= bindparam("window_start"),
    )
    .order_by(ScheduledService.starts_at, ScheduledService.id)
    .limit(SERVICES_SHOWN)
)
# Staff see their own visits still on, never cancelled ones.
_STAFF_SERVICES = DriverRead(_CLIENT_SERVICES.where(
    ScheduledService.staff_id == bindparam("staff_id"),
    ScheduledService.status != ServiceStatus.CANCELLED,
))
_SERVICES = DriverRead(_CLIENT_SERVICES)

# The household's next visit still to come or under way (not cancelled, not done), for the
# phone's "At a glance": however many visits the list above holds before it.
_COMING = (
    select(ScheduledService.title, ScheduledService.starts_at, ScheduledService.ends_at,
           User.name.label("staff_name"))
    .outerjoin(User, User.id == ScheduledService.staff_id)
    .where(
        ScheduledService.client_id == bindparam("client_id"),
        ScheduledService.ends_at > bindparam("now"),
        ScheduledService.status != ServiceStatus.CANCELLED,
        ScheduledService.status != ServiceStatus.COMPLETED,
    )
    .order_by(ScheduledService.starts_at, ScheduledService.id)
    .limit(1)
)
_NEXT_VISIT = DriverRead(_COMING)
_MY_NEXT_VISIT = DriverRead(_COMING.where(ScheduledService.staff_id == bindparam("staff_id")))


UPCOMING_DAYS = 14
UPCOMING_SHOWN = 20
_UPCOMING = DriverRead(
    select(
        ScheduledService.id, ScheduledService.title, ScheduledService.starts_at,
        ScheduledService.ends_at, User.name.label("staff_name"),
    )
    .outerjoin(User, User.id == ScheduledService.staff_id)
    .where(
        policy.household_visits_clause(bindparam("client_id")),
        ScheduledService.ends_at >= bindparam("now"),
        ScheduledService.starts_at < bindparam("until"),
    )
    .order_by(ScheduledService.starts_at, ScheduledService.id)
    .limit(UPCOMING_SHOWN)
)


def upcoming_visits(client: Client) -> list:
    """The household's next visits (and one under way) in the next UPCOMING_DAYS days, with
    the first name of who is coming, or None while nobody is assigned."""
    now = utcnow()
    rows = _UPCOMING.rows({
        "client_id": client.id, "now": now, "until": now + timedelta(days=UPCOMING_DAYS),
    })
    return [
        {"title": row.title, "starts_at": row.starts_at, "ends_at": row.ends_at,
         "who": row.staff_name.split()[0] if row.staff_name else None}
        for row in rows
    ]


def _profile_context(client: Client, roster: list[policy.StaffMember]) -> dict:
    """The sidebar: services, preferred sitters, and for the admin team staff and logins."""
    own_only = policy.sees_only_own_services(current_user)
    now = utcnow()
    values = {"client_id": client.id, "staff_id": current_user.id, "now": now,
              "window_start": policy.staff_access_window(current_user.business).start}
    context = {
        "services": (_STAFF_SERVICES if own_only else _SERVICES).rows(values),
        "next_visit": next(iter((_MY_NEXT_VISIT if own_only else _NEXT_VISIT).rows(values)),
                           None),
        "preferred_sitters": [member for member in roster if member.is_preferred],
        "repeat_line": schedule.describe_rule,
        "now": now,
    }
    if policy.can_manage_clients(current_user):
        context["staff"] = roster
        context["logins"] = client.logins
        context["schedule_fields"] = blank_schedule_fields(
            tuple((member.id, member.name) for member in roster),
            current_user.business.time_zone,
        )
    return context


class _StaffOption(NamedTuple):
    id: int
    name: str


@lru_cache(maxsize=64)
def blank_schedule_fields(staff: tuple[tuple[int, str], ...], time_zone: str):
    """Schedule a service's empty fields, as the profile shows them on every view: made only
    of the business's staff (ids and names) and its time zone, so rendered once per set of
    those rather than escaping every name on each view (about 0.15 ms a view, measured)."""
    template = current_app.jinja_env.get_template("clients/_schedule_fields.html")
    return template.module.schedule_fields(None, [_StaffOption(*pair) for pair in staff],
                                           time_zone)
