"""'Notifications on this device' in a real Chromium: the states push.js shows, the service worker
it registers, and that worker showing a push message delivered through the DevTools protocol.

Headless Chromium cannot reach a real push service, so where a subscription is needed the
browser's PushManager is replaced by a stand-in subscription (an init script); everything else
(the service worker, the fetch with the CSRF header, the server's rows) is real.
"""

import json
import re
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from playwright.sync_api import expect

from portal.models import PushSubscription

from ..helpers import b64url, count_rows, new_key_pair
from .conftest import CHROMIUM, CHROMIUM_ARGS
from .helpers import WAIT, log_in_through_form, wait_until

pytestmark = pytest.mark.browser


@pytest.fixture
def vapid(app):
    private, public = new_key_pair()
    app.config.update(VAPID_PRIVATE_KEY=private, VAPID_PUBLIC_KEY=public)
    return public


def fake_push_manager(endpoint: str) -> str:
    """An init script: PushManager hands out one stand-in subscription, as a browser would."""
    key = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    subscription = {"endpoint": endpoint, "expirationTime": None,
                    "keys": {"p256dh": b64url(key), "auth": b64url(b"0123456789abcdef")}}
    return """
      (function () {
        var json = __SUBSCRIPTION__;
        var current = localStorage.getItem("fake-subscribed") ? make() : null;
        function make() {
          return {
            endpoint: json.endpoint, options: {},
            toJSON: function () { return json; },
            unsubscribe: function () {
              current = null; localStorage.removeItem("fake-subscribed");
              return Promise.resolve(true);
            },
          };
        }
        PushManager.prototype.getSubscription = function () { return Promise.resolve(current); };
        PushManager.prototype.subscribe = function () {
          current = make(); localStorage.setItem("fake-subscribed", "1");
          return Promise.resolve(current);
        };
      })();
    """.replace("__SUBSCRIPTION__", json.dumps(subscription))


def test_enable_and_turn_off_this_device(app, vapid, log_in, household_login, live_server,
                                         screenshot_dir):
    page = log_in(household_login, permissions=["notifications"])
    page.add_init_script(fake_push_manager("http://127.0.0.1:9/push/v1/browser-test"))
    page.goto("/notifications")
    section = page.locator("#push-device")
    expect(section.get_by_text("need JavaScript")).to_be_hidden()
    expect(section.get_by_role("status")).to_have_text("Notifications are off on this device.")
    section.get_by_role("button", name="Enable notifications on this device").click()
    expect(section.get_by_role("status")).to_have_text("Notifications are on for this device.")
    expect(section.get_by_role("button", name="Enable notifications on this device")).to_be_hidden()
    assert count_rows(app, PushSubscription) == 1
    # The real service worker is registered for the whole portal.
    scope = page.evaluate("navigator.serviceWorker.ready.then(r => r.scope)")
    assert scope == live_server + "/"
    page.screenshot(path=screenshot_dir / "push-device-enabled.png", full_page=True)
    # It keeps nothing: after a feed is opened under it, the browser's caches are empty.
    page.goto(f"/clients/{household_login.client_id}")
    assert page.evaluate("navigator.serviceWorker.controller !== null")
    assert page.evaluate("caches.keys()") == []
    page.goto("/notifications")

    page.reload()  # the server knows this device: still on
    expect(section.get_by_role("status")).to_have_text("Notifications are on for this device.")
    section.get_by_role("button", name="Turn off on this device").click()
    expect(section.get_by_role("status")).to_have_text("Notifications are off on this device.")
    assert count_rows(app, PushSubscription) == 0


def test_states_without_support_permission_or_javascript(vapid, log_in, household_login,
                                                        live_server):
    page = log_in(household_login)
    page.add_init_script("delete window.PushManager;")
    page.goto("/notifications")
    expect(page.locator("#push-device").get_by_role("status")).to_contain_text(
        "This browser cannot show notifications from the portal.")

    page = log_in(household_login)
    page.add_init_script(
        "Object.defineProperty(Notification, 'permission', {get: () => 'denied'});")
    page.goto("/notifications")
    expect(page.locator("#push-device").get_by_role("status")).to_contain_text(
        "Notifications are blocked for this site.")
    expect(page.get_by_role("button", name="Enable notifications on this device")).to_be_hidden()

    # Without JavaScript, the same logged-in session: the section says what is needed.
    page = log_in(household_login)
    no_js = page.context.browser.new_context(base_url=live_server, java_script_enabled=False,
                                             storage_state=page.context.storage_state())
    try:
        plain = no_js.new_page()
        plain.goto("/notifications")
        expect(plain.get_by_text("Notifications on this device need JavaScript")).to_be_visible(
            timeout=WAIT)
        expect(plain.get_by_role("button", name="Enable notifications on this device")
               ).to_be_hidden(timeout=WAIT)
    finally:
        no_js.close()


