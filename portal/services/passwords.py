"""What a password must be: 10 to 256 characters, kept exactly as typed, and not one of the
passwords attackers try first.

"Common" is zxcvbn's judgement (Dropbox's estimator; its lists hold the most used passwords
from public breaches, English words and names, keyboard walks, repeats and sequences): a
password it expects to fall within a million guesses is refused. Only the first 72 characters
are scored (zxcvbn's own limit); a longer password is not one of those anyway.
"""

MIN_LENGTH = 10
MAX_LENGTH = 256
SCORED_LENGTH = 72
# zxcvbn's scores: 0 is under a thousand guesses, 1 under a million.
LOWEST_ACCEPTED_SCORE = 2

TOO_SHORT = f"Use at least {MIN_LENGTH} characters."
TOO_LONG = f"Use at most {MAX_LENGTH} characters."
TOO_COMMON = ("That password is one of the first that attackers try. "
              "Choose another: a few unrelated words are easy to remember.")


def problem_with(password: str) -> str | None:
    """Why the password cannot be used, or None. Spaces and any letters count as typed."""
    if len(password) < MIN_LENGTH:
        return TOO_SHORT
    if len(password) > MAX_LENGTH:
        return TOO_LONG
    if is_common(password):
        return TOO_COMMON
    return None


def is_common(password: str) -> bool:
    # Imported when first needed: its lists take about 15 MB in every web process otherwise.
    from zxcvbn import zxcvbn

    return zxcvbn(password[:SCORED_LENGTH])["score"] < LOWEST_ACCEPTED_SCORE
