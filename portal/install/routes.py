"""The manifest that makes the portal installable (a home-screen app; on iOS the only way to get
web push), and the icons it and the pages name."""

from flask import Response, jsonify, url_for
from flask_login import current_user

from portal.install import bp
from portal.install.icons import favicon_ico, paw_png

PORTAL_NAME = "Client Portal"  # when nobody is logged in, or a business has no name
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


def app_name() -> str:
    """The business the person belongs to, as the installed app is named."""
    if current_user.is_authenticated and current_user.business.name:
        return current_user.business.name
    return PORTAL_NAME


@bp.get("/manifest.webmanifest")
def manifest():
    """Pages ask for it with their cookies (crossorigin="use-credentials"): it is named after
    the person's business, and never kept by a shared cache."""
    name = app_name()
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
            {"src": url_for("install.icon", name=icon), "sizes": f"{size}x{size}",
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


@bp.get("/favicon.ico")
def favicon():
    return _image(favicon_ico(), "image/x-icon")


def _image(data: bytes, mimetype: str) -> Response:
    response = Response(data, mimetype=mimetype)
    response.headers["Cache-Control"] = f"public, max-age={ICON_MAX_AGE}"
    return response
