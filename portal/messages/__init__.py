from flask import Blueprint

bp = Blueprint("messages", __name__)

from portal.messages import routes  # noqa: E402, F401
