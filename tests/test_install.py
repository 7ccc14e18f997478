"""The portal as an installable app: the manifest and icons that Chromium's installability check
and iOS's home screen need, named after the person's business."""

import io
import re

import pytest
from PIL import Image

from portal.extensions import db
from portal.install.brand import logo_url
from portal.install.icons import paw_png
from portal.models import Business
from portal.storage import storage

from .helpers import BASE_URL, deliver, every_row, png_bytes, smtp_mailbox, update_row


def manifest_of(browser) -> dict:
    response = browser.get("/manifest.webmanifest")
    assert response.status_code == 200
    assert response.mimetype == "application/manifest+json"
    assert "no-cache" in response.headers["Cache-Control"]
    assert "public" not in response.headers["Cache-Control"]
    return response.get_json()


def test_the_manifest_has_what_chromium_needs_to_install(client):
    manifest = manifest_of(client)
    assert manifest["name"] == manifest["short_name"] == "Client Portal"
    assert manifest["display"] == "standalone"
    assert manifest["start_url"] == "/" and manifest["scope"] == "/" and manifest["id"] == "/"
    assert manifest["theme_color"] and manifest["background_color"]
    sizes = {(icon["sizes"], icon["purpose"]) for icon in manifest["icons"]}
    # Chromium's installability: a 192 and a 512 pixel PNG; Android's adaptive icons: maskable.
    assert {("192x192", "any"), ("512x512", "any"), ("512x512", "maskable")} <= sizes
    for icon in manifest["icons"]:
        response = client.get(icon["src"])
        assert response.status_code == 200 and response.mimetype == "image/png"
        image = Image.open(io.BytesIO(response.data))
        assert image.format == "PNG"
        assert f"{image.width}x{image.height}" == icon["sizes"]
        assert "max-age" in response.headers["Cache-Control"]


def test_the_manifest_is_named_after_the_business(household_login, logged_in, business, app):
    update_row(app, type(business), business.id, name="Happy Tails Co")
    browser = logged_in(household_login)
    manifest = manifest_of(browser)
    assert manifest["name"] == "Happy Tails Co"
    page = browser.get("/", follow_redirects=True).get_data(as_text=True)
    assert 'rel="manifest" href="/manifest.webmanifest" crossorigin="use-credentials"' in page
    assert '<meta name="apple-mobile-web-app-title" content="Happy Tails Co">' in page


@pytest.mark.parametrize("path", ["/", "/login"])
def test_pages_name_the_icons_ios_and_browsers_look_for(client, path):
    page = client.get(path, follow_redirects=True).get_data(as_text=True)
    for link in ('rel="apple-touch-icon" href="/icons/apple-touch-icon.png"',
                 'rel="icon" href="/icons/favicon-32.png"',
                 'name="apple-mobile-web-app-capable" content="yes"',
                 'name="theme-color"'):
        assert link in page
    touch = Image.open(io.BytesIO(client.get("/icons/apple-touch-icon.png").data))
    # iOS wants 180 pixels, square and opaque (a transparent corner turns black).
    assert touch.size == (180, 180) and touch.mode == "RGB"
    favicon = client.get("/favicon.ico")
    assert favicon.status_code == 200 and favicon.mimetype == "image/x-icon"
    assert Image.open(io.BytesIO(favicon.data)).format == "ICO"


def test_a_maskable_icon_keeps_the_paw_inside_the_safe_zone():
    # Everything outside the middle 80% circle is the plain background, which masks may cut.
    image = Image.open(io.BytesIO(paw_png(512, maskable=True)))
    background = image.getpixel((0, 0))
    centre, radius = 256, 0.4 * 512
    for x in range(0, 512, 4):
        for y in range(0, 512, 4):
            if (x - centre) ** 2 + (y - centre) ** 2 > radius**2:
                assert image.getpixel((x, y)) == background, (x, y)
    assert image.getpixel((256, 330)) != background  # the pad is drawn


def test_unknown_icons_are_not_found(client):
    assert client.get("/icons/icon-1024.png").status_code == 404
    assert client.get("/icons/../portal.css").status_code == 404


LOGO = png_bytes((300, 100), "navy")


def save_logo(browser, name="Happy Tails Co", data=LOGO, filename="logo.png", **extra):
    page = browser.get("/settings/business").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    return browser.post("/settings/business", data={
        "csrf_token": token, "name": name, **extra,
        **({"logo": (io.BytesIO(data), filename)} if data is not None else {}),
    }, content_type="multipart/form-data")


def logo_key(app, business) -> str | None:
    with app.app_context():
        return db.session.get(Business, business.id).logo_key


