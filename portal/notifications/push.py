"""Web push: VAPID-signed, encrypted (aes128gcm) notifications to each device a person enabled.

A notification about a private message says only who wrote: never any of its text, whatever the
business chose for emails. A push service that no longer knows a subscription (404/410) has it
deleted; a device that is merely offline is the push service's business (it keeps the
notification for PUSH_TTL_SECONDS).
"""

import base64
import binascii
import functools
import json
import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask import current_app
from py_vapid import Vapid
from sqlalchemy import select

from portal.extensions import db
from portal.models import PushSubscription
from portal.notifications.errors import PermanentError, TransientError

log = logging.getLogger(__name__)
TITLE_LENGTH = 120
BODY_LENGTH = 280


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def b64url_decode(text: str) -> bytes:
    """Strict base64url (padding optional); raises ValueError."""
    if not isinstance(text, str) or not text.isascii():
        raise ValueError("not base64url")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except binascii.Error as error:
        raise ValueError("not base64url") from error


@dataclass(frozen=True)
class VapidKeys:
    vapid: Vapid
    public_key: str  # base64url of the uncompressed P-256 point: the applicationServerKey


@functools.lru_cache(maxsize=4)
def _load(private_key: str, public_key: str | None) -> VapidKeys:
    """PEM (what `notifications vapid-keys` writes), or base64url raw/DER (what other VAPID
    tools print). A public key given alongside must belong to the private key."""
    text = private_key.strip()
    if text.startswith("-----BEGIN"):
        vapid = Vapid(serialization.load_pem_private_key(text.encode(), password=None))
    else:
        vapid = Vapid.from_string(text)
    key = vapid.private_key
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ValueError("the VAPID private key must be an EC P-256 key")
    derived = b64url(vapid.public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    ))
    if public_key and public_key.strip().rstrip("=") != derived:
        raise ValueError("VAPID_PUBLIC_KEY does not belong to VAPID_PRIVATE_KEY")
    return VapidKeys(vapid, derived)


def vapid_keys() -> VapidKeys | None:
    """The configured keys, or None: push is then unavailable (and the page says so)."""
    config = current_app.config
    if not config.get("VAPID_PRIVATE_KEY"):
        return None
    try:
        return _load(config["VAPID_PRIVATE_KEY"], config.get("VAPID_PUBLIC_KEY"))
    except (ValueError, TypeError, UnsupportedAlgorithm) as error:
        log.error("web push unavailable: the VAPID keys are unusable (%s)", error)
        return None


def application_server_key() -> str | None:
    keys = vapid_keys()
    return keys.public_key if keys else None


class _NoRedirects(requests.Session):
    """Push services answer directly. Endpoints come from browsers, so following a redirect
    would let one send the worker's request anywhere: a 3xx is a refusal instead."""

    def request(self, *args, **kwargs):
        kwargs["allow_redirects"] = False
        return super().request(*args, **kwargs)


def _clip(text: str, length: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= length else text[: length - 1] + "…"


def payload(item) -> dict:
    """What the service worker shows. Private: who wrote, and nothing of what they wrote."""
    if item.private:
        return {"title": _clip(f"New private message from {item.author_name}", TITLE_LENGTH),
                "body": "", "url": item.link}
    if item.excerpt:
        body = item.excerpt
    elif item.attachments:
        body = f"Sent {item.attachments} attachment{'s' if item.attachments != 1 else ''}"
    else:
        body = ""
    return {"title": _clip(f"New message from {item.author_name}", TITLE_LENGTH),
            "body": _clip(body, BODY_LENGTH), "url": item.link}


def send(recipient, item) -> None:
    """Sends one notification to every device of the recipient.

    Any 5xx/429/network failure: TransientError (the worker retries the row; the service
    worker's tag per feed makes a repeat replace the notification shown, not add one). A device
    the push service forgot (404/410) is deleted. Refused everywhere else: PermanentError.
    No device left at all is fine: there is nobody to tell.
    """
    # Imported here, by the worker alone: pywebpush brings aiohttp, megabytes in every web
    # process that never sends.
    from pywebpush import WebPushException

    keys = vapid_keys()
    if keys is None:
        raise PermanentError("web push is not configured (no usable VAPID keys)")
    subscriptions = list(db.session.scalars(
        select(PushSubscription)
        .where(PushSubscription.user_id == recipient.id,
               PushSubscription.business_id == recipient.business_id)
        .order_by(PushSubscription.id)
    ))
    data = json.dumps(payload(item), separators=(",", ":"))
    config = current_app.config
    delivered, transient, permanent = 0, [], []
    with _NoRedirects() as session:
        for subscription in subscriptions:
            try:
                _push(session, subscription, data, keys, config)
            except WebPushException as error:
                status = error.status_code
                if status in (404, 410):
                    db.session.delete(subscription)  # committed with the notification's row
                elif status is None:
                    permanent.append(f"{_host(subscription)}: {error.message}")
                elif status >= 500 or status == 429:
                    transient.append(f"{_host(subscription)} answered {status}")
                else:
                    permanent.append(f"{_host(subscription)} answered {status}")
            except requests.RequestException as error:
                transient.append(f"{_host(subscription)} unreachable: {type(error).__name__}")
            except ValueError as error:  # a stored key the encryption refuses
                permanent.append(f"{_host(subscription)}: {error}")
            else:
                delivered += 1
    if transient:
        raise TransientError("push: " + "; ".join(transient + permanent))
    if permanent and not delivered:
        raise PermanentError("push: " + "; ".join(permanent))
    if permanent:
        log.warning("push to user %s reached %d device(s), refused by: %s",
                    recipient.id, delivered, "; ".join(permanent))


def _host(subscription: PushSubscription) -> str | None:
    """Errors name the push service's host only: an endpoint is a secret address."""
    return urlsplit(subscription.endpoint).hostname


def _push(session, subscription: PushSubscription, data: str, keys: VapidKeys, config) -> None:
    from pywebpush import webpush

    webpush(
        {"endpoint": subscription.endpoint,
         "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth}},
        data=data,
        vapid_private_key=keys.vapid,
        # A fresh dict each time: webpush() fills in "aud" for the endpoint's origin.
        vapid_claims={"sub": config["VAPID_SUBJECT"]},
        ttl=config["PUSH_TTL_SECONDS"],
        timeout=config["PUSH_TIMEOUT_SECONDS"],
        headers={"Urgency": "normal"},
        requests_session=session,
    )
