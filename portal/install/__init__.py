"""The portal as an installable app: its web app manifest and its icons."""

from flask import Blueprint

bp = Blueprint("install", __name__)

from portal.install import routes  # noqa: E402, F401
