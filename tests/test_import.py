"""Clients > Import: CSV files of clients, pets and services, previewed row by row, imported all
at once or not at all, and matched so that the same file imported again changes nothing."""

import csv
import io
import re
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from portal.clock import zone
from portal.extensions import db
from portal.models import (
    AuditEvent,
    Client,
    PendingImport,
    Pet,
    Role,
    ScheduledService,
    ServiceStatus,
    User,
    utcnow,
)
from portal.services import imports, schedule

from .helpers import count_queries, count_rows, every_row, update_row

CLIENT_HEADER = ["external_id", "name", "email", "phone", "gate_code", "notes"]


def csv_text(header: list[str], *rows: list[str]) -> str:
    output = io.StringIO()
    writer = csv.writer(output, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return output.getvalue()


def clients_csv(*rows: list[str], header=CLIENT_HEADER) -> str:
    return csv_text(header, *rows)


def upload(browser, kind: str, content: str | bytes, name: str = "import.csv"):
    """The upload form, sent as a browser sends it (the body made in memory: the test
    client's own spooling of large bodies leaves a file open)."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    boundary, body = encode_multipart({"csrf_token": browser.csrf_token(), "kind": kind,
                                       "file": FileStorage(io.BytesIO(data), name)})
    return browser.post("/clients/import", data=body,
                        content_type=f"multipart/form-data; boundary={boundary}")


def preview_url(browser, kind: str, content, name: str = "import.csv") -> str:
    response = upload(browser, kind, content, name)
    assert response.status_code == 302, response.get_data(as_text=True)
    return response.location


def imported(browser, kind: str, content, name: str = "import.csv"):
    """Uploads, previews and confirms a file; the confirm's response."""
    url = preview_url(browser, kind, content, name)
    assert browser.get(url).status_code == 200
    return browser.submit(url + "/confirm")


def records(app) -> dict:
    """Every record an import may write, and the audit log."""
    rows = every_row(app)
    return {table: rows[table] for table in
            ("clients", "pets", "scheduled_services", "audit_events")}


def clients_of(app, business) -> dict[str, Client]:
    with app.app_context():
        rows = db.session.scalars(select(Client).where(Client.business_id == business.id))
        found = {}
        for row in rows:
            db.session.expunge(row)
            found[row.external_id or row.email or row.name] = row
        return found


def import_events(app) -> list[AuditEvent]:
    with app.app_context():
        events = list(db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "records.imported")))
        for event in events:
            db.session.expunge(event)
        return events


TWO_CLIENTS = clients_csv(
    ["C-1", "Rivera household", "sam@example.com", "555-0101", "1234", "Two dogs"],
    ["C-2", "Okafor household", "dan@example.com", "555-0102", "", ""],
)


# --- templates ---------------------------------------------------------------------------

