from flask import Blueprint

bp = Blueprint("replies", __name__, url_prefix="/settings/unmatched-replies")

from portal.replies import routes  # noqa: E402, F401
