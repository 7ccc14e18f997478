"""Web push end to end with real parts: each device is a real P-256 key pair and auth secret, the
push service is an HTTP server on loopback, and what it receives is decrypted (aes128gcm) and
its VAPID signature verified. Messages are posted through the app and delivered by the worker."""

import hashlib
import json
import os
import ssl
import stat
import time

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid
from sqlalchemy import select

from portal import config
from portal.extensions import db
from portal.models import Business, DeliveryStatus, PushSubscription, User
from portal.notifications import push

from .helpers import (
    BASE_URL,
    VAPID_SUBJECT,
    Device,
    PushService,
    b64url,
    b64url_decode,
    certificate_for,
    count_rows,
    deliver,
    enable,
    new_key_pair,
    post,
    push_rows,
    set_private_messaging,
    store,
    subscriptions,
    update_row,
)

# --- the push service and the devices ---------------------------------------------------------

@pytest.fixture
def push_service(vapid):
    service = PushService()
    yield service
    service.stop()


@pytest.fixture
def device_of(logged_in, push_service):
    """device_of(user): a new device of that user, enabled through the app."""

    def make(user, name: str | None = None) -> Device:
        device = Device(push_service, name or user.name.split()[0].lower())
        response = enable(logged_in(user), device)
        assert response.status_code == 201, response.get_data(as_text=True)
        return device

    return make


def jwt_claims(authorization: str) -> dict:
    token = dict(part.split("=", 1) for part in authorization.split(" ", 1)[1].split(","))["t"]
    return json.loads(b64url_decode(token.split(".")[1]))


# --- delivery ------------------------------------------------------------------------------------

def test_message_is_pushed_encrypted_and_signed(app, push_service, vapid, device_of, logged_in,
                                                admin, household, household_login,
                                                assigned_staff):
    phone = device_of(household_login)
    post(logged_in(admin), household, "Biscuit loved the park today")
    deliver(app)

    [request] = push_service.to(phone)
    assert phone.decrypt(request) == {
        "title": "New message from Alice Admin",
        "body": "Biscuit loved the park today",
        "url": f"{BASE_URL}/clients/{household.id}/feeds/conversation",
    }
    headers = request["headers"]
    assert headers["authorization"].startswith("vapid t=")
    assert f",k={vapid}" in headers["authorization"]
    assert Vapid.verify(headers["authorization"])  # signed by the portal's private key
    claims = jwt_claims(headers["authorization"])
    assert claims["aud"] == push_service.origin and claims["sub"] == VAPID_SUBJECT
    assert claims["exp"] > time.time()
    assert headers["ttl"] == str(app.config["PUSH_TTL_SECONDS"])
    # Only people with a device get push rows: the sitter (no device) gets email alone.
    assert [(row.recipient_id, row.status) for row in push_rows(app)] == [
        (household_login.id, DeliveryStatus.SENT)]
    assert len(push_service.requests) == 1


def test_every_device_of_the_person_is_told(app, push_service, device_of, logged_in, admin,
                                            household, household_login):
    phone, laptop = device_of(household_login, "phone"), device_of(household_login, "laptop")
    post(logged_in(admin), household, "Walk moved to 3pm")
    deliver(app)
    for device in (phone, laptop):
        [request] = push_service.to(device)
        assert device.decrypt(request)["body"] == "Walk moved to 3pm"
    assert len(push_rows(app)) == 1  # one row per person and channel, not per device


def test_photo_only_message_says_what_was_sent(app, push_service, device_of, make_message, admin,
                                               household, household_login):
    from .helpers import png_bytes

    phone = device_of(household_login)
    make_message(household, admin, "", files=[("walk.png", png_bytes())])
    deliver(app)
    [request] = push_service.to(phone)
    assert phone.decrypt(request)["body"] == "Sent 1 attachment"


