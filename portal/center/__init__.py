from flask import Blueprint

bp = Blueprint("center", __name__)

from portal.center import routes  # noqa: E402, F401
