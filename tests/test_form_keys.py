"""Forms that create something (a client, a pet, a service) carry a one-time key: submitted twice
(a double tap on a slow phone, a retried request), they create it once, and the repeat goes
where the first post went."""

import re
import threading
from datetime import date, timedelta

import pytest

from portal.extensions import db
from portal.models import Client, Pet, ScheduledService, UsedFormKey, User
from portal.services import clients, form_keys

from .helpers import count_rows, every_row


def form_fields(page: str, action: str) -> dict:
    form = re.search(rf'<form method="post" action="{re.escape(action)}".*?</form>', page, re.S)
    hidden = re.findall(r'<input[^>]*type="hidden"[^>]*>', form.group(0))
    return {re.search(r'name="(\w+)"', tag).group(1): re.search(r'value="([^"]*)"', tag).group(1)
            for tag in hidden}


@pytest.fixture
def cases(household, assigned_staff):
    """Each creating form: the page that shows it, its action, what it sends, what it makes."""
    profile = f"/clients/{household.id}"
    tomorrow = (date.today() + timedelta(days=2)).isoformat()
    return {
        "client": ("/clients/new", "/clients/new", {"name": "The Novak Household"}, Client),
        "pet": (profile, f"{profile}/pets", {"name": "Pickle", "species": "Cat"}, Pet),
        "service": (profile, f"{profile}/services",
                    {"staff_id": str(assigned_staff.id), "title": "Drop-in", "date": tomorrow,
                     "starts": "09:00", "ends": "09:30",
                     # The same visit again overlaps the first: confirmed, it is made anyway.
                     "confirm_overlap": "y"}, ScheduledService),
    }


@pytest.mark.parametrize("case", ["client", "pet", "service"])
def test_a_repeated_post_creates_once_and_goes_where_the_first_went(app, admin_browser, cases,
                                                                    case):
    page_url, action, data, model = cases[case]
    fields = form_fields(admin_browser.get(page_url).get_data(as_text=True), action)
    assert len(fields["once"]) >= 16
    made = count_rows(app, model)
    first = admin_browser.post(action, data={**fields, **data})
    assert first.status_code == 302 and count_rows(app, model) == made + 1
    before = every_row(app)
    repeat = admin_browser.post(action, data={**fields, **data})
    assert repeat.status_code == 302 and repeat.location == first.location
    assert every_row(app) == before  # no record, audit event or key more


@pytest.mark.parametrize("case", ["client", "pet", "service"])
def test_each_form_shown_is_a_new_send(app, admin_browser, cases, case):
    """The same details entered again from a new form are a second record, on purpose."""
    page_url, action, data, model = cases[case]
    made = count_rows(app, model)
    for _ in range(2):
        fields = form_fields(admin_browser.get(page_url).get_data(as_text=True), action)
        admin_browser.post(action, data={**fields, **data})
    assert count_rows(app, model) == made + 2


def test_a_post_without_a_key_is_made_as_before(app, admin_browser, cases):
    page_url, action, data, _ = cases["pet"]
    fields = form_fields(admin_browser.get(page_url).get_data(as_text=True), action)
    for key in ("", "x" * 500):
        admin_browser.post(action, data={**fields, **data, "once": key})
    assert count_rows(app, Pet, Pet.name == "Pickle") == 2


def test_a_key_is_one_persons_own(app, logged_in, admin, office_manager, cases):
    page_url, action, data, _ = cases["pet"]
    browser = logged_in(admin)
    fields = form_fields(browser.get(page_url).get_data(as_text=True), action)
    browser.post(action, data={**fields, **data})
    other = logged_in(office_manager)
    own = form_fields(other.get(page_url).get_data(as_text=True), action)
    other.post(action, data={**own, **data, "once": fields["once"]})
    assert count_rows(app, Pet, Pet.name == "Pickle") == 2


@pytest.mark.committed  # two threads, each with its own connection
def test_two_posts_racing_with_one_key_create_once(app, admin, household, monkeypatch):
    """The second arrives while the first is still writing: the key's row, written in the
    first's transaction, makes the second wait, then fail, then go where the first went."""
    record = clients.audit.record
    first_written = threading.Event()

    def record_slowly(*args, **kwargs):
        record(*args, **kwargs)
        if not first_written.is_set():
            first_written.set()
            threading.Event().wait(0.5)

    monkeypatch.setattr(clients.audit, "record", record_slowly)
    went = []

    def post() -> None:
        with app.test_request_context(method="POST", data={"once": "k" * 22}):
            user = db.session.get(User, admin.id)
            client = db.session.get(Client, household.id)

            def make() -> str:
                clients.add_pet(user, client, name="Pickle", species="Cat", notes=None)
                return "/made"

            went.append(form_keys.once(user, "k" * 22, make, "/made"))
            db.session.remove()

    first = threading.Thread(target=post)
    first.start()
    assert first_written.wait(5)
    post()
    first.join()
    assert went == ["/made", "/made"]
    assert count_rows(app, Pet, Pet.name == "Pickle") == 1
    assert count_rows(app, UsedFormKey) == 1
