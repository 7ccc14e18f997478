"""Client and pet records: the admin team's edits, archiving, photos, and a household's own
edits from the portal, with the audit log's before/after of each field."""

import re
from datetime import date, timedelta
from io import BytesIO

import pytest
from flask import g
from sqlalchemy import select

from portal import policy, unread
from portal.extensions import db
from portal.models import (
    AuditEvent,
    Client,
    Message,
    Notification,
    Pet,
    Role,
    ServiceStatus,
)
from portal.models.notifications import DeliveryStatus
from portal.services import clients as clients_service

from .helpers import count_queries, count_rows, deliver, make_due, png_bytes, update_row

EVERY_FIELD = {
    "name": "Rivera household",
    "first_name": "Sam",
    "last_name": "Rivera",
    "email": "sam@example.com",
    "phone": "(555) 010-2030",
    "alt_phone": "+44 20 7946 0000",
    "address": "12 Elm Street",
    "entry_instructions": "Key under the blue pot; alarm 1234 then #",
    "gate_code": "4321",
    "emergency_contact_name": "Dana Rivera",
    "emergency_contact_phone": "555-010-9999",
    "vet_name": "Elm Vets",
    "vet_phone": "555 010 7777",
    "notes": "Prefers texts after 6pm",
}
HOUSEHOLD_FIELDS = {key: value for key, value in EVERY_FIELD.items()
                    if key not in ("name", "notes")}


def load(app, model, row_id):
    with app.app_context():
        row = db.session.get(model, row_id)
        db.session.expunge(row)
        return row


def events(app, action: str) -> list[AuditEvent]:
    with app.app_context():
        found = list(db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        ))
        for event in found:
            db.session.expunge(event)
        return found


def first_pet(app, client) -> Pet:
    with app.app_context():
        pet = db.session.scalar(select(Pet).where(Pet.client_id == client.id))
        db.session.expunge(pet)
        return pet


def stored_keys(app) -> list[str]:
    return app.extensions["storage"].keys()


def photo_post(browser, household, pet, data: dict | None = None, **files):
    form = {"name": pet.name, "species": pet.species, **(data or {})}
    for field, (name, content) in files.items():
        form[field] = (BytesIO(content), name)
    return browser.post(
        f"/clients/{household.id}/pets/{pet.id}/edit",
        data={"csrf_token": browser.csrf_token(), **form},
        content_type="multipart/form-data",
    )


# --- the admin team edits a client -------------------------------------------------------------

def test_edit_client_saves_every_field_and_audits_before_and_after(app, admin_browser,
                                                                   household, admin):
    assert admin_browser.get(f"/clients/{household.id}/edit").status_code == 200
    response = admin_browser.submit(f"/clients/{household.id}/edit", EVERY_FIELD)
    assert response.status_code == 302
    client = load(app, Client, household.id)
    for field, value in EVERY_FIELD.items():
        assert getattr(client, field) == value, field
    [event] = events(app, "client.updated")
    assert event.actor_id == admin.id and event.object_id == household.id
    changes = event.details["changes"]
    assert changes["phone"] == [None, "(555) 010-2030"]
    assert changes["name"] == [household.name, "Rivera household"]
    # A gate code is recorded as changed, never with its values.
    assert changes["gate_code"] == "changed"
    assert "4321" not in str(event.details)


def test_edit_client_records_only_the_fields_that_changed(app, admin_browser, household):
    admin_browser.submit(f"/clients/{household.id}/edit", EVERY_FIELD)
    admin_browser.submit(f"/clients/{household.id}/edit", {**EVERY_FIELD, "phone": "555 010 2040"})
    updates = events(app, "client.updated")
    assert updates[-1].details["changes"] == {"phone": ["(555) 010-2030", "555 010 2040"]}
    # Saved again unchanged: nothing recorded.
    admin_browser.submit(f"/clients/{household.id}/edit", {**EVERY_FIELD, "phone": "555 010 2040"})
    assert len(events(app, "client.updated")) == 2


