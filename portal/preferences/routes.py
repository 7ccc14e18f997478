from flask import current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from portal import phones, policy, throttle
from portal.models import Channel
from portal.notifications import account_mail, health, outbox
from portal.notifications.outbox import wants
from portal.preferences import bp
from portal.preferences.forms import (
    PhoneCodeForm,
    PhoneNumberForm,
    QuietHoursForm,
    TimeZoneForm,
)
from portal.services import phone_numbers, settings
from portal.urls import form_ids

CHOICES = ("default", "on", "off")
FAILED_SHOWN = 100


def _choice(value: bool | None) -> str:
    return "default" if value is None else ("on" if value else "off")


def _parse(value: str | None) -> bool | None:
    return {"on": True, "off": False}.get(value or "default")


@bp.route("/notifications", methods=["GET", "POST"])
@login_required
def mine():
    """Per channel on/off for the person; "default" follows the business."""
    if request.method == "POST":
        chosen = {channel: request.form.get(channel.value) for channel in Channel}
        if any(value not in CHOICES for value in chosen.values()):
            flash("Choose On, Off or the default for each channel.", "error")
            return redirect(url_for("preferences.mine"))
        settings.update_notification_choices(
            current_user, {channel: _parse(value) for channel, value in chosen.items()}
        )
        flash("Notification settings saved.", "success")
        return redirect(url_for("preferences.mine"))
    return _page()


def _page(status: int = 200, headers: dict | None = None, **forms):
    """The Notifications page; a phone form that failed comes back with its messages."""
    confirmation = phone_numbers.pending(current_user)
    return render_template(
        "preferences/mine.html",
        channels=[
            # "Now" is off, whatever the choice, for an address that bounced, a phone not
            # confirmed or that replied STOP (the page says which, below the table).
            (channel, _choice(getattr(current_user, f"notify_{channel.value}")),
             wants(current_user, channel) and not outbox.unreachable(current_user, channel))
            for channel in Channel
        ],
        confirmation=confirmation,
        code_usable=confirmation is not None and phone_numbers.usable(confirmation),
        phone_confirmed=phone_numbers.is_confirmed(current_user),
        texts_wanted=wants(current_user, Channel.SMS),
        number_form=forms.get("number_form") or PhoneNumberForm(formdata=None),
        code_form=forms.get("code_form") or PhoneCodeForm(formdata=None),
        code_minutes=current_app.config["PHONE_CODE_MINUTES"],
        phone_error=forms.get("phone_error"),
        zone_form=forms.get("zone_form") or TimeZoneForm(
            formdata=None, data={"time_zone": current_user.time_zone}),
        quiet_form=forms.get("quiet_form") or QuietHoursForm(formdata=None, data={
            "enabled": bool(current_user.quiet_from),
            "quiet_from": current_user.quiet_from or "22:00",
            "quiet_until": current_user.quiet_until or "07:00",
        }),
    ), status, headers or {}


@bp.route("/notifications/time-zone", methods=["POST"])
@login_required
def time_zone():
    """The person's own time zone (anyone logged in, for their own login only)."""
    form = TimeZoneForm()
    if not form.validate_on_submit():
        return _page(422, zone_form=form)
    if settings.update_own_time_zone(current_user, form.time_zone.data):
        flash(f"Your time zone is now {form.time_zone.data}.", "success")
    return redirect(url_for("preferences.mine") + "#time-zone")


@bp.route("/notifications/quiet-hours", methods=["POST"])
@login_required
def quiet_hours():
    """The person's own quiet hours (anyone logged in, for their own login only)."""
    form = QuietHoursForm()
    if not form.validate_on_submit():
        return _page(422, quiet_form=form)
    if form.enabled.data:
        quiet_from, quiet_until = form.times()
        settings.update_quiet_hours(current_user, quiet_from, quiet_until)
        flash(f"Quiet hours saved: {quiet_from} to {quiet_until}, your time.", "success")
    else:
        settings.update_quiet_hours(current_user, None, None)
        flash("Quiet hours are off: notifications go when messages arrive.", "success")
    return redirect(url_for("preferences.mine") + "#quiet-hours")


