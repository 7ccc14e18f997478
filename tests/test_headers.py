"""Security headers on every HTML page and fragment a person can get."""

import json
import re

import pytest

from portal.models import Feed

from . import test_access_matrix as access_matrix

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


# --- every page and fragment the URL map has ----------------------------------------------------

def _values_for(world, endpoint: str) -> dict | None:
    """url_for values of a GET that reaches the endpoint, from the access matrix's cases."""
    if endpoint in access_matrix.PUBLIC:
        return access_matrix.PUBLIC[endpoint]
    if endpoint in access_matrix.LOGGED_IN:
        return {}
    for case in access_matrix.FEED_CASES:
        if case.endpoint == endpoint and case.method == "GET":
            target = world.message(Feed.CONVERSATION, photo=endpoint.startswith("files."))
            url, _ = access_matrix.feed_request(world, case, Feed.CONVERSATION, target)
            return {"_url": url}
    for case in access_matrix.MANAGEMENT_CASES:
        if case.endpoint == endpoint and case.method == "GET":
            return case.prepare(world, world.business)[0]
    return None


def _get_endpoints(app) -> list[str]:
    return sorted({rule.endpoint for rule in app.url_map.iter_rules() if "GET" in rule.methods})


def _crawl(world, browser) -> list[tuple[str, object]]:
    """(label, response) for every GET endpoint, as a page and as htmx asks for it."""
    found = []
    for endpoint in _get_endpoints(world.app):
        values = _values_for(world, endpoint)
        assert values is not None, f"{endpoint}: give it a case in tests/test_access_matrix.py"
        url = values.get("_url") or world.url(endpoint, **values)
        for hx in (False, True):
            response = browser.get(url, headers={"HX-Request": "true"} if hx else {})
            response.close()  # files and static assets are streamed
            found.append((f"{endpoint} {url} ({'htmx' if hx else 'page'})", response))
    return found


def _directives(policy: str) -> dict[str, str]:
    """A Content-Security-Policy as directive -> sources, e.g. {"script-src": "'self'"}."""
    directives = {}
    for part in policy.split(";"):
        name, _, sources = part.strip().partition(" ")
        if name:
            directives[name] = sources.strip()
    return directives


def _header_problems(response, production: bool) -> list[str]:
    headers = response.headers
    problems = []
    if headers.get("X-Content-Type-Options") != "nosniff":
        problems.append("no X-Content-Type-Options: nosniff")
    for name in ("Referrer-Policy", "Permissions-Policy"):
        if not headers.get(name):
            problems.append(f"no {name}")
    if production != ("Strict-Transport-Security" in headers):
        problems.append(f"Strict-Transport-Security {'missing' if production else 'sent'}")
    if response.mimetype != "text/html":
        return problems
    csp = _directives(headers.get("Content-Security-Policy", ""))
    script_src = csp.get("script-src", csp.get("default-src", ""))
    if not script_src or "'unsafe-inline'" in script_src or "'unsafe-eval'" in script_src:
        problems.append(f"script-src {script_src!r}")
    for directive in ("object-src", "base-uri", "frame-ancestors"):
        if csp.get(directive) != "'none'":
            problems.append(f"{directive} {csp.get(directive)!r}")
    if headers.get("Cache-Control") != "no-store":
        problems.append(f"Cache-Control {headers.get('Cache-Control')!r}")
    if "HX-Request" not in response.vary:
        problems.append(f"Vary {headers.get('Vary')!r}")
    return problems


world = access_matrix.world


@pytest.mark.parametrize("production", [False, True], ids=["development", "production"])
@pytest.mark.parametrize("role", ["admin", "assigned_staff", "household_login"])
def test_every_get_endpoint_carries_security_headers(app, world, logged_in, request, role,
                                                     production):
    app.config["PRODUCTION"] = production
    browser = logged_in(request.getfixturevalue(role))
    responses = _crawl(world, browser)
    problems = [f"{label} [{response.status_code}]: {problem}"
                for label, response in responses
                for problem in _header_problems(response, production)]
    assert not problems, "\n".join(problems)
    # The crawl reached pages and fragments, not just refusals.
    assert sum(response.status_code == 200 for _, response in responses) > len(responses) / 3


def test_anonymous_pages_carry_security_headers(app, world, client):
    for endpoint, values in access_matrix.PUBLIC.items():
        response = client.get(world.url(endpoint, **values))
        response.close()
        assert not _header_problems(response, production=False), endpoint


def test_htmx_config_keeps_eval_history_and_inline_styles_off(admin_browser):
    page = admin_browser.get("/clients").get_data(as_text=True)
    meta = re.search(r"<meta name=\"htmx-config\" content='([^']*)'>", page)
    config = json.loads(meta.group(1))
    assert config["allowEval"] is False  # no hx-on, no js: expressions, no eval under the CSP
    assert config["historyCacheSize"] == 0  # private pages never land in localStorage
    assert config["includeIndicatorStyles"] is False  # no inline <style> under the CSP
    assert config.get("selfRequestsOnly", True) is True  # htmx 2's default: never elsewhere