def test_private_message_push_says_only_who_wrote(app, push_service, device_of, logged_in,
                                                  business, admin, household, household_login,
                                                  assigned_staff):
    set_private_messaging(app, business, True)
    # Emails may carry private text when the business says so; a push never does.
    update_row(app, Business, business.id, private_email_includes_text=True)
    phone = device_of(household_login)
    sitter_phone = device_of(assigned_staff)
    post(logged_in(admin), household, "Invoice question zz-4411", feed="private")
    deliver(app)

    [request] = push_service.to(phone)
    payload = phone.decrypt(request)
    assert payload == {"title": "New private message from Alice Admin", "body": "",
                       "url": f"{BASE_URL}/clients/{household.id}/feeds/private"}
    assert b"zz-4411" not in request["body"]
    # Staff are never told of private messages: no row, no request.
    assert push_service.to(sitter_phone) == []
    assert {row.recipient_id for row in push_rows(app)} == {household_login.id}


def test_staff_get_pushes_for_conversation_but_not_private(app, push_service, device_of,
                                                           logged_in, business, household,
                                                           household_login, assigned_staff):
    set_private_messaging(app, business, True)
    sitter_phone = device_of(assigned_staff)
    client = logged_in(household_login)
    post(client, household, "Private: the gate code is 4411", feed="private")
    post(client, household, "Thanks for the walk!")
    deliver(app)
    [request] = push_service.to(sitter_phone)
    payload = sitter_phone.decrypt(request)
    assert payload["title"] == "New message from Carla Client"
    assert payload["body"] == "Thanks for the walk!"
    assert all(b"4411" not in request["body"] for request in push_service.requests)


def test_gone_subscription_is_deleted_and_others_still_told(app, push_service, device_of,
                                                            logged_in, admin, household,
                                                            household_login):
    old_phone, laptop = device_of(household_login, "old"), device_of(household_login, "laptop")
    push_service.answers[old_phone.path] = 410
    post(logged_in(admin), household, "Hello")
    deliver(app)
    assert len(push_service.to(laptop)) == 1
    assert subscriptions(app) == [(household_login.id, laptop.endpoint)]
    assert [row.status for row in push_rows(app)] == [DeliveryStatus.SENT]


def test_every_subscription_gone_counts_as_sent(app, push_service, device_of, logged_in, admin,
                                                household, household_login):
    phone = device_of(household_login)
    push_service.answers[phone.path] = 404
    post(logged_in(admin), household, "Hello")
    deliver(app)
    assert subscriptions(app) == []
    [row] = push_rows(app)
    assert row.status == DeliveryStatus.SENT and row.last_error is None
    # The next message makes no push row at all: the person has no device left.
    post(logged_in(admin), household, "Hello again")
    assert len(push_rows(app)) == 1


@pytest.mark.parametrize(
    ("answer", "status", "attempts"),
    [
        (500, DeliveryStatus.PENDING, 1),
        (503, DeliveryStatus.PENDING, 1),
        (429, DeliveryStatus.PENDING, 1),
        ("hang", DeliveryStatus.PENDING, 1),
        (400, DeliveryStatus.FAILED, 0),
        (403, DeliveryStatus.FAILED, 0),
        # Endpoints come from browsers: a redirect is not followed anywhere.
        ("redirect", DeliveryStatus.FAILED, 0),
    ],
)
def test_push_service_failures(app, push_service, device_of, logged_in, admin, household,
                               household_login, answer, status, attempts):
    app.config["PUSH_TIMEOUT_SECONDS"] = 0.3
    phone = device_of(household_login)
    push_service.answers[phone.path] = answer
    post(logged_in(admin), household, "Hello")
    deliver(app)
    [row] = push_rows(app)
    assert (row.status, row.attempts) == (status, attempts)
    assert row.last_error.startswith("push: 127.0.0.1")
    assert phone.endpoint not in row.last_error  # the endpoint is a secret address
    assert len(subscriptions(app)) == 1  # only 404/410 forget a device
    assert [request["path"] for request in push_service.requests] == [phone.path]


FCM_ENDPOINT = "https://fcm.googleapis.com/fcm/send/secret-token"


