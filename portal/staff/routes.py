from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import select

from portal import policy
from portal.extensions import db
from portal.forms import LoginAccountForm
from portal.fragments import render
from portal.models import Role, User
from portal.services import accounts
from portal.staff import bp
from portal.staff import query as clients_query
from portal.urls import id_arg

CLIENTS_PER_PAGE = 30


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
    listing = clients_query.load(current_user, after=after, limit=CLIENTS_PER_PAGE)
    return render("staff/my_clients.html", "staff/_more_clients.html", listing=listing,
                  paged=after is not None)
