from flask import current_app
from sqlalchemy import and_, bindparam, delete, select, update
from sqlalchemy.orm import contains_eager
from werkzeug.security import check_password_hash, generate_password_hash

from portal.extensions import db
from portal.models import (
    AccountEmailKind,
    Business,
    LoginSession,
    MessageApproval,
    Role,
    User,
    utcnow,
)
from portal.models.users import new_session_key
from portal.notifications import account_mail
from portal.services import audit, passwords, reachability, send_later
from portal.services.account_links import Purpose

# Checked against when the email is unknown, so a wrong email costs as long as a wrong password:
# made with the configured method, on first use.
_unknown_user_hashes: dict[str, str] = {}


class AccountError(ValueError):
    pass


class WrongPassword(AccountError):
    pass


class LinkAlreadyUsed(AccountError):
    pass


def hash_password(password: str) -> str:
    return generate_password_hash(password, method=current_app.config["PASSWORD_HASH_METHOD"])


def normalize_email(email: str) -> str:
    return email.strip().lower()


def check_new_password(password: str) -> None:
    if problem := passwords.problem_with(password):
        raise AccountError(problem)


# --- creating logins --------------------------------------------------------------------------

def create_user(
    business: Business,
    *,
    role: Role,
    email: str,
    name: str,
    password: str,
    actor: User | None = None,
    client_id: int | None = None,
    phone: str | None = None,
    time_zone: str | None = None,
) -> User:
    """A login with its password chosen now: the command line and the demo business."""
    check_new_password(password)
    user = _new_user(business, role, email, name, client_id, phone, time_zone)
    user.password_hash = hash_password(password)
    db.session.flush()
    audit.record(business.id, actor, "user.created", "user", user.id, role=role.value)
    db.session.commit()
    return user


def invite_user(
    business: Business,
    actor: User,
    *,
    role: Role,
    email: str,
    name: str,
    client_id: int | None = None,
    phone: str | None = None,
) -> User:
    """A login without a password: the person gets an email with a link to choose their own."""
    user = _new_user(business, role, email, name, client_id, phone, None)
    user.invited_at = utcnow()
    db.session.flush()
    audit.record(business.id, actor, "user.invited", "user", user.id, role=role.value)
    account_mail.enqueue(user, AccountEmailKind.INVITATION)
    db.session.commit()
    return user


def invited_notice(name: str, email: str) -> str:
    """What the inviter is told, with the name and address as they typed them."""
    return f"{name} was invited: an email to {email} has a link to choose a password."


def _new_user(business, role, email, name, client_id, phone, time_zone) -> User:
    email = normalize_email(email)
    if db.session.scalar(select(User.id).where(User.email == email)):
        raise AccountError("That email address already belongs to a login.")
    if (role == Role.CLIENT) != (client_id is not None):
        raise AccountError("Client logins, and only they, belong to a client.")
    user = User(
        business_id=business.id,
        role=role,
        email=email,
        name=name.strip(),
        client_id=client_id,
        phone=phone or None,
        time_zone=time_zone or business.time_zone,
    )
    db.session.add(user)
    return user


def resend_invitation(actor: User, user: User) -> None:
    """A new email with a new link; the links sent before stop working."""
    if not user.is_invited or not user.active:
        raise AccountError(f"{user.name} has already set a password or is deactivated.")
    user.invited_at = utcnow()
    audit.record(user.business_id, actor, "user.invitation_resent", "user", user.id)
    account_mail.enqueue(user, AccountEmailKind.INVITATION)
    db.session.commit()


# --- switching logins off and on -----------------------------------------------------------------

def deactivate(actor: User, user: User) -> int:
    """Ends every session at once; the person can no longer log in or be notified, and the
    messages they scheduled will not go. Returns how many of those there were."""
    if user.id == actor.id:
        raise AccountError("You cannot deactivate your own login.")
    user.active = False
    ended = _end_sessions(user)
    cancelled, files = send_later.cancel_authored_by(user)
    audit.record(user.business_id, actor, "user.deactivated", "user", user.id,
                 sessions_ended=ended, scheduled_cancelled=cancelled)
    db.session.commit()
    send_later.forget_bytes(files)
    return cancelled


def set_message_approval(actor: User, user: User, rule: MessageApproval | None) -> None:
    """A staff member's own rule for approval (None: the business's setting), audited."""
    if user.message_approval == rule:
        return
    audit.record(user.business_id, actor, "user.message_approval_changed", "user", user.id,
                 old=user.message_approval.value if user.message_approval else None,
                 new=rule.value if rule else None)
    user.message_approval = rule
    db.session.commit()


def reactivate(actor: User, user: User) -> None:
    user.active = True
    audit.record(user.business_id, actor, "user.reactivated", "user", user.id)
    db.session.commit()


