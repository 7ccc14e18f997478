"""Page or fragment: the one decision every URL that serves both makes here (the htmx glue to
swap in one place). Response headers for htmx (HX-Retarget, HX-Trigger, HX-Redirect, ...) are
set by the routes that need them, with htmx-flask's make_response."""

from flask import render_template, request


def wants_fragment() -> bool:
    """htmx swaps a fragment; boosted links and history restores need the whole page."""
    headers = request.htmx
    return bool(headers) and not headers.boosted and not headers.history_restore_request


def render(page: str, fragment: str, **context) -> str:
    return render_template(fragment if wants_fragment() else page, **context)


def add_vary_header(response):
    response.vary.add("HX-Request")
    return response
