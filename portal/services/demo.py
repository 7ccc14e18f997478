"""The demo business that `make run` starts with: one login per role."""

from datetime import time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from portal import policy
from portal.extensions import db
from portal.models import (
    Business,
    Client,
    Feed,
    PreferredSitter,
    Role,
    ScheduledService,
    ServiceStatus,
    User,
    utcnow,
)
from portal.services import accounts, clients, messages, schedule

BUSINESS_NAME = "Happy Tails Pet Care"
PASSWORD = "happy-tails-demo"

LOGINS = [
    (Role.ADMIN, "Alice Admin", "admin@happytails.example"),
    (Role.OFFICE_MANAGER, "Oscar Office", "office@happytails.example"),
    (Role.STAFF, "Sam Sitter", "sam@happytails.example"),
    (Role.STAFF, "Wendy Walker", "wendy@happytails.example"),
    (Role.CLIENT, "Carla Client", "carla@example.com"),
    (Role.CLIENT, "Dan Dogowner", "dan@example.com"),
]


def seed() -> bool:
    """Creates the demo business unless it exists. Returns whether it created it."""
    if db.session.scalar(select(Business.id).where(Business.name == BUSINESS_NAME)):
        return False
    business = Business(name=BUSINESS_NAME, time_zone="America/Chicago")
    db.session.add(business)
    db.session.commit()

    def login(role, name, email, client_id=None):
        # Each demo person has their own number (in the fictional 555-01xx range), confirmed
        # as if they had typed back its code: texts go to a number only once it is.
        user = accounts.create_user(
            business, role=role, email=email, name=name, password=PASSWORD,
            client_id=client_id, phone=f"+1312555{100 + LOGINS.index((role, name, email)):04d}",
            time_zone="America/Chicago",
        )
        user.phone_confirmed_at = utcnow()
        db.session.commit()
        return user

    admin = login(*LOGINS[0])
    login(*LOGINS[1])
    sam, wendy = login(*LOGINS[2]), login(*LOGINS[3])
    carla_home = clients.create_client(
        business, admin, name="The Rivera Household", email="carla@example.com",
        phone="+1 312 555 0142", address="1418 W Addison St, Chicago, IL",
        notes="Gate code 4321. Biscuit pulls on the leash near the park.",
        pets=[("Biscuit", "Dog"), ("Mochi", "Cat")],
    )
    dan_home = clients.create_client(
        business, admin, name="The Okafor Household", email="dan@example.com",
        phone="+1 312 555 0178", address="2230 N Clark St, Chicago, IL",
        notes="Key in the lockbox. Pepper needs her pill at noon.",
        pets=[("Pepper", "Dog")],
    )
    carla = login(*LOGINS[4], client_id=carla_home.id)
    dan = login(*LOGINS[5], client_id=dan_home.id)

    # The schedule, in the business's zone: a weekly walk (a series), an overnight stay across
    # two days, a cancelled visit and one nobody is assigned to yet.
    today = utcnow().astimezone(ZoneInfo(business.time_zone)).date()
    day = timedelta(days=1)
    schedule.schedule(
        admin, carla_home, sam, title="Dog walk", allow_overlap=True,
        span=schedule.LocalSpan(today, time(12), today, time(12, 30)),
        repeat=schedule.Repeat(schedule.Frequency.WEEKLY, weekdays=(0, 2, 4), count=24),
    )
    schedule.schedule(
        admin, dan_home, wendy, title="Overnight stay", allow_overlap=True,
        span=schedule.LocalSpan(today + day, time(18), today + 2 * day, time(9)),
    )
    dropped = schedule.schedule(
        admin, carla_home, wendy, title="Drop-in visit", allow_overlap=True,
        span=schedule.LocalSpan(today + 2 * day, time(15), today + 2 * day, time(15, 30)),
    )
    schedule.cancel(admin, dropped[0])
    schedule.schedule(
        admin, dan_home, None, title="Dog walk", allow_overlap=True,
        span=schedule.LocalSpan(today + 3 * day, time(10), today + 3 * day, time(10, 45)),
    )
    clients.add_preferred_sitter(admin, dan_home, sam)

    messages.post_message(carla, carla_home, Feed.CONVERSATION,
                          "Hi! Biscuit has a vet visit on Friday, can Sam walk him earlier?")
    messages.post_message(admin, carla_home, Feed.CONVERSATION,
                          "Of course. Sam will come at 11 instead of noon on Friday.")
    messages.post_message(sam, carla_home, Feed.CONVERSATION,
                          "See you Friday at 11, Biscuit!")
    messages.post_message(dan, dan_home, Feed.CONVERSATION,
                          "Pepper's new pills are on the counter. Thanks!")
    return True


def logins_table() -> str:
    existing = {
        user.email: user
        for user in db.session.scalars(
            select(User).where(User.email.in_([email for _, _, email in LOGINS]))
        )
    }
    rows = [("Role", "Name", "Email", "Password")]
    rows += [
        (role.label, name, email, PASSWORD) for role, name, email in LOGINS if email in existing
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def assignments() -> str:
    """Which demo sitter serves which client, and so sees its Conversation feed: what a
    newcomer needs to try the staff view. The clients listed are the ones the policy lets
    each staff login open."""
    lines = ["Staff see a client's Conversation feed while they serve them:"]
    staff = db.session.scalars(
        select(User).where(User.role == Role.STAFF,
                           User.email.in_([email for _, _, email in LOGINS]))
        .order_by(User.name)
    )
    for person in staff:
        reasons = _reasons(person)
        seen = db.session.scalars(policy.clients_visible_to(person).order_by(Client.name))
        served = [f"{client.name} ({', '.join(reasons[client.id])})" for client in seen]
        lines.append(f"  {person.name}: {'; '.join(served) or 'no clients'}")
    households = db.session.execute(
        select(User.name, Client.name).join(Client, Client.id == User.client_id)
        .where(User.email.in_([email for _, _, email in LOGINS])).order_by(User.name)
    )
    lines.append("Client logins: " + "; ".join(f"{person} is {household}"
                                               for person, household in households))
    return "\n".join(lines)


def _reasons(person: User) -> dict[int, list[str]]:
    reasons: dict[int, list[str]] = {}
    for client_id in db.session.scalars(
        select(PreferredSitter.client_id).where(PreferredSitter.staff_id == person.id)
    ):
        reasons.setdefault(client_id, []).append("preferred sitter")
    window = policy.staff_access_window(person.business)
    series_seen = set()
    for service in db.session.scalars(
        select(ScheduledService)
        .where(ScheduledService.staff_id == person.id,
               ScheduledService.status != ServiceStatus.CANCELLED,
               ScheduledService.ends_at >= window.start, ScheduledService.starts_at <= window.end)
        .order_by(ScheduledService.starts_at)
    ):
        if service.series_id is not None:
            if service.series_id in series_seen:
                continue
            series_seen.add(service.series_id)
        when = service.starts_at.astimezone(ZoneInfo(person.business.time_zone))
        repeats = ""
        if service.series_id is not None:
            rule = schedule.describe_rule(service.series.rule)
            repeats = f", {rule[0].lower()}{rule[1:]}"
        reasons.setdefault(service.client_id, []).append(
            f"{service.title} {when:%a} {when.day} {when:%b %H:%M}{repeats}")
    return reasons