def test_an_admin_names_the_business_and_gives_it_a_logo(app, admin_browser, business, client,
                                                          household_login, logged_in):
    response = save_logo(admin_browser)
    assert response.status_code == 302
    key = logo_key(app, business)
    assert key is not None
    page = admin_browser.get("/settings/business").get_data(as_text=True)
    assert "Name and logo saved." in page and "Happy Tails Co" in page
    logo = re.search(r'<img class="brand-logo" src="([^"]+)"', page).group(1)
    served = admin_browser.get(logo)
    assert served.status_code == 200 and served.mimetype == "image/webp"
    image = Image.open(io.BytesIO(served.data))
    assert image.format == "WEBP" and image.size == (300, 100)  # re-encoded, not the upload
    assert "default-src 'none'" in served.headers["Content-Security-Policy"]
    # The client's installed app is named after it, and its icons are drawn from the logo.
    manifest = manifest_of(logged_in(household_login))
    assert manifest["name"] == "Happy Tails Co"
    for icon in manifest["icons"]:
        assert f"/icons/{business.id}/" in icon["src"]
        drawn = Image.open(io.BytesIO(client.get(icon["src"]).data))
        assert drawn.mode == "RGB" and f"{drawn.width}x{drawn.height}" == icon["sizes"]
        assert drawn.getpixel((0, 0)) == (255, 255, 255)  # on white
        assert drawn.getpixel((drawn.width // 2, drawn.height // 2))[2] > 100  # navy logo
    # The only business of this portal: its login page is theirs.
    login = client.get("/login").get_data(as_text=True)
    assert "Happy Tails Co" in login and logo in login
    # Audited, as settings are.
    audit = admin_browser.get("/settings/audit-log").get_data(as_text=True)
    assert "Business name" in audit and "Logo" in audit


def test_a_new_logo_replaces_the_old_file_and_removing_it_brings_back_the_paw(
    app, admin_browser, business
):
    save_logo(admin_browser)
    first = logo_key(app, business)
    save_logo(admin_browser, data=png_bytes((64, 64), "red"))
    second = logo_key(app, business)
    assert second != first
    with app.app_context(), pytest.raises(FileNotFoundError):
        storage().read(first)
    save_logo(admin_browser, data=None, remove_logo="y")
    assert logo_key(app, business) is None
    with app.app_context(), pytest.raises(FileNotFoundError):
        storage().read(second)
    page = admin_browser.get("/clients").get_data(as_text=True)
    assert 'class="brand-mark"' in page and "brand-logo" not in page
    assert admin_browser.get(f"/logo/{business.id}").status_code == 404
    assert admin_browser.get(f"/icons/{business.id}/icon-192.png").status_code == 404


@pytest.mark.parametrize(("data", "filename", "error"), [
    (b"%PDF-1.4 not an image", "logo.pdf", "Choose an image for the logo"),
    (b"\x89PNG\r\n\x1a\n broken", "logo.png", "is not a photo we can show"),
])
def test_a_file_that_is_no_image_is_refused_and_nothing_changes(
    app, admin_browser, business, data, filename, error
):
    before = every_row(app)
    response = save_logo(admin_browser, name="Renamed", data=data, filename=filename)
    assert response.status_code == 422
    assert error in response.get_data(as_text=True)
    assert every_row(app) == before


@pytest.mark.parametrize("spelling", [
    lambda name: f"  {name.upper()} ",
    lambda name: f"{name[:2]}\u202e{name[2:]}\u200b",  # a direction control, a zero-width space
], ids=["case and spaces", "invisible characters"])
def test_a_name_another_business_uses_is_refused(app, admin_browser, stranger_business,
                                                 spelling):
    before = every_row(app)
    response = save_logo(admin_browser, name=spelling(stranger_business.name), data=None)
    assert response.status_code == 422
    assert "Another business on this portal already uses that name." in response.get_data(
        as_text=True)
    assert every_row(app) == before


def test_emails_show_the_logo_from_the_portal(app, admin_browser, business):
    save_logo(admin_browser)
    with smtp_mailbox(app) as mailbox:
        with app.app_context():
            url = logo_url(db.session.get(Business, business.id), external=True)
        assert admin_browser.submit("/staff/new", {"name": "Wendy Walker",
                                                   "email": "wendy@example.com"}).status_code == 302
        deliver(app)
        email = mailbox.inbox.to("wendy@example.com")[0]
    assert url.startswith(f"{BASE_URL}/logo/{business.id}?v=")
    html = email.get_body(("html",)).get_content()
    assert f'<img src="{url}" alt="Happy Tails Co"' in html
    # The URL answers with the logo, to a mail client that has no session.
    assert app.test_client().get(url.removeprefix(BASE_URL)).mimetype == "image/webp"


def test_a_portal_of_several_businesses_names_none_before_login(
    app, client, business, stranger_business, admin_browser
):
    save_logo(admin_browser)
    page = client.get("/login").get_data(as_text=True)
    assert "Client Portal" in page and "Happy Tails Co" not in page
    assert "brand-logo" not in page and 'class="brand-mark"' in page
    assert manifest_of(client)["name"] == "Client Portal"