def test_service_worker_shows_a_pushed_message(vapid, log_in, household_login, live_server):
    page = log_in(household_login, permissions=["notifications"])
    page.goto("/notifications")
    page.evaluate("navigator.serviceWorker.register('/service-worker.js', {scope: '/'})"
                  ".then(() => navigator.serviceWorker.ready)")
    cdp = page.context.new_cdp_session(page)
    registrations = []
    cdp.on("ServiceWorker.workerRegistrationUpdated",
           lambda event: registrations.extend(event["registrations"]))
    cdp.send("ServiceWorker.enable")

    def ours() -> list:
        return [r for r in registrations if r["scopeURL"] == live_server + "/"][:1]

    wait_until(page, ours, "the service worker's registration event")
    [registration] = ours()
    payload = {"title": "New message from Alice Admin", "body": "Biscuit loved the park",
               "url": "https://elsewhere.example/clients/1/feeds/conversation"}
    push = {"origin": live_server, "registrationId": registration["registrationId"],
            "data": json.dumps(payload)}
    # waitForFunction takes a returned promise for a truthy answer without awaiting it: ask
    # through evaluate, which awaits. DevTools' delivery is fire and forget, and Chromium drops
    # about one in ten right after ServiceWorker.enable (a second one then shows): deliver again
    # each second until one is shown. The same title, body and tag replace it, so one stays.
    shown = []
    last_push = 0.0

    def notifications() -> list:
        nonlocal last_push
        if time.monotonic() - last_push > 1:
            cdp.send("ServiceWorker.deliverPushMessage", push)
            last_push = time.monotonic()
        shown[:] = page.evaluate(
            """() => navigator.serviceWorker.ready
                 .then(r => r.getNotifications())
                 .then(list => list.map(n => ({title: n.title, body: n.body,
                                               tag: n.tag, url: n.data.url})))""")
        return shown

    wait_until(page, notifications, "the pushed message's notification")
    # The link is kept inside the portal, whatever origin a payload names.
    url = live_server + "/clients/1/feeds/conversation"
    assert shown == [{"title": payload["title"], "body": payload["body"], "tag": url, "url": url}]


def test_logging_out_turns_off_this_device(app, vapid, log_in, household_login):
    # A shared computer: the next person must not get the previous one's notifications.
    page = log_in(household_login, permissions=["notifications"])
    page.add_init_script(fake_push_manager("http://127.0.0.1:9/push/v1/logout-test"))
    page.goto("/notifications")
    section = page.locator("#push-device")
    section.get_by_role("button", name="Enable notifications on this device").click()
    expect(section.get_by_role("status")).to_have_text("Notifications are on for this device.")
    assert count_rows(app, PushSubscription) == 1
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login$"), timeout=WAIT)
    assert count_rows(app, PushSubscription) == 0
    assert page.evaluate("localStorage.getItem('fake-subscribed')") is None


IPHONE = {
    "user_agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
                  "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True,
}
IPAD_AS_A_MAC = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 " \
                "(KHTML, like Gecko) Version/18.1 Safari/605.1.15"
# Safari itself cannot run here: what it alone has is set by init scripts.
OPENED_FROM_HOME_SCREEN = "Object.defineProperty(navigator, 'standalone', {get: () => true});"


def test_iphone_is_shown_how_to_add_to_the_home_screen(vapid, log_in, household_login,
                                                      screenshot_dir):
    page = log_in(household_login, **IPHONE)
    page.goto("/notifications")
    section = page.locator("#push-device")
    expect(section.get_by_role("status")).to_have_text(
        "On an iPhone or iPad, notifications come to the portal's app on your Home Screen:")
    steps = section.get_by_role("listitem")
    expect(steps).to_have_count(3)
    expect(steps.nth(0)).to_contain_text("Tap Share")
    expect(steps.nth(1)).to_have_text("Choose Add to Home Screen, then Add.")
    expect(section.get_by_role("button", name="Enable notifications on this device")).to_be_hidden()
    section.scroll_into_view_if_needed()
    page.screenshot(path=screenshot_dir / "push-device-iphone.png", full_page=True)

    # Opened from the Home Screen, the same iPhone enables notifications as any browser.
    page.add_init_script(OPENED_FROM_HOME_SCREEN)
    page.reload()
    expect(section.get_by_role("status")).to_have_text("Notifications are off on this device.")
    expect(steps.first).to_be_hidden()
    enable = section.get_by_role("button", name="Enable notifications on this device")
    expect(enable).to_be_visible()

    # An app on iOS before 16.4 has no web push: the way out is an update.
    page.add_init_script("delete window.PushManager;")
    page.reload()
    expect(section.get_by_role("status")).to_contain_text("need iOS 16.4 or later")


def test_ipad_presenting_itself_as_a_mac_is_shown_the_steps(vapid, log_in, household_login):
    page = log_in(household_login, user_agent=IPAD_AS_A_MAC)
    page.add_init_script("Object.defineProperty(navigator, 'maxTouchPoints', {get: () => 5});")
    page.goto("/notifications")
    expect(page.locator("#push-device").get_by_role("status")).to_contain_text(
        "notifications come to the portal's app on your Home Screen")

    # A Mac (no touch screen) is not told to look for a Home Screen.
    page = log_in(household_login, user_agent=IPAD_AS_A_MAC)
    page.goto("/notifications")
    expect(page.locator("#push-device").get_by_role("status")).to_have_text(
        "Notifications are off on this device.")


def test_chromium_offers_to_install_the_app(browser, vapid, household_login, live_server,
                                            tmp_path, screenshot_dir):
    # Chromium offers installing (beforeinstallprompt) only in a profile kept on disk.
    context = browser.browser_type.launch_persistent_context(
        tmp_path / "profile", executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True,
        base_url=live_server)
    try:
        page = context.pages[0] if context.pages else context.new_page()
        log_in_through_form(page, household_login)
        page.goto("/notifications")
        offer = page.locator("[data-install-offer]")
        install = offer.get_by_role("button", name="Install the app")
        expect(install).to_be_visible(timeout=10_000)
        expect(offer.get_by_role("status")).to_have_text(
            "Install the portal as an app: it opens from your home screen in its own window.")
        page.screenshot(path=screenshot_dir / "push-device-install-offer.png", full_page=True)
        install.click()
        expect(offer.get_by_role("status")).to_have_text(
            "Follow your browser's prompt to install the app.")
        expect(install).to_be_disabled()
    finally:
        context.close()
