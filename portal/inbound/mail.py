"""Reading an email that came in: who sent it, to which reply address, what they wrote, what
they attached, and whether a machine sent it (an auto-reply, a delivery failure report).

`parse` is pure: bytes in, a `ParsedEmail` out, or `MalformedEmail` and nothing else
(empty input, no headers, more than MAX_PARTS parts or deeper than MAX_DEPTH: "too many
parts", or whatever else the email package cannot read). What it decides:

- The text is the person's own words. Plain text is preferred to HTML in an alternative;
  the text parts of a mixed message are joined (Apple Mail splits the text around inline
  photos); format=flowed text is joined where the sender's client wrapped it. Quoted
  history, reply headers ("On ... wrote:", "Am ... schrieb", Outlook's From/Sent block),
  sign-offs and signatures are found by mail-parser-reply (REPLY_LANGUAGES); in an inline
  reply the person's lines are kept and the quoted (">") lines dropped. HTML-only mail
  becomes text with html2text, after the quote and signature blocks mail clients mark
  (Gmail, Apple Mail, Outlook, Yahoo, Thunderbird, Proton) are left out. A forward
  (subject "Fwd:", "Fw:", "WG:", "TR:", "RV:") is content, not history: its text is kept
  whole. Leading indentation is not kept; trailing spaces, control and direction
  characters and runs of blank lines are removed.
- Uploads are the attached files and inline images (cid: images, Apple Mail's inline
  attachments, signature logos too), never the text or HTML bodies, nor PGP/S-MIME
  signatures or empty parts. The files of a forwarded message (a message/rfc822 part) are
  the forwarder's files too. A report (multipart/report) has none: its files are the
  portal's own email coming back.
- `automatic` is True for everything a machine sent, bounces included: check `bounce`
  first. `bounce` is set only for a failed delivery (a delayed one is just automatic).
- Names and subjects are one line, without control or direction characters, capped at
  NAME_LIMIT and SUBJECT_LIMIT; addresses are lower case, "" when not an address. Every
  string it returns can be written as UTF-8: raw 8-bit headers (RFC 6532) are read as UTF-8,
  and what is not UTF-8 becomes U+FFFD.
- Its time grows in step with the size of the message, whatever the message is (a hostile
  one must not hold up the receiver): runs of blank lines are one blank line to the reply
  parser, only the first HTML_LIMIT characters of HTML (all HTML parts together) go through
  html2text, and what follows is dropped with a note (HTML_CUT_NOTE) unless it is quoted
  history already.
"""

import codecs
import contextlib
import mimetypes
import re
import secrets
import unicodedata
from dataclasses import dataclass, field
from email import message_from_bytes, message_from_string, policy
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses

import authres
import html2text
from mailparser_reply.constants import MAIL_LANGUAGES
from mailparser_reply.parser import EmailMessage as ReplyThread

from portal.bidi import without_bidi_controls
from portal.services.uploads import Upload, clean_filename

MAX_PARTS = 200
MAX_DEPTH = 20
SUBJECT_LIMIT = 300
NAME_LIMIT = 200
DIAGNOSTIC_LIMIT = 500
# Characters of a header value read (see _ReadingPolicy), values of one header read, and
# header fields in a part (a real email has about a hundred).
HEADER_LIMIT = 2_000
HEADER_VALUES = 3
MAX_HEADER_FIELDS = 1_000
# Languages whose reply headers ("On ... wrote:", "Am ... schrieb", "Le ... a écrit") and
# sign-offs are recognised. Danish, Swedish and Polish are left out on purpose: their
# patterns ("Tak", "/name", a single "Data:" line) cut English replies short.
REPLY_LANGUAGES = ("en", "de", "fr", "es", "it", "nl", "ja")
# Limits on what the reply parser reads: see _reply_text.
REPLY_SCAN_CHARS = 32_000
REPLY_SCAN_LINE = 300
SIGNATURE_CANDIDATES = 20
# HTML read per message (html2text takes about 1 s per MB of layout tables): the rest is
# dropped, with HTML_CUT_NOTE at the end of the text unless the cut fell in quoted history.
HTML_LIMIT = 1_000_000
HTML_CUT_NOTE = "[The rest of this email was too long to read here.]"
# Characters of a link's text compared with its address (see _MailHTML._link).
LINK_TEXT_LIMIT = 2_000
FORWARD_SUBJECT = re.compile(r"^\s*(?:fwd?|wg|tr|rv)\s*:", re.IGNORECASE)

