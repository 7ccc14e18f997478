"""The htmx glue in one place: when to answer with a fragment, and how to retarget it."""

from flask import render_template, request


def wants_fragment() -> bool:
    """htmx swaps a fragment; boosted links and history restores need the whole page."""
    headers = request.htmx
    return bool(headers) and not headers.boosted and not headers.history_restore_request


def render(page: str, fragment: str, **context) -> str:
    return render_template(fragment if wants_fragment() else page, **context)


def retarget(response, target: str, swap: str = "outerHTML"):
    """Sends a 200 form-error fragment somewhere other than the requesting element's target."""
    response.headers["HX-Retarget"] = target
    response.headers["HX-Reswap"] = swap
    return response


def add_vary_header(response):
    response.vary.add("HX-Request")
    return response
