"""The service worker at the site's root, and saving or forgetting this device's subscription.

Both subscription endpoints answer JSON to push.js, which sends the CSRF token in the
X-CSRFToken header like htmx does (Flask-WTF checks it before the view runs).
"""

import hashlib

from cryptography.hazmat.primitives.asymmetric import ec
from flask import current_app, jsonify, request, send_from_directory
from flask_login import current_user, login_required

from portal.models import Channel
from portal.notifications import push
from portal.notifications.outbox import wants
from portal.push import bp
from portal.services import push_devices

MAX_BODY_BYTES = 4096
MAX_ENDPOINT_LENGTH = 1000  # the column's size


class Invalid(ValueError):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@bp.get("/service-worker.js")
def service_worker():
    """Served from the root so that its scope can be the whole portal."""
    response = send_from_directory(
        current_app.static_folder, "service-worker.js", mimetype="application/javascript",
        max_age=0,
    )
    response.headers["Service-Worker-Allowed"] = "/"
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.post("/push/subscriptions")
@login_required
def subscribe():
    try:
        endpoint, p256dh, auth = _subscription(_submitted())
    except Invalid as error:
        return jsonify(error=str(error)), error.status
    created = push_devices.save(current_user, endpoint, p256dh, auth)
    return jsonify(subscribed=True), 201 if created else 200


@bp.post("/push/subscriptions/delete")
@login_required
def unsubscribe():
    try:
        endpoint = _submitted()["endpoint"]
        if not isinstance(endpoint, str) or not 0 < len(endpoint) <= MAX_ENDPOINT_LENGTH:
            raise Invalid("endpoint is missing or too long")
    except Invalid as error:
        return jsonify(error=str(error)), error.status
    return jsonify(deleted=push_devices.forget(current_user, endpoint))


@bp.app_context_processor
def push_device_context():
    """For templates/preferences/_push_device.html, computed only when it is rendered."""

    def push_device() -> dict:
        endpoints = push_devices.endpoints(current_user)
        return {
            "application_server_key": push.application_server_key(),
            # Hashes, not the endpoints: enough for push.js to tell whether this browser's
            # subscription is this person's.
            "device_hashes": sorted(endpoint_hash(endpoint) for endpoint in endpoints),
            "wanted": wants(current_user, Channel.PUSH),
        }

    return {"push_device": push_device}


def endpoint_hash(endpoint: str) -> str:
    return hashlib.sha256(endpoint.encode()).hexdigest()


def _submitted() -> dict:
    """PushSubscription.toJSON() as JSON, or form fields endpoint, keys.p256dh, keys.auth."""
    if (request.content_length or 0) > MAX_BODY_BYTES:
        raise Invalid("request too large", 413)
    if request.is_json:
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            raise Invalid("expected a JSON object")
        keys = data.get("keys") if isinstance(data.get("keys"), dict) else {}
        return {"endpoint": data.get("endpoint"), "p256dh": keys.get("p256dh"),
                "auth": keys.get("auth")}
    return {"endpoint": request.form.get("endpoint"), "p256dh": request.form.get("keys.p256dh"),
            "auth": request.form.get("keys.auth")}


def _subscription(fields: dict) -> tuple[str, str, str]:
    endpoint = _endpoint(fields["endpoint"])
    p256dh = _key(fields["p256dh"], "keys.p256dh", 65)
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), p256dh)
    except ValueError as error:
        raise Invalid("keys.p256dh is not a P-256 public key") from error
    auth = _key(fields["auth"], "keys.auth", 16)
    return endpoint, push.b64url(p256dh), push.b64url(auth)


def _endpoint(endpoint) -> str:
    """A push service's https address (push.endpoint_refusal): the worker posts to it, so it
    must not be a way to reach the portal's own network."""
    if not isinstance(endpoint, str) or not endpoint:
        raise Invalid("endpoint is missing")
    if len(endpoint) > MAX_ENDPOINT_LENGTH:
        raise Invalid("endpoint too long")
    if not endpoint.isascii() or any(char.isspace() or not char.isprintable()
                                     for char in endpoint):
        raise Invalid("endpoint is not a URL")
    if refusal := push.endpoint_refusal(endpoint):
        raise Invalid(refusal)
    return endpoint


def _key(value, name: str, size: int) -> bytes:
    if not isinstance(value, str) or not value or len(value) > 200:
        raise Invalid(f"{name} is missing or too long")
    try:
        raw = push.b64url_decode(value)
    except ValueError as error:
        raise Invalid(f"{name} is not base64url") from error
    if len(raw) != size:
        raise Invalid(f"{name} must be {size} bytes")
    return raw

