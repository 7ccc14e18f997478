from flask import abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import select

from portal import policy, throttle
from portal.extensions import db
from portal.forms import LoginAccountForm
from portal.fragments import wants_fragment
from portal.models import Role, User, utcnow
from portal.services import accounts, calendar_links
from portal.staff import bp, calendar, visits
from portal.staff import query as clients_query
from portal.urls import id_arg

CLIENTS_PER_PAGE = 30


@bp.route("/staff")
@login_required
def index():
    policy.require(policy.can_manage_clients(current_user))
    members = db.session.execute(
        select(User, *visits.next_visit_columns(User.id, utcnow()))
        .where(
            User.business_id == current_user.business_id,
            User.role.in_([Role.ADMIN, Role.OFFICE_MANAGER, Role.STAFF]),
        )
        .order_by(User.active.desc(), User.name)
    )
    return render_template("staff/index.html", members=list(members))


@bp.route("/staff/new", methods=["GET", "POST"])
@login_required
def new():
    policy.require(policy.can_manage_clients(current_user))
    form = LoginAccountForm()
    if form.validate_on_submit():
        try:
            accounts.invite_user(
                current_user.business, current_user, role=Role.STAFF,
                name=form.name.data, email=form.email.data, phone=form.phone.data,
            )
        except accounts.AccountError as error:
            form.email.errors.append(str(error))  # a taken email
        else:
            flash(accounts.invited_notice(form.name.data, form.email.data), "success")
            return redirect(url_for("staff.index"))
    return render_template("staff/new.html", form=form), 422 if form.errors else 200


@bp.route("/my-clients")
@login_required
def my_clients():
    """The clients a staff member works with, by name, a page at a time: the page, or the next
    cards alone for "More clients"."""
    policy.require(policy.can_view_my_clients(current_user))
    name, client_id = request.args.get("after_name"), id_arg("after_id")
    after = (name, client_id) if name is not None and client_id is not None else None
    whole_page = not wants_fragment()
    listing = clients_query.load(current_user, after=after, limit=CLIENTS_PER_PAGE,
                                 with_total=whole_page)
    if listing.unread_total is not None:
        g.unread_total = listing.unread_total  # the navigation badge, already counted
    return render_template("staff/my_clients.html" if whole_page else "staff/_more_clients.html",
                           listing=listing, paged=after is not None)


@bp.route("/today")
@login_required
def today():
    """A staff member's visits today and in the week ahead, by day, with what they need at
    the door; and the link that puts the same schedule in their phone's calendar."""
    policy.require(policy.can_view_today(current_user))
    return render_template(
        "staff/today.html", days=visits.today(current_user),
        calendar_links=_calendar_links(current_user.calendar_token),
    )


def _calendar_links(token: str | None) -> dict | None:
    if token is None or not policy.can_subscribe_to_calendar(current_user):
        return None
    path = url_for("staff.calendar_feed", token=token)
    config = current_app.config
    base = (config["PORTAL_BASE_URL"] if config["PORTAL_BASE_URL_GIVEN"]
            else request.host_url).rstrip("/")
    https = base + path
    return {"https": https, "webcal": "webcal://" + https.split("://", 1)[1]}


@bp.route("/today/calendar-link", methods=["POST"])
@login_required
def calendar_link():
    """Makes the person's calendar link, or a new one in place of it: the old one stops
    working at once."""
    policy.require(policy.can_subscribe_to_calendar(current_user))
    had_link = current_user.calendar_token is not None
    calendar_links.new_calendar_link(current_user)
    flash("Your calendar link was reset: the old link no longer works. Subscribe again with "
          "the new one." if had_link else "Your calendar link is ready.", "success")
    return redirect(url_for("staff.today") + "#calendar")


@bp.route("/calendar/<token>.ics")
def calendar_feed(token: str):
    """A staff member's schedule for their phone calendar: no login, the secret token in the
    path is the key. An unknown token, or a login no longer active, answers 404."""
    staff = db.session.scalar(select(User).where(User.calendar_token == token)) if len(
        token) <= 64 else None
    if staff is None or not policy.can_subscribe_to_calendar(staff):
        abort(404)
    if refusal := throttle.calendar_feed_refusal(token):
        return "Too many requests for this calendar.", 429, {
            "Retry-After": str(refusal.retry_after), "Content-Type": "text/plain",
        }
    return calendar.build(staff), 200, {
        "Content-Type": "text/calendar; charset=utf-8",
        "Content-Disposition": 'inline; filename="schedule.ics"',
        # A private schedule: neither a shared cache nor a search engine keeps it.
        "Cache-Control": "private, no-store",
        "X-Robots-Tag": "noindex, nofollow",
    }
