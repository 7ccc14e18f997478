"""Direction controls: characters that reorder what follows them on screen."""

import re

from markupsafe import Markup

# Direction embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069) reorder what
# follows them: a name ending in U+202E would show the rest of its line backwards. Pages and
# emails show text without them (what was stored is kept); the marks U+200E/U+200F are harmless.
_BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")


def without_bidi_controls(text: str) -> str:
    """The text without direction controls; Markup stays Markup (removing characters cannot
    make a tag)."""
    if text.isascii() or not _BIDI_CONTROLS.search(text):
        return text
    cleaned = _BIDI_CONTROLS.sub("", text)
    return Markup(cleaned) if isinstance(text, Markup) else cleaned


class Printed(Markup):
    """HTML a template already printed: each value in it went through finalize. Printed again
    (a feed's fifty messages in the page around them) it is not searched through again."""

    __slots__ = ()


def finalize(value):
    """Jinja's finalize: whatever a template prints loses its direction controls, names and
    texts in pages, fragments and emails alike. Runs for every value printed: the usual
    answer, plain ASCII, is given here without a further call."""
    if isinstance(value, str) and not value.isascii() and type(value) is not Printed:
        return without_bidi_controls(value)
    return value