# Authentication-Results: the domain each method vouches for, as (property type, name).
VOUCHED_DOMAIN = {"dkim": ("header", "d"), "spf": ("smtp", "mailfrom"), "dmarc": ("header", "from")}
AUTOMATIC_PRECEDENCE = {"bulk", "junk", "list", "auto_reply"}
# Parts that are neither the text nor a file the person attached.
NOT_FILES = {
    "application/pgp-signature", "application/pkcs7-signature",
    "application/x-pkcs7-signature", "message/delivery-status",
    "message/disposition-notification", "text/rfc822-headers",
}
BODY_TYPES = {"text/plain", "text/html"}
SENDERS_MEAN_WINDOWS_1252 = {"iso-8859-1", "iso8859-1", "latin-1", "latin1", "us-ascii", "ascii"}
STATUS_CODE = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
# Lines left out of a reply: quoted (">") lines, and where Gmail's plain text shows an inline
# image ("[image: fence.jpg]": the image itself comes as an upload).
QUOTED_OR_IMAGE_LINE = re.compile(r"^(?:>[^\n]*|\[image: [^\]\n]*\])(?:\n|\Z)", re.MULTILINE)
# Lines of "_", "-" or "=" taken off the end of a reply (Outlook's rule above the quote).
RULE_LINES = 3
MESSAGE_ID_LINE = re.compile(r"^message-id:\s*(<[^>\s]+>)", re.IGNORECASE | re.MULTILINE)
# Two or more lines of nothing but whitespace (each run read once: possessive).
BLANK_LINES = re.compile(r"\n(?:[^\S\n]*+\n){2,}+")
# Whitespace at the end of a line, matched from the start of its run only (linear).
TRAILING_SPACES = re.compile(r"(?<![^\S\n])[^\S\n]++$", re.MULTILINE)
CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f]")
# Control characters but line breaks and tabs.
CONTROL_IN_TEXT = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Surrogates that are not the escapes of undecodable bytes (U+DC80-U+DCFF).
STRAY_SURROGATES = re.compile("[\ud800-\udc7f\udd00-\udfff]")


class _ReadingPolicy(policy.EmailPolicy):
    """The email package's header parser takes time that grows with the square of a value's
    length (8,000 quotes in a To header: 0.6 s, each time it is read): each header value is
    read up to HEADER_LIMIT characters."""

    def header_source_parse(self, sourcelines):
        name, value = super().header_source_parse(sourcelines)
        return name, value[:HEADER_LIMIT]


READING_POLICY = _ReadingPolicy()


class MalformedEmail(ValueError):
    """Not an email we can read: the reason is said to the sender's server or to support."""


@dataclass(frozen=True)
class Bounce:
    """A delivery failure report (RFC 3464): which address failed, how, and for which email."""

    recipients: tuple[str, ...]
    # "5.1.1": permanent (a hard bounce) when it starts with 5.
    status: str
    diagnostic: str
    # The Message-ID of the email that could not be delivered, when the report includes it.
    original_message_id: str | None

    @property
    def permanent(self) -> bool:
        return self.status.startswith("5")


@dataclass(frozen=True)
class ParsedEmail:
    message_id: str | None
    sender: str             # the From address, lower case
    sender_name: str
    subject: str
    # Every address in Delivered-To, X-Original-To, To and Cc, lower case, in that order, each
    # once (the reply address is found among them when the delivery itself does not say).
    addressed_to: tuple[str, ...]
    # What the person wrote: quoted history and signature taken off; HTML-only mail as text.
    text: str
    uploads: tuple[Upload, ...] = ()
    # An out-of-office or other automatic reply: never a message.
    automatic: bool = False
    bounce: Bounce | None = None
    # What the business's own mail server (INBOUND_AUTHSERV_ID) found of the sender: "pass",
    # "fail" (DKIM or SPF failed: the sender is not trusted), or None when it said nothing.
    authentication: str | None = None
    # A few headers, decoded to one line each, for the record: In-Reply-To, References, Date,
    # Reply-To, Return-Path, Auto-Submitted, Precedence (only those present).
    headers: dict = field(default_factory=dict, compare=False)


RECORDED_HEADERS = (
    "In-Reply-To", "References", "Date", "Reply-To", "Return-Path", "Auto-Submitted",
    "Precedence",
)


