"""Bringing a business in: how long Clients > Import takes for 5,000 clients and their pets.

Run: .venv/bin/python -m bench.import_csv [--clients 5000] [--database-url URL]
                                          [--write bench/RESULTS.md]
In one process (Flask's test client, as bench/profile.py), logged in as the admin, through the
real pages: the upload, the preview page, the confirm. On a temporary SQLite database, or in
--database-url (PostgreSQL: its public schema is REPLACED). Steps, each timed on the wall clock:
the clients file (upload, preview, import), then one pet per client (the same), then the clients
file again (everything unchanged: nothing written), then every client changed (an update and
its audit event each). The bar: each import of 5,000 rows, preview and confirm together,
under a minute; the database it starts from already holds 1,000 clients of another business,
which must stay out of every lookup.
"""

import argparse
import csv
import io
import re
import tempfile
import time
from dataclasses import dataclass

from flask import Flask
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from bench import dataset
from bench.report import publish
from portal import create_app
from portal.extensions import db

BAR_SECONDS = 60
OTHER_CLIENTS = 1_000


def clients_file(count: int, changed: bool = False) -> bytes:
    """The clients; changed: each with another phone and gate code (every row an update)."""
    output = io.StringIO()
    writer = csv.writer(output, lineterminator="\r\n")
    writer.writerow(["external_id", "name", "first_name", "last_name", "email", "phone",
                     "address", "entry_instructions", "gate_code", "vet_name", "notes"])
    for n in range(count):
        writer.writerow([f"C-{n:05}", f"Household {n:05}", "Sam", f"Family{n}",
                         f"owner{n}@clients.example",
                         f"(555) 0{2 if changed else 1}{n % 10}-{n % 10000:04}",
                         f"{n} Elm Street", "Key under the mat",
                         f"{(n + changed) % 10000:04}",
                         "Springfield Animal Clinic", "Imported for the benchmark"])
    return ("\ufeff" + output.getvalue()).encode("utf-8")


def pets_file(count: int) -> bytes:
    output = io.StringIO()
    writer = csv.writer(output, lineterminator="\r\n")
    writer.writerow(["client_external_id", "name", "species", "breed", "birthday",
                     "feeding_notes"])
    for n in range(count):
        writer.writerow([f"C-{n:05}", f"Pet {n}", "Dog", "Beagle",
                         f"20{10 + n % 10}-0{1 + n % 9}-1{n % 10}", "One cup, twice a day"])
    return output.getvalue().encode("utf-8")


def build(url: str) -> Flask:
    """The app on an empty database: a business with its admin, and another business with
    clients of its own."""
    from flask_migrate import upgrade
    from sqlalchemy import insert, text

    from portal.models import Business, Client, Role
    from portal.services import accounts

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench-only",
                      "PASSWORD_HASH_METHOD": "scrypt:1024:8:1"})
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            with db.engine.begin() as connection:
                connection.execute(text("DROP SCHEMA public CASCADE"))
                connection.execute(text("CREATE SCHEMA public"))
        upgrade()
        business = Business(name="Bench Pet Care", time_zone="America/Chicago")
        other = Business(name="Another Pet Care", time_zone="America/Chicago")
        db.session.add_all([business, other])
        db.session.commit()
        accounts.create_user(business, role=Role.ADMIN, email=dataset.ADMIN_EMAIL,
                             name="Ada Admin", password=dataset.PASSWORD)
        db.session.execute(insert(Client), [
            {"business_id": other.id, "name": f"Theirs {n}", "external_id": f"C-{n:05}",
             "email": f"owner{n}@clients.example"} for n in range(OTHER_CLIENTS)])
        db.session.commit()
        db.session.remove()
    return app


@dataclass
class Step:
    name: str
    rows: int
    upload: float
    preview: float
    confirm: float
    result: str

    @property
    def total(self) -> float:
        return self.upload + self.preview + self.confirm


