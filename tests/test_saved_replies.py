"""Saved replies: the admin team keeps answers under Settings (title, text with placeholders,
files); any business-side composer inserts one with its placeholders filled in for the client,
and the message sent carries copies of its files."""

import html
import json
from datetime import timedelta
from io import BytesIO

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import Attachment, Client, Message, Pet, Role, SavedReply, SavedReplyFile
from portal.storage import storage

from .helpers import count_queries, count_rows, png_bytes, storing_fails_on_the_second, update_row

REMINDER = ("Hi {first_name}! {pet_names} is due for shots. Next visit: {next_visit_date} "
            "with {next_visit_sitter}.")


def new_reply(browser, title="Vaccination reminder", text=REMINDER, files=()):
    data = {"csrf_token": browser.csrf_token(), "title": title, "text": text,
            "files": [(BytesIO(data), name) for name, data in files]}
    return browser.post("/settings/saved-replies/new", data=data,
                        content_type="multipart/form-data")


def stored_keys(app) -> set[str]:
    with app.app_context():
        return set(storage().keys())


def replies(app) -> list[SavedReply]:
    with app.app_context():
        return list(db.session.scalars(select(SavedReply).order_by(SavedReply.id)))


@pytest.fixture
def carla_household(app, household):
    update_row(app, Client, household.id, first_name="Carla")
    return household


# --- keeping them ---------------------------------------------------------------------------------

def test_the_admin_team_keeps_saved_replies_with_files(app, logged_in, office_manager):
    browser = logged_in(office_manager)
    response = new_reply(browser, files=[("clinic.png", png_bytes((40, 30)))])
    assert response.status_code == 302
    [reply] = replies(app)
    assert reply.title == "Vaccination reminder" and reply.text == REMINDER
    page = html.unescape(browser.get("/settings/saved-replies").get_data(as_text=True))
    assert "Vaccination reminder" in page and "clinic.png" in page
    with app.app_context():
        [file] = db.session.scalars(select(SavedReplyFile)).all()
        assert storage().read(file.storage_key)[:4] in (b"\x89PNG", b"RIFF")


def test_unknown_placeholders_are_refused_and_nothing_is_saved(app, logged_in, admin):
    response = new_reply(logged_in(admin), text="Hi {first_name}, see you {tomorow}!")
    assert response.status_code == 422
    page = html.unescape(response.get_data(as_text=True))
    assert "The portal does not know {tomorow}." in page
    assert "Hi {first_name}, see you {tomorow}!" in page
    assert replies(app) == []


def test_a_bad_file_is_refused_and_nothing_is_saved(app, logged_in, admin):
    response = new_reply(logged_in(admin), files=[("fake.png", b"not a picture at all")])
    assert response.status_code == 422
    assert replies(app) == [] and count_rows(app, SavedReplyFile) == 0


def test_edit_takes_a_file_off_and_delete_removes_the_bytes(app, logged_in, admin):
    browser = logged_in(admin)
    new_reply(browser, files=[("one.png", png_bytes()), ("two.png", png_bytes())])
    [reply] = replies(app)
    with app.app_context():
        files = list(db.session.scalars(select(SavedReplyFile).order_by(SavedReplyFile.id)))
        keys = [file.storage_key for file in files]
    response = browser.post(f"/settings/saved-replies/{reply.id}", data={
        "csrf_token": browser.csrf_token(), "title": "Shots", "text": "Hi {first_name}",
        "remove": str(files[0].id)}, content_type="multipart/form-data")
    assert response.status_code == 302
    with app.app_context():
        kept = db.session.scalars(select(SavedReplyFile)).all()
        assert [file.original_name for file in kept] == ["two.png"]
        assert keys[0] not in stored_keys(app)
    assert browser.submit(f"/settings/saved-replies/{reply.id}/delete").status_code == 302
    assert replies(app) == [] and keys[1] not in stored_keys(app)


