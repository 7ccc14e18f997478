"""Each person's notification settings, the business defaults, and failed deliveries."""

from flask import Blueprint

bp = Blueprint("preferences", __name__)

from portal.preferences import routes  # noqa: E402, F401
