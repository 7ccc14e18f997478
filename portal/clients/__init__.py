from flask import Blueprint

bp = Blueprint("clients", __name__)

from portal.clients import imports, routes  # noqa: E402, F401
