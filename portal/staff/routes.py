from flask import flash, redirect, render_template, url_for
from flask_login import current_user, login_required
from sqlalchemy import literal, select
from sqlalchemy.orm import selectinload

from portal import policy, unread
from portal.clients.forms import LoginAccountForm, create_login, invited_notice
from portal.extensions import db
from portal.models import Client, Role, User
from portal.staff import bp


@bp.route("/staff")
@login_required
def index():
    policy.require(policy.can_manage_clients(current_user))
    members = db.session.scalars(
        select(User)
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
    if form.validate_on_submit() and create_login(form, Role.STAFF):
        flash(invited_notice(form), "success")
        return redirect(url_for("staff.index"))
    return render_template("staff/new.html", form=form), 422 if form.errors else 200


@bp.route("/my-clients")
@login_required
def my_clients():
    policy.require(policy.is_staff(current_user))
    # Unread counts as a column of the one query, over the feeds the policy lets staff see.
    unread_count = sum(
        (unread.count_column(current_user, Client.id, feed, correlate=(Client,))
         for feed in policy.feeds_in_lists(current_user)),
        literal(0),
    )
    rows = db.session.execute(
        policy.clients_visible_to(current_user)
        .add_columns(unread_count)
        .options(selectinload(Client.pets))
        .order_by(Client.name)
    )
    return render_template("staff/my_clients.html", clients=list(rows))
