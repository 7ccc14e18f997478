"""The admin team's buttons beside a login: resend the invitation, deactivate, reactivate,
try emails again to an address that bounced.

Each answers htmx with the login's status fragment (the same one the client and staff pages
include), and a plain form post with a redirect back to the page the login is listed on.
"""

from flask import flash, g, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import select

from portal import policy
from portal.accounts import bp
from portal.extensions import db
from portal.fragments import wants_fragment
from portal.models import MessageApproval, User
from portal.notifications import account_mail
from portal.services import accounts


def _managed_account(user_id: int) -> User:
    account = db.first_or_404(
        select(User).where(User.id == user_id, User.business_id == current_user.business_id)
    )
    policy.require(policy.can_manage_account(current_user, account))
    return account


def _answer(account: User, notice: str, category: str = "success"):
    if wants_fragment():
        return render_template("accounts/_status.html", account=account, notice=notice)
    flash(notice, category)
    if account.client_id is not None:  # a household's login, listed on its client's page
        return redirect(url_for("clients.profile", client_id=account.client_id) + "#logins")
    return redirect(url_for("staff.index"))


@bp.route("/accounts/<int:user_id>/invitation", methods=["POST"])
@login_required
def resend_invitation(user_id: int):
    account = _managed_account(user_id)
    try:
        accounts.resend_invitation(current_user, account)
    except accounts.AccountError as error:
        return _answer(account, str(error), "error")
    return _answer(account, f"A new invitation is on its way to {account.email}.")


@bp.route("/accounts/<int:user_id>/deactivate", methods=["POST"])
@login_required
def deactivate(user_id: int):
    account = _managed_account(user_id)
    cancelled = accounts.deactivate(current_user, account)
    said = f"{account.name} is logged out and can no longer log in."
    if cancelled:
        said += (f" {cancelled} message{'s' if cancelled != 1 else ''} they scheduled will not "
                 "go.")
    return _answer(account, said)


@bp.route("/accounts/<int:user_id>/reactivate", methods=["POST"])
@login_required
def reactivate(user_id: int):
    account = _managed_account(user_id)
    accounts.reactivate(current_user, account)
    if account.is_invited:
        return _answer(account, f"{account.name} is active again: resend the invitation so "
                                "they can set a password.")
    return _answer(account, f"{account.name} can log in again.")


@bp.route("/accounts/<int:user_id>/emails", methods=["POST"])
@login_required
def try_emails_again(user_id: int):
    account = _managed_account(user_id)
    if account.email_bounced_at is None:
        return _answer(account, f"Emails to {account.email} have not bounced: they go out as "
                                "usual.", "error")
    accounts.try_emails_again(current_user, account)
    return _answer(account, f"Notification emails go to {account.email} again.")


@bp.app_template_global()
def invitation_undelivered(account: User) -> bool:
    """For accounts/_status.html: asked only of logins still waiting on their invitation, and
    answered for the whole page from one query."""
    if not account.is_invited:
        return False
    if "undelivered_invitations" not in g:
        g.undelivered_invitations = account_mail.undelivered_invitations(account.business_id)
    return account.id in g.undelivered_invitations


APPROVAL_RULES = {"": None, **{rule.value: rule for rule in MessageApproval}}


@bp.route("/accounts/<int:user_id>/message-approval", methods=["POST"])
@login_required
def message_approval(user_id: int):
    """A staff member's own rule: their messages need approval always, never, or as the
    business's setting says."""
    account = _managed_account(user_id)
    policy.require(policy.can_set_message_approval(current_user, account))
    choice = request.form.get("message_approval", "")
    if choice not in APPROVAL_RULES:
        return _answer(account, "Choose whether their messages need approval.", "error")
    accounts.set_message_approval(current_user, account, APPROVAL_RULES[choice])
    if policy.needs_approval(account):
        said = f"{account.name}'s messages now wait for approval before clients see them."
    else:
        said = (f"{account.name}'s messages now reach clients without approval (any already "
                "awaiting approval still wait for a decision).")
    return _answer(account, said)
