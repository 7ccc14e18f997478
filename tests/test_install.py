"""The portal as an installable app: the manifest and icons that Chromium's installability check
and iOS's home screen need, named after the person's business."""

import io

import pytest
from PIL import Image

from portal.install.icons import paw_png

from .helpers import update_row


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
