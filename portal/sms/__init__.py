"""The SMS provider's callbacks: what became of the text messages the portal sent."""

from flask import Blueprint

bp = Blueprint("sms", __name__)

from portal.sms import routes  # noqa: E402, F401
