"""The admin team's pages: clients, logins, schedules, preferred sitters, staff."""

import re
from datetime import date, timedelta

from sqlalchemy import select

from portal.extensions import db
from portal.models import (
    AuditEvent,
    Client,
    Pet,
    PreferredSitter,
    Role,
    ScheduledService,
    ServiceStatus,
    User,
)
from portal.services.accounts import authenticate

from .helpers import count_rows, record_sql


def schedule_service(browser, household, staff, day: str, starts: str, ends: str,
                     title: str = "Walk"):
    """Posts the Schedule a service form of the household's profile."""
    return browser.submit(
        f"/clients/{household.id}/services",
        {"staff_id": staff.id, "title": title, "date": day, "starts": starts, "ends": ends},
    )


def test_clients_list_searches_by_name(admin_browser, make_client):
    make_client(name="The Rivera Household")
    make_client(name="The Okafor Household")
    page = admin_browser.get("/clients?q=rivera").get_data(as_text=True)
    assert "The Rivera Household" in page and "The Okafor Household" not in page
    fragment = admin_browser.htmx("GET", "/clients?q=okafor").get_data(as_text=True)
    assert fragment.startswith('<div id="client-results"') and "The Okafor Household" in fragment


def test_clients_search_treats_wildcards_literally(admin_browser, make_client):
    make_client(name="100% Dog Lovers")
    make_client(name="Plain Household")
    page = admin_browser.get("/clients?q=%25").get_data(as_text=True)
    assert "100% Dog Lovers" in page and "Plain Household" not in page


def test_clients_list_pages_by_keyset(app, admin_browser, business):
    from portal.services.clients import create_client

    with app.app_context():
        from portal.models import Business

        owner = db.session.get(Business, business.id)
        made = [create_client(owner, None, name=f"Client {n:02}") for n in range(55)]
    page = admin_browser.get("/clients").get_data(as_text=True)
    assert "Client 49" in page and "Client 50" not in page
    assert "after_name=Client+49" in page
    second = admin_browser.get(f"/clients?after_name=Client+49&after_id={made[49].id}"
                               ).get_data(as_text=True)
    assert "Client 50" in second and "Client 54" in second and "Client 49" not in second


def test_clients_list_never_shows_another_business(admin_browser, make_client, stranger_business):
    make_client(name="Rival Household", business=stranger_business)
    assert "Rival Household" not in admin_browser.get("/clients").get_data(as_text=True)


def test_create_client_with_first_pet(app, admin_browser):
    response = admin_browser.submit(
        "/clients/new",
        {"name": "The Chen Household", "email": "chen@example.com", "pet_name": "Luna",
         "pet_species": "Cat"},
    )
    assert response.status_code == 302
    with app.app_context():
        client = db.session.scalar(select(Client).where(Client.name == "The Chen Household"))
        assert [(pet.name, pet.species) for pet in client.pets] == [("Luna", "Cat")]
    assert count_rows(app, AuditEvent, AuditEvent.action == "client.created") == 1


def test_create_client_without_pet_fields(app, admin_browser):
    # A hand-made request may leave out the optional pet fields entirely.
    assert admin_browser.submit("/clients/new", {"name": "No Pets Yet"}).status_code == 302
    assert count_rows(app, Pet) == 0


def test_create_client_refuses_missing_name(app, admin_browser):
    response = admin_browser.submit("/clients/new", {"name": " ", "email": "not-an-email"})
    assert response.status_code == 422
    assert count_rows(app, Client) == 0


def test_create_client_login_invites_the_client(app, admin_browser, household):
    # The person chooses their own password from the invitation (tests/test_accounts.py).
    response = admin_browser.submit(
        f"/clients/{household.id}/logins/new",
        {"name": "Carla", "email": "Carla@Example.com", "phone": "+1 312 555 0142"},
    )
    assert response.status_code == 302
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == "carla@example.com"))
        assert (user.role, user.client_id, user.phone) == (Role.CLIENT, household.id,
                                                           "+1 312 555 0142")
        assert user.is_invited and user.invited_at is not None
    page = admin_browser.get(response.location).get_data(as_text=True)
    assert "was invited: an email to Carla@Example.com" in page and "Invited" in page


def test_create_login_refuses_missing_and_duplicate_email(
    app, admin_browser, household, admin
):
    missing = admin_browser.submit(
        f"/clients/{household.id}/logins/new", {"name": "C", "email": ""},
    )
    assert missing.status_code == 422
    duplicate = admin_browser.submit(
        f"/clients/{household.id}/logins/new", {"name": "C", "email": admin.email},
    )
    assert duplicate.status_code == 422
    assert "already belongs to a login" in duplicate.get_data(as_text=True)
    assert count_rows(app, User, User.role == Role.CLIENT) == 0


def test_add_pet(app, admin_browser, household):
    admin_browser.submit(f"/clients/{household.id}/pets", {"name": "Pepper", "species": "Dog"})
    assert count_rows(app, Pet, Pet.name == "Pepper") == 1


