"""Hostile names and texts: whatever people type is shown as text, never as markup, in pages,
htmx fragments and emails; direction controls that would reorder a line are taken out.

Each payload of the corpus is used at once as message text, client name, email, phone, address
and notes, pet name, the names of a client login, a staff member, an office manager and an admin,
and as attachment file names; then every surface that shows them is read as a browser would.
"""

import re
from html.parser import HTMLParser

import pytest
from flask import url_for
from sqlalchemy import select, update
from werkzeug.http import parse_options_header

from portal.extensions import db
from portal.models import (
    Attachment,
    Client,
    DeliveryStatus,
    Message,
    Notification,
    Role,
    User,
)
from portal.notifications import notices, push
from portal.services import clients

from .helpers import (
    Device,
    confirmed_phone,
    deliver,
    enable,
    png_bytes,
    post,
    push_rows,
    store,
    subscriptions,
    update_row,
)

MARK = "zq9"  # every payload carries it, to find where a payload ended up
# What the template payloads ("{{ 7*7919 }}zq9", "${7*7919}zq9") become if evaluated: with the
# mark, so that a random token or asset hash holding the digits is no finding.
EVALUATED = re.compile(re.escape(str(7 * 7919) + MARK))
BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")

CORPUS = {
    "script": f'<script>alert("{MARK}")</script>',
    "img_onerror": f"<img src=x onerror=\"alert('{MARK}')\">",
    "svg_onload": f'"><svg onload=alert({MARK})>',
    "attribute_break": f"' onmouseover='alert({MARK})' x='",
    "javascript_text": f'javascript:alert("{MARK}")',
    "javascript_link": f'<a href="javascript:alert(1)">{MARK}</a>',
    "htmx_get": f'<div hx-get="/logout" hx-trigger="load">{MARK}</div>',
    "htmx_on": f'<b hx-on:click="alert(1)" hx-on::load="alert(2)">{MARK}</b>',
    "htmx_attribute": f'" hx-post="/logout" hx-trigger="load" data-{MARK}="',
    "jinja": "{{ 7*7919 }}" + MARK + "{% raw %}{# x",
    "template_literal": "${7*7919}" + MARK,
    "closing_tags": f"</textarea></title></script><b>{MARK}</b>",
    "comment": f"<!--{MARK}-->",
    "entities": f"&lt;script&gt;{MARK}&amp;",
    "iframe": f'<iframe srcdoc="&lt;script&gt;alert(1)&lt;/script&gt;">{MARK}',
    "base_meta": f'<base href="//evil.example/"><meta http-equiv="refresh" content="0">{MARK}',
    "rtl_override": f"Eve {MARK}\u202egnp.exe",
    "isolates": f"\u2067{MARK}\u2069\u202d lro \u202a lre \u202b rle \u202c",
}
IDS = list(CORPUS)

ALLOWED_SCRIPT = re.compile(r"^/static/[\w./-]+$")
FORBIDDEN_TAGS = {"style", "iframe", "base", "object", "embed", "frame"}
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "poster", "srcset", "xlink:href",
                  "hx-get", "hx-post", "hx-put", "hx-patch", "hx-delete"}