class Admin:
    def __init__(self, app: Flask):
        self.client = app.test_client()
        login = self.client.get("/login").text
        self.client.post("/login", data={"csrf_token": _csrf(login), "email": dataset.ADMIN_EMAIL,
                                         "password": dataset.PASSWORD})
        self.csrf = _csrf(self.client.get("/clients/import").text)

    def run(self, name: str, kind: str, data: bytes, rows: int) -> Step:
        boundary, body = encode_multipart({
            "csrf_token": self.csrf, "kind": kind,
            "file": FileStorage(io.BytesIO(data), f"{kind}.csv")})
        started = time.perf_counter()
        response = self.client.post("/clients/import", data=body,
                                    content_type=f"multipart/form-data; boundary={boundary}")
        assert response.status_code == 302, response.text
        uploaded = time.perf_counter()
        preview = self.client.get(response.location)
        assert preview.status_code == 200 and "0</strong> with errors" in preview.text
        previewed = time.perf_counter()
        done = self.client.post(response.location + "/confirm",
                                data={"csrf_token": self.csrf}, follow_redirects=True)
        finished = time.perf_counter()
        assert done.status_code == 200
        result = re.search(r'class="flash flash-success">([^<]+)<', done.text).group(1)
        return Step(name, rows, uploaded - started, previewed - uploaded, finished - previewed,
                    result.replace("&#39;", "'"))


def _csrf(page: str) -> str:
    return re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', page).group(1)


def measure(app: Flask, count: int) -> list[Step]:
    admin = Admin(app)
    clients = clients_file(count)
    return [
        admin.run(f"{count:,} clients, new", "clients", clients, count),
        admin.run(f"{count:,} pets, new (one per client)", "pets", pets_file(count), count),
        admin.run(f"the same {count:,} clients again", "clients", clients, count),
        admin.run(f"{count:,} clients changed (phone, gate code)", "clients",
                  clients_file(count, changed=True), count),
    ]


def check(app: Flask, count: int) -> None:
    """What the imports left: every client and pet once, the other business untouched."""
    from sqlalchemy import func, select

    from portal.models import AuditEvent, Client, Pet

    with app.app_context():
        ours = db.session.scalar(select(func.count()).select_from(Client).where(
            Client.name.like("Household %")))
        theirs = db.session.scalar(select(func.count()).select_from(Client).where(
            Client.name.like("Theirs %")))
        pets = db.session.scalar(select(func.count()).select_from(Pet))
        events = db.session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "records.imported"))
        updates = db.session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "client.updated"))
        db.session.remove()
    assert (ours, theirs, pets, events, updates) == (count, OTHER_CLIENTS, count, 3, count), (
        ours, theirs, pets, events, updates)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=5_000)
    parser.add_argument("--database-url", help="PostgreSQL to build in (its schema is replaced)")
    parser.add_argument("--write", help="append the table to this markdown file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite:///{folder}/bench.sqlite3"
        app = build(url)
        try:
            steps = measure(app, args.clients)
            check(app, args.clients)
            database = _database_name(app)
        finally:
            with app.app_context():
                db.engine.dispose()
    lines = report(steps, args.clients, database)
    publish(lines, args.write)
    return 0 if all(step.total < BAR_SECONDS for step in steps) else 1


def _database_name(app: Flask) -> str:
    with app.app_context():
        return "PostgreSQL" if db.engine.dialect.name == "postgresql" else "SQLite"


def report(steps: list[Step], count: int, database: str) -> list[str]:
    slowest = max(step.total for step in steps)
    return [
        f"## Importing {count:,} clients and their pets from CSV: {database}",
        "",
        "Clients > Import through its pages, in one process (Flask's test client), logged in "
        "as the admin; wall-clock seconds. The upload reads and checks the file and keeps it; "
        "the preview matches every row against the records (one query per 500 rows) and "
        "renders the first 100; the confirm works the rows out again and writes them in one "
        f"transaction (bulk INSERT and UPDATE, one audit event for the file and one per record "
        f"an update changed). Another business's "
        f"{OTHER_CLIENTS:,} clients share the external ids and emails: none is matched.",
        "",
        "| step | upload | preview | confirm | total | what the import said |",
        "|---|---|---|---|---|---|",
        *(f"| {step.name} | {step.upload:.2f} s | {step.preview:.2f} s | "
          f"{step.confirm:.2f} s | {step.total:.2f} s | {step.result} |" for step in steps),
        "",
        f"- Bar: each import of {count:,} rows, preview and confirm together, under "
        f"{BAR_SECONDS} s: slowest {slowest:.2f} s, "
        f"{'met' if slowest < BAR_SECONDS else 'MISSED'}.",
        "",
    ]


if __name__ == "__main__":
    raise SystemExit(main())