def test_schedule_service_gives_staff_access(app, admin_browser, household, unassigned_staff,
                                            logged_in):
    staff_browser = logged_in(unassigned_staff)
    assert staff_browser.get(f"/clients/{household.id}").status_code == 404
    tomorrow = (date.today() + timedelta(days=1)).isoformat()
    response = schedule_service(admin_browser, household, unassigned_staff, tomorrow,
                                "12:00", "12:30", title="Dog walk")
    assert response.status_code == 302
    assert staff_browser.get(f"/clients/{household.id}").status_code == 200
    assert "Household" in staff_browser.get("/my-clients").get_data(as_text=True)


def test_schedule_service_refuses_end_before_start(app, admin_browser, household, unassigned_staff):
    schedule_service(admin_browser, household, unassigned_staff, "2030-01-01", "12:00", "11:00")
    assert count_rows(app, ScheduledService) == 0


def test_schedule_service_refuses_staff_of_another_business(
    app, admin_browser, household, make_user, stranger_business
):
    foreign = make_user(Role.STAFF, business=stranger_business)
    schedule_service(admin_browser, household, foreign, "2030-01-01", "12:00", "13:00")
    assert count_rows(app, ScheduledService) == 0


def test_cancel_service_ends_staff_access_on_next_request(
    app, admin_browser, household, assigned_staff, logged_in
):
    staff_browser = logged_in(assigned_staff)
    assert staff_browser.get(f"/clients/{household.id}").status_code == 200
    with app.app_context():
        service_id = db.session.scalar(select(ScheduledService.id))
    assert admin_browser.submit(f"/services/{service_id}/cancel").status_code == 302
    with app.app_context():
        assert db.session.get(ScheduledService, service_id).status == ServiceStatus.CANCELLED
    assert staff_browser.get(f"/clients/{household.id}").status_code == 404
    assert count_rows(app, AuditEvent, AuditEvent.action == "service.cancelled") == 1


def test_mark_and_unmark_preferred_sitter(app, admin_browser, household, unassigned_staff,
                                          logged_in):
    staff_browser = logged_in(unassigned_staff)
    admin_browser.submit(f"/clients/{household.id}/preferred-sitters",
                         {"staff_id": unassigned_staff.id})
    assert count_rows(app, PreferredSitter) == 1
    assert staff_browser.get(f"/clients/{household.id}").status_code == 200
    admin_browser.submit(
        f"/clients/{household.id}/preferred-sitters/{unassigned_staff.id}/remove"
    )
    assert count_rows(app, PreferredSitter) == 0
    assert staff_browser.get(f"/clients/{household.id}").status_code == 404


def test_staff_list_and_create_staff(app, admin_browser, office_manager):
    page = admin_browser.get("/staff").get_data(as_text=True)
    assert "Oscar Office" in page and "Office Manager" in page
    response = admin_browser.submit(
        "/staff/new", {"name": "Wendy Walker", "email": "wendy@example.com"},
    )
    assert response.status_code == 302
    with app.app_context():
        wendy = db.session.scalar(select(User).where(User.email == "wendy@example.com"))
        assert wendy.role == Role.STAFF and wendy.is_invited
        assert authenticate("wendy@example.com", "") is None


def test_my_clients_lists_exactly_the_policy_clients(
    logged_in, assigned_staff, preferred_sitter, household, other_household
):
    page = logged_in(assigned_staff).get("/my-clients").get_data(as_text=True)
    assert "The Rivera Household" in page and "The Okafor Household" not in page


def test_my_clients_pages_by_name_with_a_constant_number_of_queries(
    app, logged_in, unassigned_staff, make_client, make_service
):
    for number in range(35):
        make_service(make_client(name=f"Client {number:02}"), unassigned_staff)
    browser = logged_in(unassigned_staff)
    with record_sql(app) as statements:
        page = browser.get("/my-clients").get_data(as_text=True)
    names = re.findall(r"Client \d\d", page)
    assert names == [f"Client {number:02}" for number in range(30)]
    assert len(statements) <= 2  # the same for thirty clients as for one
    more = re.search(r'href="(/my-clients\?[^"]+)"', page).group(1).replace("&amp;", "&")

    fragment = browser.htmx("GET", more).get_data(as_text=True)  # "More clients", appended
    assert re.findall(r"Client \d\d", fragment) == [f"Client {n}" for n in range(30, 35)]
    assert 'id="clients-more" hx-swap-oob="true"' in fragment and "More clients" not in fragment

    page = browser.get(more).get_data(as_text=True)  # without JavaScript: the next page
    assert "Client 34" in page and "Client 29" not in page and "Back to the first" in page


def test_profile_for_staff_hides_management(logged_in, assigned_staff, household):
    page = logged_in(assigned_staff).get(f"/clients/{household.id}").get_data(as_text=True)
    assert "Schedule a service" not in page and "Invite someone to the portal" not in page
    assert "My scheduled services" in page


def test_my_clients_half_a_keyset_is_the_first_page(logged_in, assigned_staff, household):
    page = logged_in(assigned_staff).get("/my-clients?after_id=5").get_data(as_text=True)
    assert "The Rivera Household" in page and "Back to the first" not in page
