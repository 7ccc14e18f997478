from flask import current_app
from sqlalchemy import bindparam, delete, select
from sqlalchemy.orm import joinedload
from werkzeug.security import check_password_hash, generate_password_hash

from portal.extensions import db
from portal.models import Business, LoginSession, Role, User
from portal.services import audit

# Checked against when the email is unknown, so a wrong email costs as long as a wrong password:
# made with the configured method, on first use.
_unknown_user_hashes: dict[str, str] = {}


class AccountError(ValueError):
    pass


def hash_password(password: str) -> str:
    return generate_password_hash(password, method=current_app.config["PASSWORD_HASH_METHOD"])


def normalize_email(email: str) -> str:
    return email.strip().lower()


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
        password_hash=hash_password(password),
        client_id=client_id,
        phone=phone or None,
        time_zone=time_zone or business.time_zone,
    )
    db.session.add(user)
    db.session.flush()
    audit.record(business.id, actor, "user.created", "user", user.id, role=role.value)
    db.session.commit()
    return user


def authenticate(email: str, password: str) -> User | None:
    user = db.session.scalar(select(User).where(User.email == normalize_email(email)))
    if user is None:
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


# Every request runs it: built once.
_SESSION_USER = (
    select(User)
    .join(LoginSession, LoginSession.user_id == User.id)
    .where(LoginSession.key == bindparam("key"), User.active)
    .options(joinedload(User.business, innerjoin=True))
)


def load_session_user(key: str) -> User | None:
    """The user behind a live session key, with their business, in one query."""
    user = db.session.scalar(_SESSION_USER, {"key": key})
    if user is not None:
        user.session_key = key
    return user