def test_staff_and_clients_do_not_reach_them(logged_in, assigned_staff, household_login,
                                             stranger_admin, app, admin):
    new_reply(logged_in(admin))
    [reply] = replies(app)
    for person in (assigned_staff, household_login, stranger_admin):
        browser = logged_in(person)
        assert browser.get(f"/settings/saved-replies/{reply.id}").status_code == 404
        assert browser.submit(f"/settings/saved-replies/{reply.id}/delete").status_code == 404
    for person in (assigned_staff, household_login):
        assert logged_in(person).get("/settings/saved-replies").status_code == 404


# --- using them -----------------------------------------------------------------------------------

def test_the_composer_fills_placeholders_for_the_client(app, logged_in, admin, carla_household,
                                                        assigned_staff, make_service):
    new_reply(logged_in(admin))
    [reply] = replies(app)
    service = make_service(carla_household, assigned_staff, days_from_now=2)
    browser = logged_in(admin)
    feed = f"/clients/{carla_household.id}/feeds/conversation"
    picker = html.unescape(browser.htmx("GET", f"{feed}/saved-replies").get_data(as_text=True))
    assert "Vaccination reminder" in picker
    answer = browser.htmx("GET", f"{feed}/saved-replies/{reply.id}")
    filled = json.loads(answer.get_data(as_text=True))
    assert filled["text"].startswith("Hi Carla! Rex is due for shots. Next visit: ")
    # The sitter by first name, as the household's portal names them.
    assert filled["text"].endswith(f"with {assigned_staff.name.split()[0]}.")
    assert service.starts_at  # the visit named is the one scheduled
    # Without JavaScript: the feed page with the reply in its composer.
    page = browser.get(f"{feed}/saved-replies/{reply.id}", follow_redirects=True)
    assert "Hi Carla! Rex is due for shots." in html.unescape(page.get_data(as_text=True))


def test_a_sitter_is_told_only_of_their_own_next_visit(app, logged_in, admin, carla_household,
                                                       assigned_staff, make_user, make_service):
    new_reply(logged_in(admin), text="Next: {next_visit_date} with {next_visit_sitter}")
    [reply] = replies(app)
    other = make_user(Role.STAFF, name="Other Sitter")
    make_service(carla_household, other, days_from_now=0.5)  # sooner, someone else's
    feed = f"/clients/{carla_household.id}/feeds/conversation"
    answer = logged_in(assigned_staff).htmx("GET", f"{feed}/saved-replies/{reply.id}")
    text = json.loads(answer.get_data(as_text=True))["text"]
    assert "Other" not in text and assigned_staff.name.split()[0] in text


def test_sending_with_a_saved_reply_copies_its_files(app, logged_in, admin, carla_household):
    browser = logged_in(admin)
    new_reply(browser, files=[("clinic.png", png_bytes((40, 30)))])
    [reply] = replies(app)
    response = browser.submit(f"/clients/{carla_household.id}/feeds/conversation/messages",
                              {"text": "Hi Carla! Shots are due.", "saved_reply": str(reply.id)})
    assert response.status_code == 302
    with app.app_context():
        message = db.session.scalar(select(Message))
        [attachment] = db.session.scalars(select(Attachment)).all()
        [kept] = db.session.scalars(select(SavedReplyFile)).all()
        assert attachment.message_id == message.id and attachment.original_name == "clinic.png"
        assert attachment.storage_key != kept.storage_key  # a copy: deleting one keeps the other
    # Deleting the message leaves the saved reply's file.
    browser.submit(f"/messages/{message.id}/delete")
    assert kept.storage_key in stored_keys(app)


def test_clients_and_other_businesses_cannot_use_them(app, logged_in, admin, carla_household,
                                                      household_login, stranger_admin,
                                                      stranger_business, make_client):
    new_reply(logged_in(admin), files=[("clinic.png", png_bytes())])
    [reply] = replies(app)
    feed = f"/clients/{carla_household.id}/feeds/conversation"
    assert logged_in(household_login).htmx("GET", f"{feed}/saved-replies").status_code == 404
    # A client posting someone's saved reply id gets no files.
    logged_in(household_login).submit(f"{feed}/messages",
                                      {"text": "hello", "saved_reply": str(reply.id)})
    assert count_rows(app, Attachment) == 0
    # Another business's admin, in their own client's feed: not found.
    theirs = make_client(business=stranger_business, name="Their Household")
    browser = logged_in(stranger_admin)
    their_feed = f"/clients/{theirs.id}/feeds/conversation"
    assert browser.htmx("GET", f"{their_feed}/saved-replies/{reply.id}").status_code == 404
    browser.submit(f"{their_feed}/messages", {"text": "x", "saved_reply": str(reply.id)})
    assert count_rows(app, Attachment) == 0


