"""Hostile ids: numbers no id column can hold, and numbers written in ways a page of ours never
writes, in every path, query string and form that takes an id. Each finds no page (404) and
changes nothing, for every role; none reaches the database driver (which answers an
OverflowError, a 500, for integers beyond 64 bits)."""

import re

import pytest

from portal.urls import LARGEST_ID, IdConverter, as_id, number_arg

from .helpers import count_rows, every_row

SPELLINGS = {
    "beyond_64_bits": "9999999999999999999999999",
    "beyond_int4": str(LARGEST_ID + 1),
    "beyond_int8": str(2**63),
    "thousands_of_digits": "1" * 5000,
    "leading_zeros_beyond": "0" * 30 + str(LARGEST_ID + 1),
    "leading_zeros": "0" * 5000 + "1",
    "arabic_indic_digits": "\u0661\u0662",
    "fullwidth_digits": "\uff11",
    "exponent": "1e3",
    "hex": "0x10",
    "negative": "-1",
    "underscore": "1_000",
}
SPELLING_IDS = list(SPELLINGS)
FIXED = {"feed_name": "conversation", "token": "x" * 22, "name": "icon-192"}
ARGUMENT = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")


def id_rules(app) -> list:
    return [rule for rule in app.url_map.iter_rules()
            if any(isinstance(converter, IdConverter) for converter in rule._converters.values())]


def path_with(rule, spelling: str) -> str:
    def value(match):
        name = match.group(2)
        return spelling if isinstance(rule._converters[name], IdConverter) else FIXED[name]

    return ARGUMENT.sub(value, rule.rule)


def test_every_number_in_a_route_is_read_as_an_id(app):
    rules = id_rules(app)
    assert len(rules) > 15  # clients, messages, services, accounts, ...
    for rule in app.url_map.iter_rules():
        for name, converter in rule._converters.items():
            if name.endswith("_id"):
                assert isinstance(converter, IdConverter), rule.rule


@pytest.fixture
def browsers(logged_in, admin, office_manager, assigned_staff, household_login, client):
    return {"admin": logged_in(admin), "office_manager": logged_in(office_manager),
            "staff": logged_in(assigned_staff), "client": logged_in(household_login),
            "anonymous": client}


@pytest.mark.parametrize("spelling", SPELLING_IDS)
def test_every_path_with_a_hostile_id_finds_no_page(app, browsers, household, spelling):
    """Every route, every method, every role: 404, and not one row written."""
    before = every_row(app)
    for rule in id_rules(app):
        url = path_with(rule, SPELLINGS[spelling])
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            for role, browser in browsers.items():
                response = browser.open(url, method=method, data={
                    "csrf_token": browser.csrf_token() if role != "anonymous" else ""})
                assert response.status_code == 404, (role, method, url)
    assert every_row(app) == before


def test_an_id_is_a_number_no_column_overflows():
    for number in (0, 7, 10**9 - 1, 10**9, 1999999999, 2 * 10**9, LARGEST_ID - 1, LARGEST_ID):
        assert as_id(str(number)) == number == as_id(number)
    for number in (LARGEST_ID + 1, 2147483650, 2147483700, 2200000000, 3 * 10**9, 10**10, -1):
        with pytest.raises(ValueError):
            as_id(str(number))
        with pytest.raises(ValueError):
            as_id(number)


def test_a_number_that_is_no_id_is_ascii_digits_or_nothing(app):
    """number_arg (the feed poll's moment token): larger than ids, never in another spelling."""
    read = {"1733000000000000": 1733000000000000, "0": 0, "": None, "+5": None, " 5": None}
    for name in ("arabic_indic_digits", "fullwidth_digits", "exponent", "hex", "negative",
                 "underscore", "thousands_of_digits"):
        read[SPELLINGS[name]] = None
    for written, number in read.items():
        with app.test_request_context("/", query_string={"since": written}):
            assert number_arg("since") == number, written
    with app.test_request_context("/"):
        assert number_arg("since") is None


def test_the_largest_id_still_routes(admin_browser, admin, household):
    """The converter refuses only what no column holds: the largest id is a client not found."""
    assert admin_browser.get(f"/clients/{household.id}").status_code == 200
    assert admin_browser.get(f"/clients/{LARGEST_ID}").status_code == 404
    assert admin_browser.post(f"/messages/{LARGEST_ID}/delete",
                              data={"csrf_token": admin_browser.csrf_token()}).status_code == 404


QUERY_IDS = [
    "/messages?before={}",
    "/my-clients?after_name=A&after_id={}",
    "/messages/badge?client_id={}",
    "/settings/audit-log?before={}",
    "/settings/audit-log?person={}",
    "/settings/unmatched-replies?before={}",
    "/clients?after_name=A&after_id={}",
    "/clients/{client}/feeds/conversation/updates?after={}",
    "/clients/{client}/feeds/conversation/updates?oldest={}",
    "/clients/{client}/feeds/conversation/updates?shown={}",
    "/clients/{client}/feeds/conversation/earlier?before={}",
]


@pytest.mark.parametrize("spelling", SPELLING_IDS)
def test_every_query_string_id_that_is_no_id_finds_no_page(logged_in, admin, preferred_sitter,
                                                           household, spelling):
    """As people who can open each of these pages: the id alone makes the 404."""
    for pattern in QUERY_IDS:
        url = pattern.replace("{client}", str(household.id))
        browser = logged_in(preferred_sitter if url.startswith("/my-clients") else admin)
        assert browser.htmx("GET", url.format(household.id)).status_code in (200, 204), url
        assert browser.htmx("GET", url.format(SPELLINGS[spelling])).status_code == 404, url


@pytest.mark.parametrize("spelling", SPELLING_IDS)
def test_form_ids_that_are_no_ids_change_nothing(app, admin_browser, office_manager, make_client,
                                                admin, spelling):
    from portal.extensions import db
    from portal.inbound import queue
    from portal.models import InboundChannel, User

    def access() -> bool:
        return bool(count_rows(app, User, User.id == office_manager.id,
                               User.private_messages_access.is_(True)))

    response = admin_browser.submit("/settings/permissions", data={
        "private_messages": [str(office_manager.id), SPELLINGS[spelling]]})
    assert response.status_code == 404 and not access()
    retry = admin_browser.submit("/settings/notifications/retry",
                                 data={"notification": SPELLINGS[spelling]})
    assert retry.status_code == 404
    # The staff pickers: a choice that is no id is not a choice the page offered.
    client = make_client()
    with app.app_context():
        reply = queue.record_unmatched(
            channel=InboundChannel.EMAIL, dedupe_key="d" * 64, reason="Unknown sender",
            raw=b"From: a@example.org\n\nHello", sender="a@example.org",
            business_id=db.session.get(User, admin.id).business_id,
        )
    before = every_row(app)
    filed = admin_browser.submit(f"/settings/unmatched-replies/{reply.id}/file",
                                 data={"client_id": SPELLINGS[spelling], "feed": "conversation"})
    assert filed.status_code == 404
    for action, data in (
        (f"/clients/{client.id}/services",
         {"title": "Walk", "date": "2030-01-02", "starts": "09:00", "ends": "09:30"}),
        (f"/clients/{client.id}/preferred-sitters", {}),
    ):
        response = admin_browser.submit(action, data={**data, "staff_id": SPELLINGS[spelling]})
        assert response.status_code == 404, action
    assert every_row(app) == before
