from collections.abc import Callable
from datetime import datetime

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import or_, tuple_
from wtforms import SelectChoice

from portal import policy
from portal.clients import bp, imports  # noqa: F401  (imports: Clients > Import's routes)
from portal.clients.forms import ClientForm, PetForm, PreferredSitterForm, ServiceForm
from portal.clock import zone
from portal.extensions import db
from portal.feed_component.views import page_options, render_client_page
from portal.forms import LoginAccountForm
from portal.fragments import render
from portal.loaders import (
    active_staff,
    client_of_business,
    service_of_business,
    staff_of_business,
)
from portal.models import Client, Feed, Role
from portal.services import accounts, clients, form_keys
from portal.urls import id_arg

CLIENTS_PER_PAGE = 50


@bp.route("/clients")
@login_required
def index():
    policy.require(policy.can_manage_clients(current_user))
    search = request.args.get("q", "").strip()[:100]
    query = policy.clients_visible_to(current_user).order_by(Client.name, Client.id)
    if search:
        query = query.where(or_(
            Client.name.icontains(search, autoescape=True),
            Client.email.icontains(search, autoescape=True),
        ))
    after_name, after_id = request.args.get("after_name"), id_arg("after_id")
    if after_name is not None and after_id is not None:
        query = query.where(tuple_(Client.name, Client.id) > tuple_(after_name, after_id))
    rows = list(db.session.scalars(query.limit(CLIENTS_PER_PAGE + 1)))
    next_page = None
    if len(rows) > CLIENTS_PER_PAGE:
        rows = rows[:CLIENTS_PER_PAGE]
        next_page = url_for(
            "clients.index", q=search or None, after_name=rows[-1].name, after_id=rows[-1].id
        )
    return render(
        "clients/index.html", "clients/_results.html",
        clients=rows, search=search, next_page=next_page,
    )


@bp.route("/clients/new", methods=["GET", "POST"])
@login_required
def new():
    policy.require(policy.can_manage_clients(current_user))
    form = ClientForm()
    if form.validate_on_submit():
        profile_url = _once(lambda: _create_client(form), url_for("clients.index"))
        flash(f"{form.name.data.strip()} was added.", "success")
        return redirect(profile_url)
    return render_template("clients/new.html", form=form), 422 if form.errors else 200


def _create_client(form: ClientForm) -> str:
    pet_name = (form.pet_name.data or "").strip()
    pets = [(pet_name, (form.pet_species.data or "").strip() or "Dog")] if pet_name else []
    client = clients.create_client(
        current_user.business, current_user,
        name=form.name.data, email=form.email.data, phone=form.phone.data,
        address=form.address.data, notes=form.notes.data, pets=pets,
    )
    return url_for("clients.profile", client_id=client.id)


@bp.route("/clients/<int:client_id>")
@login_required
def profile(client_id: int):
    client = client_of_business(current_user, client_id, *page_options())
    policy.require(policy.can_view_client(current_user, client))
    return render_client_page(client, Feed.CONVERSATION)


def _managed_client(client_id: int) -> Client:
    policy.require(policy.can_manage_clients(current_user))
    return client_of_business(current_user, client_id)


def _back_to_profile(client: Client, message: str, section: str = "details"):
    flash(message, "success")
    return redirect(url_for("clients.profile", client_id=client.id) + f"#{section}")


def _made_once(client: Client, make: Callable[[], object], section: str) -> None:
    """Runs make() once per form shown (form_keys): a repeated post adds nothing."""
    back = url_for("clients.profile", client_id=client.id) + f"#{section}"

    def made() -> str:
        make()
        return back

    _once(made, back)


def _once(make: Callable[[], str], repeated_url: str) -> str:
    """make() unless this form's one-time key (the once() macro) was used already."""
    return form_keys.once(current_user, request.form.get(form_keys.FIELD), make, repeated_url)


def _form_errors(form) -> str:
    return " ".join(error for errors in form.errors.values() for error in errors)