def parse(raw: bytes, authserv_id: str | None = None) -> ParsedEmail:
    """Reads a raw message. Raises MalformedEmail when it is not one, and nothing else."""
    if not raw or not raw.strip():
        raise MalformedEmail("empty message")
    try:
        message = message_from_bytes(raw, policy=READING_POLICY)
        if not message.keys():
            raise MalformedEmail("no headers")
        _check_size(message)
        return _read(message, authserv_id)
    except MalformedEmail:
        raise
    except RecursionError as error:
        raise MalformedEmail("too many parts") from error
    except Exception as error:  # whatever a hostile message trips in the email package
        raise MalformedEmail(f"unreadable message ({type(error).__name__})") from error


def _check_size(message: Message) -> None:
    """Refuses too many parts, or a part with too many header fields (every lookup of a
    header reads them all)."""
    count = 0
    pending = [(message, 0)]
    while pending:
        part, depth = pending.pop()
        count += 1
        if count > MAX_PARTS or depth > MAX_DEPTH:
            raise MalformedEmail("too many parts")
        if len(part) > MAX_HEADER_FIELDS:
            raise MalformedEmail("too many header fields")
        if part.is_multipart():
            pending.extend((child, depth + 1) for child in _children(part))


def _children(part: Message) -> list[Message]:
    payload = part.get_payload()
    if not isinstance(payload, list):
        return []
    return [child for child in payload if isinstance(child, Message)]


def _read(message: Message, authserv_id: str | None) -> ParsedEmail:
    sender_name, sender = _first_address(message, "From")
    subject = _one_line(_header_text(message, "Subject"), SUBJECT_LIMIT)
    bounce, report = _bounce(message, sender)
    body = _body(message, _HtmlBudget()) or ""
    text = _clean_text(body if FORWARD_SUBJECT.match(subject) else _reply_text(body))
    return ParsedEmail(
        message_id=_message_id(_header_text(message, "Message-ID")),
        sender=sender,
        sender_name=_one_line(sender_name, NAME_LIMIT),
        subject=subject,
        addressed_to=_addressed_to(message),
        text=text,
        uploads=() if report else tuple(_uploads(message)),
        automatic=report or bounce is not None or _sent_by_machine(message, sender),
        bounce=bounce,
        authentication=_authentication(message, authserv_id, sender),
        headers={
            name: _one_line(value, 2000) for name in RECORDED_HEADERS
            if (value := _header_text(message, name))
        },
    )


# Headers ------------------------------------------------------------------------------------

def _header_values(message: Message, name: str) -> list[str]:
    """Every value of a header, decoded; a value the email package cannot parse is decoded
    from its raw form instead."""
    values = []
    for key, raw in message.raw_items():
        if key.lower() != name.lower():
            continue
        if len(values) == HEADER_VALUES:
            break
        try:
            values.append(str(message.policy.header_fetch_parse(key, raw)))
        except Exception:
            values.append(_decode_raw_header(raw))
    return values


def _header_text(message: Message, name: str) -> str:
    values = _header_values(message, name)
    return values[0] if values else ""


def _decode_raw_header(raw: str) -> str:
    raw = _readable(raw)
    try:
        return str(make_header(decode_header(raw)))
    except Exception:
        return raw


def _readable(value: str) -> str:
    """The text, writable as UTF-8: the escapes of raw 8-bit bytes (what the email package
    leaves of an unencoded "José" in a header) read as UTF-8, anything else U+FFFD."""
    if value.isascii():
        return value
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        value = STRAY_SURROGATES.sub("\ufffd", value)
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _one_line(value: str, limit: int) -> str:
    """One line of text: every run of whitespace (CR and LF too) a single space, no control
    or direction characters, at most `limit` characters."""
    value = " ".join(without_bidi_controls(_readable(value)).split())
    return CONTROL_CHARACTERS.sub("", value)[:limit].rstrip()


def _address(value: str) -> str:
    """The address in lower case, or "" when it is not one (no @, spaces, brackets)."""
    value = _readable(value).strip().lower()
    local, at, domain = value.rpartition("@")
    labels = domain.split(".")
    if not at or not local or len(labels) < 2 or len(value) > 254:
        return ""
    if not all(label and all(char.isalnum() or char == "-" for char in label) for label in labels):
        return ""
    if any(char.isspace() or unicodedata.category(char) in ("Cc", "Cf") or char in '<>,;:()[]\\"'
           for char in local):
        return ""
    return value


