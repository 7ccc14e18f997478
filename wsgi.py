"""Entry point for `flask --app wsgi` and gunicorn (`gunicorn wsgi:app`)."""

import sys

from portal import create_app
from portal.config import ConfigError

try:
    app = create_app()
except ConfigError as error:
    # One line that says what to fix, not a traceback through the app factory; exit status 3
    # is gunicorn's "worker failed to boot", which stops it rather than restarting workers.
    print(f"The portal will not start: {error}", file=sys.stderr)
    sys.exit(3)
