from functools import partial

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from portal import policy
from portal.forms import uploaded_photo
from portal.fragments import render
from portal.loaders import client_of_business, saved_reply_of_business
from portal.services import messages, settings, visit_reports
from portal.services import saved_replies as saved_reply_service
from portal.services.saved_replies import PLACEHOLDERS
from portal.services.uploads import UploadError
from portal.settings import audit_events, bp
from portal.settings.forms import (
    BusinessHoursForm,
    BusinessProfileForm,
    PortalSettingsForm,
    SavedReplyForm,
    VisitReportSettingsForm,
)
from portal.urls import form_ids, id_arg


@bp.before_request
@login_required
def admins_only():
    if request.endpoint == "settings.client_history":
        return None  # the admin team's: the route asks its own rule
    if request.endpoint in SAVED_REPLY_PAGES:
        return policy.require(policy.can_manage_saved_replies(current_user))
    policy.require(policy.can_manage_settings(current_user))


@bp.route("")
def index():
    return render_template("settings/index.html")


@bp.route("/client/portal", methods=["GET", "POST"])
def portal_settings():
    business = current_user.business
    form = PortalSettingsForm(data=_portal_data(business) if request.method == "GET" else None)
    if form.validate_on_submit():
        enabled = form.private_messaging_enabled.data == "yes"
        settings.update_business_settings(
            current_user, business,
            private_messaging_enabled=enabled, staff_access_days=form.staff_access_days.data,
            # An older form without the field leaves the zone as it was.
            time_zone=form.time_zone.data if form.time_zone.raw_data else business.time_zone,
            # An older form without the field leaves the setting as it was.
            client_read_receipts=(
                form.client_read_receipts.data == "yes"
                if form.client_read_receipts.raw_data else business.client_read_receipts
            ),
            staff_messages_need_approval=(
                form.staff_messages_need_approval.data == "yes"
                if form.staff_messages_need_approval.raw_data
                else business.staff_messages_need_approval
            ),
        )
        state = "enabled" if enabled else "disabled"
        flash(f"Portal Settings saved. Private Messaging is {state}.", "success")
        return redirect(url_for("settings.portal_settings"))
    return _portal_page(form=form, status=422 if form.errors else 200)


def _portal_page(status: int = 200, **forms):
    """Portal Settings' three forms, the one sent back as sent (with its errors)."""
    business = current_user.business
    forms.setdefault("form", PortalSettingsForm(formdata=None, data=_portal_data(business)))
    forms.setdefault("hours_form", BusinessHoursForm(formdata=None, data=_hours_data(business)))
    forms.setdefault("visits_form", VisitReportSettingsForm(formdata=None, data={
        "checklist": "\n".join(visit_reports.checklist_of(business)),
        "record_location": "yes" if business.record_visit_location else "no",
    }))
    return render_template("settings/portal.html", **forms), status


def _portal_data(business) -> dict:
    return {
        "private_messaging_enabled": "yes" if business.private_messaging_enabled else "no",
        "client_read_receipts": "yes" if business.client_read_receipts else "no",
        "staff_messages_need_approval": "yes" if business.staff_messages_need_approval else "no",
        "staff_access_days": business.staff_access_days,
        "time_zone": business.time_zone,
    }


@bp.route("/client/portal/hours", methods=["POST"])
def business_hours():
    """Portal Settings' second form: when the business is open, and what clients are told
    while it is not."""
    business = current_user.business
    form = BusinessHoursForm()
    if form.validate_on_submit():
        settings.update_business_settings(
            current_user, business, weekly_hours=form.weekly_hours(),
            closed_days=form.closed_day_list(),
            away_message=(form.away_message.data or "").strip() or None,
            auto_reply=form.auto_reply.data == "yes",
        )
        flash("Business hours saved.", "success")
        return redirect(url_for("settings.portal_settings") + "#business-hours")
    return _portal_page(hours_form=form, status=422)


@bp.route("/client/portal/visit-reports", methods=["POST"])
def visit_report_settings():
    """Portal Settings' third form: the visit report's checklist, and whether Start visit
    records where the phone is."""
    form = VisitReportSettingsForm()
    if form.validate_on_submit():
        try:
            checklist = visit_reports.checked_checklist(form.checklist.data or "")
        except visit_reports.VisitRefused as refusal:
            form.checklist.errors = [str(refusal)]
        else:
            settings.update_business_settings(
                current_user, current_user.business, visit_checklist=checklist,
                record_visit_location=form.record_location.data == "yes")
            flash("Visit report settings saved.", "success")
            return redirect(url_for("settings.portal_settings") + "#visit-reports")
    return _portal_page(visits_form=form, status=422)


def _hours_data(business) -> dict:
    """The hours form as the business keeps them; a day it is closed shows 8:00 to 6:00."""
    data = {
        "closed_days": "\n".join(f"{entry['day']} {entry['label']}".strip()
                                 for entry in business.closed_days or ()),
        "away_message": business.away_message or "",
        "auto_reply": "yes" if business.auto_reply else "no",
    }
    for day, (opens, closes) in (business.weekly_hours or {}).items():
        data |= {f"open_{day}": True, f"opens_{day}": opens, f"closes_{day}": closes}
    return data