def try_emails_again(actor: User, user: User) -> None:
    """The admin team's word that a bounced address works again (the mailbox was full, or is
    fixed): notification emails go to it again."""
    reachability.clear_email_bounce(user)
    audit.record(user.business_id, actor, "user.emails_resumed", "user", user.id)
    db.session.commit()


# --- passwords --------------------------------------------------------------------------------

def request_password_reset(email: str) -> None:
    """The same one insert whether or not anyone has the address (the worker looks it up):
    the answer takes as long and says the same for every address."""
    account_mail.enqueue_reset_request(normalize_email(email))
    db.session.commit()


def set_password_from_link(user: User, password: str, purpose: Purpose) -> str:
    """Accepts an invitation or a reset: sets the password once (a second use of the same link
    finds the password changed), ends every session and returns the key of a new one."""
    check_new_password(password)
    result = db.session.execute(
        update(User)
        # Only from the password the link was made for: a second use finds another.
        .where(User.id == user.id, User.active, User.password_hash == user.password_hash)
        .values(password_hash=hash_password(password)),
        execution_options={"synchronize_session": "fetch"},
    )
    if result.rowcount != 1:
        db.session.rollback()
        raise LinkAlreadyUsed("This link was already used.")
    ended = _end_sessions(user)
    if purpose == Purpose.INVITATION:
        audit.record(user.business_id, user, "user.invitation_accepted", "user", user.id)
    else:
        audit.record(user.business_id, user, "user.password_reset", "user", user.id,
                     sessions_ended=ended)
        account_mail.enqueue(user, AccountEmailKind.PASSWORD_CHANGED)
    return _new_session(user)


def change_password(user: User, current_password: str, new_password: str) -> str:
    """Needs the current password. Ends every session, this one included, and returns the key
    of a new one for this browser: a copy of the old cookie is worth nothing either."""
    if not user.password_hash or not check_password_hash(user.password_hash, current_password):
        raise WrongPassword("That is not your current password.")
    check_new_password(new_password)
    user.password_hash = hash_password(new_password)
    ended = max(_end_sessions(user) - 1, 0)  # this browser's session goes on under a new key
    audit.record(user.business_id, user, "user.password_changed", "user", user.id,
                 other_sessions_ended=ended)
    account_mail.enqueue(user, AccountEmailKind.PASSWORD_CHANGED)
    return _new_session(user)


# --- sessions ---------------------------------------------------------------------------------

def authenticate(email: str, password: str) -> User | None:
    user = db.session.scalar(select(User).where(User.email == normalize_email(email)))
    if user is None or not user.password_hash:
        # Unknown, or invited without a password yet: as slow as a wrong password.
        method = current_app.config["PASSWORD_HASH_METHOD"]
        if method not in _unknown_user_hashes:
            _unknown_user_hashes[method] = generate_password_hash("no such user", method=method)
        check_password_hash(_unknown_user_hashes[method], password)
        return None
    if not check_password_hash(user.password_hash, password) or not user.active:
        return None
    return user


def start_session(user: User) -> str:
    login_session = LoginSession(user_id=user.id)
    db.session.add(login_session)
    db.session.commit()
    user.session_key = login_session.key
    return login_session.key


def end_session(key: str | None) -> None:
    if key:
        db.session.execute(delete(LoginSession).where(LoginSession.key == key))
        db.session.commit()


def _end_sessions(user: User) -> int:
    """Every browser of this person is logged out, remember-me cookies included (they name a
    session key too). In the caller's transaction; returns how many there were."""
    result = db.session.execute(delete(LoginSession).where(LoginSession.user_id == user.id))
    return result.rowcount


def _new_session(user: User) -> str:
    """Commits the caller's change together with a fresh session for this browser."""
    key = new_session_key()
    db.session.add(LoginSession(key=key, user_id=user.id))
    db.session.commit()
    user.session_key = key
    return key


# A session is live while its row exists and its login is more recent than "Remember me" lasts:
# a copied remember-me cookie stops working when the browser's own copy expires. Bound values:
# live_session(key).
LIVE_SESSION = and_(LoginSession.key == bindparam("key"),
                    LoginSession.created_at > bindparam("logged_in_after"))


def live_session(key: str) -> dict:
    duration = current_app.config["REMEMBER_COOKIE_DURATION"]
    return {"key": key, "logged_in_after": utcnow() - duration}


# Every request runs it: built once. The business comes from the statement's own join
# (contains_eager): joinedload's aliased second join cost each request about 0.1 ms more.
_SESSION_USER = (
    select(User)
    .join(LoginSession, LoginSession.user_id == User.id)
    .join(User.business)
    .where(LIVE_SESSION, User.active)
    .options(contains_eager(User.business))
)


def load_session_user(key: str) -> User | None:
    """The user behind a live session key, with their business, in one query."""
    user = db.session.scalar(_SESSION_USER, live_session(key))
    if user is not None:
        user.session_key = key
    return user
