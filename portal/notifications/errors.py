class TransientError(Exception):
    """Try again later: the service was down, busy or timed out."""


class PermanentError(Exception):
    """Trying again will not help: a bad address, a refused recipient."""
