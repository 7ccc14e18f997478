"""Security headers on pages and fragments (on every one the URL map has in
tests/test_access_matrix.py, whose cases reach each endpoint)."""

import json
import re

import pytest

PAGES = ["/clients", "/staff", "/messages", "/notifications", "/settings/client/portal"]


@pytest.mark.parametrize("path", PAGES)
@pytest.mark.parametrize("htmx", [False, True])
def test_pages_carry_security_headers(logged_in, admin, path, htmx):
    response = logged_in(admin).get(path, headers={"HX-Request": "true"} if htmx else {})
    assert response.status_code == 200
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp
    assert "'unsafe-eval'" not in csp and "object-src 'none'" in csp
    assert "base-uri 'none'" in csp and "frame-ancestors 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["Cache-Control"] == "no-store"
    assert "HX-Request" in response.headers["Vary"]


def test_login_page_and_errors_too(client):
    for response in (client.get("/login"), client.get("/no-such-page")):
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_no_inline_styles_or_scripts_in_pages(logged_in, admin, household):
    page = logged_in(admin).get(f"/clients/{household.id}").get_data(as_text=True)
    assert ' style="' not in page and "<style" not in page
    assert "<script>" not in page and "<script " not in page.replace("<script src=", "")


def test_production_adds_hsts(app, logged_in, admin):
    app.config["PRODUCTION"] = True
    response = logged_in(admin).get("/clients")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")


def test_htmx_config_keeps_eval_history_and_inline_styles_off(admin_browser):
    page = admin_browser.get("/clients").get_data(as_text=True)
    meta = re.search(r"<meta name=\"htmx-config\" content='([^']*)'>", page)
    config = json.loads(meta.group(1))
    assert config["allowEval"] is False  # no hx-on, no js: expressions, no eval under the CSP
    assert config["historyCacheSize"] == 0  # private pages never land in localStorage
    assert config["includeIndicatorStyles"] is False  # no inline <style> under the CSP
    assert config.get("selfRequestsOnly", True) is True  # htmx 2's default: never elsewhere
