from urllib.parse import urlsplit

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user
from htmx_flask import make_response as htmx_response

from portal import policy, throttle
from portal.auth import bp
from portal.auth.forms import ChangePasswordForm, ForgotPasswordForm, LoginForm, NewPasswordForm
from portal.services import account_links, accounts
from portal.services.account_links import Purpose

# Sent with the logout: local storage and service workers of the portal (app notifications,
# which portal.js has just switched off on the server) go with the session. Not "cache": pages
# are no-store already, and Chromium takes seconds to clear its cache. Not "cookies": ours are
# expired by this response, and it would also clear every other site's under the same domain.
CLEAR_SITE_DATA = '"storage"'


def safe_next(target: str | None) -> str | None:
    """Only a path on this site: no scheme, no host, no protocol-relative or backslash tricks."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target or any(ord(char) < 32 for char in target):
        return None
    return target


def home_url(user) -> str:
    if policy.can_manage_clients(user):
        return url_for("clients.index")
    if policy.can_view_today(user):
        return url_for("staff.today")
    if policy.can_view_my_clients(user):
        return url_for("staff.my_clients")
    return url_for("clients.profile", client_id=user.client_id)


def unauthorized():
    """Anonymous: to the login page; htmx is told to load it as a page, not swap it in a panel."""
    back_to = request.full_path.rstrip("?")
    if request.htmx and request.htmx.current_url:
        # Back to the page the person was on, not to the fragment or form post that found them out.
        current = urlsplit(request.htmx.current_url)
        back_to = current.path + (f"?{current.query}" if current.query else "")
    target = url_for("auth.login", next=safe_next(back_to))
    if request.htmx:
        return htmx_response("", 401, redirect=target)
    flash("Please log in to continue.", "info")
    return redirect(target)


@bp.route("/")
@login_required
def home():
    return redirect(home_url(current_user))


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(home_url(current_user))
    form = LoginForm(next=request.args.get("next", ""))
    refusal = None
    if form.validate_on_submit():
        # Only failures count, per account and per address; a locked one is not even checked.
        refusal = throttle.login_refusal(form.email.data)
        user = None if refusal else accounts.authenticate(form.email.data, form.password.data)
        if refusal:
            form.password.errors.append(refusal.message)
        elif user is None:
            throttle.login_failed(form.email.data)
            form.password.errors.append("That email and password do not match an account.")
        else:
            throttle.login_succeeded(form.email.data)
            # A fresh session: nothing from before the login carries over.
            session.clear()
            accounts.start_session(user)
            login_user(user, remember=form.remember.data)
            return redirect(safe_next(form.next.data) or home_url(user))
    if refusal:
        return render_template("auth/login.html", form=form), 429, {
            "Retry-After": str(refusal.retry_after)
        }
    status = 200 if not form.errors else 401
    return render_template("auth/login.html", form=form), status


@bp.route("/logout", methods=["POST"])
def logout():
    if current_user.is_authenticated:
        accounts.end_session(current_user.get_id())
    logout_user()
    session.clear()
    flash("You are logged out.", "info")
    response = redirect(url_for("auth.login"))
    response.headers["Clear-Site-Data"] = CLEAR_SITE_DATA
    return response


@bp.route("/password/forgot", methods=["GET", "POST"])
def forgot_password():
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        # Counted whether or not the address has a login, so a refusal tells nothing either.
        if refusal := throttle.reset_request(form.email.data):
            form.email.errors.append(refusal.message)
            return render_template("auth/forgot_password.html", form=form), 429, {
                "Retry-After": str(refusal.retry_after)
            }
        # The same page whether or not the address has a login: nothing tells which.
        accounts.request_password_reset(form.email.data)
        return render_template("auth/reset_requested.html", email=form.email.data)
    return render_template("auth/forgot_password.html", form=form), 422 if form.errors else 200


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
def reset_password(token: str):
    return _set_password_from_link(token, Purpose.PASSWORD_RESET)


@bp.route("/invitation/<token>", methods=["GET", "POST"])
def accept_invitation(token: str):
    return _set_password_from_link(token, Purpose.INVITATION)


def _set_password_from_link(token: str, purpose: Purpose):
    """One page for both links: choose a password, then be logged in with it. A link that does
    not work gets a page saying why and what to do, never an error."""
    link = account_links.check(token, purpose)
    if link.problem:
        return _link_problem(link.problem, purpose, link.user)
    form = NewPasswordForm()
    if form.validate_on_submit():
        previous_key = current_user.get_id() if current_user.is_authenticated else None
        try:
            accounts.set_password_from_link(link.user, form.password.data, purpose)
        except accounts.LinkAlreadyUsed:
            return _link_problem(account_links.Problem.USED, purpose, link.user)
        # Whoever was logged in on this browser before is not any more.
        accounts.end_session(previous_key)
        session.clear()
        login_user(link.user)
        if purpose == Purpose.INVITATION:
            flash(f"Welcome! Your password is set: log in with {link.user.email} from now on.",
                  "success")
        else:
            flash("Your password was changed, and every other device was logged out.",
                  "success")
        return redirect(home_url(link.user))
    status = 422 if form.errors else 200
    return render_template(
        "auth/set_password.html", form=form, user=link.user, purpose=purpose
    ), status


def _link_problem(problem, purpose: Purpose, user):
    return render_template(
        "auth/link_problem.html", problem=problem, purpose=purpose,
        business=user.business if user else None,
    )


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def change_password():
    form = ChangePasswordForm()
    if form.validate_on_submit():
        user = current_user._get_current_object()
        try:
            accounts.change_password(user, form.current_password.data, form.password.data)
        except accounts.WrongPassword as error:
            form.current_password.errors.append(str(error))
        else:
            # This browser goes on under its new session key, and keeps "remember me" if set.
            remember_cookie = current_app.config.get("REMEMBER_COOKIE_NAME", "remember_token")
            login_user(user, remember=remember_cookie in request.cookies)
            flash("Your password was changed, and every other device was logged out.",
                  "success")
            return redirect(url_for("auth.change_password"))
    status = 422 if form.errors else 200
    return render_template("auth/change_password.html", form=form), status