@pytest.mark.parametrize(("field", "value", "message"), [
    ("email", "not-an-email", "Invalid email address"),
    ("phone", "call me", "phone number"),
    ("alt_phone", "12", "phone number"),
    ("emergency_contact_phone", "555", "phone number"),
    ("vet_phone", "abc-def", "phone number"),
    ("name", "", "This field is required"),
    ("name", "x" * 201, "longer than 200"),
    ("gate_code", "9" * 101, "longer than 100"),
    ("notes", "n" * 5001, "longer than 5000"),
])
def test_edit_client_bad_input_is_refused_and_saves_nothing(app, admin_browser, household,
                                                             field, value, message):
    response = admin_browser.submit(f"/clients/{household.id}/edit",
                                    {**EVERY_FIELD, field: value})
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert load(app, Client, household.id).first_name is None
    assert count_rows(app, AuditEvent, AuditEvent.action == "client.updated") == 0


def test_edit_client_without_csrf_token_is_refused(app, admin_browser, household):
    response = admin_browser.post(f"/clients/{household.id}/edit", data=EVERY_FIELD)
    assert response.status_code in (400, 422)
    assert load(app, Client, household.id).first_name is None


def test_edit_client_of_another_business_is_not_found(app, admin_browser, make_client,
                                                      stranger_business):
    foreign = make_client(business=stranger_business, name="Foreign Household")
    assert admin_browser.get(f"/clients/{foreign.id}/edit").status_code == 404
    response = admin_browser.submit(f"/clients/{foreign.id}/edit", EVERY_FIELD)
    assert response.status_code == 404
    assert load(app, Client, foreign.id).name == "Foreign Household"


@pytest.mark.parametrize("role", [Role.STAFF, Role.CLIENT])
def test_edit_client_is_the_admin_teams(app, logged_in, make_user, household, role):
    user = make_user(role, client=household if role == Role.CLIENT else None)
    browser = logged_in(user)
    assert browser.get(f"/clients/{household.id}/edit").status_code == 404
    assert browser.submit(f"/clients/{household.id}/edit", EVERY_FIELD).status_code == 404
    assert load(app, Client, household.id).first_name is None


def test_script_in_notes_and_entry_is_shown_as_text(app, admin_browser, household):
    script = "<script>alert(1)</script>"
    admin_browser.submit(f"/clients/{household.id}/edit", {
        **EVERY_FIELD, "notes": script, "entry_instructions": script, "gate_code": script,
    })
    page = admin_browser.get(f"/clients/{household.id}").get_data(as_text=True)
    assert script not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_new_client_takes_contact_details_up_front(app, admin_browser):
    response = admin_browser.submit("/clients/new", {
        "name": "Okafor household", "first_name": "Ada", "last_name": "Okafor",
        "email": "ada@example.com", "phone": "555-010-1234", "address": "3 Oak Lane",
        "entry_instructions": "Side door", "notes": "", "pet_name": "", "pet_species": "",
    })
    assert response.status_code == 302
    with app.app_context():
        client = db.session.scalar(select(Client).where(Client.name == "Okafor household"))
        assert (client.first_name, client.last_name, client.entry_instructions) == (
            "Ada", "Okafor", "Side door")


def test_new_client_with_bad_phone_is_refused(app, admin_browser):
    response = admin_browser.submit("/clients/new", {"name": "Bad phone", "phone": "call"})
    assert response.status_code == 422
    assert count_rows(app, Client, Client.name == "Bad phone") == 0


def test_details_show_entry_and_gate_code_to_staff_with_access(app, logged_in, assigned_staff,
                                                                household):
    update_row(app, Client, household.id, entry_instructions="Key under the pot",
               gate_code="8080", vet_name="Elm Vets", notes="Business only")
    page = logged_in(assigned_staff).get(f"/clients/{household.id}").get_data(as_text=True)
    assert "Key under the pot" in page and "8080" in page and "Elm Vets" in page


def test_details_hide_business_notes_from_the_household(app, logged_in, household_login,
                                                       household):
    update_row(app, Client, household.id, notes="Business only 7781", gate_code="8080")
    page = logged_in(household_login).get(f"/clients/{household.id}").get_data(as_text=True)
    assert "Business only 7781" not in page and "8080" in page
    assert "Edit my details" in page


# --- pets ----------------------------------------------------------------------------------------

