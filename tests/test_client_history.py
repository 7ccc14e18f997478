"""A client's History for the admin team: the household's own edits and the team's changes to
its record, pets and visits, in the audit log's sentences with before and after, and nothing
of other clients or of the rest of the audit log."""

import re

from portal.extensions import db
from portal.models import Client, Role, User
from portal.services import audit
from portal.settings import routes

from .helpers import count_queries
from .test_client_records import HOUSEHOLD_FIELDS


def page_text(response) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", response.get_data(as_text=True)).split())


def history(household) -> str:
    return f"/settings/clients/{household.id}/history"


def test_history_shows_an_office_manager_the_households_own_edit_with_before_and_after(
        app, logged_in, household_login, household, office_manager):
    assert logged_in(household_login).submit(
        f"/clients/{household.id}/household", HOUSEHOLD_FIELDS).status_code == 302
    browser = logged_in(office_manager)
    profile = browser.get(f"/clients/{household.id}").get_data(as_text=True)
    assert f'href="{history(household)}"' in profile
    response = browser.get(history(household))
    assert response.status_code == 200
    text = page_text(response)
    assert household_login.name in text and "Elm Vets" in text and "Vet" in text
    # The office manager still has no audit log of the whole business.
    assert browser.get("/settings/audit-log").status_code == 404


def test_history_leaves_out_other_clients_and_the_business_events(
        app, logged_in, admin, household, other_household, make_user):
    with app.app_context():
        actor = db.session.get(User, admin.id)
        audit.record(household.business_id, actor, "client.updated", "client",
                     other_household.id, changes={"vet_name": [None, "Other Vets"]})
        audit.record(household.business_id, actor, "settings.changed", "business",
                     household.business_id, changes={"staff_access_days": [7, 3]})
        audit.record(household.business_id, actor, "client.updated", "client", household.id,
                     changes={"vet_name": [None, "Elm Vets"]})
        db.session.commit()
        assert db.session.get(Client, household.id) is not None
    text = page_text(logged_in(admin).get(history(household)))
    assert "Elm Vets" in text and "Other Vets" not in text and "Staff access" not in text


def test_history_pages_by_keyset_in_constant_queries(app, logged_in, admin, household):

    def add(count):
        with app.app_context():
            actor = db.session.get(User, admin.id)
            for number in range(count):
                audit.record(household.business_id, actor, "client.updated", "client",
                             household.id, changes={"vet_name": [None, f"Vet {number}"]})
            db.session.commit()

    browser = logged_in(admin)
    add(2)
    few = count_queries(app, browser, history(household))
    add(20)
    assert count_queries(app, browser, history(household)) == few
    routes.AUDIT_EVENTS_PER_PAGE, saved = 5, routes.AUDIT_EVENTS_PER_PAGE
    try:
        first = browser.get(history(household)).get_data(as_text=True)
        more = re.search(r'href="([^"]*before=\d+)"', first).group(1).replace("&amp;", "&")
        second = page_text(browser.get(more))
    finally:
        routes.AUDIT_EVENTS_PER_PAGE = saved
    first = " ".join(re.sub(r"<[^>]+>", " ", first).split())
    assert "Vet 19" in first and "Vet 15" in first and "Vet 14" not in first
    assert "Vet 14" in second and "Vet 10" in second and "Vet 19" not in second


def test_history_is_not_found_for_staff_clients_and_another_business(
        app, logged_in, household, household_login, assigned_staff, stranger_admin,
        make_user):
    for someone in (household_login, assigned_staff, stranger_admin,
                    make_user(Role.STAFF)):
        assert logged_in(someone).get(history(household)).status_code == 404