@pytest.mark.parametrize(
    "addresses",
    [
        ["127.0.0.1"],
        ["10.0.0.1"],
        ["169.254.169.254"],  # the cloud's metadata service
        ["100.64.0.1"],  # carrier-grade NAT
        ["0.0.0.0"],
        ["224.0.0.1"],
        ["::1"],
        ["::ffff:127.0.0.1"],
        ["fd00::1"],
        ["64:ff9b::a00:1"],  # 10.0.0.1 through NAT64
        ["64:ff9b:1::a00:1"],  # 10.0.0.1 through a local-use NAT64 prefix
        ["::ffff:0:7f00:1"],  # 127.0.0.1, IPv4-translated
        ["fec0::1"],  # site-local
        ["5f00::1"],  # reserved, outside the global unicast block
        ["192.0.0.8"],  # IETF protocol assignments
        ["142.250.74.106", "192.168.1.1"],  # one private address among public ones is enough
    ],
)
def test_a_known_host_resolving_to_a_private_address_is_never_contacted(
        app, vapid, dns, connections, logged_in, admin, household, household_login, addresses):
    dns.answers["fcm.googleapis.com"] = addresses
    store(app, household_login, FCM_ENDPOINT)
    post(logged_in(admin), household, "Hello")
    deliver(app)
    [row] = push_rows(app)
    assert (row.status, row.attempts) == (DeliveryStatus.FAILED, 0)
    # The host only: neither the endpoint (a secret address) nor where its name led.
    assert row.last_error == "push: fcm.googleapis.com: resolves to an address that is not public"
    assert connections == []
    assert len(subscriptions(app)) == 1  # refused, not forgotten: the name may be fixed


def test_the_connection_goes_to_the_address_that_was_checked(app, vapid, dns, connections,
                                                             logged_in, admin, household,
                                                             household_login):
    # A rebinding: public for the check, loopback for whoever looks the name up again.
    dns.answers["fcm.googleapis.com"] = [["142.250.74.106"], ["127.0.0.1"]]
    store(app, household_login, FCM_ENDPOINT)
    post(logged_in(admin), household, "Hello")
    deliver(app)
    assert dns.lookups == ["fcm.googleapis.com"]
    assert connections == [("142.250.74.106", 443)]
    [row] = push_rows(app)
    assert (row.status, row.attempts) == (DeliveryStatus.PENDING, 1)  # refused: tried again
    assert row.last_error == "push: fcm.googleapis.com unreachable: ConnectionError"


def test_stored_endpoints_are_checked_again_when_sending(app, vapid, push_service, dns,
                                                        logged_in, admin, household,
                                                        household_login):
    # Saved before the allow-list, or under a list since shortened: never posted to.
    stand_in = push_service.origin + "/push/v1/old"
    store(app, household_login, stand_in.replace("127.0.0.1", "127.1"),
          "https://push.example.com/send/abc")
    post(logged_in(admin), household, "Hello")
    deliver(app)
    [row] = push_rows(app)
    assert row.status == DeliveryStatus.FAILED
    assert row.last_error == ("push: 127.1: endpoint must be an https address; "
                              "push.example.com: endpoint is not a known push service")
    assert push_service.requests == [] and dns.lookups == []


def test_the_stand_in_is_refused_when_sending_outside_tests(app, push_service, device_of,
                                                            logged_in, admin, household,
                                                            household_login):
    device_of(household_login)
    app.config["TESTING"] = False
    post(logged_in(admin), household, "Hello")
    deliver(app)
    [row] = push_rows(app)
    assert row.status == DeliveryStatus.FAILED
    assert row.last_error == "push: 127.0.0.1: endpoint must be an https address"
    assert push_service.requests == []


def test_the_session_itself_refuses_loopback_unless_the_stand_in_is_allowed(push_service):
    # Whatever the checks before it let through, the connection is the last word.
    device = Device(push_service, "direct")
    with pytest.raises(push.RefusedAddress), push.PushSession(allow_stand_in=False) as session:
        session.post(device.endpoint, data=b"x", timeout=1)
    assert push_service.requests == []
    with push.PushSession(allow_stand_in=True) as session:
        assert session.post(device.endpoint, data=b"x", timeout=1).status_code == 201
    assert len(push_service.to(device)) == 1


