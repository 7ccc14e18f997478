"""Bringing a business in: clients, pets and services from CSV files.

An upload is checked as a file (size, encoding, the header) and kept as a PendingImport. Its
preview is a Plan: every row read, checked and matched against the business's records, each
new, updated, unchanged or in error, nothing written. The confirm works the plan out again
against the records as they are then, and writes all of it in one transaction, or nothing when
any row is in error; one audit event sums it up, and each record it changed has its own.

Matching, always inside the importing business:
- a client by its external_id when the row gives one, else by email (case-insensitive); a row
  with an external_id that no client has yet also takes the client with that email when that
  client has no external_id of its own;
- a pet by its client and its name (case-insensitive);
- a service by its client, its start and its title, else by its client and start when one
  service of that client starts then and no other row names it. A different staff member
  (or none) is an update that reassigns the visit, unless the visit has begun or was
  cancelled: then who was sent stays as it is, and the row is unchanged for its staff.
A matched row whose values are the same is unchanged and writes nothing, so importing the same
file again changes nothing. A column left out of the file is left alone; an empty cell of a
column in the file empties that field.

Speed: lookups are one query per chunk of rows, writes are bulk INSERTs and UPDATEs. Besides
the one event for the file, every record an update changed gets its own audit event with its
fields before and after, as a hand edit does (client.updated, pet.updated, service.changed or
service.reassigned, with the file's name), inserted in bulk too; new rows have none of their
own (bench/import_csv.py times 5,000 clients and pets, then 5,000 clients changed).
"""

import csv
import io
import re
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import delete, func, insert, or_, select, update

from portal.clock import NonexistentLocalTime, to_utc
from portal.extensions import db
from portal.models import (
    AuditEvent,
    Business,
    Client,
    PendingImport,
    Pet,
    Role,
    ScheduledService,
    ServiceStatus,
    User,
    utcnow,
)
from portal.services import audit
from portal.services.clients import recorded_change

KINDS = ("clients", "pets", "services")
MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 20_000
# An upload waits this long for its confirm; older ones are swept at the next upload.
KEPT = timedelta(days=1)
# Rows looked up per query, well inside every database's limit on bound values.
CHUNK = 500
# Free text (notes, entry instructions) as the forms take it.
TEXT_LIMIT = 5000
MAX_SERVICE_DAYS = 60
TIME_FORMAT = "%Y-%m-%d %H:%M"

# Each kind's columns, in the template's order: name -> the longest value it takes.
CLIENT_COLUMNS = {
    "external_id": 100, "name": 200, "first_name": 100, "last_name": 100, "email": 254,
    "phone": 40, "alt_phone": 40, "address": 500, "entry_instructions": TEXT_LIMIT,
    "gate_code": 100, "emergency_contact_name": 200, "emergency_contact_phone": 40,
    "vet_name": 200, "vet_phone": 40, "notes": TEXT_LIMIT,
}
PET_COLUMNS = {
    "client_external_id": 100, "client_email": 254, "name": 100, "species": 50, "breed": 100,
    "birthday": 10, "feeding_notes": TEXT_LIMIT, "medication_notes": TEXT_LIMIT,
    "notes": TEXT_LIMIT,
}
SERVICE_COLUMNS = {
    "client_external_id": 100, "client_email": 254, "staff_email": 254, "title": 100,
    "start": 16, "end": 16,
}
COLUMNS = {"clients": CLIENT_COLUMNS, "pets": PET_COLUMNS, "services": SERVICE_COLUMNS}
# Columns a file must have (any one of each group).
REQUIRED = {
    "clients": (("name", "first_name", "last_name"), ("external_id", "email")),
    "pets": (("name",), ("client_external_id", "client_email")),
    "services": (("title",), ("start",), ("end",), ("client_external_id", "client_email")),
}
EXAMPLES = {
    "clients": {
        "external_id": "C-1001", "name": "Rivera household", "first_name": "Sam",
        "last_name": "Rivera", "email": "sam.rivera@example.com", "phone": "(555) 010-2030",
        "alt_phone": "", "address": "12 Elm Street, Springfield",
        "entry_instructions": "Key in the lockbox by the side door", "gate_code": "4321",
        "emergency_contact_name": "Alex Rivera", "emergency_contact_phone": "(555) 010-4050",
        "vet_name": "Springfield Animal Clinic", "vet_phone": "(555) 010-6070",
        "notes": "Prefers texts",
    },
    "pets": {
        "client_external_id": "C-1001", "client_email": "", "name": "Biscuit",
        "species": "Dog", "breed": "Beagle", "birthday": "2019-04-12",
        "feeding_notes": "One cup of kibble at 7 AM and 6 PM",
        "medication_notes": "", "notes": "Pulls on the leash near squirrels",
    },
    "services": {
        "client_external_id": "C-1001", "client_email": "", "staff_email": "",
        "title": "Dog walk", "start": "2027-01-11 09:00", "end": "2027-01-11 09:30",
    },
}
NOUNS = {"clients": ("client", "clients"), "pets": ("pet", "pets"),
         "services": ("service", "services")}


