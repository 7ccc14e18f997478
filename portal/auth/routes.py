from urllib.parse import urlsplit

from flask import flash, make_response, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user

from portal import policy
from portal.auth import bp
from portal.auth.forms import LoginForm
from portal.services import accounts


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
    if policy.is_admin_team(user):
        return url_for("clients.index")
    if policy.is_staff(user):
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
        response = make_response("", 401)
        response.headers["HX-Redirect"] = target
        return response
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
    if form.validate_on_submit():
        user = accounts.authenticate(form.email.data, form.password.data)
        if user is None:
            form.password.errors.append("That email and password do not match an account.")
        else:
            # A fresh session: nothing from before the login carries over.
            session.clear()
            accounts.start_session(user)
            login_user(user, remember=form.remember.data)
            return redirect(safe_next(form.next.data) or home_url(user))
    status = 200 if not form.errors else 401
    return render_template("auth/login.html", form=form), status


@bp.route("/logout", methods=["POST"])
def logout():
    if current_user.is_authenticated:
        accounts.end_session(current_user.get_id())
    logout_user()
    session.clear()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))