def test_the_certificate_is_checked_against_the_name_not_the_address(dns, monkeypatch,
                                                                     tmp_path):
    # The connection goes to the address checked, yet TLS must still verify the push service's
    # name: a push service for fcm.googleapis.com over TLS on loopback, judged public here.
    cert_file, key_file = certificate_for("fcm.googleapis.com", tmp_path)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert_file, key_file)
    service = PushService(tls)
    monkeypatch.setattr(push, "is_public", lambda address: address == "127.0.0.1")
    dns.answers.update({"fcm.googleapis.com": ["127.0.0.1"], "other.example": ["127.0.0.1"]})
    try:
        with push.PushSession() as session:
            session.verify = cert_file
            response = session.post(f"https://fcm.googleapis.com:{service.port}/fcm/send/a",
                                    data=b"x", timeout=5)
            assert response.status_code == 201
            with pytest.raises(requests.exceptions.SSLError):
                session.post(f"https://other.example:{service.port}/fcm/send/b", data=b"x",
                             timeout=5)
    finally:
        service.stop()
    assert [request["path"] for request in service.requests] == ["/fcm/send/a"]


def test_unreachable_push_service_is_retried_then_delivered(app, push_service, device_of,
                                                            logged_in, admin, household,
                                                            household_login):
    phone = device_of(household_login)
    push_service.stop()
    post(logged_in(admin), household, "During the outage")
    deliver(app)
    [row] = push_rows(app)
    assert (row.status, row.attempts) == (DeliveryStatus.PENDING, 1)
    assert "unreachable" in row.last_error
    assert phone.endpoint not in row.last_error


def test_push_without_keys_fails_and_says_why(app, push_service, device_of, logged_in, admin,
                                              household, household_login):
    device_of(household_login)
    app.config["VAPID_PRIVATE_KEY"] = None
    post(logged_in(admin), household, "Hello")
    deliver(app)
    [row] = push_rows(app)
    assert row.status == DeliveryStatus.FAILED and "not configured" in row.last_error
    assert push_service.requests == []


def test_mismatched_public_key_makes_push_unavailable(app, vapid):
    app.config["VAPID_PUBLIC_KEY"] = new_key_pair()[1]
    with app.app_context():
        assert push.application_server_key() is None
    app.config["VAPID_PUBLIC_KEY"] = None  # derived from the private key when not given
    with app.app_context():
        assert push.application_server_key() == vapid


def test_raw_base64url_private_key_is_accepted(app):
    # What other VAPID tools (e.g. web-push generate-vapid-keys) print.
    key = ec.generate_private_key(ec.SECP256R1())
    raw = b64url(key.private_numbers().private_value.to_bytes(32, "big"))
    public = b64url(key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint))
    app.config.update(VAPID_PRIVATE_KEY=raw, VAPID_PUBLIC_KEY=public)
    with app.app_context():
        assert push.application_server_key() == public


# --- the subscription endpoints -------------------------------------------------------------------

def test_subscribing_again_updates_the_same_row(app, push_service, logged_in, household_login):
    browser = logged_in(household_login)
    device = Device(push_service, "phone")
    assert enable(browser, device).status_code == 201
    device.auth_secret = os.urandom(16)  # the browser renewed its keys
    response = enable(browser, device)
    assert (response.status_code, response.json) == (200, {"subscribed": True})
    with app.app_context():
        [row] = db.session.scalars(select(PushSubscription))
        assert row.auth == b64url(device.auth_secret)
        assert (row.user_id, row.business_id) == (household_login.id, household_login.business_id)


def test_a_device_moves_to_whoever_enables_it_next(app, push_service, logged_in, household_login,
                                                   admin):
    shared = Device(push_service, "family-laptop")
    assert enable(logged_in(household_login), shared).status_code == 201
    assert enable(logged_in(admin), shared).status_code == 200
    assert subscriptions(app) == [(admin.id, shared.endpoint)]