class FileProblem(ValueError):
    """The whole file cannot be read: nothing of it is shown or imported."""


class AlreadyImported(Exception):
    """The upload was imported already (a confirm sent twice)."""


class ImportRefused(Exception):
    """Rows are in error at the confirm: nothing was written. The plan says which."""

    def __init__(self, plan: "Plan"):
        super().__init__(f"{plan.counts['error']} rows in error")
        self.plan = plan


# --- the templates ----------------------------------------------------------------------------

def template_csv(kind: str) -> str:
    """The header and one example row, with a byte order mark so that Excel reads it as UTF-8."""
    output = io.StringIO()
    writer = csv.writer(output, lineterminator="\r\n")
    writer.writerow(COLUMNS[kind])
    writer.writerow(EXAMPLES[kind][column] for column in COLUMNS[kind])
    return "\ufeff" + output.getvalue()


# --- reading a file -----------------------------------------------------------------------------

def read_upload(data: bytes, file_name: str) -> str:
    """The uploaded bytes as text, or FileProblem saying plainly what is wrong with them."""
    excel = "In Excel or Numbers, save it as \u201cCSV UTF-8 (comma delimited)\u201d."
    if not file_name.lower().endswith((".csv", ".txt")):
        raise FileProblem(f"Choose a .csv file. {excel}")
    if len(data) > MAX_BYTES:
        raise FileProblem(f"The file is over {MAX_BYTES // (1024 * 1024)} MB. Split it into "
                          "smaller files and import them one after another.")
    if not data.strip():
        raise FileProblem("The file is empty.")
    if data.startswith(b"PK\x03\x04"):
        raise FileProblem(f"This is a spreadsheet workbook, not a CSV file. {excel}")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise FileProblem(f"The file is UTF-16 text, which the import does not read. {excel}")
    if b"\x00" in data:
        raise FileProblem("This is not a CSV file: it holds binary data.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[:error.start].count(b"\n") + 1
        raise FileProblem(
            f"The file is not UTF-8 text (line {line} has a character in another encoding). "
            f"{excel}"
        ) from None


def _column_name(heading: str) -> str:
    return re.sub(r"[\s\-]+", "_", heading.strip().lower())


def _delimiter(text: str) -> str:
    """Commas, or what Excel writes in locales where the comma is the decimal mark."""
    first_line = text.split("\n", 1)[0]
    return max((",", ";", "\t"), key=first_line.count)


@dataclass
class Table:
    columns: list[str]
    rows: list[tuple[int, list[str]]]  # (row number as a spreadsheet shows it, cells)


def read_table(kind: str, text: str) -> Table:
    """The header checked and the rows read; FileProblem when the file cannot be imported."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text))
    try:
        header = next(reader, None)
        if not header or not any(cell.strip() for cell in header):
            raise FileProblem("The first line must name the columns, as the template does.")
        columns = [_column_name(cell) for cell in header]
        _check_header(kind, columns)
        rows = []
        for number, cells in enumerate(reader, start=2):
            if not any(cell.strip() for cell in cells):
                continue
            if len(rows) == MAX_ROWS:
                raise FileProblem(f"The file has more than {MAX_ROWS:,} rows. Split it into "
                                  "smaller files and import them one after another.")
            rows.append((number, cells))
    except csv.Error as error:
        raise FileProblem(f"Line {reader.line_num} cannot be read: {error}.") from None
    if not rows:
        raise FileProblem("The file has a header but no rows to import.")
    return Table(columns, rows)


def _check_header(kind: str, columns: list[str]) -> None:
    known = COLUMNS[kind]
    unknown = [column for column in columns if column not in known]
    if unknown:
        raise FileProblem(
            f"Unknown column{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}. "
            f"A {NOUNS[kind][0]} file has these columns: {', '.join(known)}."
        )
    repeated = sorted({column for column in columns if columns.count(column) > 1})
    if repeated:
        raise FileProblem(f"The column {repeated[0]} appears twice.")
    for group in REQUIRED[kind]:
        if not set(group) & set(columns):
            raise FileProblem(f"The file needs a {' or '.join(group)} column.")


# --- the plan -----------------------------------------------------------------------------------

@dataclass
class Row:
    number: int
    values: dict[str, object]  # the row's cleaned values, by column
    errors: list[tuple[str, str]] = field(default_factory=list)  # (column, message)
    status: str = "new"  # new, updated, unchanged or error
    label: str = ""
    changes: list[str] = field(default_factory=list)  # the fields an update changes
    target_id: int | None = None  # the matched record
    writes: dict[str, object] = field(default_factory=dict)  # what an insert or update sets
    before: dict[str, object] = field(default_factory=dict)  # an update's fields as they were
    about: dict[str, object] = field(default_factory=dict)  # an update's audit event details

    def error(self, column: str, message: str) -> None:
        self.errors.append((column, message))


@dataclass
class Plan:
    kind: str
    file_name: str
    rows: list[Row]

    @property
    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(("new", "updated", "unchanged", "error"), 0)
        for row in self.rows:
            counts[row.status] += 1
        return counts

    @property
    def writes(self) -> int:
        counts = self.counts
        return counts["new"] + counts["updated"]

    @property
    def ok(self) -> bool:
        return not self.counts["error"]


def plan(business: Business, kind: str, text: str, file_name: str = "") -> Plan:
    """Every row of the file, checked and matched against the business's records. Reads only."""
    table = read_table(kind, text)
    rows = [_clean(kind, table.columns, number, cells) for number, cells in table.rows]
    {"clients": _plan_clients, "pets": _plan_pets, "services": _plan_services}[kind](
        business, table.columns, rows
    )
    for row in rows:
        if row.errors:
            row.status = "error"
    return Plan(kind, file_name, rows)


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _clean(kind: str, columns: list[str], number: int, cells: list[str]) -> Row:
    row = Row(number, {})
    limits = COLUMNS[kind]
    if len(cells) > len(columns) and any(cell.strip() for cell in cells[len(columns):]):
        row.error("", f"This row has {len(cells)} cells; the header names {len(columns)} "
                      "columns.")
    for column, cell in zip(columns, cells + [""] * (len(columns) - len(cells)), strict=False):
        value = _CONTROL.sub("", cell).strip()
        if len(value) > limits[column]:
            row.error(column, f"Longer than {limits[column]:,} characters ({len(value):,}).")
            value = value[:limits[column]]
        row.values[column] = value or None
    for column in ("email", "client_email", "staff_email"):
        if row.values.get(column):
            try:
                validate_email(row.values[column], check_deliverability=False)
            except EmailNotValidError:
                row.error(column, f"{row.values[column]} is not an email address.")
    return row


def _chunks(values: Iterable, size: int = CHUNK) -> Iterator[list]:
    values = list(values)
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _lower(value: object) -> str | None:
    return value.lower() if isinstance(value, str) else None


# --- clients --------------------------------------------------------------------------------

CLIENT_FIELDS = [column for column in CLIENT_COLUMNS]


def _existing_clients(business_id: int, external_ids: set[str], emails: set[str],
                      columns: list) -> list:
    """The business's clients with any of these external ids or emails, chunk by chunk."""
    found, external_ids, emails = {}, sorted(external_ids), sorted(emails)
    for start in range(0, max(len(external_ids), len(emails)), CHUNK):
        ids, mails = external_ids[start:start + CHUNK], emails[start:start + CHUNK]
        query = select(Client.id, Client.external_id, Client.email, *columns).where(
            Client.business_id == business_id,
            or_(Client.external_id.in_(ids), func.lower(Client.email).in_(mails)),
        )
        found.update((row.id, row) for row in db.session.execute(query))
    return list(found.values())


class _ClientIndex:
    """Existing clients by external id and by email (lower case), for matching rows."""

    def __init__(self, clients: list):
        self.by_external_id = {row.external_id: row for row in clients if row.external_id}
        self.by_email: dict[str, list] = {}
        for row in clients:
            if row.email:
                self.by_email.setdefault(row.email.lower(), []).append(row)

    def find(self, row: Row, external_id_column: str, email_column: str,
             adopt_by_email: bool = False):
        """The client a row names, or None; a row error when the name is ambiguous."""
        external_id, email = row.values.get(external_id_column), _lower(
            row.values.get(email_column))
        if external_id:
            if external_id in self.by_external_id:
                return self.by_external_id[external_id]
            if not adopt_by_email:
                row.error(external_id_column, f"No client has the external id {external_id}.")
                return None
        if not email:
            if not external_id:
                row.error(email_column, "Give the client's external id or email.")
            return None
        matches = self.by_email.get(email, [])
        if adopt_by_email and external_id:
            # A new external id takes the client with this email only if it has none yet.
            others = [match for match in matches if match.external_id]
            matches = [match for match in matches if not match.external_id]
            if not matches and others:
                row.error(email_column, f"{row.values[email_column]} is the email of the "
                                        f"client with the external id {others[0].external_id}.")
                return None
        if len(matches) > 1:
            row.error(email_column, f"{len(matches)} clients have the email "
                                    f"{row.values[email_column]}; give an external id to tell "
                                    "them apart.")
            return None
        if not matches:
            if not adopt_by_email:
                row.error(email_column, f"No client has the email {row.values[email_column]}.")
            return None
        return matches[0]


def _plan_clients(business: Business, columns: list[str], rows: list[Row]) -> None:
    fields = [column for column in CLIENT_FIELDS if column in columns]
    if "name" not in fields:
        fields.append("name")
    index = _ClientIndex(_existing_clients(
        business.id,
        {row.values["external_id"] for row in rows if row.values.get("external_id")},
        {_lower(row.values["email"]) for row in rows if row.values.get("email")},
        [getattr(Client, name) for name in fields if name not in ("external_id", "email")],
    ))
    seen_ids, seen_emails, taken = {}, {}, {}
    for row in rows:
        values = row.values
        if not values.get("name"):
            derived = " ".join(filter(None, (values.get("first_name"), values.get("last_name"))))
            if derived:
                values["name"] = derived
            else:
                row.error("name", "Give the household's name (or a first and last name).")
        external_id, email = values.get("external_id"), _lower(values.get("email"))
        row.label = values.get("name") or ""
        if not external_id and not email:
            row.error("email", "Give an external_id or an email, so that the row is matched "
                               "when the file is imported again.")
        if external_id and external_id in seen_ids:
            row.error("external_id", f"The external id {external_id} is also on row "
                                     f"{seen_ids[external_id]}.")
        if email and email in seen_emails:
            row.error("email", f"The email {values['email']} is also on row "
                               f"{seen_emails[email]}.")
        if external_id:
            seen_ids.setdefault(external_id, row.number)
        if email:
            seen_emails.setdefault(email, row.number)
        if row.errors or not (external_id or email):
            continue
        errors_before = len(row.errors)
        match = index.find(row, "external_id", "email", adopt_by_email=True)
        if len(row.errors) > errors_before:
            continue
        if match is not None and match.id in taken:
            row.error("email", f"Row {taken[match.id]} already updates this client.")
            continue
        wanted = {name: values.get(name) for name in fields}
        if not external_id:
            wanted.pop("external_id", None)  # an empty cell never takes a client's id away
        if match is None:
            row.writes = {name: value for name, value in wanted.items() if value is not None}
            continue
        taken[match.id] = row.number
        row.target_id = match.id
        row.changes = [
            name for name, value in wanted.items()
            if not _same(name, getattr(match, name), value)
        ]
        row.status = "updated" if row.changes else "unchanged"
        row.writes = {name: wanted[name] for name in row.changes}
        row.before = {name: getattr(match, name) for name in row.changes}


def _same(name: str, old: object, new: object) -> bool:
    if name in ("email", "client_email") and isinstance(old, str) and isinstance(new, str):
        return old.lower() == new.lower()
    return old == new


# --- pets -------------------------------------------------------------------------------------

PET_FIELDS = ["name", "species", "breed", "birthday", "feeding_notes", "medication_notes",
              "notes"]


def _clients_named(business_id: int, rows: list[Row]) -> _ClientIndex:
    return _ClientIndex(_existing_clients(
        business_id,
        {row.values["client_external_id"] for row in rows if row.values.get("client_external_id")},
        {_lower(row.values["client_email"]) for row in rows if row.values.get("client_email")},
        [Client.name],
    ))


def _client_label(row: Row, client) -> str:
    if client is not None:
        return client.name
    return row.values.get("client_external_id") or row.values.get("client_email") or ""


def _plan_pets(business: Business, columns: list[str], rows: list[Row]) -> None:
    fields = [name for name in PET_FIELDS if name in columns]
    if "species" not in fields:
        fields.append("species")
    clients = _clients_named(business.id, rows)
    found = {row.number: clients.find(row, "client_external_id", "client_email") for row in rows}
    client_ids = {client.id for client in found.values() if client is not None}
    existing: dict[tuple[int, str], object] = {}
    for chunk in _chunks(client_ids):
        query = select(Pet.id, Pet.client_id, *(getattr(Pet, name) for name in fields)).where(
            Pet.business_id == business.id, Pet.client_id.in_(chunk))
        for pet in db.session.execute(query):
            existing.setdefault((pet.client_id, pet.name.lower()), pet)
    seen: dict[tuple[int, str], int] = {}
    for row in rows:
        values, client = row.values, found[row.number]
        if not values.get("name"):
            row.error("name", "Give the pet's name.")
        values["species"] = values.get("species") or "Dog"
        if values.get("birthday"):
            values["birthday"] = _birthday(row, values["birthday"])
        row.label = f"{values.get('name') or ''} ({_client_label(row, client)})"
        if client is None or not values.get("name"):
            continue
        key = (client.id, values["name"].lower())
        if key in seen:
            row.error("name", f"{client.name} has a pet called {values['name']} on row "
                              f"{seen[key]} too.")
        seen.setdefault(key, row.number)
        if row.errors:
            continue
        wanted = {name: values.get(name) for name in fields}
        match = existing.get(key)
        if match is None:
            row.writes = {"client_id": client.id, **{name: value for name, value in
                                                      wanted.items() if value is not None}}
            continue
        row.target_id = match.id
        row.changes = [name for name, value in wanted.items() if getattr(match, name) != value]
        row.status = "updated" if row.changes else "unchanged"
        row.writes = {name: wanted[name] for name in row.changes}
        row.before = {name: getattr(match, name) for name in row.changes}
        row.about = {"client_id": client.id}


def _birthday(row: Row, text: str) -> date | None:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        row.error("birthday", f"{text} is not a date written YYYY-MM-DD.")
        return None
    if len(text) != 10:
        row.error("birthday", f"{text} is not a date written YYYY-MM-DD.")
        return None
    if day > date.today():
        row.error("birthday", f"{text} is in the future.")
    return day


# --- services ---------------------------------------------------------------------------------

def _plan_services(business: Business, columns: list[str], rows: list[Row]) -> None:
    clients = _clients_named(business.id, rows)
    found = {row.number: clients.find(row, "client_external_id", "client_email") for row in rows}
    emails = {_lower(row.values["staff_email"]) for row in rows if row.values.get("staff_email")}
    staff = {}
    for chunk in _chunks(emails):
        query = select(User.id, User.email, User.name).where(
            User.business_id == business.id, User.role == Role.STAFF, User.active,
            func.lower(User.email).in_(chunk))
        staff.update((person.email.lower(), person) for person in db.session.execute(query))
    for row in rows:
        values = row.values
        if not values.get("title"):
            row.error("title", "Give the service's title, such as Dog walk.")
        email = _lower(values.get("staff_email"))
        if email and email not in staff:
            row.error("staff_email", f"No active staff member has the email "
                                     f"{values['staff_email']}.")
        values["staff_id"] = staff[email].id if email in staff else None
        values["staff_name"] = staff[email].name if email in staff else None
        values["starts_at"] = _moment(row, "start", business.time_zone)
        values["ends_at"] = _moment(row, "end", business.time_zone)
        starts, ends = values["starts_at"], values["ends_at"]
        if starts and ends and ends <= starts:
            row.error("end", "The end must be after the start.")
        elif starts and ends and ends - starts > timedelta(days=MAX_SERVICE_DAYS):
            row.error("end", f"A service lasts at most {MAX_SERVICE_DAYS} days.")
        who = staff[email].name if email in staff else "unassigned"
        row.label = (f"{values.get('title') or ''}, {values.get('start') or ''} "
                     f"({_client_label(row, found[row.number])}, {who})")
    _match_services(business, rows, found, "staff_email" in columns)


def _match_services(business: Business, rows: list[Row], found: dict, with_staff: bool) -> None:
    """Matches rows to the client's services by start and title, else by start alone when
    one service of the client starts then and no other row claims it: so a visit reassigned
    (or renamed) in the portal is the same visit when the file comes again, and the file's
    staff member is an update. Not for a visit that has begun or was cancelled: who was sent
    then stays as the portal says (the row is unchanged for its staff)."""
    client_ids = {client.id for client in found.values() if client is not None}
    starts = [row.values["starts_at"] for row in rows if row.values["starts_at"]]
    existing: dict[tuple, list] = {}
    for chunk in _chunks(client_ids):
        if not starts:
            break
        query = select(ScheduledService.id, ScheduledService.client_id,
                       ScheduledService.staff_id, ScheduledService.starts_at,
                       ScheduledService.ends_at, ScheduledService.title,
                       ScheduledService.status, User.name.label("staff_name")).outerjoin(
            User, User.id == ScheduledService.staff_id).where(
            ScheduledService.business_id == business.id,
            ScheduledService.client_id.in_(chunk),
            ScheduledService.starts_at.between(min(starts), max(starts)))
        for service in db.session.execute(query.order_by(ScheduledService.id)):
            existing.setdefault((service.client_id, service.starts_at), []).append(service)
    seen: dict[tuple, int] = {}
    matched: dict[int, object] = {}  # row number -> service
    claimed: set[int] = set()
    pending = []
    for row in rows:
        client, values = found[row.number], row.values
        if client is None or row.errors:
            continue
        key = (client.id, values["starts_at"], values["title"])
        if key in seen:
            row.error("start", f"Row {seen[key]} has the same client, title and start.")
            continue
        seen[key] = row.number
        same_title = [service for service in existing.get(key[:2], [])
                      if service.title == values["title"] and service.id not in claimed]
        if same_title:
            matched[row.number] = same_title[0]
            claimed.add(same_title[0].id)
        pending.append((row, client))
    for row, client in pending:  # then by start alone: the one service left at that start
        if row.number in matched:
            continue
        left = [service for service in existing.get((client.id, row.values["starts_at"]), [])
                if service.id not in claimed]
        if len(left) == 1:
            matched[row.number] = left[0]
            claimed.add(left[0].id)
    now = utcnow()
    for row, client in pending:
        values = row.values
        wanted = {"title": values["title"], "ends_at": values["ends_at"]}
        match = matched.get(row.number)
        if match is None:
            row.writes = {"client_id": client.id, "staff_id": values["staff_id"],
                          "starts_at": values["starts_at"], **wanted}
            continue
        if with_staff and match.status != ServiceStatus.CANCELLED and match.starts_at > now:
            wanted["staff_id"] = values["staff_id"]
        row.target_id = match.id
        row.changes = [name for name, value in wanted.items() if getattr(match, name) != value]
        row.status = "updated" if row.changes else "unchanged"
        row.writes = {name: wanted[name] for name in row.changes}
        row.before = {name: getattr(match, name) for name in row.changes}
        row.about = {"client_id": client.id, "title": match.title,
                     "starts_at": match.starts_at.astimezone(UTC).isoformat(),
                     "staff_id": row.writes.get("staff_id", match.staff_id)}
        if "staff_id" in row.changes:
            row.about["staff_names"] = [match.staff_name, values["staff_name"]]


def _moment(row: Row, column: str, time_zone: str) -> datetime | None:
    text = row.values.get(column)
    if not text:
        row.error(column, f"Give the {column} as YYYY-MM-DD HH:MM.")
        return None
    try:
        local = datetime.strptime(text, TIME_FORMAT)
    except ValueError:
        row.error(column, f"{text} is not a time written YYYY-MM-DD HH:MM (24-hour clock).")
        return None
    try:
        return to_utc(local.date(), local.time(), time_zone)
    except NonexistentLocalTime as error:
        row.error(column, str(error))
        return None


# --- keeping an upload until its confirm ------------------------------------------------------

def keep(business: Business, actor: User, kind: str, file_name: str, text: str) -> PendingImport:
    """Keeps an uploaded file for its preview and confirm. Sweeps what expired, and the same
    person's earlier upload of the same kind (it was replaced by this one)."""
    db.session.execute(delete(PendingImport).where(or_(
        PendingImport.created_at < utcnow() - KEPT,
        (PendingImport.user_id == actor.id) & (PendingImport.kind == kind),
    )))
    pending = PendingImport(
        token=secrets.token_urlsafe(32), business_id=business.id, user_id=actor.id, kind=kind,
        file_name=file_name[:255], content=text,
    )
    db.session.add(pending)
    db.session.commit()
    return pending


def find_pending(actor: User, token: str) -> PendingImport | None:
    """The person's own upload waiting for its confirm (or just imported), unless expired."""
    return db.session.scalar(select(PendingImport).where(
        PendingImport.token == token, PendingImport.user_id == actor.id,
        PendingImport.business_id == actor.business_id,
        PendingImport.created_at >= utcnow() - KEPT,
    ))


def discard(pending: PendingImport) -> None:
    db.session.delete(pending)
    db.session.commit()


# --- the confirm ------------------------------------------------------------------------------

def run(actor: User, business: Business, pending: PendingImport) -> Plan:
    """Imports the upload: every row or none. Raises ImportRefused (nothing written) when a
    row is in error now, AlreadyImported when this upload was imported before."""
    text, kind = pending.content, pending.kind
    claimed = db.session.execute(
        update(PendingImport)
        .where(PendingImport.id == pending.id, PendingImport.imported_at.is_(None))
        .values(imported_at=utcnow(), content="")
    ).rowcount
    if not claimed:
        db.session.rollback()
        raise AlreadyImported()
    try:
        result = plan(business, kind, text, pending.file_name)
        if not result.ok:
            raise ImportRefused(result)
        _write(business, result)
        _audit_updates(business, actor, result)
        if result.writes:
            counts = result.counts
            audit.record(business.id, actor, "records.imported", "business", business.id,
                         kind=kind, file_name=pending.file_name, new=counts["new"],
                         updated=counts["updated"], unchanged=counts["unchanged"])
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return result


MODELS: dict[str, type] = {"clients": Client, "pets": Pet, "services": ScheduledService}


def _write(business: Business, result: Plan) -> None:
    model = MODELS[result.kind]
    new = [{"business_id": business.id, **row.writes} for row in result.rows
           if row.status == "new"]
    for chunk in _chunks(new, 1000):
        db.session.execute(insert(model), chunk)
    changed = [{"id": row.target_id, **row.writes} for row in result.rows
               if row.status == "updated"]
    for chunk in _chunks(changed, 1000):
        db.session.execute(update(model), chunk)


def _audit_updates(business: Business, actor: User, result: Plan) -> None:
    """One audit event per record the import changed, with its fields before and after, as
    a hand edit records them (a gate code as changed, without its values): bulk INSERTs in
    the import's transaction."""
    now = utcnow()
    events = []
    for row in result.rows:
        if row.status != "updated":
            continue
        action, object_type, details = _update_event(result.kind, row)
        events.append({"business_id": business.id, "actor_id": actor.id, "action": action,
                       "object_type": object_type, "object_id": row.target_id,
                       "details": {**details, "file_name": result.file_name},
                       "created_at": now})
    for chunk in _chunks(events, 1000):
        db.session.execute(insert(AuditEvent), chunk)


def _update_event(kind: str, row: Row) -> tuple[str, str, dict]:
    if kind == "services":  # as the schedule's own edits record them
        changes = {}
        for name in row.changes:
            before, after = row.before[name], row.writes[name]
            if name == "staff_id":
                changes["staff"] = row.about["staff_names"]
            if isinstance(before, datetime):
                before, after = (moment.astimezone(UTC).isoformat() for moment in (before, after))
            changes[name] = [before, after]
        details = {key: value for key, value in row.about.items() if key != "staff_names"}
        action = "service.reassigned" if row.changes == ["staff_id"] else "service.changed"
        return action, "scheduled_service", {**details, "changes": changes}
    changes = {name: recorded_change(name, row.before[name], row.writes[name])
               for name in row.changes}
    if kind == "pets":
        return "pet.updated", "pet", {**row.about, "changes": changes}
    return "client.updated", "client", {"changes": changes}


def parse_upload(kind: str, data: bytes, file_name: str) -> str:
    """read_upload, then the header and row count checked, so that a file which cannot be
    imported is refused at the upload rather than kept."""
    text = read_upload(data, file_name)
    read_table(kind, text)
    return text

