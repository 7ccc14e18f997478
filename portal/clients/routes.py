import hashlib
from collections.abc import Callable

from flask import abort, current_app, flash, redirect, render_template, request, send_file, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy import or_, tuple_
from wtforms import SelectChoice

from portal import policy
from portal.clients import bp, imports  # noqa: F401  (imports: Clients > Import's routes)
from portal.clients import week as week_query
from portal.clients.forms import (
    CancelServiceForm,
    ClientEditForm,
    ClientForm,
    EditServiceForm,
    HouseholdForm,
    PetCareForm,
    PetEditForm,
    PetForm,
    PreferredSitterForm,
    ReassignServiceForm,
    ServiceForm,
)
from portal.clock import zone
from portal.extensions import db, plan_for_values
from portal.feed_component.views import WITH_PETS, page_options, render_client_page
from portal.forms import LoginAccountForm, uploaded_photo
from portal.fragments import render
from portal.loaders import (
    active_staff,
    client_of_business,
    pet_of_client,
    service_of_business,
    staff_of_business,
)
from portal.models import Client, Feed, Pet, Role, User, utcnow
from portal.services import accounts, clients, form_keys, schedule
from portal.services.uploads import UploadError
from portal.storage import storage
from portal.urls import id_arg

CLIENTS_PER_PAGE = 50