@bp.route("/business", methods=["GET", "POST"])
def business_profile():
    """The business's name and logo, wherever the portal shows whose it is."""
    business = current_user.business
    form = BusinessProfileForm(obj=business)
    if form.is_submitted():
        valid = form.validate()
        logo = uploaded_photo(form.logo, "Choose an image for the logo (JPEG, PNG, WebP, GIF "
                                         "or HEIC).")
        if valid and not form.logo.errors:
            try:
                settings.update_business_profile(
                    current_user, business, name=form.name.data, logo=logo,
                    remove_logo=form.remove_logo.data,
                )
            except UploadError as error:
                form.logo.errors = [str(error)]
            except ValueError as error:  # the name: another business's, or empty once tidied
                form.name.errors = [str(error)]
            else:
                flash("Name and logo saved.", "success")
                return redirect(url_for("settings.business_profile"))
    status = 422 if form.errors or form.logo.errors else 200
    return render_template("settings/business.html", form=form, business=business), status


@bp.route("/permissions", methods=["GET", "POST"])
def permissions():
    managers = policy.private_access_grantees(current_user.business_id)
    if request.method == "POST":
        granted = set(form_ids("private_messages"))
        settings.set_private_messages_access(current_user, managers, granted)
        flash("Permissions saved.", "success")
        return redirect(url_for("settings.permissions"))
    return render_template("settings/permissions.html", managers=managers)


AUDIT_EVENTS_PER_PAGE = 50


@bp.route("/clients/<int:client_id>/history")
def client_history(client_id: int):
    """A client's History: its change events as the audit log words them, newest first, More
    by keyset from the same URL."""
    client = client_of_business(current_user, client_id)
    policy.require(policy.can_view_client_history(current_user, client))
    before = id_arg("before")
    events = audit_events.load_client_history(current_user, client, before=before,
                                              limit=AUDIT_EVENTS_PER_PAGE)
    next_page = None
    if events.next_before is not None:
        next_page = url_for("settings.client_history", client_id=client.id,
                            before=events.next_before)
    return render(
        "clients/history.html",
        "clients/_history_more.html" if before else "clients/_history_results.html",
        client=client, events=events, next_page=next_page, paged=before is not None,
    )


@bp.route("/audit-log")
def audit_log():
    """The audit log: the page, the results alone (filters), or the next events alone (More),
    from one URL; every link and the filter form also work without JavaScript."""
    policy.require(policy.can_view_audit_log(current_user))
    filters = audit_events.Filters.from_args(request.args)
    before = id_arg("before")
    events = audit_events.load(current_user, filters, before=before, limit=AUDIT_EVENTS_PER_PAGE)
    next_page = None
    if events.next_before is not None:
        next_page = url_for(
            "settings.audit_log", **filters.url_values(), before=events.next_before
        )
    return render(
        "settings/audit_log.html",
        "settings/_audit_more.html" if before else "settings/_audit_results.html",
        events=events, filters=filters, next_page=next_page, paged=before is not None,
        kinds=audit_events.KINDS, people=partial(audit_events.people, current_user),
    )


# --- saved replies: the admin team's ------------------------------------------------------------

SAVED_REPLY_PAGES = {"settings.saved_replies", "settings.new_saved_reply",
                     "settings.edit_saved_reply", "settings.delete_saved_reply"}


@bp.route("/saved-replies")
def saved_replies():
    return render_template("settings/saved_replies.html", placeholders=PLACEHOLDERS,
                           replies=saved_reply_service.of_business(current_user.business_id))


@bp.route("/saved-replies/new", methods=["GET", "POST"])
def new_saved_reply():
    return _saved_reply_page(None)


@bp.route("/saved-replies/<int:reply_id>", methods=["GET", "POST"])
def edit_saved_reply(reply_id: int):
    return _saved_reply_page(saved_reply_of_business(current_user, reply_id))


@bp.route("/saved-replies/<int:reply_id>/delete", methods=["POST"])
def delete_saved_reply(reply_id: int):
    reply = saved_reply_of_business(current_user, reply_id)
    saved_reply_service.delete(current_user, reply)
    flash(f"“{reply.title}” was deleted.", "success")
    return redirect(url_for("settings.saved_replies"))


def _saved_reply_page(reply):
    form = SavedReplyForm(obj=reply)
    if form.validate_on_submit():
        try:
            files = messages.prepare_uploads(
                form.uploads(), messages.UploadLimits.from_config(current_app.config))
            saved = saved_reply_service.save(
                current_user, reply, form.title.data.strip(), form.text.data, files,
                set(form_ids("remove")))
        except UploadError as error:
            form.files.errors = [str(error)]
        except saved_reply_service.SavedReplyError as error:
            form[error.field].errors = [str(error)]
        else:
            flash(f"“{saved.title}” was saved.", "success")
            return redirect(url_for("settings.saved_replies"))
    status = 422 if form.errors else 200
    return render_template("settings/saved_reply.html", form=form, reply=reply), status