def test_subscription_as_a_form_post(app, push_service, logged_in, household_login):
    device = Device(push_service, "form")
    keys = device.subscription()["keys"]
    response = logged_in(household_login).submit("/push/subscriptions", {
        "endpoint": device.endpoint, "keys.p256dh": keys["p256dh"], "keys.auth": keys["auth"]})
    assert response.status_code == 201
    assert subscriptions(app) == [(household_login.id, device.endpoint)]


def test_a_person_keeps_at_most_ten_devices(app, push_service, logged_in, household_login):
    browser = logged_in(household_login)
    devices = [Device(push_service, f"d{n}") for n in range(12)]
    for device in devices:
        assert enable(browser, device).status_code == 201
    assert [endpoint for _, endpoint in subscriptions(app)] == [d.endpoint for d in devices[2:]]


def _with(subscription: dict, **changes) -> dict:
    keys = {**subscription["keys"], **changes.pop("keys", {})}
    return {**subscription, **changes, "keys": keys}


@pytest.mark.parametrize(
    "change",
    [
        {"endpoint": "http://push.example.com/send/abc"},  # not https
        {"endpoint": "https://10.0.0.5/send/abc"},  # an address inside some network
        {"endpoint": "https://localhost/send/abc"},
        {"endpoint": "https://intranet/send/abc"},
        {"endpoint": "https://user:pw@push.example.com/send"},
        {"endpoint": "https://push.example.com/" + "a" * 1000},
        {"endpoint": "https://push.example.com/send abc"},
        {"endpoint": "javascript:alert(1)"},
        {"endpoint": None},
        {"keys": {"p256dh": b64url(b"\x04" + b"\x01" * 64)}},  # not a point on the curve
        {"keys": {"p256dh": b64url(os.urandom(32))}},
        {"keys": {"p256dh": "not base64!"}},
        {"keys": {"auth": b64url(os.urandom(8))}},
        {"keys": {"auth": None}},
    ],
)
def test_subscribe_refuses_bad_subscriptions(app, push_service, logged_in, household_login,
                                             change):
    browser = logged_in(household_login)
    subscription = _with(Device(push_service, "bad").subscription(), **change)
    response = browser.post("/push/subscriptions", json=subscription,
                            headers={"X-CSRFToken": browser.csrf_token()})
    assert response.status_code == 400 and "error" in response.json
    assert subscriptions(app) == []


def test_subscribe_refuses_an_oversized_request(app, push_service, logged_in, household_login):
    browser = logged_in(household_login)
    subscription = {**Device(push_service, "big").subscription(), "padding": "x" * 5000}
    response = browser.post("/push/subscriptions", json=subscription,
                            headers={"X-CSRFToken": browser.csrf_token()})
    assert response.status_code == 413
    assert subscriptions(app) == []


def test_plain_http_loopback_only_in_tests_or_when_allowed(app, push_service, logged_in,
                                                          household_login):
    app.config["TESTING"] = False
    browser = logged_in(household_login)
    assert enable(browser, Device(push_service, "dev")).status_code == 400
    app.config["PUSH_ALLOW_INSECURE_ENDPOINTS"] = True
    assert enable(browser, Device(push_service, "dev")).status_code == 201


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://fcm.googleapis.com/fcm/send/abc:APA91b",  # Chrome, Edge on Android, Opera
        "https://fcm.googleapis.com/wp/abc",
        "https://android.googleapis.com/gcm/send/abc",  # older Chrome subscriptions
        "https://updates.push.services.mozilla.com/wpush/v2/abc",  # Firefox
        "https://web.push.apple.com/QGx0abc",  # Safari
        "https://wns2-by3p.notify.windows.com/w/?token=abc%2Bdef",  # Edge on Windows
        "https://FCM.googleapis.com:443/fcm/send/abc",
    ],
)
def test_the_push_services_browsers_use_are_accepted(app, logged_in, household_login, endpoint):
    app.config["TESTING"] = False  # as in production
    device = Device(None, "real", endpoint)
    assert enable(logged_in(household_login), device).status_code == 201
    assert subscriptions(app) == [(household_login.id, endpoint)]


