"""Chromium's own installability check, asked through DevTools: the portal a client opens can be
installed as an app (on iOS, the only way its web push reaches them)."""

import json

import pytest

pytestmark = pytest.mark.browser

# What Chromium says of the browser rather than the site: a test browser's profile is private.
ABOUT_THE_BROWSER = {"in-incognito"}


def test_chromium_finds_the_portal_installable(log_in, household_login, business):
    page = log_in(household_login)
    page.wait_for_load_state("networkidle")
    devtools = page.context.new_cdp_session(page)
    manifest = devtools.send("Page.getAppManifest")
    assert manifest["url"].endswith("/manifest.webmanifest")
    assert manifest["errors"] == []
    data = json.loads(manifest["data"])
    assert data["name"] == business.name and data["display"] == "standalone"
    errors = devtools.send("Page.getInstallabilityErrors")["installabilityErrors"]
    assert {error["errorId"] for error in errors} <= ABOUT_THE_BROWSER, errors