def test_pets_archived_are_left_out(app, logged_in, admin, carla_household):
    with app.app_context():
        db.session.add(Pet(business_id=carla_household.business_id, client_id=carla_household.id,
                           name="Old Max", archived_at=carla_household.created_at
                           + timedelta(days=1)))
        db.session.commit()
    new_reply(logged_in(admin), text="{pet_names}")
    [reply] = replies(app)
    answer = logged_in(admin).htmx(
        "GET", f"/clients/{carla_household.id}/feeds/conversation/saved-replies/{reply.id}")
    assert json.loads(answer.get_data(as_text=True))["text"] == "Rex"


@pytest.mark.parametrize("value", ["\u00b2", "9" * 30, "-1", "abc", ""])
def test_a_crafted_saved_reply_value_is_ignored(app, logged_in, admin, carla_household, value):
    response = logged_in(admin).submit(
        f"/clients/{carla_household.id}/feeds/conversation/messages",
        {"text": "Plain message", "saved_reply": value})
    assert response.status_code == 302
    assert count_rows(app, Attachment) == 0


def test_unticking_the_files_sends_the_text_alone(app, logged_in, admin, carla_household):
    browser = logged_in(admin)
    new_reply(browser, files=[("clinic.png", png_bytes())])
    [reply] = replies(app)
    feed = f"/clients/{carla_household.id}/feeds/conversation"
    # Without JavaScript the composer comes with the reply, and its files' box ticked.
    page = html.unescape(browser.get(f"{feed}/saved-replies/{reply.id}").get_data(as_text=True))
    assert f'name="saved_reply" value="{reply.id}" checked' in page
    assert "Send the files of “Vaccination reminder” with it: clinic.png" in page
    browser.submit(f"{feed}/messages", {"text": "Text alone"})  # the box left unticked
    assert count_rows(app, Message) == 1 and count_rows(app, Attachment) == 0


def test_a_reply_carries_no_more_files_than_a_message(app, logged_in, admin):
    app.config["UPLOAD_MAX_FILES"] = 2
    browser = logged_in(admin)
    new_reply(browser, files=[("one.png", png_bytes()), ("two.png", png_bytes())])
    [reply] = replies(app)
    response = browser.post(f"/settings/saved-replies/{reply.id}", data={
        "csrf_token": browser.csrf_token(), "title": "T", "text": "x",
        "files": [(BytesIO(png_bytes()), "three.png")]}, content_type="multipart/form-data")
    assert response.status_code == 422
    assert "at most 2 files" in response.get_data(as_text=True)
    assert count_rows(app, SavedReplyFile) == 2


def test_a_placeholder_with_a_space_is_refused(app, logged_in, admin):
    response = new_reply(logged_in(admin), text="Hi {first name}")
    assert response.status_code == 422
    assert "The portal does not know {first name}." in html.unescape(
        response.get_data(as_text=True))


def test_a_save_failing_midway_leaves_no_bytes_and_no_rows(app, logged_in, admin, monkeypatch):
    storing_fails_on_the_second(monkeypatch)
    before = stored_keys(app)
    with pytest.raises(OSError):
        new_reply(logged_in(admin), files=[("one.png", png_bytes()), ("two.png", png_bytes())])
    assert replies(app) == [] and count_rows(app, SavedReplyFile) == 0
    assert stored_keys(app) == before


def test_the_list_takes_the_same_queries_however_many_replies(app, logged_in, admin):
    browser = logged_in(admin)
    new_reply(browser, title="One", files=[("a.png", png_bytes())])
    few = count_queries(app, browser, "/settings/saved-replies")
    for number in range(5):
        new_reply(browser, title=f"More {number}", files=[("b.png", png_bytes())])
    assert count_queries(app, browser, "/settings/saved-replies") == few
