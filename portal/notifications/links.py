"""Links in what leaves the portal (emails, texts, push): whole URLs under PORTAL_BASE_URL."""

from flask import current_app


def external_url(endpoint: str, **values) -> str:
    """The endpoint's whole URL, built without a request: the notification worker has none."""
    path = current_app.url_map.bind("portal").build(endpoint, values)
    return current_app.config["PORTAL_BASE_URL"].rstrip("/") + path