def test_edit_pet_saves_fields_and_audits(app, admin_browser, household):
    pet = first_pet(app, household)
    response = photo_post(admin_browser, household, pet, {
        "name": "Rexy", "species": "Dog", "breed": "Beagle", "birthday": "2020-04-01",
        "feeding_notes": "1 cup twice a day", "medication_notes": "Pill at 8am",
        "notes": "Pulls on the lead",
    })
    assert response.status_code == 302, response.get_data(as_text=True)
    saved = load(app, Pet, pet.id)
    assert (saved.name, saved.breed, saved.birthday, saved.feeding_notes,
            saved.medication_notes, saved.notes) == (
        "Rexy", "Beagle", date(2020, 4, 1), "1 cup twice a day", "Pill at 8am",
        "Pulls on the lead")
    [event] = events(app, "pet.updated")
    assert event.details["changes"]["name"] == ["Rex", "Rexy"]
    assert event.details["changes"]["birthday"] == [None, "2020-04-01"]
    assert event.details["client_id"] == household.id


def test_edit_pet_birthday_in_the_future_is_refused(app, admin_browser, household):
    pet = first_pet(app, household)
    tomorrow = (date.today() + timedelta(days=2)).isoformat()
    response = photo_post(admin_browser, household, pet, {"birthday": tomorrow, "breed": "Pug"})
    assert response.status_code == 422
    assert "cannot be in the future" in response.get_data(as_text=True)
    assert load(app, Pet, pet.id).breed is None


def test_pet_photo_is_reencoded_stored_and_served_to_who_sees_the_client(
    app, admin_browser, logged_in, household, household_login, assigned_staff, unassigned_staff,
):
    pet = first_pet(app, household)
    response = photo_post(admin_browser, household, pet, photo=("rex.png", png_bytes((40, 30))))
    assert response.status_code == 302
    saved = load(app, Pet, pet.id)
    assert saved.photo_key and stored_keys(app) == [saved.photo_key]
    url = f"/clients/{household.id}/pets/{pet.id}/photo"
    for viewer in (admin_browser, logged_in(household_login), logged_in(assigned_staff)):
        served = viewer.get(url)
        assert served.status_code == 200 and served.mimetype == "image/webp"
        assert served.data[:4] == b"RIFF"
    assert logged_in(unassigned_staff).get(url).status_code == 404
    assert events(app, "pet.updated")[0].details["changes"] == {"photo": "added"}
    page = admin_browser.get(f"/clients/{household.id}").get_data(as_text=True)
    assert url in page


def test_pet_photo_that_is_not_an_image_is_refused(app, admin_browser, household):
    pet = first_pet(app, household)
    for name, content in (("rex.png", b"not really a png"), ("notes.txt", b"hello"),
                          ("rex.jpg", b"")):
        response = photo_post(admin_browser, household, pet, {"breed": "Pug"},
                              photo=(name, content))
        assert response.status_code == 422, name
        assert load(app, Pet, pet.id).breed is None
    assert stored_keys(app) == []


def test_pet_photo_with_too_many_pixels_is_refused(app, admin_browser, household):
    app.config["UPLOAD_MAX_PIXELS"] = 100
    pet = first_pet(app, household)
    response = photo_post(admin_browser, household, pet, photo=("big.png", png_bytes((50, 50))))
    assert response.status_code == 422
    assert "too many pixels" in response.get_data(as_text=True)
    assert stored_keys(app) == [] and load(app, Pet, pet.id).photo_key is None


def test_pet_photo_too_large_is_refused(app, admin_browser, household):
    app.config["UPLOAD_MAX_FILE_BYTES"] = 50
    pet = first_pet(app, household)
    response = photo_post(admin_browser, household, pet, photo=("big.png", png_bytes((50, 50))))
    assert response.status_code == 422
    assert "larger than" in response.get_data(as_text=True)
    assert stored_keys(app) == []


def test_replaced_and_removed_photos_delete_their_files(app, admin_browser, household):
    pet = first_pet(app, household)
    photo_post(admin_browser, household, pet, photo=("a.png", png_bytes(colour="red")))
    first = load(app, Pet, pet.id).photo_key
    photo_post(admin_browser, household, pet, photo=("b.png", png_bytes(colour="blue")))
    second = load(app, Pet, pet.id).photo_key
    assert second != first and stored_keys(app) == [second]
    assert events(app, "pet.updated")[-1].details["changes"] == {"photo": "replaced"}
    photo_post(admin_browser, household, pet, {"remove_photo": "y"})
    assert load(app, Pet, pet.id).photo_key is None and stored_keys(app) == []
    assert events(app, "pet.updated")[-1].details["changes"] == {"photo": "removed"}