@bp.route("/clients")
@login_required
def index():
    policy.require(policy.can_manage_clients(current_user))
    search = request.args.get("q", "").strip()[:100]
    archived = request.args.get("archived") == "1"
    query = policy.clients_visible_to(current_user, archived=archived).order_by(
        Client.name, Client.id
    )
    if search:
        query = query.where(or_(
            Client.name.icontains(search, autoescape=True),
            Client.email.icontains(search, autoescape=True),
        ))
        plan_for_values()
    after_name, after_id = request.args.get("after_name"), id_arg("after_id")
    if after_name is not None and after_id is not None:
        query = query.where(tuple_(Client.name, Client.id) > tuple_(after_name, after_id))
    rows = list(db.session.scalars(query.limit(CLIENTS_PER_PAGE + 1)))
    next_page = None
    if len(rows) > CLIENTS_PER_PAGE:
        rows = rows[:CLIENTS_PER_PAGE]
        next_page = url_for(
            "clients.index", q=search or None, archived="1" if archived else None,
            after_name=rows[-1].name, after_id=rows[-1].id,
        )
    return render(
        "clients/index.html", "clients/_results.html",
        clients=rows, search=search, next_page=next_page, archived=archived,
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
        first_name=form.first_name.data, last_name=form.last_name.data,
        entry_instructions=form.entry_instructions.data,
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


def _staff_choices_with_unassigned(business_id: int) -> list[SelectChoice]:
    return [SelectChoice("", "Unassigned"), *staff_choices(business_id)]


def _chosen_staff(staff_id: int | None) -> User | None:
    return None if staff_id is None else staff_of_business(current_user, staff_id)


def _span(form) -> schedule.LocalSpan:
    return schedule.LocalSpan(form.date.data, form.starts.data,
                              form.end_date.data or form.date.data, form.ends.data)


def _refused(form, error: schedule.ScheduleError) -> None:
    """Puts a refusal of the schedule on the form field it is about (or the form as a whole)."""
    target = getattr(form, error.field, None) if error.field else None
    if target is None or not hasattr(target, "errors"):
        form.form_errors.append(str(error))
    else:
        target.errors = [*target.errors, str(error)]


def _clash_lines(overlap: schedule.Overlap) -> list[str]:
    return [schedule.clash_line(visit, current_user.business.time_zone)
            for visit in overlap.clashes]


@bp.route("/clients/<int:client_id>/services", methods=["GET", "POST"])
@login_required
def schedule_service(client_id: int):
    """Schedule a service: the profile's form posts here; a refused or overlapping one comes
    back as this page, with its message (or the overlaps to confirm) and what was entered."""
    client = _managed_client(client_id)
    form = ServiceForm()
    form.staff_id.choices = _staff_choices_with_unassigned(current_user.business_id)
    clashes = []
    if form.validate_on_submit():
        staff = _chosen_staff(form.staff_id.data)
        repeat = schedule.Repeat(
            schedule.Frequency(form.repeat.data), form.interval.data or 1,
            tuple(form.weekdays.data or ()), form.until.data, form.count.data,
        )
        made = []
        try:
            _made_once(client, lambda: made.extend(schedule.schedule(
                current_user, client, staff, title=form.title.data, span=_span(form),
                repeat=repeat, allow_overlap=form.confirm_overlap.data,
            )), "services")
        except schedule.ScheduleError as error:
            db.session.rollback()  # nothing saved, the form's one-time key neither
            _refused(form, error)
        except schedule.Overlap as overlap:
            db.session.rollback()
            clashes = _clash_lines(overlap)
        else:
            who = staff.name if staff else "nobody assigned yet"
            what = f"{len(made)} visits of " if len(made) > 1 else ""
            return _back_to_profile(
                client, f"{what}{form.title.data.strip()} with {who} scheduled.", "services")
    status = 422 if (form.errors or form.form_errors or clashes) else 200
    return render_template("clients/schedule_service.html", form=form, client=client,
                           clashes=clashes,
                           staff_members=active_staff(current_user.business_id)), status


def _visit(service_id: int):
    policy.require(policy.can_manage_clients(current_user))
    service = service_of_business(current_user, service_id)
    return service, client_of_business(current_user, service.client_id)


@bp.route("/services/<int:service_id>/edit", methods=["GET", "POST"])
@login_required
def edit_service(service_id: int):
    service, client = _visit(service_id)
    zone_name = current_user.business.time_zone
    starts, ends = (service.starts_at.astimezone(zone(zone_name)),
                    service.ends_at.astimezone(zone(zone_name)))
    form = EditServiceForm(data={
        "title": service.title, "staff_id": service.staff_id, "date": starts.date(),
        "starts": starts.time(), "end_date": ends.date(), "ends": ends.time(), "scope": "one",
    } if request.method == "GET" else None)
    form.staff_id.choices = _staff_choices_with_unassigned(current_user.business_id)
    clashes = []
    if form.validate_on_submit():
        try:
            schedule.update(
                current_user, service, schedule.Scope(form.scope.data),
                staff=_chosen_staff(form.staff_id.data), title=form.title.data,
                span=_span(form), allow_overlap=form.confirm_overlap.data,
            )
        except schedule.ScheduleError as error:
            _refused(form, error)
        except schedule.Overlap as overlap:
            clashes = _clash_lines(overlap)
        else:
            return _back_to_profile(client, f"{form.title.data} was changed.", "services")
    status = 422 if (form.errors or form.form_errors or clashes) else 200
    return render_template("clients/edit_service.html", form=form, client=client,
                           service=service, clashes=clashes,
                           repeat_line=schedule.describe_rule), status


@bp.route("/services/<int:service_id>/reassign", methods=["POST"])
@login_required
def reassign_service(service_id: int):
    service, client = _visit(service_id)
    form = ReassignServiceForm()
    form.staff_id.choices = _staff_choices_with_unassigned(current_user.business_id)
    clashes = []
    if form.validate_on_submit():
        staff = _chosen_staff(form.staff_id.data)
        try:
            schedule.update(current_user, service, schedule.Scope(form.scope.data), staff=staff,
                            allow_overlap=form.confirm_overlap.data)
        except schedule.ScheduleError as error:
            _refused(form, error)
        except schedule.Overlap as overlap:
            clashes = _clash_lines(overlap)
        else:
            who = staff.name if staff else "nobody (unassigned)"
            return _back_to_profile(client, f"{service.title} is now assigned to {who}.",
                                    "services")
    return render_template("clients/reassign_service.html", form=form, client=client,
                           service=service, clashes=clashes), 422


@bp.route("/services/<int:service_id>/cancel", methods=["POST"])
@login_required
def cancel_service(service_id: int):
    service, client = _visit(service_id)
    form = CancelServiceForm()
    if form.validate_on_submit():
        try:
            cancelled = schedule.cancel(current_user, service, schedule.Scope(form.scope.data))
        except schedule.ScheduleError as error:
            form.form_errors.append(str(error))
        else:
            visits = "visits were" if len(cancelled) > 1 else "visit was"
            noun = f"{len(cancelled)} {visits}" if len(cancelled) > 1 else f"The {visits}"
            return _back_to_profile(client, f"{noun} cancelled.", "services")
    errors = " ".join([*form.form_errors, _form_errors(form)]).strip()
    flash("Nothing was cancelled: " + errors, "error")
    return redirect(url_for("clients.profile", client_id=client.id) + "#services"), 303


@bp.route("/schedule")
@login_required
def week_schedule():
    policy.require(policy.can_view_week_schedule(current_user))
    business = current_user.business
    week = week_query.week_of(request.args.get("week"), business.time_zone)
    show_cancelled = request.args.get("cancelled") == "1"
    table = week_query.load(business, week, show_cancelled=show_cancelled)
    return render_template("clients/week_schedule.html", table=table,
                           show_cancelled=show_cancelled)


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



# --- editing a client and its pets (the admin team) ---------------------------------------------

def _edited_client(client_id: int) -> Client:
    client = client_of_business(current_user, client_id, WITH_PETS)
    policy.require(policy.can_edit_client(current_user, client))
    return client


def _changed_notice(changes: dict, saved: str) -> str:
    return saved if changes else "Nothing was changed."


@bp.route("/clients/<int:client_id>/edit", methods=["GET", "POST"])
@login_required
def edit(client_id: int):
    client = _edited_client(client_id)
    form = ClientEditForm(obj=client)
    if form.validate_on_submit():
        changes = clients.update_client(current_user, client, form.values())
        return _back_to_profile(client, _changed_notice(changes, f"{client.name} was saved."))
    status = 422 if form.errors else 200
    return render_template("clients/edit.html", form=form, client=client), status


@bp.route("/clients/<int:client_id>/archive", methods=["GET", "POST"])
@login_required
def archive(client_id: int):
    """GET asks for confirmation; the POST archives."""
    client = client_of_business(current_user, client_id)
    policy.require(policy.can_archive_client(current_user, client))
    if request.method == "POST":
        form = FlaskForm()
        if not form.validate_on_submit():
            return render_template("clients/archive.html", client=client), 422
        clients.archive_client(current_user, client)
        flash(f"{client.name} was archived: its feeds are read-only and nobody is notified.",
              "success")
        return redirect(url_for("clients.profile", client_id=client.id))
    return render_template("clients/archive.html", client=client)


@bp.route("/clients/<int:client_id>/unarchive", methods=["POST"])
@login_required
def unarchive(client_id: int):
    client = client_of_business(current_user, client_id)
    policy.require(policy.can_archive_client(current_user, client))
    clients.unarchive_client(current_user, client)
    return _back_to_profile(client, f"{client.name} is active again.")


def _business_today():
    return utcnow().astimezone(zone(current_user.business.time_zone)).date()


@bp.route("/clients/<int:client_id>/pets/<int:pet_id>/edit", methods=["GET", "POST"])
@login_required
def edit_pet(client_id: int, pet_id: int):
    client = _edited_client(client_id)
    pet = pet_of_client(current_user, client, pet_id)
    form = PetEditForm(obj=pet)
    form.today = _business_today()
    if form.is_submitted():
        valid = form.validate()
        photo = uploaded_photo(form.photo)
        if valid and not form.photo.errors:
            try:
                changes = clients.update_pet(current_user, pet, form.values(), photo=photo,
                                             remove_photo=form.remove_photo.data)
            except UploadError as error:
                form.photo.errors = [str(error)]
            else:
                return _back_to_profile(client, _changed_notice(changes, f"{pet.name} was saved."))
    status = 422 if form.errors or form.photo.errors else 200
    return render_template("clients/pet_edit.html", form=form, client=client, pet=pet), status


@bp.route("/clients/<int:client_id>/pets/<int:pet_id>/archive", methods=["POST"])
@login_required
def archive_pet(client_id: int, pet_id: int):
    client = _edited_client(client_id)
    pet = pet_of_client(current_user, client, pet_id)
    clients.archive_pet(current_user, pet)
    return _back_to_profile(client, f"{pet.name} was archived.", "pets")


@bp.route("/clients/<int:client_id>/pets/<int:pet_id>/restore", methods=["POST"])
@login_required
def restore_pet(client_id: int, pet_id: int):
    client = _edited_client(client_id)
    pet = pet_of_client(current_user, client, pet_id)
    clients.restore_pet(current_user, pet)
    return _back_to_profile(client, f"{pet.name} is back in the household.", "pets")


@bp.route("/clients/<int:client_id>/pets/<int:pet_id>/photo")
@login_required
def pet_photo(client_id: int, pet_id: int):
    client = client_of_business(current_user, client_id)
    policy.require(policy.can_view_pet_photo(current_user, client))
    pet = pet_of_client(current_user, client, pet_id)
    policy.require(pet.photo_key is not None)
    # A new photo is a new key: a digest of it is the photo's version (the key itself never
    # leaves the portal). A browser that has this version is answered before the store is read.
    version = hashlib.blake2b(pet.photo_key.encode(), digest_size=8).hexdigest()
    if request.if_none_match.contains(version):
        response = current_app.response_class(status=304)
    else:
        try:
            stored = storage().open(pet.photo_key)
        except FileNotFoundError:
            current_app.logger.error("Stored file %s is missing", pet.photo_key)
            abort(404)
        response = send_file(stored.stream, mimetype="image/webp", max_age=0,
                             conditional=False)
        response.content_length = stored.size
    response.set_etag(version)
    response.headers["Cache-Control"] = "private, no-cache"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


# --- a household's own details, from the client portal ------------------------------------------

def _own_household(client_id: int) -> Client:
    client = client_of_business(current_user, client_id, WITH_PETS)
    policy.require(policy.can_edit_household(current_user, client))
    return client


@bp.route("/clients/<int:client_id>/household", methods=["GET", "POST"])
@login_required
def edit_household(client_id: int):
    client = _own_household(client_id)
    form = HouseholdForm(obj=client)
    if form.validate_on_submit():
        changes = clients.update_household(current_user, client, form.values())
        return _back_to_profile(client, _changed_notice(changes, "Your details were saved."))
    status = 422 if form.errors else 200
    return render_template("clients/household_edit.html", form=form, client=client), status


@bp.route("/clients/<int:client_id>/household/pets/<int:pet_id>", methods=["GET", "POST"])
@login_required
def edit_pet_care(client_id: int, pet_id: int):
    client = _own_household(client_id)
    pet: Pet = pet_of_client(current_user, client, pet_id)
    policy.require(pet.archived_at is None)
    form = PetCareForm(obj=pet)
    if form.validate_on_submit():
        changes = clients.update_pet_care(current_user, pet, form.values())
        saved = f"{pet.name}'s care notes were saved."
        return _back_to_profile(client, _changed_notice(changes, saved))
    status = 422 if form.errors else 200
    return render_template("clients/pet_care_edit.html", form=form, client=client,
                           pet=pet), status