@bp.route("/clients/<int:client_id>/pets", methods=["POST"])
@login_required
def add_pet(client_id: int):
    client = _managed_client(client_id)
    form = PetForm()
    if not form.validate_on_submit():
        flash("The pet was not added: " + _form_errors(form), "error")
        return redirect(url_for("clients.profile", client_id=client.id))
    _made_once(client, lambda: clients.add_pet(
        current_user, client, name=form.name.data, species=form.species.data,
        notes=form.notes.data,
    ), "details")
    return _back_to_profile(client, f"{form.name.data} was added.")


@bp.route("/clients/<int:client_id>/logins/new", methods=["GET", "POST"])
@login_required
def new_login(client_id: int):
    client = _managed_client(client_id)
    form = LoginAccountForm()
    if form.validate_on_submit():
        try:
            accounts.invite_user(
                current_user.business, current_user, role=Role.CLIENT, client_id=client.id,
                name=form.name.data, email=form.email.data, phone=form.phone.data,
            )
        except accounts.AccountError as error:
            form.email.errors.append(str(error))  # a taken email
        else:
            return _back_to_profile(client, accounts.invited_notice(form.name.data,
                                                                    form.email.data))
    status = 422 if form.errors else 200
    return render_template("clients/new_login.html", form=form, client=client), status


def staff_choices(business_id: int) -> list[SelectChoice]:
    return [SelectChoice(staff.id, staff.name) for staff in active_staff(business_id)]


def _service_form(business_id: int) -> ServiceForm:
    form = ServiceForm()
    form.staff_id.choices = staff_choices(business_id)
    return form


@bp.route("/clients/<int:client_id>/services", methods=["POST"])
@login_required
def schedule_service(client_id: int):
    client = _managed_client(client_id)
    form = _service_form(current_user.business_id)
    if not form.validate_on_submit():
        flash("The service was not scheduled: " + _form_errors(form), "error")
        return redirect(url_for("clients.profile", client_id=client.id) + "#services")
    staff = staff_of_business(current_user, form.staff_id.data)
    business_zone = zone(current_user.business.time_zone)
    starts_at = datetime.combine(form.date.data, form.starts.data, business_zone)
    ends_at = datetime.combine(form.date.data, form.ends.data, business_zone)
    _made_once(client, lambda: clients.schedule_service(
        current_user, client, staff, title=form.title.data, starts_at=starts_at, ends_at=ends_at
    ), "services")
    return _back_to_profile(client, f"{form.title.data} with {staff.name} was scheduled.",
                            "services")


@bp.route("/services/<int:service_id>/cancel", methods=["POST"])
@login_required
def cancel_service(service_id: int):
    policy.require(policy.can_manage_clients(current_user))
    service = service_of_business(current_user, service_id)
    clients.cancel_service(current_user, service)
    client = client_of_business(current_user, service.client_id)
    return _back_to_profile(client, "The service was cancelled.")


@bp.route("/clients/<int:client_id>/preferred-sitters", methods=["POST"])
@login_required
def add_preferred_sitter(client_id: int):
    client = _managed_client(client_id)
    form = PreferredSitterForm()
    form.staff_id.choices = staff_choices(current_user.business_id)
    if not form.validate_on_submit():
        flash("Choose a staff member.", "error")
        return redirect(url_for("clients.profile", client_id=client.id))
    staff = staff_of_business(current_user, form.staff_id.data)
    clients.add_preferred_sitter(current_user, client, staff)
    return _back_to_profile(client, f"{staff.name} is now a preferred sitter.")


@bp.route("/clients/<int:client_id>/preferred-sitters/<int:staff_id>/remove", methods=["POST"])
@login_required
def remove_preferred_sitter(client_id: int, staff_id: int):
    client = _managed_client(client_id)
    staff = staff_of_business(current_user, staff_id)
    clients.remove_preferred_sitter(current_user, client, staff)
    return _back_to_profile(client, f"{staff.name} is no longer a preferred sitter.")