def _to_phone():
    return redirect(url_for("preferences.mine") + "#phone-texts")


# --- the person's own phone number for texts ----------------------------------------------------
# Anyone logged in, for their own login only: nothing here names another person.

@bp.route("/notifications/phone", methods=["POST"])
@login_required
def phone_send():
    """Texts a code to the number typed (a new number, the number on file to confirm it, or
    the waiting number again for "Send a new code"). Throttled per person and per number."""
    form = PhoneNumberForm()
    if not form.validate_on_submit():
        return _page(422, number_form=form)
    try:
        number = phone_numbers.new_number(current_user, form.phone.data)
    except phone_numbers.PhoneError as error:
        form.phone.errors.append(str(error))
        return _page(422, number_form=form)
    if refusal := throttle.phone_code_refusal(current_user, number):
        form.phone.errors.append(refusal.message)
        return _page(429, {"Retry-After": str(refusal.retry_after)}, number_form=form)
    phone_numbers.request_code(current_user, number)
    flash(f"We are texting a code to {phones.readable(number)}. Enter it below to confirm "
          f"the number.", "success")
    return _to_phone()


@bp.route("/notifications/phone/code", methods=["POST"])
@login_required
def phone_confirm():
    """The code typed back: the waiting number becomes the number for texts."""
    form = PhoneCodeForm()
    if not form.validate_on_submit():
        return _page(422, code_form=form)
    if refusal := throttle.phone_confirm_refusal(current_user):
        form.code.errors.append(refusal.message)
        return _page(429, {"Retry-After": str(refusal.retry_after)}, code_form=form)
    try:
        phone_numbers.confirm(current_user, form.code.data)
    except phone_numbers.PhoneError as error:
        form.code.errors.append(str(error))
        return _page(422, code_form=form)
    flash(f"Your number is confirmed: texts now go to {phones.readable(current_user.phone)}.",
          "success")
    return _to_phone()


@bp.route("/notifications/phone/cancel", methods=["POST"])
@login_required
def phone_cancel():
    """Drops the number waiting for its code; the number on file stays as it was."""
    phone_numbers.cancel(current_user)
    flash("The new number was not saved.", "success")
    return _to_phone()


@bp.route("/notifications/phone/remove", methods=["POST"])
@login_required
def phone_remove():
    try:
        phone_numbers.remove(current_user)
    except phone_numbers.PhoneError as error:
        return _page(422, phone_error=str(error))
    flash("Your number was removed: you will get no more texts.", "success")
    return _to_phone()


@bp.route("/settings/notifications", methods=["GET", "POST"])
@login_required
def business_defaults():
    policy.require(policy.can_manage_notifications(current_user))
    business = current_user.business
    if request.method == "POST":
        settings.update_business_settings(
            current_user, business,
            notify_email_default=request.form.get("email") == "on",
            notify_sms_default=request.form.get("sms") == "on",
            notify_push_default=request.form.get("push") == "on",
            private_email_includes_text=request.form.get("private_email_includes_text") == "yes",
        )
        flash("Notification defaults saved.", "success")
        return redirect(url_for("preferences.business_defaults"))
    return render_template(
        "preferences/business.html", business=business,
        failed=outbox.failed(business.id, FAILED_SHOWN),
        retrying=outbox.retrying(business.id, FAILED_SHOWN),
        delivery=health.report(business.id),
        failed_account_emails=account_mail.failed(business.id, FAILED_SHOWN),
    )


@bp.route("/settings/notifications/retry", methods=["POST"])
@login_required
def retry():
    policy.require(policy.can_manage_notifications(current_user))
    count = outbox.retry_failed(form_ids("notification"), current_user.business_id)
    count += account_mail.retry_failed(form_ids("account_email"), current_user.business_id)
    flash(f"{count} notification{'s' if count != 1 else ''} will be sent again.", "success")
    return redirect(url_for("preferences.business_defaults"))
