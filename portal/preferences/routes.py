from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from portal import policy
from portal.models import Channel
from portal.notifications import account_mail, outbox
from portal.notifications.outbox import wants
from portal.preferences import bp
from portal.services import settings
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
    return render_template(
        "preferences/mine.html",
        channels=[
            # "Now" is off, whatever the choice, for an address that bounced or a phone that
            # replied STOP (the page says which, below the table).
            (channel, _choice(getattr(current_user, f"notify_{channel.value}")),
             wants(current_user, channel) and not outbox.unreachable(current_user, channel))
            for channel in Channel
        ],
    )


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
