"""Message text as pages show it: escaped, links made clickable; names joined in a sentence."""

import re
from collections.abc import Iterable
from functools import lru_cache

from markupsafe import Markup, escape

from portal.bidi import without_bidi_controls

_URL = re.compile(r"https?://[^\s<>\"'`]+", re.IGNORECASE)
_TRAILING_PUNCTUATION = ".,;:!?)]}'\""


@lru_cache(maxsize=4096)
def message_html(text: str) -> Markup:
    """Escapes the text and makes http(s) links clickable; line breaks are kept by CSS."""
    text = without_bidi_controls(text)
    parts: list[str] = []
    position = 0
    for match in _URL.finditer(text):
        url = match.group(0).rstrip(_TRAILING_PUNCTUATION)
        start, end = match.start(), match.start() + len(url)
        parts.append(escape(text[position:start]))
        parts.append(
            Markup('<a href="{0}" rel="noopener noreferrer nofollow" target="_blank">{0}</a>')
            .format(url)
        )
        position = end
    parts.append(escape(text[position:]))
    return Markup("").join(parts)


def and_list(items: Iterable[str]) -> str:
    """"a", "a and b", "a, b and c"."""
    items = list(items)
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " and " + items[-1]
