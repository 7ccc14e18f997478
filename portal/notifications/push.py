"""Web push: VAPID-signed, encrypted (aes128gcm) notifications to each device a person enabled.

A notification about a private message says only who wrote: never any of its text, whatever the
business chose for emails. A push service that no longer knows a subscription (404/410) has it
deleted; a device that is merely offline is the push service's business (it keeps the
notification for PUSH_TTL_SECONDS).

Endpoints come from browsers, so the worker posts only to the push services browsers use: https
on a host under PUSH_SERVICE_HOSTS, and only once that host resolved to public addresses, to
which the connection is then made (see PushSession).
"""

import base64
import binascii
import functools
import ipaddress
import json
import logging
import re
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask import current_app
from py_vapid import Vapid
from requests.adapters import HTTPAdapter
from sqlalchemy import select
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    LocationParseError,
    NameResolutionError,
    NewConnectionError,
)
from urllib3.util import connection, parse_url

from portal.extensions import db
from portal.models import PushSubscription, User
from portal.notifications.errors import PermanentError, TransientError
from portal.notifications.notices import Notice

log = logging.getLogger(__name__)
TITLE_LENGTH = 120
BODY_LENGTH = 280
STAND_IN = "127.0.0.1"  # a push service on this machine, in tests and development
# Letters, digits and hyphens in dot-separated labels: no trailing dot, nothing a URL parser
# could read differently (a backslash ends the host for urllib3, not for urlsplit).
HOST_NAME = re.compile(r"[a-z0-9-]+(\.[a-z0-9-]+)*")
# IPv6 blocks whose last 32 bits are an IPv4 address: NAT64 (well-known and local-use, RFC
# 8215), IPv4-compatible, and IPv4-translated (RFC 2765).
IPV4_CARRIERS = tuple(ipaddress.ip_network(block) for block in (
    "64:ff9b::/96", "64:ff9b:1::/48", "::/96", "::ffff:0:0:0/96",
))
GLOBAL_UNICAST = ipaddress.ip_network("2000::/3")
# Python 3.11 counts most of 192.0.0.0/24 as global; no push service lives there.
PROTOCOL_ASSIGNMENTS = ipaddress.ip_network("192.0.0.0/24")


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


def load_keys(private_key: str, public_key: str | None) -> VapidKeys:
    """The keys as configured, checked; ValueError says why they cannot be used."""
    try:
        return _load(private_key, public_key)
    except (TypeError, UnsupportedAlgorithm) as error:
        raise ValueError(str(error)) from error


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


def stand_in_allowed() -> bool:
    """Tests, and development with PUSH_ALLOW_INSECURE_ENDPOINTS, use a push service on this
    machine: http(s)://127.0.0.1, that address as such and no other spelling."""
    config = current_app.config
    return bool(config["TESTING"] or config["PUSH_ALLOW_INSECURE_ENDPOINTS"])


def endpoint_refusal(endpoint: str) -> str | None:
    """Why the worker must not post to this endpoint, or None when it may: https on the default
    port to a host in PUSH_SERVICE_HOSTS or below one. Any other spelling of an address on the
    portal's own network (127.1, 0x7f.1, a trailing dot, a name of one's own) is refused here;
    where a known host's name leads is checked when connecting."""
    try:
        parts = urlsplit(endpoint)
        port = parts.port
    except ValueError:
        return "endpoint is not a URL"
    host = parts.hostname or ""
    if "@" in parts.netloc:
        return "endpoint must not carry a login"
    if host == STAND_IN and parts.scheme in ("http", "https") and stand_in_allowed():
        return None
    if parts.scheme != "https":
        return "endpoint must be an https address"
    if port not in (None, 443):
        return "endpoint must use the https port"
    if not (HOST_NAME.fullmatch(host) and _known_push_service(host)
            and _host_as_sent(endpoint) == host):
        return "endpoint is not a known push service"
    return None


def _known_push_service(host: str) -> bool:
    return any(host == known or host.endswith("." + known)
               for known in current_app.config["PUSH_SERVICE_HOSTS"])


def _host_as_sent(endpoint: str) -> str | None:
    """The host as urllib3, which makes the connection, reads it."""
    try:
        return parse_url(endpoint).host
    except LocationParseError:
        return None


def is_public(address: str) -> bool:
    """Reachable across the internet: not loopback, private, link-local (169.254.169.254 is
    the cloud's metadata service), shared (CGNAT), unspecified, reserved or multicast. IPv6 that
    carries an IPv4 address (mapped, compatible, 6to4, NAT64) is judged by that address."""
    ip = ipaddress.ip_address(address)
    if ip.version == 6:
        if any(ip in carrier for carrier in IPV4_CARRIERS):
            ip = ipaddress.IPv4Address(ip.packed[-4:])
        elif ip.ipv4_mapped or ip.sixtofour:
            ip = ip.ipv4_mapped or ip.sixtofour
        elif ip not in GLOBAL_UNICAST:
            # Only 2000::/3 is handed out on the internet; Python's is_global lets through
            # blocks that are reserved or local (site-local fec0::/10, 5f00::/16).
            return False
    return ip.is_global and not ip.is_multicast and ip not in PROTOCOL_ASSIGNMENTS


class RefusedAddress(Exception):
    """Not an OSError: urllib3 and requests let it through as it is, never retried."""