def test_failed_photo_save_leaves_no_file(app, household, admin, monkeypatch):
    from portal.services.uploads import Upload, prepare

    def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(clients_service.audit, "record", broken)
    pet_id = first_pet(app, household).id
    with app.app_context():
        pet = db.session.get(Pet, pet_id)
        prepared = prepare(Upload("a.png", png_bytes()), max_bytes=10**6, max_pixels=10**6)
        with pytest.raises(RuntimeError):
            clients_service.update_pet(db.session.get(type(admin), admin.id), pet, {},
                                       photo=prepared)
    assert stored_keys(app) == [] and load(app, Pet, pet_id).photo_key is None


def test_pet_of_another_household_or_business_is_not_found(app, admin_browser, household,
                                                         other_household, make_client,
                                                         stranger_business):
    other_pet = first_pet(app, other_household)
    foreign = make_client(business=stranger_business)
    foreign_pet = first_pet(app, foreign)
    for client, pet in ((household, other_pet), (foreign, foreign_pet),
                        (household, foreign_pet)):
        assert admin_browser.get(f"/clients/{client.id}/pets/{pet.id}/edit").status_code == 404
        assert admin_browser.get(f"/clients/{client.id}/pets/{pet.id}/photo").status_code == 404
        response = admin_browser.submit(f"/clients/{client.id}/pets/{pet.id}/archive")
        assert response.status_code == 404
    assert load(app, Pet, other_pet.id).archived_at is None


def test_archived_pet_leaves_lists_and_is_listed_apart_until_restored(
    app, admin_browser, logged_in, household, household_login,
):
    pet = first_pet(app, household)
    with app.app_context():
        clients_service.add_pet(None, db.session.get(Client, household.id), name="Luna",
                                species="Cat", notes=None)
    response = admin_browser.submit(f"/clients/{household.id}/pets/{pet.id}/archive")
    assert response.status_code == 302
    admin_browser.get(response.location)  # the notice, shown once
    page = admin_browser.get(f"/clients/{household.id}").get_data(as_text=True)
    header = page.split('<div class="profile-layout">')[0]
    assert "Luna (Cat)" in header and "Rex" not in header
    assert "Archived pets (1)" in page
    portal = logged_in(household_login).get(f"/clients/{household.id}").get_data(as_text=True)
    assert "about Luna." in portal
    assert count_rows(app, AuditEvent, AuditEvent.action == "pet.archived") == 1
    admin_browser.submit(f"/clients/{household.id}/pets/{pet.id}/restore")
    page = admin_browser.get(f"/clients/{household.id}").get_data(as_text=True)
    assert "Rex (Dog)" in page and "Archived pets" not in page
    assert count_rows(app, AuditEvent, AuditEvent.action == "pet.restored") == 1


# --- archiving a client --------------------------------------------------------------------------

def archive(browser, client):
    confirm = browser.get(f"/clients/{client.id}/archive")
    assert confirm.status_code == 200 and "Archive" in confirm.get_data(as_text=True)
    response = browser.submit(f"/clients/{client.id}/archive")
    assert response.status_code == 302
    browser.get(response.location)  # the notice, shown once
    return response


def test_archive_asks_first_and_records_it(app, admin_browser, household, admin):
    admin_browser.get(f"/clients/{household.id}/archive")
    assert load(app, Client, household.id).archived_at is None  # the GET only asks
    archive(admin_browser, household)
    assert load(app, Client, household.id).archived_at is not None
    [event] = events(app, "client.archived")
    assert event.actor_id == admin.id and event.object_id == household.id


def test_archive_without_csrf_token_is_refused(app, admin_browser, household):
    response = admin_browser.post(f"/clients/{household.id}/archive")
    assert response.status_code in (400, 422)
    assert load(app, Client, household.id).archived_at is None


def test_archived_client_leaves_the_clients_list_and_search(app, admin_browser, household,
                                                            make_client):
    make_client(name="Still Active")
    archive(admin_browser, household)
    listed = admin_browser.get("/clients").get_data(as_text=True)
    assert household.name not in listed and "Still Active" in listed
    found = admin_browser.get(f"/clients?q={household.name}").get_data(as_text=True)
    assert f">{household.name}<" not in found
    archived = admin_browser.get("/clients?archived=1").get_data(as_text=True)
    assert household.name in archived and "Still Active" not in archived