def test_the_escape_hatch_admits_the_loopback_stand_in_alone(app, push_service, logged_in,
                                                            household_login):
    app.config.update(TESTING=False, PUSH_ALLOW_INSECURE_ENDPOINTS=True)
    browser = logged_in(household_login)
    port = push_service.port
    for endpoint in (f"http://localhost:{port}/push", f"http://127.1:{port}/push",
                     f"http://[::1]:{port}/push", f"http://127.0.0.1.:{port}/push",
                     f"http://user@127.0.0.1:{port}/push", "https://push.example.com/send"):
        response = enable(browser, Device(None, "dev", endpoint))
        assert response.status_code == 400, endpoint
    assert subscriptions(app) == []
    assert enable(browser, Device(push_service, "dev")).status_code == 201
    app.config["PUSH_ALLOW_INSECURE_ENDPOINTS"] = False
    response = enable(browser, Device(None, "dev", "https://127.0.0.1/push"))
    assert (response.status_code, response.json) == (
        400, {"error": "endpoint is not a known push service"})


def test_the_list_of_push_services_is_configurable(app, push_service, logged_in,
                                                   household_login):
    app.config["PUSH_SERVICE_HOSTS"] = ("push.example.com",)
    browser = logged_in(household_login)
    assert enable(browser, Device(None, "a", "https://eu.push.example.com/x")).status_code == 201
    response = enable(browser, Device(None, "b", "https://fcm.googleapis.com/fcm/send/abc"))
    assert (response.status_code, response.json) == (
        400, {"error": "endpoint is not a known push service"})


def test_subscribe_refuses_anonymous_and_missing_csrf(app, push_service, client, logged_in,
                                                      household_login):
    device = Device(push_service, "anon")
    response = enable(client, device)
    assert response.status_code == 302 and response.location.startswith("/login")
    response = logged_in(household_login).post("/push/subscriptions", json=device.subscription())
    assert response.status_code == 400  # no X-CSRFToken
    assert subscriptions(app) == []


def test_turning_off_deletes_only_your_own_device(app, push_service, device_of, logged_in,
                                                  household_login, admin):
    phone, admin_phone = device_of(household_login), device_of(admin)
    client = logged_in(household_login)
    headers = {"X-CSRFToken": client.csrf_token()}
    response = client.post("/push/subscriptions/delete", json={"endpoint": admin_phone.endpoint},
                           headers=headers)
    assert response.json == {"deleted": False}
    response = client.post("/push/subscriptions/delete", json={"endpoint": phone.endpoint},
                           headers=headers)
    assert response.json == {"deleted": True}
    assert subscriptions(app) == [(admin.id, admin_phone.endpoint)]
    assert enable(client, Device(push_service, "tablet")).status_code == 201
    anonymous = app.test_client()
    response = anonymous.submit("/push/subscriptions/delete", {"endpoint": admin_phone.endpoint})
    assert response.status_code == 302
    assert count_rows(app, PushSubscription) == 2


# --- the page, the service worker, the keys -------------------------------------------------------

def test_settings_page_offers_this_device(app, push_service, vapid, logged_in, household_login):
    browser = logged_in(household_login)
    page = browser.get("/notifications").get_data(as_text=True)
    assert f'data-application-server-key="{vapid}"' in page
    assert "Enable notifications on this device" in page and "Turn off on this device" in page
    assert "need JavaScript" in page and "/static/push.js" in page
    assert 'data-known-devices=""' in page
    device = Device(push_service, "phone")
    enable(browser, device)
    page = browser.get("/notifications").get_data(as_text=True)
    assert hashlib.sha256(device.endpoint.encode()).hexdigest() in page
    assert device.endpoint not in page