def _addresses(message: Message, name: str) -> list[tuple[str, str]]:
    """(display name, address) pairs of an address header, encoded words decoded."""
    pairs = []
    read = 0
    for key, raw in message.raw_items():
        if key.lower() != name.lower():
            continue
        if read == HEADER_VALUES:
            break
        read += 1
        try:
            header = message.policy.header_fetch_parse(key, raw)
            pairs.extend((_readable(item.display_name), _readable(item.addr_spec))
                         for item in header.addresses)
        except Exception:   # e.g. an encoded line break in the name: split first, then decode
            with contextlib.suppress(Exception):   # RecursionError: thousands of "("
                pairs.extend((_decode_raw_header(display), address)
                             for display, address in getaddresses([_readable(raw)]))
    return pairs


def _first_address(message: Message, name: str) -> tuple[str, str]:
    for display, address in _addresses(message, name):
        if _address(address or ""):
            return display or "", _address(address)
    return "", ""


def _addressed_to(message: Message) -> tuple[str, ...]:
    found = []
    for name in ("Delivered-To", "X-Original-To", "To", "Cc"):
        for _, raw_address in _addresses(message, name):
            address = _address(raw_address or "")
            if address and address not in found:
                found.append(address)
    return tuple(found)


def _message_id(value: str) -> str | None:
    value = _one_line(value, 998)
    bracketed = re.search(r"<[^<>\s]+>", value)
    return bracketed.group() if bracketed else (value.split()[0] if value else None)


# Automatic mail and delivery reports --------------------------------------------------------

def _sent_by_machine(message: Message, sender: str) -> bool:
    auto_submitted = _header_text(message, "Auto-Submitted").split(";")[0].strip().lower()
    if auto_submitted and auto_submitted != "no":
        return True
    if any(name in message for name in (
        "X-Autoreply", "X-Autorespond", "List-Id", "List-Unsubscribe",
    )):
        return True
    if _header_text(message, "Precedence").strip().lower() in AUTOMATIC_PRECEDENCE:
        return True
    return_path = _header_values(message, "Return-Path")
    if return_path and return_path[0].strip() in ("", "<>"):
        return True
    return sender.partition("@")[0] == "mailer-daemon"


def _bounce(message: Message, sender: str) -> tuple[Bounce | None, bool]:
    """The delivery failure this message reports, if it is one; and whether it is a report
    (a multipart/report: a DSN, a read receipt), whose parts are never the person's."""
    if message.get_content_type() == "multipart/report":
        if (message.get_param("report-type") or "").lower() != "delivery-status":
            return None, True
        return _delivery_status_report(message), True
    failed = _header_text(message, "X-Failed-Recipients")
    if failed and (sender.partition("@")[0] in ("mailer-daemon", "postmaster")
                   or _header_text(message, "Return-Path").strip() in ("", "<>")):
        return _plain_bounce(message, failed), False
    return None, False


def _delivery_status_report(message: Message) -> Bounce | None:
    """RFC 3464: per recipient, Action "failed" is a bounce; "delayed", "delivered",
    "relayed" and "expanded" are not (the report is then just automatic mail)."""
    status_part = next((part for part in _children(message)
                        if part.get_content_type() == "message/delivery-status"), None)
    if status_part is None:
        return None
    failed = [block for block in _status_blocks(status_part)
              if _field(block, "Action").lower() == "failed"]
    if not failed:
        return None
    recipients = []
    for block in failed:
        address = _address(_typed_value(_field(block, "Original-Recipient"))) \
            or _address(_typed_value(_field(block, "Final-Recipient")))
        if address and address not in recipients:
            recipients.append(address)
    status = STATUS_CODE.match(_field(failed[0], "Status"))
    return Bounce(
        recipients=tuple(recipients),
        # "failed" is final (RFC 3464, 2.3.3): permanent when the report omits the code.
        status=status.group(1) if status else "5.0.0",
        diagnostic=_one_line(_typed_value(_field(failed[0], "Diagnostic-Code")), DIAGNOSTIC_LIMIT),
        original_message_id=_original_message_id(message),
    )


def _status_blocks(part: Message) -> list[Message]:
    blocks = _children(part)
    if blocks:
        return blocks
    # A delivery-status part sent encoded (base64): its field blocks read by hand.
    text = _decoded_text(part)
    return [message_from_string(block.strip() + "\n") for block in re.split(r"\n\s*\n", text)
            if block.strip()]


def _field(block: Message, name: str) -> str:
    value = block.get(name)
    return _one_line(str(value), DIAGNOSTIC_LIMIT * 2) if value is not None else ""


