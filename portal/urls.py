"""Links by the hundred: url_for once per page, then a string substitution per link."""

from collections.abc import Callable

from flask import request, url_for

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


# The largest id the tables can hold (INTEGER columns on PostgreSQL): a larger number in a URL
# would fail in the database (a 500) rather than find nothing.
_LARGEST_ID = 2**31 - 1


def form_ids(field: str) -> list[int]:
    """The ids a form sent under one name (checkboxes); anything else, or too large for the
    tables to hold, is left out."""
    return [int(value) for value in request.form.getlist(field)
            if value.isascii() and value.isdigit() and int(value) <= _LARGEST_ID]


def id_arg(name: str, default: int | None = None) -> int | None:
    """An id (or id-like keyset value) from the query string; `default` when absent or not a
    whole number; clamped to what the databases can compare."""
    value = request.args.get(name, type=int)
    if value is None:
        return default
    return max(-_LARGEST_ID, min(value, _LARGEST_ID))