@pytest.mark.parametrize("kind", imports.KINDS)
def test_template_download_has_the_columns_the_importer_takes(admin_browser, kind):
    response = admin_browser.get(f"/clients/import/templates/{kind}.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert f'filename="{kind}-template.csv"' in response.headers["Content-Disposition"]
    body = response.get_data()
    assert body.startswith(b"\xef\xbb\xbf")  # a BOM, so that Excel reads UTF-8
    header, example = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert header == list(imports.COLUMNS[kind])
    assert len(example) == len(header)


def test_templates_import_in_order_clients_then_pets_then_services(app, admin_browser, business):
    for kind in imports.KINDS:
        template = admin_browser.get(f"/clients/import/templates/{kind}.csv").get_data()
        url = preview_url(admin_browser, kind, template, f"{kind}-template.csv")
        page = admin_browser.get(url).get_data(as_text=True)
        assert "1</strong> new" in page and "0</strong> with errors" in page, page
        assert admin_browser.submit(url + "/confirm").status_code == 302
    client = clients_of(app, business)["C-1001"]
    assert (client.name, client.first_name, client.gate_code) == ("Rivera household", "Sam", "4321")
    with app.app_context():
        pet = db.session.scalar(select(Pet).where(Pet.client_id == client.id))
        assert (pet.name, pet.breed, pet.birthday) == ("Biscuit", "Beagle", date(2019, 4, 12))
        service = db.session.scalar(select(ScheduledService).where(
            ScheduledService.client_id == client.id))
        # 9:00 in Chicago in January is 15:00 UTC; no staff email: unassigned.
        assert service.starts_at == datetime(2027, 1, 11, 15, 0, tzinfo=UTC)
        assert service.staff_id is None and service.title == "Dog walk"


def test_template_of_unknown_kind_is_not_found(admin_browser):
    assert admin_browser.get("/clients/import/templates/invoices.csv").status_code == 404


# --- preview -----------------------------------------------------------------------------

def test_preview_shows_each_row_error_and_writes_nothing(app, admin_browser):
    before = records(app)
    content = clients_csv(
        ["C-1", "Rivera household", "sam@example.com", "", "", ""],
        ["C-2", "", "not-an-email", "", "", ""],
        ["", "No id household", "", "", "", ""],
    )
    url = preview_url(admin_browser, "clients", content)
    page = admin_browser.get(url).get_data(as_text=True)
    assert "1</strong> new" in page and "2</strong> with errors" in page
    assert "not-an-email is not an email address." in page
    assert "Give the household&#39;s name" in page
    assert "Give an external_id or an email" in page
    assert "Import 1 client" not in page  # no confirm while rows are in error
    all_rows = admin_browser.get(url + "?show=all").get_data(as_text=True)
    assert "Rivera household" in all_rows
    assert records(app) == before


def test_preview_rows_come_as_a_fragment_for_htmx(admin_browser):
    url = preview_url(admin_browser, "clients", TWO_CLIENTS)
    fragment = admin_browser.htmx("GET", url + "?show=new").get_data(as_text=True)
    assert fragment.startswith('<section id="import-rows"')
    assert "Okafor household" in fragment and "<html" not in fragment


def test_preview_takes_the_same_queries_for_few_rows_and_many(app, admin_browser):
    def rows(count: int) -> str:
        return clients_csv(*[[f"C-{n}", f"Household {n}", f"h{n}@example.com", "", "", ""]
                             for n in range(count)])

    imported(admin_browser, "clients", rows(3))  # some rows match, some are new
    few = count_queries(app, admin_browser, preview_url(admin_browser, "clients", rows(2)))
    many = count_queries(app, admin_browser, preview_url(admin_browser, "clients", rows(300)))
    assert few == many


def test_preview_pages_a_long_file(admin_browser):
    url = preview_url(admin_browser, "clients", clients_csv(
        *[[f"C-{n}", f"Household {n:03}", "", "", "", ""] for n in range(250)]))
    first = admin_browser.get(url).get_data(as_text=True)
    assert "Household 099" in first and "Household 100" not in first
    assert "Page 1 of 3" in first
    third = admin_browser.get(url + "?show=all&page=3").get_data(as_text=True)
    assert "Household 249" in third and "Household 199" not in third


# --- confirm -----------------------------------------------------------------------------

def test_confirm_imports_every_row_with_one_audit_event(app, admin_browser, business, admin):
    response = imported(admin_browser, "clients", TWO_CLIENTS, "from-old-system.csv")
    assert response.status_code == 302 and response.location == "/clients"
    clients = clients_of(app, business)
    assert clients["C-1"].name == "Rivera household" and clients["C-1"].gate_code == "1234"
    assert clients["C-2"].email == "dan@example.com" and clients["C-2"].notes is None
    [event] = import_events(app)
    assert (event.actor_id, event.business_id) == (admin.id, business.id)
    assert event.details == {"kind": "clients", "file_name": "from-old-system.csv", "new": 2,
                             "updated": 0, "unchanged": 0}
    page = admin_browser.get("/clients").get_data(as_text=True)
    assert "Imported from-old-system.csv: 2 new clients, 0 updated, 0 unchanged." in page
    log = admin_browser.get("/settings/audit-log").get_data(as_text=True)
    assert "imported clients from <bdi>from-old-system.csv</bdi>: 2 new, 0 updated" in log


def test_confirm_with_a_bad_row_writes_nothing(app, admin_browser):
    before = records(app)
    content = clients_csv(
        ["C-1", "Rivera household", "sam@example.com", "", "", ""],
        ["C-2", "Okafor household", "sam@example.com", "", "", ""],
    )
    url = preview_url(admin_browser, "clients", content)
    response = admin_browser.submit(url + "/confirm")
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "Nothing was imported." in page
    assert "The email sam@example.com is also on row 2." in page
    assert records(app) == before


def test_confirm_refuses_rows_that_went_wrong_since_the_preview(app, admin_browser, household,
                                                                 make_user):
    sitter = make_user(Role.STAFF, name="Sid Sitter")
    update_row(app, Client, household.id, external_id="C-9")
    url = preview_url(admin_browser, "services", csv_text(
        ["client_external_id", "staff_email", "title", "start", "end"],
        ["C-9", sitter.email, "Walk", "2027-02-01 09:00", "2027-02-01 09:30"],
        ["C-9", "", "Walk", "2027-02-02 09:00", "2027-02-02 09:30"],
    ))
    assert "0</strong> with errors" in admin_browser.get(url).get_data(as_text=True)
    update_row(app, User, sitter.id, active=False)
    before = records(app)
    response = admin_browser.submit(url + "/confirm")
    assert response.status_code == 422
    assert f"No active staff member has the email {sitter.email}." in response.get_data(
        as_text=True)
    assert records(app) == before
    # Still there to be previewed again: the failed confirm was undone whole.
    assert admin_browser.get(url).status_code == 200


def test_confirm_that_fails_midway_writes_nothing(app, admin_browser, monkeypatch):
    url = preview_url(admin_browser, "clients", TWO_CLIENTS)
    before = records(app)

    def broken(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(imports.audit, "record", broken)  # after the rows were inserted
    with pytest.raises(RuntimeError):
        admin_browser.submit(url + "/confirm")
    assert records(app) == before
    monkeypatch.undo()
    assert admin_browser.submit(url + "/confirm").status_code == 302
    assert count_rows(app, Client) == 2


def test_confirm_that_collides_in_the_database_writes_nothing(app, admin_browser, monkeypatch):
    url = preview_url(admin_browser, "clients", TWO_CLIENTS)
    before = records(app)

    def collide(business, plan):
        raise IntegrityError("INSERT INTO clients", {}, Exception("duplicate key"))

    monkeypatch.setattr(imports, "_write", collide)
    response = admin_browser.submit(url + "/confirm", follow_redirects=True)
    assert "Nothing was imported: the records changed while the file was" in response.get_data(
        as_text=True)
    assert records(app) == before
    assert admin_browser.get(url).status_code == 200  # the upload is still there


def test_confirm_sent_twice_imports_once(app, admin_browser):
    url = preview_url(admin_browser, "clients", TWO_CLIENTS)
    assert admin_browser.submit(url + "/confirm").status_code == 302
    again = admin_browser.submit(url + "/confirm", follow_redirects=True)
    assert "import.csv was imported already." in again.get_data(as_text=True)
    assert count_rows(app, Client) == 2 and len(import_events(app)) == 1
    with app.app_context():
        kept = db.session.scalar(select(PendingImport))
        assert kept.imported_at is not None and kept.content == ""


def test_reimporting_the_same_file_changes_nothing(app, admin_browser):
    imported(admin_browser, "clients", TWO_CLIENTS)
    before = records(app)
    url = preview_url(admin_browser, "clients", TWO_CLIENTS)
    page = admin_browser.get(url).get_data(as_text=True)
    assert "2</strong> unchanged" in page and "Nothing to change" in page
    assert "Import 2" not in page
    response = admin_browser.submit(url + "/confirm", follow_redirects=True)
    assert "Nothing to change: every row of import.csv matches" in response.get_data(
        as_text=True)
    assert records(app) == before  # no row written, no audit event


def test_reimport_with_a_changed_value_updates_only_that_client(app, admin_browser, business):
    imported(admin_browser, "clients", TWO_CLIENTS)
    changed = TWO_CLIENTS.replace("555-0102", "555-9999").replace("1234", "9876")
    url = preview_url(admin_browser, "clients", changed)
    page = admin_browser.get(url + "?show=updated").get_data(as_text=True)
    assert "2</strong> updated" in page
    assert "Changes gate_code" in page and "Changes phone" in page
    assert "9876" not in page  # a gate code is not shown
    admin_browser.submit(url + "/confirm")
    clients = clients_of(app, business)
    assert clients["C-2"].phone == "555-9999" and clients["C-1"].gate_code == "9876"
    assert import_events(app)[-1].details["updated"] == 2


def update_events(app, action: str) -> list[AuditEvent]:
    with app.app_context():
        events = list(db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))
        for event in events:
            db.session.expunge(event)
        return events


def test_reimport_audits_each_changed_client_with_before_and_after(app, admin_browser, business,
                                                                   admin):
    imported(admin_browser, "clients", TWO_CLIENTS)
    assert update_events(app, "client.updated") == []  # new clients: the file's event only
    changed = (TWO_CLIENTS.replace("555-0102", "555-9999").replace("1234", "9876")
               .replace("Two dogs", "Three dogs"))
    imported(admin_browser, "clients", changed, "spring.csv")
    clients = clients_of(app, business)
    rivera, okafor = update_events(app, "client.updated")
    assert (rivera.object_type, rivera.object_id) == ("client", clients["C-1"].id)
    assert (rivera.actor_id, rivera.business_id) == (admin.id, business.id)
    assert rivera.details == {"changes": {"gate_code": "changed",
                                          "notes": ["Two dogs", "Three dogs"]},
                              "file_name": "spring.csv"}
    assert okafor.object_id == clients["C-2"].id
    assert okafor.details["changes"] == {"phone": ["555-0102", "555-9999"]}
    log = admin_browser.get("/settings/audit-log").get_data(as_text=True)
    okafor_link = f'<a href="/clients/{clients["C-2"].id}"><bdi>Okafor household</bdi></a>'
    assert (f"changed {okafor_link}: Phone from \u201c<bdi>555-0102</bdi>\u201d to "
            "\u201c<bdi>555-9999</bdi>\u201d (imported from <bdi>spring.csv</bdi>)") in log
    assert "Gate or door code changed; Notes from" in log
    # What a reader sees (tags dropped: a time's microseconds in an attribute may hold 1234).
    shown = re.sub(r"<[^>]+>", " ", log)
    assert "1234" not in shown and "9876" not in shown
    # The same file again: nothing changes, no event.
    imported(admin_browser, "clients", changed, "spring.csv")
    assert len(update_events(app, "client.updated")) == 2


def test_reimport_audits_each_changed_pet_and_service(app, admin_browser, business, make_user):
    ann, ben = make_user(Role.STAFF, name="Ann"), make_user(Role.STAFF, name="Ben")
    imported(admin_browser, "clients", TWO_CLIENTS)
    pets = csv_text(["client_external_id", "name", "birthday", "feeding_notes"],
                    ["C-1", "Biscuit", "2019-04-12", "Twice a day"])
    imported(admin_browser, "pets", pets)
    imported(admin_browser, "pets",
             pets.replace("Twice a day", "Once a day").replace("2019-04-12", "2019-04-13"))
    [pet_event] = update_events(app, "pet.updated")
    clients = clients_of(app, business)
    assert pet_event.details["client_id"] == clients["C-1"].id
    assert pet_event.details["changes"] == {"birthday": ["2019-04-12", "2019-04-13"],
                                            "feeding_notes": ["Twice a day", "Once a day"]}
    header = ["client_external_id", "staff_email", "title", "start", "end"]
    services = csv_text(header, ["C-1", ann.email, "Walk", "2027-02-08 09:00",
                                 "2027-02-08 09:30"])
    imported(admin_browser, "services", services)
    imported(admin_browser, "services", services.replace(ann.email, ben.email))
    [reassigned] = update_events(app, "service.reassigned")
    assert reassigned.object_type == "scheduled_service"
    assert reassigned.details["changes"] == {"staff": ["Ann", "Ben"],
                                             "staff_id": [ann.id, ben.id]}
    assert reassigned.details["staff_id"] == ben.id
    assert reassigned.details["client_id"] == clients["C-1"].id
    imported(admin_browser, "services", services.replace(ann.email, ben.email)
             .replace("09:30", "10:00").replace("Walk,", "Long walk,"))
    [changed] = update_events(app, "service.changed")
    assert changed.details["changes"] == {
        "title": ["Walk", "Long walk"],
        "ends_at": ["2027-02-08T15:30:00+00:00", "2027-02-08T16:00:00+00:00"]}
    log = admin_browser.get("/settings/audit-log").get_data(as_text=True)
    assert "Feeding notes from \u201c<bdi>Twice a day</bdi>\u201d to" in log
    assert "staff member from <bdi>Ann</bdi> to <bdi>Ben</bdi> (imported from" in log
    assert "title from <bdi>Walk</bdi> to <bdi>Long walk</bdi>" in log


def test_audit_events_of_an_import_are_undone_with_it(app, admin_browser, monkeypatch):
    imported(admin_browser, "clients", TWO_CLIENTS)
    url = preview_url(admin_browser, "clients", TWO_CLIENTS.replace("555-0102", "555-9999"))
    before = records(app)

    def broken(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(imports.audit, "record", broken)  # after the per-record events
    with pytest.raises(RuntimeError):
        admin_browser.submit(url + "/confirm")
    assert records(app) == before


def test_client_row_matches_by_email_whatever_its_case(app, admin_browser, business, household):
    update_row(app, Client, household.id, email="Sam@Example.com")
    imported(admin_browser, "clients", clients_csv(
        ["", "Rivera household", "sam@EXAMPLE.com", "555-0101", "", ""]))
    clients = clients_of(app, business)
    assert len(clients) == 1
    assert clients["Sam@Example.com"].phone == "555-0101"  # the same client, updated


def test_client_row_matches_by_external_id_before_email(app, admin_browser, business, household):
    update_row(app, Client, household.id, external_id="C-1", email="old@example.com")
    imported(admin_browser, "clients", clients_csv(
        ["C-1", "Rivera family", "new@example.com", "", "", ""]))
    [client] = clients_of(app, business).values()
    assert (client.id, client.name, client.email) == (household.id, "Rivera family",
                                                      "new@example.com")


def test_client_without_external_id_takes_the_one_the_file_gives(app, admin_browser, business,
                                                                 household):
    update_row(app, Client, household.id, email="sam@example.com")
    imported(admin_browser, "clients", clients_csv(
        ["C-7", "The Rivera Household", "sam@example.com", "", "", ""]))
    [client] = clients_of(app, business).values()
    assert (client.id, client.external_id) == (household.id, "C-7")


def test_email_of_a_client_with_another_external_id_is_an_error(app, admin_browser, household):
    update_row(app, Client, household.id, external_id="C-1", email="sam@example.com")
    url = preview_url(admin_browser, "clients", clients_csv(
        ["C-2", "Rivera again", "sam@example.com", "", "", ""]))
    page = admin_browser.get(url).get_data(as_text=True)
    assert "sam@example.com is the email of the client with the external id C-1." in page


def test_row_matched_by_email_keeps_the_clients_external_id(app, admin_browser, business,
                                                            household):
    update_row(app, Client, household.id, external_id="C-1", email="sam@example.com")
    imported(admin_browser, "clients", clients_csv(
        ["", "The Rivera Household", "sam@example.com", "555-0101", "", ""]))
    [client] = clients_of(app, business).values()
    assert (client.external_id, client.phone) == ("C-1", "555-0101")


def test_duplicate_external_id_in_one_file_is_an_error_on_the_later_row(admin_browser):
    url = preview_url(admin_browser, "clients", clients_csv(
        ["C-1", "First", "", "", "", ""], ["C-1", "Second", "", "", "", ""]))
    page = admin_browser.get(url).get_data(as_text=True)
    assert "The external id C-1 is also on row 2." in page
    assert "1</strong> new" in page and "1</strong> with errors" in page


def test_another_business_clients_are_never_matched_or_touched(app, admin_browser, business,
                                                               stranger_business):
    with app.app_context():
        db.session.add(Client(business_id=stranger_business.id, name="Their Rivera",
                              external_id="C-1", email="sam@example.com"))
        db.session.commit()
    theirs = [row for row in every_row(app)["clients"]
              if row["business_id"] == stranger_business.id]
    imported(admin_browser, "clients", TWO_CLIENTS)
    assert [row for row in every_row(app)["clients"]
            if row["business_id"] == stranger_business.id] == theirs
    assert clients_of(app, business)["C-1"].name == "Rivera household"
    pets = csv_text(["client_external_id", "name"], ["C-1", "Rex"])
    imported(admin_browser, "pets", pets)
    with app.app_context():
        [pet] = db.session.scalars(select(Pet))
        assert pet.business_id == business.id


# --- pets and services ---------------------------------------------------------------------

def test_pets_link_to_clients_by_external_id_or_email(app, admin_browser, business):
    imported(admin_browser, "clients", TWO_CLIENTS)
    content = csv_text(
        ["client_external_id", "client_email", "name", "species", "birthday", "feeding_notes"],
        ["C-1", "", "Biscuit", "Dog", "2019-04-12", "Twice a day"],
        ["", "DAN@example.com", "Mittens", "Cat", "", ""],
        ["C-404", "", "Ghost", "", "", ""],
        ["", "nobody@example.com", "Nemo", "Fish", "", ""],
        ["C-1", "", "Old Timer", "", "12/04/2019", ""],
    )
    url = preview_url(admin_browser, "pets", content)
    page = admin_browser.get(url).get_data(as_text=True)
    assert "No client has the external id C-404." in page
    assert "No client has the email nobody@example.com." in page
    assert "12/04/2019 is not a date written YYYY-MM-DD." in page
    fixed = "\r\n".join(content.split("\r\n")[:3]) + "\r\n"
    imported(admin_browser, "pets", fixed)
    clients = clients_of(app, business)
    with app.app_context():
        pets = {pet.name: pet for pet in db.session.scalars(select(Pet))}
    assert pets["Biscuit"].client_id == clients["C-1"].id
    assert pets["Biscuit"].feeding_notes == "Twice a day"
    assert pets["Mittens"].client_id == clients["C-2"].id and pets["Mittens"].species == "Cat"
    before = records(app)
    again = preview_url(admin_browser, "pets", fixed.replace("Biscuit", "BISCUIT"))
    assert "2</strong> unchanged" not in admin_browser.get(again).get_data(as_text=True)
    unchanged = preview_url(admin_browser, "pets", fixed)
    assert "2</strong> unchanged" in admin_browser.get(unchanged).get_data(as_text=True)
    admin_browser.submit(unchanged + "/confirm")
    assert records(app) == before


SERVICE_HEADER = ["client_email", "staff_email", "title", "start", "end"]


def test_services_refuse_bad_times_and_unknown_staff_by_row(app, admin_browser, household,
                                                            assigned_staff):
    update_row(app, Client, household.id, email="sam@example.com")
    before = records(app)
    url = preview_url(admin_browser, "services", csv_text(
        SERVICE_HEADER,
        ["sam@example.com", assigned_staff.email, "Walk", "2027-02-01 10:00", "2027-02-01 09:00"],
        # The clocks skip 2:00 to 3:00 in Chicago on 14 March 2027.
        ["sam@example.com", "", "Walk", "2027-03-14 02:30", "2027-03-14 03:30"],
        ["sam@example.com", "nobody@example.com", "Walk", "2027-02-01 09:00",
         "2027-02-01 09:30"],
        ["sam@example.com", "", "Walk", "tomorrow", "2027-02-01 09:30"],
        ["sam@example.com", assigned_staff.email.upper(), "Overnight stay", "2027-02-05 18:00",
         "2027-02-07 10:00"],
    ))
    page = admin_browser.get(url).get_data(as_text=True)
    assert "The end must be after the start." in page
    assert "2:30 AM does not exist on Mar 14, 2027 in America/Chicago" in page
    assert "No active staff member has the email nobody@example.com." in page
    assert "tomorrow is not a time written YYYY-MM-DD HH:MM" in page
    assert "1</strong> new" in page and "4</strong> with errors" in page
    assert admin_browser.submit(url + "/confirm").status_code == 422
    assert records(app) == before


def test_services_import_stays_and_unassigned_visits_once(app, admin_browser, household,
                                                          assigned_staff):
    update_row(app, Client, household.id, external_id="C-1")
    content = csv_text(
        ["client_external_id", "staff_email", "title", "start", "end"],
        ["C-1", assigned_staff.email, "Overnight stay", "2027-02-05 18:00", "2027-02-07 10:00"],
        ["C-1", "", "Dog walk", "2027-02-08 09:00", "2027-02-08 09:30"],
    )
    imported(admin_browser, "services", content)
    with app.app_context():
        services = list(db.session.scalars(select(ScheduledService).where(
            ScheduledService.starts_at >= datetime(2027, 1, 1, tzinfo=UTC))
            .order_by(ScheduledService.starts_at)))
    stay, walk = services
    assert stay.staff_id == assigned_staff.id
    assert (stay.starts_at, stay.ends_at) == (datetime(2027, 2, 6, 0, 0, tzinfo=UTC),
                                              datetime(2027, 2, 7, 16, 0, tzinfo=UTC))
    assert walk.staff_id is None
    before = records(app)
    url = preview_url(admin_browser, "services", content)
    assert "2</strong> unchanged" in admin_browser.get(url).get_data(as_text=True)
    admin_browser.submit(url + "/confirm")
    assert records(app) == before


def services_of(app, household) -> list[ScheduledService]:
    with app.app_context():
        found = list(db.session.scalars(select(ScheduledService).where(
            ScheduledService.client_id == household.id).order_by(ScheduledService.starts_at)))
        for service in found:
            db.session.expunge(service)
        return found


def test_reimport_after_a_reassignment_updates_the_visit_and_adds_none(
    app, admin_browser, admin, household, make_user
):
    ann, ben = make_user(Role.STAFF, name="Ann"), make_user(Role.STAFF, name="Ben")
    update_row(app, Client, household.id, external_id="C-1")
    content = csv_text(["client_external_id", "staff_email", "title", "start", "end"],
                       ["C-1", ann.email, "Dog walk", "2027-02-08 09:00", "2027-02-08 09:30"])
    imported(admin_browser, "services", content)
    [visit] = services_of(app, household)
    with app.app_context():
        schedule.update(db.session.get(User, admin.id), db.session.get(ScheduledService, visit.id),
                        schedule.Scope.ONE, staff=db.session.get(User, ben.id))
    url = preview_url(admin_browser, "services", content)
    page = admin_browser.get(url).get_data(as_text=True)
    assert "1</strong> updated" in page and "0</strong> new" in page
    admin_browser.submit(url + "/confirm")
    [again] = services_of(app, household)
    assert again.id == visit.id and again.staff_id == ann.id
    # And the file once more: nothing left to change.
    before = records(app)
    url = preview_url(admin_browser, "services", content)
    assert "1</strong> unchanged" in admin_browser.get(url).get_data(as_text=True)
    admin_browser.submit(url + "/confirm")
    assert records(app) == before


def test_reimport_matches_a_renamed_visit_by_start_and_two_titles_at_one_start(
    app, admin_browser, household, make_user
):
    sitter = make_user(Role.STAFF)
    update_row(app, Client, household.id, external_id="C-1")
    header = ["client_external_id", "staff_email", "title", "start", "end"]
    content = csv_text(header,
                       ["C-1", sitter.email, "Dog walk", "2027-02-08 09:00",
                        "2027-02-08 09:30"],
                       ["C-1", "", "Cat feeding", "2027-02-08 09:00", "2027-02-08 09:15"])
    imported(admin_browser, "services", content)
    walk, feeding = sorted(services_of(app, household), key=lambda service: service.title)[::-1]
    assert (walk.title, feeding.title) == ("Dog walk", "Cat feeding")
    update_row(app, ScheduledService, walk.id, title="Long dog walk")
    imported(admin_browser, "services", content)
    found = {service.id: service.title for service in services_of(app, household)}
    assert found == {walk.id: "Dog walk", feeding.id: "Cat feeding"}
    # Two rows for the same client, title and start are one too many.
    url = preview_url(admin_browser, "services", csv_text(
        header, *[["C-1", "", "Dog walk", "2027-03-01 09:00", "2027-03-01 09:30"]] * 2))
    assert "Row 2 has the same client, title and start." in admin_browser.get(url).get_data(
        as_text=True)


@pytest.mark.parametrize("state", ["begun", "cancelled"])
def test_reimport_keeps_who_was_sent_to_a_begun_or_cancelled_visit(
    app, admin_browser, household, make_user, state
):
    ann, ben = make_user(Role.STAFF, name="Ann"), make_user(Role.STAFF, name="Ben")
    update_row(app, Client, household.id, external_id="C-1")
    # A visit under way now, or one cancelled ahead: the file sends Ann, the portal Ben.
    start = (utcnow() - timedelta(minutes=10) if state == "begun"
             else utcnow() + timedelta(days=3)).replace(second=0, microsecond=0)
    with app.app_context():
        db.session.add(ScheduledService(
            business_id=household.business_id, client_id=household.id, staff_id=ben.id,
            title="Dog walk", starts_at=start, ends_at=start + timedelta(minutes=30),
            status=ServiceStatus.CANCELLED if state == "cancelled" else ServiceStatus.SCHEDULED))
        db.session.commit()
    local = start.astimezone(zone("America/Chicago"))
    content = csv_text(["client_external_id", "staff_email", "title", "start", "end"],
                       ["C-1", ann.email, "Dog walk", f"{local:%Y-%m-%d %H:%M}",
                        f"{local + timedelta(minutes=30):%Y-%m-%d %H:%M}"])
    before = records(app)
    url = preview_url(admin_browser, "services", content)
    assert "1</strong> unchanged" in admin_browser.get(url).get_data(as_text=True)
    admin_browser.submit(url + "/confirm")
    assert records(app) == before
    [kept] = services_of(app, household)
    assert kept.staff_id == ben.id


# --- hostile files -------------------------------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64)


@pytest.mark.parametrize(("content", "name", "message"), [
    (PNG, "clients.csv", "This is not a CSV file: it holds binary data."),
    (b"PK\x03\x04" + bytes(40), "clients.csv", "This is a spreadsheet workbook"),
    (b"anything", "clients.xlsx", "Choose a .csv file."),
    ("name,email\r\nJos\u00e9,j@example.com\r\n".encode("latin-1"), "clients.csv",
     "The file is not UTF-8 text (line 2 has a character in another encoding)."),
    ("name,email\r\nA,a@example.com\r\n".encode("utf-16"), "clients.csv",
     "The file is UTF-16 text"),
    (b"", "clients.csv", "The file is empty."),
    (b"name,email\r\n", "clients.csv", "The file has a header but no rows to import."),
    (b"name,emial\r\nA,a@example.com\r\n", "clients.csv", "Unknown column: emial."),
    (b"name,phone\r\nA,555\r\n", "clients.csv", "The file needs a external_id or email column."),
    (b"email,name,email\r\na@example.com,A,b@example.com\r\n", "clients.csv",
     "The column email appears twice."),
    (b'name,email\r\n"A' + b"x" * 200_000 + b'",a@example.com\r\n', "clients.csv",
     "Line 2 cannot be read"),
], ids=["binary", "workbook", "extension", "latin-1", "utf-16", "empty", "header-only",
        "unknown-column", "missing-column", "repeated-column", "huge-cell"])
def test_upload_refuses_a_file_it_cannot_read(app, admin_browser, content, name, message):
    response = upload(admin_browser, "clients", content, name)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True).replace("&#34;", '"')
    assert count_rows(app, PendingImport) == 0


def test_upload_refuses_a_file_over_the_size_limit(app, admin_browser):
    row = "C-1,Household," + "x" * 1000 + "\r\n"
    content = "external_id,name,notes\r\n" + row * (imports.MAX_BYTES // len(row) + 1)
    response = upload(admin_browser, "clients", content)
    assert response.status_code == 422
    assert "The file is over 5 MB." in response.get_data(as_text=True)
    assert count_rows(app, PendingImport) == 0


def test_upload_refuses_more_rows_than_the_limit(app, admin_browser):
    content = "external_id,name\r\n" + "".join(
        f"C-{n},H\r\n" for n in range(imports.MAX_ROWS + 1))
    response = upload(admin_browser, "clients", content)
    assert response.status_code == 422
    assert "The file has more than 20,000 rows." in response.get_data(as_text=True)


def test_upload_without_a_file_says_so(admin_browser):
    response = admin_browser.submit("/clients/import", {"kind": "clients"})
    assert response.status_code == 422
    assert "Choose a CSV file." in response.get_data(as_text=True)


def test_upload_reads_excel_files_with_a_bom_and_semicolons(app, admin_browser, business):
    content = "\ufeffExternal ID;Name;Email\r\nC-1;Rivera household;sam@example.com\r\n"
    imported(admin_browser, "clients", content.encode("utf-8"))
    assert clients_of(app, business)["C-1"].email == "sam@example.com"


def test_formula_cells_are_kept_as_text_and_markup_is_escaped(app, admin_browser, business):
    content = clients_csv(
        ["C-1", "=HYPERLINK(\"http://evil.example\",\"x\")", "", "+1-555-0100", "@SUM(A1)",
         "-2+3"],
        ["C-2", "<script>alert(1)</script>", "", "", "", ""],
    )
    url = preview_url(admin_browser, "clients", content)
    page = admin_browser.get(url + "?show=all").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    admin_browser.submit(url + "/confirm")
    clients = clients_of(app, business)
    assert clients["C-1"].name == '=HYPERLINK("http://evil.example","x")'
    assert (clients["C-1"].phone, clients["C-1"].gate_code, clients["C-1"].notes) == (
        "+1-555-0100", "@SUM(A1)", "-2+3")
    assert clients["C-2"].name == "<script>alert(1)</script>"


def test_long_cell_is_a_row_error(admin_browser):
    url = preview_url(admin_browser, "clients", clients_csv(["C-1", "x" * 201, "", "", "", ""]))
    assert "Longer than 200 characters (201)." in admin_browser.get(url).get_data(as_text=True)


# --- who may ---------------------------------------------------------------------------------

def test_forged_csrf_is_refused_and_writes_nothing(app, admin_browser):
    url = preview_url(admin_browser, "clients", TWO_CLIENTS)
    before = every_row(app)
    for path in ("/clients/import", url + "/confirm", url + "/discard"):
        response = admin_browser.post(path, data={
            "csrf_token": "forged", "kind": "clients",
            "file": (io.BytesIO(TWO_CLIENTS.encode()), "c.csv")})
        assert response.status_code == 400
    assert every_row(app) == before


def test_an_upload_is_only_its_uploaders(app, admin_browser, logged_in, make_user,
                                         office_manager, stranger_admin):
    url = preview_url(admin_browser, "clients", TWO_CLIENTS)
    for person in (make_user(Role.ADMIN), office_manager, stranger_admin):
        browser = logged_in(person)
        assert browser.get(url).status_code == 404
        assert browser.submit(url + "/confirm").status_code == 404
    assert count_rows(app, Client) == 0


def test_office_manager_imports_too(app, logged_in, office_manager, business):
    browser = logged_in(office_manager)
    assert browser.get("/clients").get_data(as_text=True).count("/clients/import") == 1
    assert imported(browser, "clients", TWO_CLIENTS).status_code == 302
    assert len(clients_of(app, business)) == 2


@pytest.mark.parametrize("role", ["assigned_staff", "household_login"])
def test_staff_and_clients_cannot_import(request, logged_in, role):
    browser = logged_in(request.getfixturevalue(role))
    assert browser.get("/clients/import").status_code == 404
    assert browser.get("/clients/import/templates/clients.csv").status_code == 404
    assert upload(browser, "clients", TWO_CLIENTS).status_code == 404


def test_discard_removes_the_upload(app, admin_browser):
    url = preview_url(admin_browser, "clients", TWO_CLIENTS)
    assert admin_browser.submit(url + "/discard").status_code == 302
    assert count_rows(app, PendingImport) == 0
    assert admin_browser.get(url).status_code == 404


def test_a_new_upload_replaces_the_last_of_its_kind_and_expired_ones_go(app, admin_browser):
    first = preview_url(admin_browser, "clients", TWO_CLIENTS)
    pets = preview_url(admin_browser, "pets", csv_text(["client_email", "name"], ["a@b.c", "R"]))
    with app.app_context():
        db.session.execute(PendingImport.__table__.update()
                           .where(PendingImport.token == pets.rsplit("/", 1)[1])
                           .values(created_at=datetime(2020, 1, 1, tzinfo=UTC)))
        db.session.commit()
    assert admin_browser.get(pets).status_code == 404  # expired
    second = preview_url(admin_browser, "clients", TWO_CLIENTS)
    assert admin_browser.get(first).status_code == 404
    assert admin_browser.get(second).status_code == 200
    assert count_rows(app, PendingImport) == 1