def _typed_value(value: str) -> str:
    """"rfc822; jane@example.com" -> "jane@example.com" (the type before ";" dropped)."""
    return value.partition(";")[2].strip() if ";" in value else value.strip()


def _original_message_id(message: Message) -> str | None:
    for part in _children(message):
        kind = part.get_content_type()
        if kind == "message/rfc822" and _children(part):
            found = _message_id(_header_text(_children(part)[0], "Message-ID"))
        elif kind == "text/rfc822-headers":
            found = _message_id(_header_text(
                message_from_string(_decoded_text(part), policy=READING_POLICY), "Message-ID"))
        else:
            continue
        if found:
            return found
    return _message_id(_header_text(message, "In-Reply-To"))


def _plain_bounce(message: Message, failed: str) -> Bounce:
    """A bounce without a machine-readable report (Exim and older servers): the failed
    addresses from X-Failed-Recipients, the first enhanced status code in the text."""
    text = _body(message, _HtmlBudget()) or ""
    status = STATUS_CODE.search(text)
    diagnostic = next(
        (line for line in text.splitlines() if status and status.group(1) in line), "")
    quoted_id = MESSAGE_ID_LINE.search(text)
    recipients = []
    for _, raw_address in getaddresses([failed]):
        address = _address(raw_address)
        if address and address not in recipients:
            recipients.append(address)
    return Bounce(
        recipients=tuple(recipients),
        # X-Failed-Recipients names permanent failures only; delays are reported without it.
        status=status.group(1) if status else "5.0.0",
        diagnostic=_one_line(diagnostic, DIAGNOSTIC_LIMIT),
        original_message_id=_original_message_id(message)
        if not quoted_id else quoted_id.group(1),
    )


def _authentication(message: Message, authserv_id: str | None, sender: str) -> str | None:
    """What our own server recorded of the From domain. Only the topmost
    Authentication-Results header with our authserv-id is read (anyone can write that header
    further down); when it cannot be read, nothing is known (None).

    "pass" when DMARC passed, or DKIM (header.d) or SPF (smtp.mailfrom) passed for the From
    domain or a parent of it: a pass for another domain says nothing of who wrote From.
    "fail" when DMARC failed, or DKIM/SPF failed with no such pass beside it. None otherwise."""
    if not authserv_id:
        return None
    value = next((value for value in _header_values(message, "Authentication-Results")
                  if _authserv_id(value) == authserv_id.lower()), None)
    if value is None:
        return None
    try:
        header = authres.AuthenticationResultsHeader.parse_value(_one_line(value, 8000))
    except Exception:
        return None
    from_domain = sender.rpartition("@")[2]
    results = [((result.method or "").lower(), (result.result or "").lower(), result)
               for result in header.results]
    if any((method, outcome) == ("dmarc", "fail") for method, outcome, _ in results):
        return "fail"
    if from_domain and any(outcome == "pass" and _aligned(method, result, from_domain)
                           for method, outcome, result in results):
        return "pass"
    if any(method in ("dkim", "spf") and outcome in ("fail", "softfail", "permerror")
           for method, outcome, _ in results):
        return "fail"
    return None


def _authserv_id(value: str) -> str:
    """The authserv-id an Authentication-Results value starts with (comments left out)."""
    head = re.sub(r"\([^()]*\)", " ", value.partition(";")[0][:1000]).split()
    return head[0].lower() if head else ""


def _aligned(method: str, result, from_domain: str) -> bool:
    """Whether the result is for the From domain: DKIM's and SPF's domain the same or a parent
    of it with two labels or more (relaxed alignment, without the public suffix list); DMARC,
    which our server checked against From itself, the same domain when it names one."""
    if method not in VOUCHED_DOMAIN:
        return False
    kind, name = VOUCHED_DOMAIN[method]
    domains = [(prop.value or "").rpartition("@")[2].strip().rstrip(".").lower()
               for prop in result.properties
               if (prop.type or "").lower() == kind and (prop.name or "").lower() == name]
    if method == "dmarc":
        return all(domain == from_domain for domain in domains)
    return any(domain == from_domain or (
        from_domain.endswith("." + domain) and len(domain.split(".")) >= 2)
        for domain in domains if domain)


# The text -----------------------------------------------------------------------------------

def _is_file(part: Message) -> bool:
    kind = part.get_content_type()
    if part.get_content_maintype() in ("multipart", "message") or kind in NOT_FILES:
        return False
    if part.get_content_disposition() == "attachment":
        return True
    return kind not in BODY_TYPES or bool(part.get_filename())