def test_archived_client_leaves_message_center_and_unread_counts(
    app, admin_browser, admin, household, household_login, make_message,
):
    make_message(household, household_login, "Walk went well 5521")
    assert "5521" in admin_browser.get("/messages").get_data(as_text=True)
    with app.test_request_context():
        assert unread.total(db.session.get(type(admin), admin.id)) == 1
    archive(admin_browser, household)
    assert "5521" not in admin_browser.get("/messages").get_data(as_text=True)
    assert "5521" not in admin_browser.get("/messages?q=Household").get_data(as_text=True)
    with app.test_request_context():
        g.pop("staff_access", None)
        assert unread.total(db.session.get(type(admin), admin.id)) == 0


def test_staff_lose_an_archived_client_at_once(app, admin_browser, logged_in, assigned_staff,
                                               household, household_login, make_message):
    make_message(household, household_login, "Hello from home 7781")
    staff = logged_in(assigned_staff)
    assert household.name in staff.get("/my-clients").get_data(as_text=True)
    archive(admin_browser, household)
    assert staff.get(f"/clients/{household.id}").status_code == 404
    assert household.name not in staff.get("/my-clients").get_data(as_text=True)
    assert "7781" not in staff.get("/messages").get_data(as_text=True)


def test_archived_client_is_read_only_with_a_banner_and_no_composer(
    app, admin_browser, logged_in, household, household_login, make_message,
):
    make_message(household, household_login, "Old news 4412")
    archive(admin_browser, household)
    page = admin_browser.get(f"/clients/{household.id}").get_data(as_text=True)
    assert "Archived on" in page and "read-only" in page and "Old news 4412" in page
    assert 'name="text"' not in page and "Unarchive" in page
    response = admin_browser.submit(f"/clients/{household.id}/feeds/conversation/messages",
                                    {"text": "Refused"})
    assert response.status_code == 404
    client_browser = logged_in(household_login)
    portal = client_browser.get(f"/clients/{household.id}").get_data(as_text=True)
    assert "Old news 4412" in portal and "read-only" in portal and 'name="text"' not in portal
    assert "Edit my details" not in portal
    response = client_browser.submit(f"/clients/{household.id}/feeds/conversation/messages",
                                     {"text": "Refused"})
    assert response.status_code == 404
    assert count_rows(app, Message, Message.text == "Refused") == 0


def test_pending_notifications_of_an_archived_client_are_not_sent(
    app, smtp, admin_browser, household, household_login, admin, make_message,
):
    make_message(household, admin, "Bring the leash 9910")
    pending = count_rows(app, Notification, Notification.status == DeliveryStatus.PENDING)
    assert pending >= 1
    archive(admin_browser, household)
    make_due(app)
    deliver(app)
    assert smtp.inbox.received == []
    assert count_rows(app, Notification, Notification.status == DeliveryStatus.SENT) == 0
    assert count_rows(app, Notification,
                      Notification.status == DeliveryStatus.CANCELLED) == pending


def test_unarchive_restores_lists_access_and_posting(app, admin_browser, logged_in,
                                                     assigned_staff, household):
    archive(admin_browser, household)
    response = admin_browser.submit(f"/clients/{household.id}/unarchive")
    assert response.status_code == 302
    assert load(app, Client, household.id).archived_at is None
    assert household.name in admin_browser.get("/clients").get_data(as_text=True)
    staff = logged_in(assigned_staff)
    assert staff.get(f"/clients/{household.id}").status_code == 200
    response = staff.submit(f"/clients/{household.id}/feeds/conversation/messages",
                            {"text": "Back again"})
    assert response.status_code == 302
    assert count_rows(app, AuditEvent, AuditEvent.action == "client.unarchived") == 1


# --- a household edits its own details -----------------------------------------------------------

def test_household_edits_its_own_details(app, logged_in, household_login, household):
    browser = logged_in(household_login)
    assert browser.get(f"/clients/{household.id}/household").status_code == 200
    response = browser.submit(f"/clients/{household.id}/household", HOUSEHOLD_FIELDS)
    assert response.status_code == 302
    client = load(app, Client, household.id)
    for field, value in HOUSEHOLD_FIELDS.items():
        assert getattr(client, field) == value, field
    [event] = events(app, "client.updated")
    assert event.actor_id == household_login.id
    assert event.details["changes"]["vet_name"] == [None, "Elm Vets"]


