from flask import Blueprint

bp = Blueprint("visits", __name__)

from portal.visits import routes  # noqa: E402, F401
