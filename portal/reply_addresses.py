"""Reply addresses: `reply+<token>@<REPLY_DOMAIN>`, one per notification email and recipient.

The token names the business, the client, the feed and the person the email went to, and is
signed with the portal's secret, so that a reply lands in that feed only when its address is
one the portal made. It has no expiry: a reply to last month's email still lands, as long as
the person may still see the feed (checked when it arrives, not here).

Mail systems may change the case of an address's local part, and it may be at most 64
characters long: the token is base32 (one case) and short, an HMAC cut to 80 bits over a few
varint-packed numbers.
"""

import base64
import hashlib
import hmac
from dataclasses import dataclass

from flask import current_app

from portal.models import Feed

LOCAL_PREFIX = "reply+"
VERSION = 1
MAC_BYTES = 10
FEED_CODES = {Feed.CONVERSATION: 0, Feed.PRIVATE: 1}
FEEDS_BY_CODE = {code: feed for feed, code in FEED_CODES.items()}


@dataclass(frozen=True)
class ReplyToken:
    business_id: int
    client_id: int
    feed: Feed
    recipient_id: int


def reply_domain() -> str | None:
    return current_app.config.get("REPLY_DOMAIN")


def address_for(token: ReplyToken) -> str | None:
    """The reply address of a notification email; None when no reply domain is configured."""
    domain = reply_domain()
    if not domain:
        return None
    return f"{LOCAL_PREFIX}{encode(token)}@{domain}"


def token_from_address(address: str) -> ReplyToken | None:
    """The token of one of our reply addresses; None for any other address, or a token whose
    signature does not hold (forged, mistyped, or signed with another secret)."""
    domain = reply_domain()
    local, at, address_domain = (address or "").strip().strip("<>").rpartition("@")
    if not at or not domain or address_domain.lower().rstrip(".") != domain.lower():
        return None
    if not local.lower().startswith(LOCAL_PREFIX):
        return None
    return decode(local[len(LOCAL_PREFIX):])


def is_reply_address(address: str) -> bool:
    """Whether the address is on the reply domain at all (genuine or not)."""
    domain = reply_domain()
    _, at, address_domain = (address or "").strip().strip("<>").rpartition("@")
    return bool(at and domain and address_domain.lower().rstrip(".") == domain.lower())


def encode(token: ReplyToken) -> str:
    payload = bytes([VERSION]) + b"".join(
        _varint(number) for number in (token.business_id, token.client_id,
                                       FEED_CODES[token.feed], token.recipient_id)
    )
    packed = payload + _mac(payload)
    return base64.b32encode(packed).decode().rstrip("=").lower()


def decode(text: str) -> ReplyToken | None:
    text = text.strip().upper()
    if not text or len(text) > 58 or not text.isascii() or not text.isalnum():
        return None
    try:
        packed = base64.b32decode(text + "=" * (-len(text) % 8))
    except ValueError:
        return None
    payload, mac = packed[:-MAC_BYTES], packed[-MAC_BYTES:]
    if len(payload) < 5 or not hmac.compare_digest(mac, _mac(payload)):
        return None
    if payload[0] != VERSION:
        return None
    numbers = _read_varints(payload[1:])
    if numbers is None or len(numbers) != 4 or numbers[2] not in FEEDS_BY_CODE:
        return None
    business_id, client_id, feed_code, recipient_id = numbers
    return ReplyToken(business_id, client_id, FEEDS_BY_CODE[feed_code], recipient_id)


def _mac(payload: bytes) -> bytes:
    key = hmac.new(current_app.config["SECRET_KEY"].encode(), b"portal reply address",
                   hashlib.sha256).digest()
    return hmac.new(key, payload, hashlib.sha256).digest()[:MAC_BYTES]


def _varint(number: int) -> bytes:
    if number < 0:
        raise ValueError("ids are positive")
    out = bytearray()
    while True:
        byte, number = number & 0x7F, number >> 7
        out.append(byte | (0x80 if number else 0))
        if not number:
            return bytes(out)


def _read_varints(data: bytes) -> list[int] | None:
    numbers, current, shift = [], 0, 0
    for byte in data:
        current |= (byte & 0x7F) << shift
        shift += 7
        if shift > 35:
            return None
        if not byte & 0x80:
            numbers.append(current)
            current, shift = 0, 0
    return numbers if shift == 0 else None