class Inspector(HTMLParser):
    """Reads a page as a browser would and notes anything a payload could have made active."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self._element(tag, attrs)

    def handle_startendtag(self, tag, attrs):
        self._element(tag, attrs)

    def handle_comment(self, data):
        if MARK in data:
            self.problems.append(f"a comment came from the payload: {data!r}")

    def handle_data(self, data):
        self.text.append(data)

    def _element(self, tag, attrs):
        if MARK in tag or tag in FORBIDDEN_TAGS:
            self.problems.append(f"element <{tag}>")
        if tag == "script" and not ALLOWED_SCRIPT.match(dict(attrs).get("src") or ""):
            self.problems.append(f"script {attrs!r}")
        if tag == "meta" and "http-equiv" in dict(attrs):
            self.problems.append(f"meta {attrs!r}")
        for name, value in attrs:
            if MARK in name or name.startswith(("on", "hx-on", "data-hx")):
                self.problems.append(f"attribute {name}={value!r} on <{tag}>")
            if name in URL_ATTRIBUTES and (value or "").strip().lower().startswith(
                    ("javascript:", "data:text", "vbscript:")):
                self.problems.append(f"{name}={value!r} on <{tag}>")


def inertness_problems(body: str, payload: str, shown: bool = True) -> list[str]:
    inspector = Inspector()
    inspector.feed(body)
    inspector.close()
    problems = list(inspector.problems)
    visible = BIDI_CONTROLS.sub("", payload)
    if any(char in visible for char in "<>\"'") and visible in body:
        problems.append("the payload appears unescaped")
    if EVALUATED.search(body):
        problems.append("template syntax was evaluated")
    if BIDI_CONTROLS.search(body):
        problems.append("a direction control reached the page")
    if shown and MARK not in "".join(inspector.text):
        problems.append("the payload is not shown as text")
    return problems


# --- the world: everything named by the payload -------------------------------------------------

class HostileWorld:
    def __init__(self, app, payload, household, people, messages, token):
        self.app, self.payload, self.household = app, payload, household
        self.people, self.messages, self.photo_token = people, messages, token

    def url(self, endpoint, **values) -> str:
        with self.app.test_request_context():
            return url_for(endpoint, **values)


@pytest.fixture(params=CORPUS.values(), ids=IDS)
def payload(request):
    return request.param


@pytest.fixture
def hostile(app, payload, business, admin, make_client, make_user, make_message,
            make_preferred_sitter, logged_in):
    household = make_client(name=payload)
    with app.app_context():
        clients.add_pet(None, db.session.get(Client, household.id), name=payload,
                        species=payload[:50], notes=payload)
    update_row(app, Client, household.id, email=payload, phone=payload[:40], address=payload,
               notes=payload)
    people = {
        "client": make_user(Role.CLIENT, client=household, name=payload),
        "staff": make_user(Role.STAFF, name=payload),
        "office_manager": make_user(Role.OFFICE_MANAGER, name=payload),
        "deleter": make_user(Role.ADMIN, name=payload),
    }
    make_preferred_sitter(household, people["staff"])
    files = [(payload + ".png", png_bytes()), (payload + ".txt", b"plain bytes")]
    messages = {
        "by_client": make_message(household, people["client"], payload),
        "by_staff": make_message(household, people["staff"],
                                 f"{payload} https://example.com/{MARK}", files=files),
        "deleted": make_message(household, people["client"], f"soon gone {payload}"),
    }
    logged_in(people["deleter"]).submit(f"/messages/{messages['deleted'].id}/delete")
    with app.app_context():
        # Failed deliveries list their recipients by name.
        db.session.execute(update(Notification).values(status=DeliveryStatus.FAILED))
        db.session.commit()
        token = db.session.scalar(select(Attachment.token).where(
            Attachment.message_id == messages["by_staff"].id, Attachment.kind == "image"))
    return HostileWorld(app, payload, household, people, messages, token)


def read(browser, url: str, hx: bool):
    response = browser.get(url, headers={"HX-Request": "true"} if hx else {})
    assert response.status_code == 200, f"{url}: {response.status_code}"
    return response.get_data(as_text=True)


def check(pages: list[tuple[str, str]], payload: str):
    problems = [f"{label}: {problem}" for label, body in pages
                for problem in inertness_problems(body, payload)]
    assert not problems, "\n".join(problems)


# --- pages and fragments ----------------------------------------------------------------------

def test_admin_pages_and_fragments_show_payload_as_text(hostile, admin_browser, payload):
    world, h = hostile, hostile.household
    feed = world.url("feeds.show", client_id=h.id, feed_name="conversation")
    by_staff = world.messages["by_staff"].id
    urls = [
        ("clients", world.url("clients.index"), (False,)),
        ("client search", world.url("clients.index", q=payload), (False, True)),
        ("profile", world.url("clients.profile", client_id=h.id), (False,)),
        ("feed", feed, (True,)),
        ("earlier", world.url("feeds.earlier", client_id=h.id, feed_name="conversation",
                              before=by_staff + 100), (False, True)),
        ("updates poll", world.url("feeds.updates", client_id=h.id, feed_name="conversation",
                                   after=0, oldest=0, since=0), (True,)),
        ("message center", world.url("center.index"), (False, True)),
        ("message center search", world.url("center.index", q=MARK), (True,)),
        ("staff", world.url("staff.index"), (False,)),
        ("permissions", world.url("settings.permissions"), (False,)),
        ("audit log", world.url("settings.audit_log"), (False, True)),
        ("failed deliveries", world.url("preferences.business_defaults"), (False,)),
        ("photo", world.url("files.view", token=world.photo_token), (False,)),
        ("confirm delete", world.url("messages.confirm_delete", message_id=by_staff),
         (False,)),
        ("message", world.url("messages.show", message_id=by_staff), (True,)),
    ]
    pages = [(f"{label} ({'htmx' if hx else 'page'})", read(admin_browser, url, hx))
             for label, url, variants in urls for hx in variants]
    check(pages, payload)


def test_posting_the_payload_echoes_it_inert(app, hostile, admin_browser, payload):
    url = hostile.url("messages.create", client_id=hostile.household.id,
                      feed_name="conversation")
    created = admin_browser.htmx("POST", url, data={"text": payload})
    app.config["MESSAGE_MAX_LENGTH"] = 3  # refused: the composer comes back with the text
    refused_fragment = admin_browser.htmx("POST", url, data={"text": payload})
    refused_page = admin_browser.submit(url, {"text": payload})
    assert refused_page.status_code == 422
    check([("created", created.get_data(as_text=True)),
           ("refused (htmx)", refused_fragment.get_data(as_text=True)),
           ("refused (page)", refused_page.get_data(as_text=True))], payload)
    with app.app_context():
        stored = db.session.scalar(select(Message.text).order_by(Message.id.desc()))
    assert stored == payload  # kept as typed; only the output is cleaned


def test_client_and_staff_pages_show_payload_as_text(hostile, logged_in, payload):
    h = hostile.household
    client = logged_in(hostile.people["client"])
    staff = logged_in(hostile.people["staff"])
    feed = hostile.url("feeds.show", client_id=h.id, feed_name="conversation")
    pages = [
        ("client portal", read(client, hostile.url("clients.profile", client_id=h.id), False)),
        ("client feed", read(client, feed, True)),
        ("client notifications", read(client, hostile.url("preferences.mine"), False)),
        ("my clients", read(staff, hostile.url("staff.my_clients"), False)),
        ("staff profile", read(staff, hostile.url("clients.profile", client_id=h.id), False)),
        ("staff message center", read(staff, hostile.url("center.index"), False)),
    ]
    check(pages, payload)


# --- emails -------------------------------------------------------------------------------------

def test_emails_show_payload_as_text(app, smtp, payload, admin, make_client, make_user,
                                     make_message, make_preferred_sitter):
    household = make_client(name=payload)
    author = make_user(Role.CLIENT, client=household, name=payload)
    make_message(household, author, payload, files=[(payload + ".txt", b"plain bytes")])
    deliver(app)
    [email] = smtp.inbox.to(admin.email)
    subject = email["Subject"]
    assert MARK in subject and not BIDI_CONTROLS.search(subject) and "\n" not in subject
    html_body = email.get_body(("html",)).get_content()
    assert not inertness_problems(html_body, payload)
    plain = email.get_body(("plain",))
    assert plain.get_content_type() == "text/plain"  # shown as text whatever it holds
    text = plain.get_content()
    assert BIDI_CONTROLS.sub("", payload) in text  # as typed, less direction controls
    assert not BIDI_CONTROLS.search(text) and not EVALUATED.search(text)


def test_text_messages_and_push_show_payload_without_direction_controls(
        app, smtp, twilio, payload, admin, make_client, make_user, make_message):
    # Phones and push services show these strings as they are: no template cleans them there.
    household = make_client(name=payload)
    author = make_user(Role.CLIENT, client=household, name=payload)
    update_row(app, User, admin.id, **confirmed_phone("+15551234567"), notify_sms=True)
    message = make_message(household, author, payload)
    deliver(app)
    [(_, form)] = twilio
    with app.app_context():
        [(item, _)] = notices.build({message.id}).values()
    shown = {"text message": form["Body"][0], **push.payload(item)}
    for label, text in shown.items():
        assert not BIDI_CONTROLS.search(text), label
    typed = " ".join(BIDI_CONTROLS.sub("", payload).split())  # push collapses white space
    assert typed in " ".join(shown["text message"].split()) and typed in shown["body"]


# --- file names in headers ----------------------------------------------------------------------

def test_file_names_are_served_as_text_never_the_storage_key(app, hostile, admin_browser):
    """The payload names a photo and a file: each is served under the name the upload kept
    (a photo's thumbnail under its stem), in a header nothing in the name can break out of."""
    with app.app_context():
        files = db.session.scalars(select(Attachment).where(
            Attachment.message_id == hostile.messages["by_staff"].id)).all()
    served = {f"/files/{file.token}": file.original_name for file in files}
    for photo in (file for file in files if file.thumbnail_key):
        stem = photo.original_name.removesuffix(".png")
        served[f"/files/{photo.token}/thumbnail"] = f"{stem} (thumbnail).webp"
    keys = {key for file in files for key in (file.storage_key, file.thumbnail_key) if key}
    for url, name in served.items():
        response = admin_browser.get(url)
        assert response.status_code == 200, url
        disposition = response.headers["Content-Disposition"]
        assert parse_options_header(disposition)[1] == {"filename": name}, disposition
        assert disposition.isascii() and not BIDI_CONTROLS.search(name)
        assert not any(key in value for key in keys for value in response.headers.values())


# --- push endpoints -----------------------------------------------------------------------------

# A subscription's endpoint is where the worker posts. Each of these was a way to have it connect
# to the portal's own machine or network (or to a host beside the push services): refused when
# subscribing, in production as with the 127.0.0.1 stand-in allowed, and never contacted should a
# row from before hold one.
PUSH_ENDPOINTS = {
    "short_ipv4": "https://127.1/",
    "trailing_dot_ip": "https://127.0.0.1./",
    "hex_ipv4": "https://0x7f.1/",
    "zero_padded_ipv4": "https://127.000.000.001/",
    "octal_ipv4": "https://0177.0.0.1/",
    "decimal_ipv4": "https://2130706433/",
    "ipv6_loopback": "https://[::1]/",
    "ipv4_mapped_ipv6": "https://[::ffff:127.0.0.1]/",
    "unspecified": "https://0.0.0.0/",
    "metadata_ip": "https://169.254.169.254/latest/meta-data/",
    "metadata_name": "https://metadata.google.internal/computeMetadata/v1/",
    "localhost_localdomain": "https://localhost.localdomain/",
    "localhost_trailing_dot": "https://localhost./",
    "wildcard_dns": "https://127.0.0.1.nip.io/",
    "known_host_trailing_dot": "https://fcm.googleapis.com./fcm/send/abc",
    "known_host_as_prefix": "https://fcm.googleapis.com.evil.example/fcm/send/abc",
    "known_host_as_suffix_only": "https://evilfcm.googleapis.com/fcm/send/abc",
    "login_before_ip": "https://fcm.googleapis.com@127.0.0.1/",
    "backslash_login": "https://fcm.googleapis.com\\@127.0.0.1/",
    "backslash_host": "https://127.0.0.1\\.fcm.googleapis.com/",
    "percent_encoded_host": "https://evil.example%2f.fcm.googleapis.com/",
    "other_port": "https://fcm.googleapis.com:8443/fcm/send/abc",
    "plain_http": "http://fcm.googleapis.com/fcm/send/abc",
    "other_scheme": "ftp://fcm.googleapis.com/fcm/send/abc",
}

@pytest.mark.parametrize("endpoint", PUSH_ENDPOINTS.values(), ids=list(PUSH_ENDPOINTS))
def test_push_endpoints_off_the_push_services_are_refused(app, logged_in, household_login,
                                                          endpoint):
    browser = logged_in(household_login)
    device = Device(None, "hostile", endpoint)
    for stand_in_allowed in (False, True):
        app.config.update(TESTING=stand_in_allowed, PUSH_ALLOW_INSECURE_ENDPOINTS=stand_in_allowed)
        response = enable(browser, device)
        assert response.status_code == 400 and "endpoint" in response.json["error"]
    assert subscriptions(app) == []


def test_stored_hostile_push_endpoints_are_never_contacted(app, vapid, dns, connections,
                                                           logged_in, admin, household,
                                                           household_login):
    store(app, household_login, *PUSH_ENDPOINTS.values())
    post(logged_in(admin), household, "Hello")
    deliver(app)
    [row] = push_rows(app)
    assert (row.status, row.attempts) == (DeliveryStatus.FAILED, 0)
    assert "127.1: endpoint is not a known push service" in row.last_error
    assert connections == [] and dns.lookups == []