def test_household_never_sets_the_business_notes_nor_its_listed_name(app, logged_in,
                                                                     household_login, household):
    update_row(app, Client, household.id, notes="Business only")
    browser = logged_in(household_login)
    browser.submit(f"/clients/{household.id}/household",
                   {**HOUSEHOLD_FIELDS, "notes": "Mine now", "name": "Renamed"})
    client = load(app, Client, household.id)
    assert client.notes == "Business only" and client.name == household.name


def test_household_bad_input_is_refused(app, logged_in, household_login, household):
    browser = logged_in(household_login)
    response = browser.submit(f"/clients/{household.id}/household",
                              {**HOUSEHOLD_FIELDS, "email": "nope"})
    assert response.status_code == 422
    assert load(app, Client, household.id).first_name is None


def test_household_edits_only_its_own(app, logged_in, household_login, other_household):
    browser = logged_in(household_login)
    assert browser.get(f"/clients/{other_household.id}/household").status_code == 404
    assert browser.submit(f"/clients/{other_household.id}/household",
                          HOUSEHOLD_FIELDS).status_code == 404
    pet = first_pet(app, other_household)
    assert browser.submit(f"/clients/{other_household.id}/household/pets/{pet.id}",
                          {"feeding_notes": "x"}).status_code == 404
    assert load(app, Client, other_household.id).first_name is None


def test_household_edits_its_pets_care_notes_only(app, logged_in, household_login, household):
    pet = first_pet(app, household)
    browser = logged_in(household_login)
    url = f"/clients/{household.id}/household/pets/{pet.id}"
    assert browser.get(url).status_code == 200
    response = browser.submit(url, {"feeding_notes": "Half a cup", "medication_notes": "",
                                    "notes": "Shy with men", "name": "Renamed"})
    assert response.status_code == 302
    saved = load(app, Pet, pet.id)
    assert (saved.feeding_notes, saved.notes, saved.name) == ("Half a cup", "Shy with men", "Rex")
    [event] = events(app, "pet.updated")
    assert event.details["changes"] == {"feeding_notes": [None, "Half a cup"],
                                        "notes": [None, "Shy with men"]}
    # Not the admin team's pet pages, nor archiving.
    assert browser.get(f"/clients/{household.id}/pets/{pet.id}/edit").status_code == 404
    assert browser.submit(f"/clients/{household.id}/pets/{pet.id}/archive").status_code == 404


def test_archived_household_cannot_edit_itself(app, logged_in, household_login, household):
    update_row(app, Client, household.id, archived_at=clients_service.utcnow())
    browser = logged_in(household_login)
    assert browser.get(f"/clients/{household.id}/household").status_code == 404
    assert browser.submit(f"/clients/{household.id}/household",
                          HOUSEHOLD_FIELDS).status_code == 404


# --- the policy ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("role", "edits_household", "edits_client"), [
    ("admin", False, True),
    ("office_manager", False, True),
    ("assigned_staff", False, False),
    ("preferred_sitter", False, False),
    ("household_login", True, False),
    ("other_household_login", False, False),
    ("stranger_admin", False, False),
])
def test_policy_who_edits_a_household(app, request, household, role, edits_household,
                                      edits_client):
    user = request.getfixturevalue(role)
    with app.test_request_context():
        user = db.session.get(type(user), user.id)
        client = db.session.get(Client, household.id)
        assert policy.can_edit_household(user, client) is edits_household
        assert policy.can_edit_client(user, client) is edits_client
        assert policy.can_archive_client(user, client) is edits_client


def test_policy_lists_leave_archived_clients_out(app, household, other_household, admin):
    update_row(app, Client, household.id, archived_at=clients_service.utcnow())
    with app.test_request_context():
        viewer = db.session.get(type(admin), admin.id)
        listed = set(db.session.scalars(policy.clients_visible_to(viewer)))
        archived = set(db.session.scalars(policy.clients_visible_to(viewer, archived=True)))
        assert {client.id for client in listed} == {other_household.id}
        assert {client.id for client in archived} == {household.id}


# --- the audit log --------------------------------------------------------------------------------

