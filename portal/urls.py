"""Numbers in URLs: ids read by one converter everywhere, and written by the hundred (url_for
once per page, then a string substitution per link). Every number a request sends is read here:
ids by as_id (the `int` converter, id_arg, form_ids, form choices), other numbers by number_arg,
points in time as moment tokens."""

import re
from collections.abc import Callable
from datetime import UTC, datetime

from flask import abort, current_app, has_request_context, request, url_for
from werkzeug.routing import BaseConverter

from portal.models import Feed

_ID_MARK = 987654321
_TOKEN_MARK = "TOKEN-MARK"


def url_pattern(endpoint: str, **values) -> Callable[[object], str]:
    """A function from one value to the endpoint's URL with it. The first of `values` is the
    one that varies (its value only says its type: an int or a token); the others are fixed.
    url_for costs microseconds each; a page of fifty messages builds a hundred links."""
    name, sample = next(iter(values.items()))
    mark = _ID_MARK if isinstance(sample, int) else _TOKEN_MARK
    url = url_for(endpoint, **{**values, name: mark})
    if url.count(str(mark)) != 1:
        raise ValueError(f"{endpoint}: cannot tell the varying part of {url}")
    return lambda value: url.replace(str(mark), str(value))


# Enough for every link of every page a process serves for a while; then it starts again.
KEPT_URLS = 20_000


def kept_url_for(endpoint: str, **values) -> str:
    """url_for for the templates, each URL built once per process: a URL is the same for the
    same endpoint and values under the same mount point (the portal sets no URL defaults), and
    a page builds dozens, at microseconds each. Anything else (an external URL, an anchor, an
    endpoint relative to the request's blueprint, a list of values, no request) is built as
    usual."""
    if (endpoint.startswith(".") or any(name.startswith("_") for name in values)
            or not has_request_context()):  # emails: external URLs, built by the worker
        return url_for(endpoint, **values)
    # With each value's type: 1, 1.0 and True are equal keys but different URLs.
    key = (endpoint, request.script_root,
           *[(name, value.__class__, value) for name, value in values.items()])
    kept = current_app.extensions.setdefault("kept_urls", {})
    try:
        return kept[key]
    except KeyError:
        pass
    except TypeError:  # a value that cannot be a key
        return url_for(endpoint, **values)
    if len(kept) >= KEPT_URLS:
        kept.clear()
    url = kept[key] = url_for(endpoint, **values)
    return url


# The largest id the tables can hold (INTEGER columns on PostgreSQL): a larger number must find
# nothing (404), not fail in the database driver (OverflowError, a 500).
LARGEST_ID = 2**31 - 1


def _numbers_up_to(limit: int) -> str:
    """A regular expression for 0..limit in ASCII digits, without leading zeros."""
    digits = str(limit)
    choices = ["0", f"[1-9][0-9]{{0,{len(digits) - 2}}}"]  # fewer digits than the limit
    for place, digit in enumerate(digits):  # as many: the limit's first digits, then a lower one
        lowest = 1 if place == 0 else 0
        if int(digit) > lowest:
            rest = len(digits) - place - 1
            choices.append(f"{digits[:place]}[{lowest}-{int(digit) - 1}][0-9]{{{rest}}}")
    return "(?:" + "|".join([*choices, digits]) + ")"


# In the pattern itself, not in a check after it: a route whose converter refuses a value still
# counts as matched for its other methods, and would answer 405 where 404 is meant.
ID_PATTERN = _numbers_up_to(LARGEST_ID)
_ID_TEXT = re.compile(ID_PATTERN)


def as_id(text: str | int) -> int:
    """The one reading of an id written in a path, a form or a query string (or already an
    int, as form choices are). ValueError for anything that is not one, a number no id column
    can hold included."""
    if isinstance(text, int) and not isinstance(text, bool) and 0 <= text <= LARGEST_ID:
        return text
    if not isinstance(text, str) or not _ID_TEXT.fullmatch(text):
        raise ValueError(f"not an id: {str(text)[:20]!r}")
    return int(text)


# A feed's name in a route: `<{FEED_NAMES}:feed_name>` matches "conversation" or "private".
FEED_NAMES = "any(" + ", ".join(feed.value for feed in Feed) + ")"


class IdConverter(BaseConverter):
    """Every route's `<int:...>`: what as_id refuses matches no route, so it answers 404."""

    regex = ID_PATTERN
    weight = 50
    part_isolating = True

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value) -> str:
        return str(as_id(value))


def form_ids(field: str) -> list[int]:
    """The ids a form sent under one name (checkboxes). 404 if any is not an id: a page of
    ours never sends one."""
    return [_id_or_404(value) for value in request.form.getlist(field)]


def chosen_id(value: str | int | None) -> int | None:
    """A select field's coerce: None when nothing is chosen (its validators say so), 404 when
    what was sent is not an id (no page of ours sends one)."""
    return None if value in (None, "") else _id_or_404(value)


def id_arg(name: str, default: int | None = None, args=None) -> int | None:
    """An id (or an id used as a keyset position) from the query string (or `args`): `default`
    when absent or empty, 404 when it is not an id."""
    value = (request.args if args is None else args).get(name, "")
    return default if value == "" else _id_or_404(value)


_NUMBER_TEXT = re.compile("[0-9]{1,20}")


def number_arg(name: str) -> int | None:
    """A whole number from the query string that is not an id (a moment token, larger than any
    id column holds): ASCII digits only. None when absent or not one: the caller falls back
    (an open feed's poll then asks from now)."""
    value = request.args.get(name, "")
    return int(value) if _NUMBER_TEXT.fullmatch(value) else None


def _id_or_404(text: str | int) -> int:
    try:
        return as_id(text)
    except ValueError:
        abort(404)


def moment_token(moment: datetime) -> int:
    """A point in time as an integer for URLs: microseconds since the epoch."""
    return int(moment.timestamp() * 1_000_000)


def moment_from_token(token: int | None) -> datetime:
    if not token or token < 0:
        return datetime.now(UTC)
    try:
        return datetime.fromtimestamp(token / 1_000_000, UTC)
    except (OverflowError, OSError, ValueError):
        return datetime.now(UTC)