class _HtmlBudget:
    """The HTML still to be read in one message (HTML_LIMIT characters in all its parts)."""

    def __init__(self):
        self.left = HTML_LIMIT
        self.spent = False    # once a part was cut: the HTML parts after it are not read

    def take(self, html: str) -> tuple[str, bool]:
        """The part of `html` within the budget, and whether that is not all of it."""
        if len(html) <= self.left:
            self.left -= len(html)
            return html, False
        # Cut before a tag rather than inside one.
        cut = html.rfind("<", 0, self.left)
        kept = html[:cut if cut > 0 else self.left]
        self.left, self.spent = 0, True
        return kept, True


def _body(part: Message, budget: _HtmlBudget) -> str | None:
    """The text of a part: plain text preferred over HTML in an alternative; the text parts
    of a mixed message (Apple Mail splits the text around inline images) joined. A forwarded
    message/rfc822 part is not the person's text."""
    kind = part.get_content_type()
    if _is_file(part) or kind == "message/rfc822":
        return None
    if kind == "multipart/alternative":
        for child in sorted(_children(part), key=_preference):
            text = _body(child, budget)
            if text and text.strip():
                return text
        return None
    if part.is_multipart():
        children = _children(part)
        if kind == "multipart/report":
            children = children[:1]   # the human-readable part
        texts = [text for child in children if (text := _body(child, budget))]
        return "\n\n".join(texts) if texts else None
    if kind == "text/plain" and (part.get_param("format") or "").lower() == "flowed":
        return unflowed(_decoded_text(part), (part.get_param("delsp") or "").lower() == "yes")
    if kind == "text/plain" or part.get_content_maintype() == "multipart":
        return _decoded_text(part)    # a multipart whose boundary never comes: all of it
    if kind == "text/html":
        if budget.spent:
            return None
        return html_to_text(*budget.take(_decoded_text(part)))
    return None


def unflowed(text: str, delete_space: bool) -> str:
    """format=flowed text (RFC 3676) with its soft line breaks joined: a line ending in a
    space goes on with the next line of the same quote depth."""
    lines = []
    # The paragraph being joined: its quote depth while it flows on, and its pieces (joined
    # once: adding each line to a growing string took time with the square of its length).
    flowing, pieces = None, []
    for line in text.replace("\r\n", "\n").split("\n"):
        depth = len(line) - len(line.lstrip(">"))
        content = line[depth:]
        content = content[1:] if content.startswith(" ") else content   # space-stuffing
        if flowing is not None and flowing != depth:
            lines.append(_quoted(flowing, "".join(pieces)))
            pieces = []
        if content:
            pieces.append(content)
        flowing = None
        if pieces and pieces[-1].endswith(" ") and line[depth:].lstrip(" ") != "-- ":
            flowing = depth
            if delete_space:
                pieces[-1] = pieces[-1][:-1]
                if not pieces[-1]:
                    pieces.pop()
        else:
            lines.append(_quoted(depth, "".join(pieces)))
            pieces = []
    if flowing is not None:
        lines.append(_quoted(flowing, "".join(pieces)))
    return "\n".join(lines)


def _quoted(depth: int, content: str) -> str:
    return f"{'>' * depth} {content}" if depth else content


def _preference(part: Message) -> int:
    kind = part.get_content_type()
    return 0 if kind == "text/plain" else 2 if kind == "text/html" else 1