def test_audit_log_says_what_changed_from_what_to_what(app, admin_browser, household):
    admin_browser.submit(f"/clients/{household.id}/edit", {**EVERY_FIELD, "name": household.name})
    admin_browser.submit(f"/clients/{household.id}/edit",
                         {**EVERY_FIELD, "name": household.name, "phone": "555-010-4444"})
    pet = first_pet(app, household)
    photo_post(admin_browser, household, pet, {"breed": "Beagle"}, photo=("a.png", png_bytes()))
    admin_browser.submit(f"/clients/{household.id}/pets/{pet.id}/archive")
    archive(admin_browser, household)
    page = admin_browser.get("/settings/audit-log").get_data(as_text=True)
    assert "Phone from “<bdi>(555) 010-2030</bdi>” to “<bdi>555-010-4444</bdi>”" in page
    assert "Gate or door code changed" in page and "4321" not in page
    assert "Breed from (empty) to “<bdi>Beagle</bdi>”; Photo added" in page
    assert "archived <bdi>Rex</bdi> of" in page or "archived Rex of" in page
    assert "archived the client" in page
    filtered = admin_browser.get("/settings/audit-log?kind=clients").get_data(as_text=True)
    assert "Gate or door code changed" in filtered


def test_audit_log_cuts_long_values_short(app, admin_browser, household):
    admin_browser.submit(f"/clients/{household.id}/edit",
                         {"name": household.name, "notes": "word " * 200})
    page = admin_browser.get("/settings/audit-log").get_data(as_text=True)
    assert "word word" in page and ("word " * 20) not in page


# --- lists stay one query whatever they hold ------------------------------------------------------

def test_edited_lists_take_constant_queries(app, admin_browser, make_client, household,
                                            household_login, make_message):
    make_message(household, household_login, "Hi")
    pages = ("/clients", "/clients?archived=1", "/messages", f"/clients/{household.id}")
    for page in pages:  # the first visit marks the feed read
        admin_browser.get(page)
    few = {page: count_queries(app, admin_browser, page) for page in pages}
    for number in range(6):
        client = make_client(name=f"More {number}")
        make_message(client, household_login, "More")
        if number % 2:
            update_row(app, Client, client.id, archived_at=clients_service.utcnow())
    with app.app_context():
        owner = db.session.get(Client, household.id)
        for number in range(4):
            pet = clients_service.add_pet(None, owner, name=f"Pet {number}", species="Cat",
                                          notes=None)
            if number % 2:
                clients_service.archive_pet(None, pet)
    many = {page: count_queries(app, admin_browser, page) for page in pages}
    assert many == few



def test_archived_pet_leaves_my_clients_cards(app, logged_in, assigned_staff, household):
    pet = first_pet(app, household)
    staff = logged_in(assigned_staff)
    assert f"{pet.name} (Dog)" in staff.get("/my-clients").get_data(as_text=True)
    update_row(app, Pet, pet.id, archived_at=clients_service.utcnow())
    assert f"{pet.name} (Dog)" not in staff.get("/my-clients").get_data(as_text=True)


def test_my_clients_card_lists_pets_by_name_in_one_text(app, logged_in, assigned_staff,
                                                        household, other_household):
    """The pets come with the page's one statement: by name whatever the order they were
    added in, the archived left out, each client's own only."""
    with app.app_context():
        owner = db.session.get(Client, household.id)
        for name, species in (("Zelda", "Cat"), ("Archie", "Rabbit"), ("Moss", "Dog")):
            pet = clients_service.add_pet(None, owner, name=name, species=species, notes=None)
        clients_service.archive_pet(None, pet)
        clients_service.add_pet(None, db.session.get(Client, other_household.id),
                                name="Bruno", species="Dog", notes=None)
    page = logged_in(assigned_staff).get("/my-clients").get_data(as_text=True)
    names = sorted([first_pet(app, household).name, "Archie", "Zelda"])
    shown = re.search(r'<p class="muted small">([^<]*)</p>', page).group(1)
    assert shown.split(", ") == [
        f"{name} ({dict(Archie='Rabbit', Zelda='Cat').get(name, 'Dog')})" for name in names]
    assert "Moss" not in page and "Bruno" not in page


