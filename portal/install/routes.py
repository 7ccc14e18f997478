"""The manifest that makes the portal installable (a home-screen app; on iOS the only way to get
web push), the icons it and the pages name, and the business's logo they are drawn from."""

from flask import Response, abort, current_app, jsonify, url_for

from portal.extensions import db
from portal.install import bp
from portal.install.brand import PORTAL_NAME, brand, icon_url
from portal.install.icons import favicon_ico, logo_png, paw_png
from portal.models import Business
from portal.storage import storage

THEME_COLOR = "#1f6f5c"  # --accent in static/portal.css
BACKGROUND_COLOR = "#f5f6f8"  # --bg
# name -> (pixels, maskable)
ICONS = {
    "icon-192": (192, False),
    "icon-512": (512, False),
    "maskable-192": (192, True),
    "maskable-512": (512, True),
    "apple-touch-icon": (180, False),
    "favicon-32": (32, False),
}
ICON_MAX_AGE = 7 * 24 * 3600


@bp.get("/manifest.webmanifest")
def manifest():
    """Pages ask for it with their cookies (crossorigin="use-credentials"): it is named after
    the person's business, and never kept by a shared cache."""
    name = brand().name
    about = f"Messages with {name}" if name != PORTAL_NAME else "Messages about your pets"
    response = jsonify({
        "id": "/",
        "name": name,
        "short_name": name,
        "description": about,
        "start_url": url_for("auth.home"),
        "scope": "/",
        "display": "standalone",
        "background_color": BACKGROUND_COLOR,
        "theme_color": THEME_COLOR,
        "icons": [
            {"src": icon_url(icon), "sizes": f"{size}x{size}",
             "type": "image/png", "purpose": "maskable" if maskable else "any"}
            for icon, (size, maskable) in ICONS.items() if icon.startswith(("icon", "maskable"))
        ],
    })
    response.mimetype = "application/manifest+json"
    response.headers["Cache-Control"] = "private, no-cache"
    response.vary.add("Cookie")
    return response


@bp.get(f"/icons/<any({', '.join(repr(name) for name in ICONS)}):name>.png")
def icon(name: str):
    size, maskable = ICONS[name]
    return _image(paw_png(size, maskable=maskable), "image/png")


@bp.get(f"/icons/<int:business_id>/<any({', '.join(repr(name) for name in ICONS)}):name>.png")
def business_icon(business_id: int, name: str):
    """An icon drawn from a business's logo (public, as its logo is: the login page shows it)."""
    size, maskable = ICONS[name]
    try:
        drawn = logo_png(_logo_key(business_id), size, maskable=maskable)
    except FileNotFoundError:
        current_app.logger.error("The logo of business %s is missing", business_id)
        abort(404)
    return _image(drawn, "image/png")


@bp.get("/logo/<int:business_id>")
def logo(business_id: int):
    """The business's logo, as stored (a WebP): public, since its login page shows it. Its URLs
    carry the logo's version, so a browser may keep it."""
    response = _image(_read(_logo_key(business_id)), "image/webp")
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


def _logo_key(business_id: int) -> str:
    business = db.session.get(Business, business_id)
    if business is None or not business.logo_key:
        abort(404)
    return business.logo_key


def _read(key: str) -> bytes:
    try:
        return storage().read(key)
    except FileNotFoundError:
        current_app.logger.error("Stored file %s is missing", key)
        abort(404)


@bp.get("/favicon.ico")
def favicon():
    return _image(favicon_ico(), "image/x-icon")


def _image(data: bytes, mimetype: str) -> Response:
    response = Response(data, mimetype=mimetype)
    response.headers["Cache-Control"] = f"public, max-age={ICON_MAX_AGE}"
    return response
