from flask import Blueprint

bp = Blueprint("feeds", __name__)

from portal.feeds import routes  # noqa: E402, F401