def test_audit_log_shows_the_households_own_changes(app, admin_browser, logged_in,
                                                    household_login, household):
    pet = first_pet(app, household)
    browser = logged_in(household_login)
    browser.submit(f"/clients/{household.id}/household", {"phone": "555-010-4545"})
    browser.submit(f"/clients/{household.id}/household/pets/{pet.id}",
                   {"feeding_notes": "Half a cup"})
    page = admin_browser.get("/settings/audit-log?kind=clients").get_data(as_text=True)
    assert (f"{household_login.name}</bdi></a> changed <a href=\"/clients/{household.id}\">"
            f"<bdi>{household.name}</bdi></a>: Phone from (empty) to “<bdi>555-010-4545</bdi>”"
            ) in page
    assert "Feeding notes from (empty) to “<bdi>Half a cup</bdi>”" in page


def _plan(app, statement) -> str:
    from sqlalchemy import text

    with app.test_request_context():
        sql = statement.compile(db.engine, compile_kwargs={"literal_binds": True})
        if db.engine.dialect.name != "sqlite":
            pytest.skip("reads SQLite's query plan")
        return "\n".join(row.detail for row in
                         db.session.execute(text(f"EXPLAIN QUERY PLAN {sql}")))


def test_leaving_archived_clients_out_reads_indexes(app, admin, household):
    # The clients list still walks the (business, name, id) index; the lists and counts of
    # feeds look a client up by its primary key, never scan the clients.
    with app.test_request_context():
        viewer = db.session.get(type(admin), admin.id)
        listed = policy.clients_visible_to(viewer).order_by(Client.name, Client.id).limit(51)
        total = select(unread.total_column(viewer))
    assert "ix_clients_business_name" in _plan(app, listed)
    plan = _plan(app, total)
    assert "SEARCH clients_1 USING INTEGER PRIMARY KEY" in plan and "SCAN clients" not in plan


def test_forged_posts_without_csrf_token_change_nothing(app, admin_browser, logged_in,
                                                        household_login, household):
    pet = first_pet(app, household)
    posts = [
        (admin_browser, f"/clients/{household.id}/pets/{pet.id}/edit",
         {"name": "Forged", "species": "Dog"}),
        (admin_browser, f"/clients/{household.id}/pets/{pet.id}/archive", {}),
        (admin_browser, f"/clients/{household.id}/unarchive", {}),
        (logged_in(household_login), f"/clients/{household.id}/household",
         {"phone": "555-010-1111"}),
        (logged_in(household_login), f"/clients/{household.id}/household/pets/{pet.id}",
         {"feeding_notes": "Forged"}),
    ]
    recorded = count_rows(app, AuditEvent)
    for browser, url, data in posts:
        assert browser.post(url, data=data).status_code == 400, url
    saved = load(app, Pet, pet.id)
    assert (saved.name, saved.archived_at, saved.feeding_notes) == ("Rex", None, None)
    assert load(app, Client, household.id).phone is None
    assert count_rows(app, AuditEvent) == recorded


def test_staff_lose_an_archived_clients_pet_photos(app, admin_browser, logged_in,
                                                   assigned_staff, household_login, household):
    pet = first_pet(app, household)
    photo_post(admin_browser, household, pet, photo=("a.png", png_bytes()))
    url = f"/clients/{household.id}/pets/{pet.id}/photo"
    staff = logged_in(assigned_staff)
    assert staff.get(url).status_code == 200
    archive(admin_browser, household)
    assert staff.get(url).status_code == 404
    assert logged_in(household_login).get(url).status_code == 200
    assert admin_browser.get(url).status_code == 200


def test_a_phone_sees_the_household_at_a_glance_before_the_feed(
    app, logged_in, household, assigned_staff, admin, make_service
):
    update_row(app, Client, household.id, gate_code="4321", entry_instructions="Key under the mat",
               address="1418 W Addison St")
    # Three weeks of visits of the week before: the page's list of services is full of them.
    for day in range(21):
        make_service(household, admin, days_from_now=-7 + day / 3, status=ServiceStatus.COMPLETED)

    def glance_of(person) -> str:
        page = logged_in(person).get(f"/clients/{household.id}").get_data(as_text=True)
        start = page.index('<details class="key-facts')
        assert start < page.index('id="feed"')
        return page[start:page.index("</details>", start)]

    sitters = glance_of(assigned_staff)
    for fact in ("4321", "Key under the mat", "1418 W Addison St", "Next visit", "Dog walk"):
        assert fact in sitters, fact
    assert "Sam Sitter" not in sitters  # a sitter's own visit: no name beside it
    # The admin team's next visit is the same one (the completed ones are not), with who comes.
    assert "Dog walk · Sam Sitter" in glance_of(admin)
