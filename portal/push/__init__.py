"""Web push: the service worker, and the devices a person enables for notifications."""

from flask import Blueprint

bp = Blueprint("push", __name__)

from portal.push import routes  # noqa: E402, F401