def _checked_addresses(host: str, port: int, allow_stand_in: bool) -> list[str]:
    if host == STAND_IN and allow_stand_in:
        return [STAND_IN]
    found = socket.getaddrinfo(host, port, connection.allowed_gai_family(), socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(sockaddr[0] for *_, sockaddr in found))
    if not addresses or not all(is_public(address) for address in addresses):
        raise RefusedAddress("resolves to an address that is not public")
    return addresses


class _PinnedConnection:
    """Resolves the host itself, refuses it unless every address is public, then connects to
    one of those very addresses: no second DNS answer (a rebinding to 127.0.0.1, say) between
    the check and the connection. TLS still checks the certificate against the host's name."""

    def __init__(self, *args, allow_stand_in: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.allow_stand_in = allow_stand_in

    def _new_conn(self) -> socket.socket:
        try:
            addresses = _checked_addresses(self.host, self.port, self.allow_stand_in)
            return self._connect(addresses)
        except socket.gaierror as error:
            raise NameResolutionError(self.host, self, error) from error
        except TimeoutError as error:
            raise ConnectTimeoutError(self, f"Connection to {self.host} timed out") from error
        except OSError as error:
            raise NewConnectionError(self, f"Failed to establish a connection: {error}") from error

    def _connect(self, addresses: list[str]) -> socket.socket:
        error = None
        for address in addresses:  # the next one when one fails, as urllib3 does
            try:
                return connection.create_connection(
                    (address, self.port), self.timeout, source_address=self.source_address,
                    socket_options=self.socket_options,
                )
            except OSError as failure:
                error = failure
        raise error


class _PinnedHTTPConnection(_PinnedConnection, HTTPConnection):
    pass


class _PinnedHTTPSConnection(_PinnedConnection, HTTPSConnection):
    pass


class _PinnedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _PinnedHTTPConnection


class _PinnedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _PinnedHTTPSConnection


class _PinnedAdapter(HTTPAdapter):
    def __init__(self, allow_stand_in: bool):
        self.allow_stand_in = allow_stand_in
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            scheme: functools.partial(pool, allow_stand_in=self.allow_stand_in)
            for scheme, pool in (("http", _PinnedHTTPPool), ("https", _PinnedHTTPSPool))
        }


class PushSession(requests.Session):
    """Connects only to public addresses (the 127.0.0.1 stand-in aside, when allowed), and
    follows no redirect: a 3xx would send the worker's request wherever it says, so it is a
    refusal instead. No proxy from the environment either: a proxy would look the name up
    itself, past the check."""

    def __init__(self, allow_stand_in: bool = False):
        super().__init__()
        self.trust_env = False
        for prefix in ("https://", "http://"):
            self.mount(prefix, _PinnedAdapter(allow_stand_in))

    def request(self, *args, **kwargs):
        kwargs["allow_redirects"] = False
        return super().request(*args, **kwargs)


def _clip(text: str, length: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= length else text[: length - 1] + "…"


def payload(notice: Notice) -> dict:
    """What the service worker shows. Private: who wrote, and nothing of what they wrote."""
    if notice.private:
        return {"title": _clip(f"New private message from {notice.author_name}", TITLE_LENGTH),
                "body": "", "url": notice.link}
    if notice.excerpt:
        body = notice.excerpt
    elif notice.attachments:
        body = f"Sent {notice.attachments} attachment{'s' if notice.attachments != 1 else ''}"
    else:
        body = ""
    if notice.report is not None:
        said = ", ".join(filter(None, (notice.report.title, notice.report.times)))
        return {"title": _clip(f"Visit report from {notice.author_name}", TITLE_LENGTH),
                "body": _clip(f"{said}. {notice.excerpt or ''}".strip(), BODY_LENGTH),
                "url": notice.link}
    return {"title": _clip(f"New message from {notice.author_name}", TITLE_LENGTH),
            "body": _clip(body, BODY_LENGTH), "url": notice.link}


def summary_payload(notices: list[Notice]) -> dict:
    """What was held for the person's quiet hours, as one notification: how many, and from
    which households; never a word of what they say."""
    clients = list(dict.fromkeys(notice.client_name for notice in notices))
    count = len(notices)
    title = f"{count} new message{'s' if count != 1 else ''} while your quiet hours were on"
    body = "In " + ", ".join(clients[:3]) + (f" and {len(clients) - 3} more" if len(clients) > 3
                                            else "")
    same_feed = len({(notice.client_id, notice.feed) for notice in notices}) == 1
    return {"title": _clip(title, TITLE_LENGTH), "body": _clip(body, BODY_LENGTH),
            "url": notices[0].link if same_feed else notices[0].home_link}


def send(recipient: User, data: dict) -> None:
    """Sends one notification (a payload) to every device of the recipient.

    Any 5xx/429/network failure: TransientError (the worker retries the row; the service
    worker's tag per feed makes a repeat replace the notification shown, not add one). A device
    the push service forgot (404/410) is deleted. Refused everywhere else: PermanentError, and so
    is an endpoint the portal will not post to (one saved before the rules of endpoint_refusal,
    or a name leading to a private address). No device left at all is fine: there is nobody to
    tell.
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
    data = json.dumps(data, separators=(",", ":"))
    config = current_app.config
    delivered, transient, permanent = 0, [], []
    with PushSession(stand_in_allowed()) as session:
        for subscription in subscriptions:
            if refusal := endpoint_refusal(subscription.endpoint):
                permanent.append(f"{_host(subscription)}: {refusal}")
                continue
            try:
                _push(session, subscription, data, keys, config)
            except RefusedAddress as error:
                permanent.append(f"{_host(subscription)}: {error}")
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