def _decoded_text(part: Message) -> str:
    data = part.get_payload(decode=True) or b""
    return decode_bytes(data if isinstance(data, bytes) else b"", part.get_content_charset())


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Text in its declared character set. Latin-1 and ASCII are read as windows-1252 (what
    senders mean by them); a wrong or unknown charset falls back to UTF-8, then
    windows-1252, then Latin-1, which reads any byte."""
    declared = (charset or "").strip().strip('"').lower()
    attempts = []
    if declared and declared not in SENDERS_MEAN_WINDOWS_1252:
        with contextlib.suppress(LookupError):
            attempts.append(codecs.lookup(declared).name)
    # Plain ASCII is UTF-8, and 8-bit UTF-8 under a wrong label is common.
    attempts += ["utf-8", "windows-1252"]
    for encoding in attempts:
        try:
            return data.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            continue
    return data.decode("latin-1")


class _MailHTML(html2text.HTML2Text):
    """html2text for an email: plain text as a person would type it (no markdown marks or
    escapes), links as "text (address)", and the quoted history and signature blocks
    mail clients mark in their HTML left out."""

    # Blocks whose end is the end of the reply: everything after them is the quoted email.
    REST_IS_QUOTE_IDS = {"divrplyfwdmsg", "appendonsend", "mail-editor-reference-message-container"}
    QUOTE_IDS = {"signature", "ms-outlook-mobile-signature"}
    QUOTE_CLASSES = {
        "gmail_quote", "gmail_quote_container", "gmail_signature", "gmail_attr", "yahoo_quoted",
        "moz-cite-prefix", "moz-signature", "protonmail_quote", "protonmail_signature_block",
    }

    def __init__(self):
        super().__init__(bodywidth=0)
        self.unicode_snob = True
        self.ignore_emphasis = True
        self.ignore_images = True
        self.ul_item_mark = "-"
        self.tag_callback = _MailHTML._tag
        self._dropping: list = []      # [tag, depth] while inside a quote block
        self._rest_dropped = False
        # [href, text so far] of the innermost open <a>: links do not nest (HTML closes an
        # open one where the next begins), and a text longer than LINK_TEXT_LIMIT is never
        # its own address.
        self._link_open: list | None = None

    def handle_data(self, data, entity_char=False):
        if self._link_open is not None and len(self._link_open[1]) < LINK_TEXT_LIMIT:
            self._link_open[1] += data[:LINK_TEXT_LIMIT]
        # As an entity: html2text escapes markdown characters otherwise ("1\." "\-").
        super().handle_data(data, entity_char=True)

    def _tag(self, tag, attrs, start):
        if self._rest_dropped:
            return True
        if self._dropping:
            if tag == self._dropping[0]:
                self._dropping[1] += 1 if start else -1
                if self._dropping[1] == 0:
                    self._dropping = []
                    self.quiet -= 1
            return True
        if start and self._is_quote(tag, attrs):
            self.quiet += 1
            if (attrs.get("id") or "").lower() in self.REST_IS_QUOTE_IDS:
                self._rest_dropped = True
            else:
                self._dropping = [tag, 1]
            return True
        if tag == "a":
            self._link(attrs, start)
            return True
        if tag in ("hr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "table"):
            self.p()
            return True
        # Layout tables: a row is a line, its cells apart (no markdown table).
        if tag in ("td", "th"):
            if start:
                self.handle_data(" ")
            return True
        if tag == "tr":
            if not start:
                self.pbr()
            return True
        return tag in ("code", "tt", "kbd", "del", "strike", "s", "u", "ins")

    def _is_quote(self, tag, attrs) -> bool:
        classes = set((attrs.get("class") or "").lower().split())
        element_id = (attrs.get("id") or "").lower()
        return (
            (tag == "blockquote" and (attrs.get("type") or "").lower() == "cite")
            or bool(classes & self.QUOTE_CLASSES)
            or element_id in self.QUOTE_IDS | self.REST_IS_QUOTE_IDS
        )

    def _link(self, attrs, start):
        if start:
            self._link_open = [(attrs.get("href") or "").strip(), ""]
            return
        if self._link_open is None:
            return
        href, text = self._link_open
        self._link_open = None
        shown = text.strip().rstrip("/")
        # A link around nothing readable (an icon) is left out with its image.
        if shown and href.lower().startswith(("http://", "https://")) and shown not in (
            href.rstrip("/"), href.split("://", 1)[1].rstrip("/"),
        ):
            self.o(f" ({href})")


def html_to_text(html: str, cut: bool = False) -> str:
    """The text of the HTML; `cut`: the HTML is the start of a longer one, whose rest is noted
    as not read unless the cut fell in quoted history."""
    converter = _MailHTML()
    text = converter.handle(html)
    if cut and not (converter._dropping or converter._rest_dropped):
        text = f"{text.rstrip()}\n\n{HTML_CUT_NOTE}\n"
    return text


def _reply_text(text: str) -> str:
    """The person's own words: the first reply mail-parser-reply finds, without its reply
    header, signature and disclaimers, and without the quoted lines an inline reply answers
    between.

    The library's patterns take time that grows fast with the length of a line, so it reads
    at most REPLY_SCAN_CHARS, with every line longer than REPLY_SCAN_LINE hidden behind a
    placeholder (reply headers and sign-offs are short lines) and put back afterwards. When
    nothing in that part ends the reply, the rest of a longer text is kept."""
    text = text.replace("\r\n", "\n").replace("\u00a0", " ").replace("\u202f", " ")
    # The library's signature pattern starts with "\s*": its time grows with the square of a
    # run of blank lines (32,000 took 75 s). One blank line reads the same.
    text = BLANK_LINES.sub("\n\n", text)
    head, tail = _split_at_line(text, REPLY_SCAN_CHARS)
    shown, long_lines = _hide_long_lines(head)
    thread = ReplyThread(text=shown, languages=list(REPLY_LANGUAGES), keep_hyphen_lists=True)
    thread.read()
    reply = thread.replies[0]
    content = reply.content.replace(reply.headers, "", 1) if reply.headers else reply.content
    content += "\n"    # a signature delimiter ("--") on the last line is one too
    signature = _signature_start(thread, content)
    if signature is not None:
        content = content[:signature]
    for disclaimer in reply.disclaimers:
        content = content.replace(disclaimer, "")
    content = "\n".join(long_lines.get(line, line) for line in content.split("\n"))
    if tail and signature is None and len(thread.replies) == 1 and not reply.headers:
        content += tail
    content = QUOTED_OR_IMAGE_LINE.sub("", content).rstrip("\n")
    for _ in range(RULE_LINES):
        rest, _, last = content.rpartition("\n")
        if len(last.strip()) < 3 or not set(last.strip()) <= set("_-="):
            break
        content = rest      # Outlook's rule above the quoted email
    return content


def _split_at_line(text: str, limit: int) -> tuple[str, str]:
    if len(text) <= limit:
        return text, ""
    cut = text.rfind("\n", 0, limit) + 1 or limit
    return text[:cut], text[cut:]


def _hide_long_lines(text: str) -> tuple[str, dict[str, str]]:
    """The text with each overlong line replaced by a placeholder no pattern matches, and
    the lines behind the placeholders."""
    nonce = secrets.token_hex(8)
    hidden = {}
    lines = text.split("\n")
    for number, line in enumerate(lines):
        if len(line) > REPLY_SCAN_LINE:
            placeholder = f"\ue000{nonce}{number}\ue000"
            hidden[placeholder] = line.strip()
            lines[number] = placeholder
    return "\n".join(lines), hidden


def _signature_start(thread: ReplyThread, content: str) -> int | None:
    """Where the signature begins, as mail-parser-reply finds it, but only at a line that
    reads like a sign-off ("Thanks,", "Best regards", "--", "Sent from my iPhone"): its
    patterns also match "Thanks, the gate code is 4821.", which is what the person wrote.
    After SIGNATURE_CANDIDATES such lines the text is taken to have no signature."""
    position = 0
    for _ in range(SIGNATURE_CANDIDATES):
        match = thread.SIGNATURE_REGEX.search(content, position)
        if match is None:
            return None
        start = match.start() + len(match.group()) - len(match.group().lstrip())
        line = content[start:].split("\n", 1)[0]
        if _is_sign_off(line):
            return start
        position = start + max(len(line), 1)
    return None


def _is_sign_off(line: str) -> bool:
    sent_from = "|".join(
        MAIL_LANGUAGES[language]["sent_from"] for language in REPLY_LANGUAGES
        if MAIL_LANGUAGES[language].get("sent_from")
    )
    if re.match(f"(?:> ?)*(?:{sent_from})", line, re.IGNORECASE):
        return True
    return len(line.split()) <= 5 and not line.rstrip().endswith((".", "!", "?", ":"))


def _clean_text(text: str) -> str:
    """Line breaks kept, trailing spaces and blank runs trimmed, no control or direction
    characters."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = CONTROL_IN_TEXT.sub("", BLANK_LINES.sub("\n\n", _readable(text)))
    text = TRAILING_SPACES.sub("", without_bidi_controls(text))
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n")


# Files --------------------------------------------------------------------------------------

def _uploads(part: Message):
    if part.is_multipart():
        for child in _children(part):
            yield from _uploads(child)
        return
    if not _is_file(part):
        return
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes) or not data:
        return
    kind = part.get_content_type()
    yield Upload(_filename(part, kind), data, kind)


def _filename(part: Message, kind: str) -> str:
    try:
        name = part.get_filename()
    except Exception:
        name = None
    if name:
        return clean_filename(_one_line(str(name), 255))
    stem = "image" if kind.startswith("image/") else "attachment"
    return stem + (mimetypes.guess_extension(kind) or "")