def test_settings_page_says_when_push_is_not_set_up(app, logged_in, household_login, admin):
    page = logged_in(household_login).get("/notifications").get_data(as_text=True)
    assert "App notifications are not set up on this portal yet." in page
    assert "push.js" not in page and "vapid-keys" not in page
    assert "vapid-keys" in logged_in(admin).get("/notifications").get_data(as_text=True)


def test_settings_page_warns_when_push_is_off_for_the_person(app, vapid, logged_in,
                                                             household_login):
    update_row(app, User, household_login.id, notify_push=False)
    page = logged_in(household_login).get("/notifications").get_data(as_text=True)
    assert "App notifications are Off in your settings above" in page


def test_service_worker_is_served_from_the_root(client):
    response = client.get("/service-worker.js")
    assert response.status_code == 200
    assert response.mimetype == "application/javascript"
    assert response.headers["Service-Worker-Allowed"] == "/"
    assert "no-cache" in response.headers["Cache-Control"]
    script = response.get_data(as_text=True)
    assert 'addEventListener("push"' in script and 'addEventListener("notificationclick"' in script


def test_vapid_keys_command_writes_keys_once(app, runner, tmp_path, monkeypatch):
    monkeypatch.delenv("VAPID_PRIVATE_KEY", raising=False)
    monkeypatch.delenv("VAPID_PUBLIC_KEY", raising=False)
    instance = tmp_path / "instance"
    app.instance_path = str(instance)
    result = runner.invoke(args=["notifications", "vapid-keys"])
    assert result.exit_code == 0, result.output
    private_file = instance / config.VAPID_PRIVATE_KEY_FILE
    public_file = instance / config.VAPID_PUBLIC_KEY_FILE
    assert stat.S_IMODE(private_file.stat().st_mode) == 0o600
    pem, public = private_file.read_text(), public_file.read_text().strip()
    assert pem.startswith("-----BEGIN PRIVATE KEY-----") and public in result.output

    again = runner.invoke(args=["notifications", "vapid-keys"])
    assert again.exit_code == 0 and "already exist" in again.output
    assert (private_file.read_text(), public_file.read_text().strip()) == (pem, public)

    # The configuration finds them, and they are a pair the portal can sign with.
    settings = config.from_environment(instance)
    assert (settings["VAPID_PRIVATE_KEY"], settings["VAPID_PUBLIC_KEY"]) == (pem, public)
    app.config.update(VAPID_PRIVATE_KEY=pem, VAPID_PUBLIC_KEY=public)
    with app.app_context():
        assert push.application_server_key() == public


def test_environment_keys_take_precedence(tmp_path, monkeypatch):
    (tmp_path / config.VAPID_PRIVATE_KEY_FILE).write_text("from the file")
    private, public = new_key_pair()
    monkeypatch.setenv("VAPID_PRIVATE_KEY", private)
    monkeypatch.setenv("VAPID_PUBLIC_KEY", public)
    monkeypatch.setenv("VAPID_SUBJECT", VAPID_SUBJECT)
    settings = config.from_environment(tmp_path)
    assert (settings["VAPID_PRIVATE_KEY"], settings["VAPID_PUBLIC_KEY"]) == (private, public)
    assert settings["VAPID_SUBJECT"] == VAPID_SUBJECT
    monkeypatch.delenv("VAPID_PRIVATE_KEY")
    monkeypatch.delenv("VAPID_PUBLIC_KEY")
    (tmp_path / config.VAPID_PRIVATE_KEY_FILE).unlink()
    assert config.from_environment(tmp_path)["VAPID_PRIVATE_KEY"] is None


def test_push_service_hosts_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("PUSH_SERVICE_HOSTS", raising=False)
    assert "PUSH_SERVICE_HOSTS" not in config.from_environment(tmp_path)  # the defaults stay
    assert "fcm.googleapis.com" in config.DEFAULTS["PUSH_SERVICE_HOSTS"]
    monkeypatch.setenv("PUSH_SERVICE_HOSTS", "fcm.googleapis.com, .Push.Example.com")
    assert config.from_environment(tmp_path)["PUSH_SERVICE_HOSTS"] == (
        "fcm.googleapis.com", "push.example.com")
