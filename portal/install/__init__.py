"""Whose portal this is, and the portal as an installable app: the business's name and logo,
the web app manifest and its icons."""

from flask import Blueprint

bp = Blueprint("install", __name__)

from portal.install import routes  # noqa: E402, F401
from portal.install.brand import brand, icon_url, logo_url  # noqa: E402

# Pages show the business's name and logo, emails too, and name the app's icons.
for _helper in (brand, icon_url, logo_url):
    bp.add_app_template_global(_helper)
