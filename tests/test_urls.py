"""The templates' url_for keeps each URL it built: the same URLs as Flask's, per mount point."""

import pytest
from flask import render_template_string, url_for

from portal.models import Feed
from portal.urls import kept_url_for

CALLS = [
    ("clients.index", {}),
    ("clients.index", {"q": "Rivera & Co", "archived": "1"}),
    ("clients.index", {"q": None}),
    ("clients.index", {"after_id": 1}),
    ("clients.index", {"after_id": True}),
    ("clients.index", {"after_id": 1.0}),
    ("center.badge", {"client_id": 7, "feed": Feed.PRIVATE.value}),
    ("static", {"filename": "portal.css"}),
    ("clients.profile", {"client_id": 7, "_anchor": "visits"}),
    ("clients.profile", {"client_id": 7, "_external": True}),
    ("clients.index", {"tags": ["a", "b"]}),
]


@pytest.mark.parametrize("root", ["", "/portal"])
def test_kept_urls_are_flasks_own_under_any_mount_point(app, root):
    for _ in range(2):  # built, then kept
        for endpoint, values in CALLS:
            with app.test_request_context("/", base_url=f"http://portal.example{root}/"):
                assert kept_url_for(endpoint, **values) == url_for(endpoint, **values)
                assert kept_url_for(endpoint, **values).startswith(
                    f"http://portal.example{root}/" if "_external" in values else f"{root}/")


def test_templates_build_links_with_it(app):
    with app.test_request_context("/"):
        html = render_template_string("{{ url_for('clients.index', q='a b') }}")
        assert html == "/clients?q=a+b"
        assert app.extensions["kept_urls"]


def test_emails_rendered_without_a_request_build_as_flask_does(app):
    app.config["SERVER_NAME"] = "portal.example"
    with app.app_context():
        assert kept_url_for("clients.index") == url_for("clients.index")
